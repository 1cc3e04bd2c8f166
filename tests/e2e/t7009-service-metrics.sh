#!/bin/bash
test_description='service: metrics in the Prometheus text format, from
the CLI and from the daemon on a loopback port (never another address)'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

free_port() {
	python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

# fetch URL OUT: the body to OUT, "STATUS CONTENT-TYPE" on stdout
fetch() {
	python3 - "$1" "$2" <<-\PY
	import sys, urllib.request, urllib.error
	try:
	    r = urllib.request.urlopen(sys.argv[1], timeout=10)
	except urllib.error.HTTPError as e:
	    r = e
	open(sys.argv[2], "wb").write(r.read())
	print(r.status, r.headers["Content-Type"])
	PY
}

test_expect_success 'autosync metrics: state, last success, runs by outcome' '
	mkfixture src small &&
	autosync create good --source "$PWD/src" --dest "$PWD/dst" --every 1d &&
	: >notadir &&
	autosync create bad --source "$PWD/src" --dest "$PWD/notadir/d" \
		--every 1d --retries 1 &&
	autosync run good &&
	test_must_fail autosync run bad &&
	autosync metrics >m &&
	test_grep "^autosync_service_state{service=\"good\",state=\"online\"} 1$" m &&
	test_grep "^autosync_service_state{service=\"bad\",state=\"maintenance\"} 1$" m &&
	test_grep "^autosync_runs_total{service=\"good\",outcome=\"ok\"} 1$" m &&
	test_grep "^autosync_runs_total{service=\"bad\",outcome=\"failed\"} 1$" m &&
	test_grep "^autosync_last_success_timestamp_seconds{service=\"good\"} [0-9.]*$" m &&
	! grep -q "^autosync_last_success_timestamp_seconds{service=\"bad\"}" m &&
	test_grep "^autosync_last_run_bytes{service=\"good\"} [1-9][0-9]*$" m &&
	test_grep "^# TYPE autosync_runs_total counter$" m &&
	! grep -v "^#" m | grep -qv "^autosync_[a-z_]*{[^}]*} [0-9.]*$"
'

test_expect_success 'the daemon serves them on loopback only' '
	test_expect_code 2 autosync daemon --metrics 0.0.0.0:9 2>err &&
	test_grep "loopback" err &&
	test_expect_code 2 autosync daemon --metrics 192.0.2.1:9 &&
	port=$(free_port) &&
	test_bg "autosync daemon --metrics 127.0.0.1:$port 2>>daemon.log" &&
	daemon_pid=$test_bg_pid &&
	wait_for 10 test -S "$AUTOSYNC_STATE_DIR/autosync.sock" &&
	fetch "http://127.0.0.1:$port/metrics" body >st &&
	test_grep "^200 text/plain; version=0.0.4" st &&
	test_grep "^autosync_service_state{service=\"good\"," body &&
	fetch "http://127.0.0.1:$port/other" body2 >st2 &&
	test_grep "^404" st2 &&
	stop_daemon
'

test_done
