#!/bin/bash
test_description='RELIABILITY.md §F 69 on the native engines: after SIGKILL
of a local zfs -> zfs sync mid-stream, its zfs send (stopped first, so
that only the parent-death signal can end it) and its zfs receive (which
must see the end of its stream and clean up, not be killed) are gone
within 5 s, no partial dataset is left, and the next sync works.  A file
of its own: ZFS tests hold the machine-wide lock of lib-zfs.sh and skip
as a whole without ZFS.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-zfs.sh"

zfs_setup || test_done

# descendants PID: the processes below PID, one a line
descendants() {
	ps -eo pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END {
			n = 1; q[1] = root
			for (i = 1; i <= n; i++) {
				if (i > 1) print q[i]
				m = split(kids[q[i]], k, " ")
				for (j = 1; j <= m; j++) q[++n] = k[j]
			}
		}'
}

# zfs_kids PID: the zfs processes below PID
zfs_kids() {
	local p
	for p in $(descendants "$1"); do
		test "$(cat /proc/$p/comm 2>/dev/null)" = zfs && echo "$p"
	done
}

kill_ours() {
	local p
	for p in "$@"; do
		case $(cat /proc/$p/comm 2>/dev/null) in
		zfs | autosync) kill -KILL "$p" 2>/dev/null ;;
		esac
	done
	return 0
}

test_expect_success 'setup: two pools, 96 MiB in a dataset' '
	A=$(zfs_pool a 400M) && B=$(zfs_pool b 400M) &&
	zfs create "$A/src" &&
	for i in 1 2 3; do
		head -c 32M /dev/urandom >"$TRASH_DIRECTORY/mnt/$A/src/f$i" || return 1
	done
'

test_expect_success '69b: SIGKILL of a zfs sync mid-stream: zfs send and receive are gone within 5 s' '
	(exec autosync sync "zfs:$A/src" "zfs:$B/dst" 2>k.err) &
	pid=$!
	kids=
	test_when_finished "kill_ours \$kids \$pid" &&
	i=0 &&
	while test $i -lt 400; do
		kids=$(zfs_kids $pid | tr "\n" " ")
		case $kids in *" "*" "*) break ;; esac
		kill -0 $pid 2>/dev/null || break
		sleep 0.05
		i=$((i + 1))
	done &&
	echo "zfs children: $kids" &&
	test "$(echo $kids | wc -w)" -ge 2 &&
	# a short-lived zfs beside the stream (a listing) may be gone by now
	send=$(for k in $kids; do
		tr "\0" " " </proc/$k/cmdline 2>/dev/null |
		    grep -q "^zfs send" && echo $k
	done; true) &&
	echo "zfs send: $send" && test -n "$send" &&
	kill -STOP $send &&
	kill -KILL $pid && { wait $pid; true; } &&
	for k in $kids; do
		j=0
		while kill -0 $k 2>/dev/null && test "$(test_proc_state $k)" != Z; do
			test $j -lt 50 || { echo "zfs $k survived: $(tr "\0" " " </proc/$k/cmdline)"; return 1; }
			sleep 0.1
			j=$((j + 1))
		done
	done &&
	! zfs list "$B/dst" 2>/dev/null
'

test_expect_success '69b: the next sync works' '
	autosync sync "zfs:$A/src" "zfs:$B/dst" &&
	s=$(znewest "$A/src") && test -n "$s" &&
	test "$(zguid "$B/dst@$s")" = "$(zguid "$A/src@$s")"
'

test_done
