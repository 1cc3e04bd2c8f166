#!/bin/bash
# run-all.sh - run the end-to-end tests, each script in its own process.
#
# usage: tests/e2e/run-all.sh [-v] [GLOB...]
#   GLOB  which scripts, matched against their names (default: t[0-9]*);
#         "t2*" runs the dir family; a name without wildcards is a
#         prefix ("t8001" runs t8001-faults-kill.sh)
#   -v    pass -v to every script (show each test's output)
#
# Prints one line per script (ok/FAIL with its counts), the failing tests'
# output, and finally "N passed, N failed, N skipped" counting test cases
# across all scripts.  Exits 1 if any test failed or a script crashed.
# AUTOSYNC_TEST_TIMEOUT (seconds, default 300) bounds each script.

cd "$(dirname "$0")" || exit 2
opts=
globs=()
for a in "$@"; do
	case "$a" in
	-v|-i|-d|-x) opts="$opts $a" ;;
	-h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "run-all.sh: unknown option '$a'" >&2; exit 2 ;;
	*) globs+=("$a") ;;
	esac
done
test "${#globs[@]}" = 0 && globs=('t[0-9]*')

scripts=()
for t in t[0-9]*.sh; do
	test -f "$t" || continue
	for g in "${globs[@]}"; do
		g=${g%.sh}
		g=${g##*/}
		# a plain name is a prefix: "t2002" runs t2002-dir-incremental
		case "$g" in *[*?[]*) ;; *) g="$g*" ;; esac
		# shellcheck disable=SC2053
		if [[ ${t%.sh} == $g ]] || [[ $t == $g ]]; then
			scripts+=("$t")
			break
		fi
	done
done
if test "${#scripts[@]}" = 0; then
	echo "run-all.sh: no test script matches '${globs[*]}'" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

logdir=$(mktemp -d "${TMPDIR:-/tmp}/autosync-e2e-logs.XXXXXX") || exit 2
passed=0 failed=0 skipped=0 bad_scripts=0
start=$SECONDS
for t in "${scripts[@]}"; do
	name=${t%.sh}
	log=$logdir/$name.log
	t0=$SECONDS
	# shellcheck disable=SC2086
	timeout -k 10 "${AUTOSYNC_TEST_TIMEOUT:-300}" bash "./$t" $opts >"$log" 2>&1
	rc=$?
	secs=$((SECONDS - t0))
	summary=$(grep -E '^# passed [0-9]+, failed [0-9]+, skipped [0-9]+$' "$log" | tail -n 1)
	if test -n "$summary"; then
		read -r p f s <<<"$(echo "$summary" |
			sed -E 's/^# passed ([0-9]+), failed ([0-9]+), skipped ([0-9]+)$/\1 \2 \3/')"
	else
		p=$(grep -c '^ok ' "$log") f=0 s=0
	fi
	crashed=
	if test -z "$summary" || { test "$rc" != 0 && test "$f" = 0; }; then
		# The script died (timeout, bail out, syntax error): one failure.
		crashed=t
		f=$((f + 1))
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	detail="$p passed, $f failed, $s skipped, ${secs}s"
	if test "$f" = 0; then
		echo "ok   $name ($detail)"
	else
		bad_scripts=$((bad_scripts + 1))
		if test -n "$crashed"; then
			why="exit $rc"
			test "$rc" = 124 && why="timed out after ${AUTOSYNC_TEST_TIMEOUT:-300}s"
			echo "FAIL $name ($detail; script $why)"
		else
			echo "FAIL $name ($detail)"
		fi
		# The failing tests and what they printed (the script's own
		# report starts at "not ok" and its lines begin with "#").
		awk '/^not ok / && !/# TODO/ { show = 1 }
		     /^ok / || (/^not ok / && /# TODO/) { show = 0 }
		     show || /^Bail out!/ || /^# (trash|failed|skip all|.*exited)/' \
			"$log" | sed -e 's/^/     /' | head -n 200
		test -z "$crashed" || tail -n 15 "$log" | sed -e 's/^/     | /'
	fi
	grep -E '^ok [0-9]+ # skip' "$log" | sed -e 's/^ok [0-9]* # skip/     skip:/'
done
echo "# logs in $logdir ($((SECONDS - start))s)"
test "$failed" = 0 && test "$bad_scripts" = 0 && rm -rf "$logdir" &&
	echo "# (logs removed: all passed)"
echo "$passed passed, $failed failed, $skipped skipped"
test "$failed" = 0
