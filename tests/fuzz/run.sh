#!/bin/bash
# run.sh - build the libFuzzer targets with clang and run each briefly.
#
# usage: tests/fuzz/run.sh [SECONDS]    (default 60 per target; CI passes 30)
#
# Each target is linked with the library sources it exercises directly
# (src/base, src/format), with -fsanitize=fuzzer,address,undefined.  First
# the checked-in corpus is replayed (regressions), then the fuzzer runs for
# SECONDS with the corpus as seeds; new inputs go to a scratch directory,
# never into the source tree.  A crash, leak, timeout or property failure
# fails the target and leaves the input in $FUZZ_OUT/artifacts/.
# Ends with "fuzz: N passed, N failed"; exits 1 if anything failed.
#
# Environment: CC (default clang-14, else clang), FUZZ_OUT (default
# build-fuzz/libfuzzer), FUZZ_TARGETS (default "stream catalog path").
set -u

secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$root/build-fuzz/libfuzzer}
targets=${FUZZ_TARGETS:-stream catalog path}
passed=0
failed=0

if [ -z "${CC:-}" ] || ! command -v "$CC" >/dev/null 2>&1; then
	if command -v clang-14 >/dev/null 2>&1; then
		CC=clang-14
	else
		CC=clang
	fi
fi
case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

mkdir -p "$out/artifacts" || exit 1
# The fuzzers use abort() for property failures; let the sanitizers report.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"

libs=$(pkg-config --libs libxxhash 2>/dev/null || echo -lxxhash)

result() {
	# result NAME STATUS
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
		echo "PASS $1"
	else
		failed=$((failed + 1))
		echo "FAIL $1"
	fi
}

for t in $targets; do
	bin="$out/fuzz_$t"
	log="$out/fuzz_$t.log"
	seeds="$here/corpus/$t"
	work="$out/corpus-$t"
	# shellcheck disable=SC2086
	if ! "$CC" -g -O1 -std=gnu11 -D_GNU_SOURCE \
	    -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined \
	    -I"$root/src" -I"$here" \
	    -o "$bin" "$here/fuzz_$t.c" \
	    "$root"/src/base/*.c "$root"/src/format/*.c $libs \
	    >"$out/fuzz_$t.build.log" 2>&1; then
		cat "$out/fuzz_$t.build.log"
		result "fuzz_$t build" 1
		continue
	fi
	mkdir -p "$work" "$seeds"
	# 1. every checked-in input still runs clean
	"$bin" -runs=0 -max_len=1048576 -rss_limit_mb=2048 \
	    -malloc_limit_mb=512 -timeout=10 \
	    -artifact_prefix="$out/artifacts/$t-" "$seeds" >"$log.replay" 2>&1
	st=$?
	[ "$st" -eq 0 ] || tail -n 40 "$log.replay"
	result "fuzz_$t corpus replay ($(ls "$seeds" | wc -l) inputs)" "$st"
	# 2. a short fuzzing run from the corpus
	dict=()
	[ -f "$here/stream.dict" ] && dict=(-dict="$here/stream.dict")
	"$bin" -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 \
	    -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 \
	    "${dict[@]}" -artifact_prefix="$out/artifacts/$t-" \
	    "$work" "$seeds" >"$log" 2>&1
	st=$?
	if [ "$st" -ne 0 ]; then
		tail -n 60 "$log"
		ls "$out/artifacts" | grep "^$t-" | sed 's/^/artifact: /'
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
	    tail -n 1)
	result "fuzz_$t ${secs}s (${execs:-?} runs)" "$st"
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
