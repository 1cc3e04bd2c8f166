# lib-crash.sh - the crash enumeration of the t9003/t9004 tests, sourced
# after test-lib.sh: skips the file without a usable strace, makes $D
# (a tmpfs of its own where the test may mount one, else a directory),
# and kill_at, which kills a receive at chosen calls of chosen syscalls
# (strace -e inject=...:signal=SIGKILL) and checks recovery each time.
# The caller provides the PREPARE and CHECK functions (CHECK sets $state).

if ! test_have_prereq STRACE; then
	test_skip_all 'strace is missing or cannot trace here'
fi

if test_have_prereq TMPFS; then
	mkdir mnt && test_mount -t tmpfs -o size=256m tmpfs mnt ||
		BAIL_OUT "cannot mount a tmpfs"
	D=$TRASH_DIRECTORY/mnt
else
	D=$TRASH_DIRECTORY/dests
	mkdir "$D"
fi

# count_calls FILE: "syscall calls" lines from strace -c output
count_calls() {
	awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $NF, $4 }' "$1"
}

# points COUNT: which calls to cut: all of them with AUTOSYNC_TEST_LONG=1
# or when few, else the first two, the middle one and the last two
points() {
	if test -n "${AUTOSYNC_TEST_LONG:-}" || test "$1" -le 8; then
		seq "$1"
	else
		printf '%s\n' 1 2 $(($1 / 2)) $(($1 - 1)) "$1" | sort -n -u
	fi
}

# kill_at PREPARE CHECK RECEIVE-ARGS SYSCALLS: for every call n of every
# syscall S in SYSCALLS that a clean run makes, run PREPARE, the receive
# killed on entry to call n of S, "recover", then CHECK (old or new), the
# receive again, CHECK new.
kill_at() {
	local prep=$1 check=$2 dest=$3 stream=$4 list=$5 sc count n rc
	local points=0 fails=0
	$prep &&
	test_strace -f -c -o count -e trace="$list" \
		autosync receive "$dest" <"$stream" &&
	$check new || return 1
	count_calls count >calls
	echo "calls of a clean receive:"; sed 's/^/    /' calls
	test -s calls || { echo "none of $list"; return 1; }
	while read -r sc count; do
		for n in $(points "$count"); do
			points=$((points + 1))
			$prep || return 1
			test_strace -f -qq -o /dev/null -e trace="$sc" \
				-e inject="$sc:signal=SIGKILL:when=$n" \
				autosync receive "$dest" <"$stream" >/dev/null 2>err
			rc=$?
			if ! { autosync recover "$dest" 2>err && $check any; }; then
				echo "$sc#$n (exit $rc): not old or new after recover"
				cat err; fails=$((fails + 1)); continue
			fi
			autosync receive "$dest" <"$stream" 2>err
			rc=$?
			if test $rc = 20 && test "$state" = new; then
				continue	# already new: refused, unchanged
			fi
			if test $rc != 0 || ! $check new; then
				echo "$sc#$n: the receive after recovery: exit $rc"
				cat err; fails=$((fails + 1))
			fi
		done
	done <calls
	echo "$fails of $points kill points failed"
	test $fails = 0
}
