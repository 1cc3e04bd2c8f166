# lib-service.sh - helpers for the service tests (t7*), sourced after
# test-lib.sh.

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	while ! "$@" 2>/dev/null; do
		test $SECONDS -lt $deadline || {
			echo "wait_for: timed out: $*" >&2; return 1; }
		sleep 0.1
	done
}

prop_ge() {	# NAME PROP N
	local v
	v=$(autosync get "$1" "$2") && test "$v" -ge "$3"
}

prop_is() {	# NAME PROP VALUE
	test "$(autosync get "$1" "$2")" = "$3"
}

same() { assert_same_tree "$1" "$2" >/dev/null 2>&1; }

# start_daemon: a daemon on $AUTOSYNC_STATE_DIR; its PID in daemon_pid
# (a daemon killed with -9 leaves its socket: it is not a sign of life)
start_daemon() {
	rm -f "$AUTOSYNC_STATE_DIR/autosync.sock" &&
	test_bg 'autosync daemon 2>>daemon.log' &&
	daemon_pid=$test_bg_pid &&
	wait_for 10 test -S "$AUTOSYNC_STATE_DIR/autosync.sock"
}

stop_daemon() {
	test_kill $daemon_pid TERM &&
	wait "$daemon_pid"
}

# sent_below NAME N: the service's last run sent more than 0, fewer than N bytes
sent_below() {
	local n
	n=$(autosync get "$1" bytes_sent) && echo "# $1: $n bytes sent" &&
	test "$n" -gt 0 && test "$n" -lt "$2"
}

# log_has NAME PATTERN: the service's log has a line matching PATTERN
log_has() {
	autosync log "$1" | grep -q -- "$2"
}

# snaps SRC: the snapshot names of dataset SRC, one a line
snaps() {
	autosync snapshots -H "$1" | cut -f1
}
