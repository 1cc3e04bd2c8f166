#!/bin/bash
test_description='service: keep_src keeps the newest N autosync snapshots
of the source, never the newest common one or the user'\''s; keep_dst is 1
for directories; NAME-latest names the newest snapshot unless -X'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

auto_count() { snaps "$1" | grep -c "^autosync_"; }
guid_of() { autosync snapshots -H "$1" | awk -F'\t' -v n="$2" '$1 == n { print $2 }'; }
newest_auto() { snaps "$1" | grep "^autosync_" | tail -n 1; }

test_expect_success 'keep_src 3: five runs leave three, plus the user snapshot and -latest' '
	mkfixture s1 small &&
	autosync snapshot "$PWD/s1@mine" &&
	autosync create r --source "$PWD/s1" --dest "$PWD/d1" --every 1d \
		--keep-src 3 --trace-level 2 &&
	for i in 1 2 3 4 5; do
		echo $i >s1/f$i && autosync run r || return 1
	done &&
	assert_same_tree s1 d1 &&
	test "$(auto_count "$PWD/s1")" = 3 &&
	snaps "$PWD/s1" | grep -qx mine &&
	snaps "$PWD/s1" | grep -qx r-latest &&
	n=$(newest_auto "$PWD/s1") &&
	test "$(guid_of "$PWD/s1" r-latest)" = "$(guid_of "$PWD/s1" "$n")" &&
	autosync log r >log &&
	test_grep "r-latest is $n" log &&
	test_grep "1 pruned" log &&
	autosync set r keep_src=1 &&
	echo 6 >s1/f6 && autosync run r &&
	test "$(auto_count "$PWD/s1")" = 1 &&
	snaps "$PWD/s1" | grep -qx mine
'

test_expect_success 'keep_src 0 keeps every snapshot' '
	mkfixture s2 small &&
	autosync create all --source "$PWD/s2" --dest "$PWD/d2" --every 1d \
		--keep-src 0 &&
	for i in 1 2 3 4; do
		echo $i >s2/f$i && autosync run all || return 1
	done &&
	test "$(auto_count "$PWD/s2")" = 4
'

test_expect_success 'the newest common snapshot of another destination is never pruned' '
	mkfixture s3 small &&
	autosync create b --source "$PWD/s3" --dest "$PWD/d3b" --every 1d \
		--trace-level 2 &&
	autosync create a --source "$PWD/s3" --dest "$PWD/d3a" --every 1d &&
	autosync run b &&
	held=$(newest_auto "$PWD/s3") &&
	for i in 1 2 3; do
		echo $i >s3/g$i && autosync run a || return 1
	done &&
	snaps "$PWD/s3" | grep -qxF "$held" &&
	test "$(auto_count "$PWD/s3")" = 2 &&
	autosync run b &&
	assert_same_tree s3 d3b &&
	autosync log b | tail -n 3 >blog &&
	test_grep "incremental from $held" blog &&
	! snaps "$PWD/s3" | grep -qxF "$held"
'

test_expect_success '-X: no NAME-latest; latest=off removes it; destroy removes it' '
	mkfixture s4 small &&
	autosync create x --source "$PWD/s4" --dest "$PWD/d4" --every 1d -X &&
	autosync run x &&
	! snaps "$PWD/s4" | grep -q latest &&
	prop_is x latest off &&
	autosync set x latest=on &&
	autosync run x &&
	snaps "$PWD/s4" | grep -qx x-latest &&
	autosync set x latest=off &&
	echo more >s4/more && autosync run x &&
	! snaps "$PWD/s4" | grep -q latest &&
	autosync set x latest=on &&
	autosync run x &&
	snaps "$PWD/s4" | grep -qx x-latest &&
	autosync destroy x &&
	! snaps "$PWD/s4" | grep -q latest &&
	test "$(auto_count "$PWD/s4")" = 1 &&
	test_must_fail autosync show x
'

test_expect_success 'keep_dst: a directory destination holds one snapshot' '
	test_must_fail autosync set r keep_dst=2 2>err &&
	test_grep "keep_dst 2: a directory destination holds one snapshot" err &&
	prop_is r keep_dst 1 &&
	autosync set r keep_dst=0 &&
	test_must_fail autosync create y --source "$PWD/s4" \
		--dest "ssh://h/x" --every 1d --keep-dst 5 2>err &&
	test_grep "directory destination holds one" err &&
	test_must_fail autosync set r keep_src=-1 &&
	test_must_fail autosync set r keep_src=x &&
	test_must_fail autosync create p --source ssh://h/srv/p \
		--dest "$PWD/dp" --every 1d --keep-src 5 2>err &&
	test_grep "kept by its server" err &&
	test_must_fail autosync create v --source vol:/dev/null \
		--dest "vol:$PWD/v.img" --every 1d --keep-src 0 2>err &&
	test_grep "not supported for .vol. sources" err
'

test_done
