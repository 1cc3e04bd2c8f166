#!/bin/bash
test_description='the command line: help, version, usage errors, exit
codes, snapshot/snapshots/--json/destroy, and the last-@ rule'
. "$(dirname "$0")/test-lib.sh"

verbs='snapshot snapshots destroy send receive sync verify recover'

# one_line_error FILE: an error is one line "autosync: ...".
one_line_error() {
	test_line_count = 1 "$1" &&
	test_grep -q '^autosync: ' "$1"
}

test_expect_success '--help, -h and help list every verb' '
	autosync --help >out 2>err &&
	test_must_be_empty err &&
	test_grep -q "^usage: autosync" out &&
	for v in $verbs; do
		grep -q "^  $v " out || { echo "--help lacks $v"; exit 1; }
	done &&
	autosync -h >out2 && test_cmp out out2 &&
	autosync help >out3 && test_cmp out out3
'

test_expect_success '--version' '
	autosync --version >out &&
	test_grep -Eq "^autosync [0-9]+\.[0-9]+" out &&
	test_line_count = 1 out
'

test_expect_success 'no command is a usage error (exit 2)' '
	test_expect_code 2 autosync >out 2>err &&
	test_must_be_empty out &&
	test_grep -q "usage: autosync" err
'

test_expect_success 'an unknown verb exits 2 and names it' '
	test_expect_code 2 autosync frobnicate >out 2>err &&
	test_must_be_empty out &&
	test_grep -q "frobnicate" err &&
	one_line_error err
'

test_expect_success 'an unknown global option exits 2' '
	test_expect_code 2 autosync --bogus snapshots 2>err &&
	test_grep -q "usage: autosync" err &&
	test_expect_code 2 autosync --state-dir 2>err
'

test_expect_success 'help VERB and VERB --help show that verb' '
	for v in $verbs; do
		autosync help $v >out 2>err &&
		test_must_be_empty err &&
		grep -q "^usage: autosync $v" out &&
		autosync $v --help >out2 &&
		test_cmp out out2 &&
		autosync $v -h >out3 &&
		test_cmp out out3 || { echo "help for $v"; exit 1; }
	done &&
	test_expect_code 2 autosync help frobnicate 2>err &&
	one_line_error err
'

test_expect_success 'every verb rejects an unknown option with exit 2' '
	for v in $verbs; do
		test_expect_code 2 autosync $v --no-such-option x y </dev/null \
			>out 2>err &&
		test_must_be_empty out &&
		grep -q "^usage: autosync $v" err ||
			{ echo "verb $v"; cat err; exit 1; }
	done
'

test_expect_success 'every verb checks its number of operands (exit 2)' '
	test_expect_code 2 autosync snapshot 2>err &&
	test_expect_code 2 autosync snapshot a@1 b@2 2>err &&
	test_expect_code 2 autosync destroy 2>err &&
	test_expect_code 2 autosync send </dev/null >out 2>err &&
	test_expect_code 2 autosync receive </dev/null 2>err &&
	test_expect_code 2 autosync receive a b </dev/null 2>err &&
	test_expect_code 2 autosync sync onlyone 2>err &&
	test_expect_code 2 autosync sync a b c 2>err &&
	test_expect_code 2 autosync verify onlyone 2>err &&
	test_expect_code 2 autosync recover 2>err &&
	test_expect_code 2 autosync recover a b 2>err
'

test_expect_success 'a write error on stdout is an error, not silence' '
	test_must_fail autosync --version >/dev/full 2>err &&
	test_must_fail autosync --help >/dev/full 2>err
'

test_expect_success 'snapshot creates a snapshot that snapshots lists' '
	mkfixture src small &&
	autosync snapshot src@one &&
	autosync snapshots src >out &&
	test_grep -q "^NAME" out &&
	test_grep -Eq "^one +[0-9a-f]{16} " out &&
	autosync snapshots -H src >out &&
	test_line_count = 1 out &&
	awk -F"\t" "NF != 5 { exit 1 } \$1 != \"one\" { exit 1 }" out
'

test_expect_success 'snapshot names: taken twice is a conflict (exit 20)' '
	test_expect_code 20 autosync snapshot src@one 2>err &&
	one_line_error err &&
	test_grep -q "already exists" err
'

test_expect_success 'snapshot names: invalid ones are usage errors' '
	for n in "src@" "src@a/b" "src@.." "src@sp ace" "src@a*b" \
		"@name" "src"; do
		test_expect_code 2 autosync snapshot "$n" 2>err &&
		one_line_error err || { echo "name <$n>"; exit 1; }
	done &&
	long=$(printf "x%.0s" $(seq 300)) &&
	test_expect_code 2 autosync snapshot "src@$long" 2>err
'

test_expect_success 'snapshot of a missing directory: not found (3)' '
	test_expect_code 3 autosync snapshot nosuchdir@one 2>err &&
	one_line_error err &&
	test_grep -q "'\''nosuchdir'\''" err
'

test_expect_success 'snapshot of a regular file is refused' '
	echo x >plainfile &&
	test_expect_code 2 autosync snapshot plainfile@one 2>err &&
	one_line_error err
'

test_expect_success 'snapshots --json is valid JSON with the documented fields' '
	autosync snapshot src@two &&
	autosync snapshots --json src >json &&
	python3 -m json.tool json >/dev/null &&
	python3 - json <<-\EOF
	import json, re, sys
	doc = json.load(open(sys.argv[1]))
	assert isinstance(doc, list) and len(doc) == 2, doc
	assert [s["name"] for s in doc] == ["one", "two"], doc
	for s in doc:
	    for k in ("dataset", "name", "guid", "time", "entries", "bytes"):
	        assert k in s, (k, s)
	    assert re.fullmatch("[0-9a-f]{16}", s["guid"]), s
	    assert s["entries"] > 10 and s["bytes"] > 300000, s
	assert doc[0]["guid"] != doc[1]["guid"]
	assert doc[0]["time"] <= doc[1]["time"]
	EOF
'

test_expect_success 'snapshots --json with no snapshots is an empty array' '
	mkdir other &&
	autosync --state-dir "$TRASH_DIRECTORY/empty-state" snapshots --json >json &&
	python3 -c "import json,sys; assert json.load(open(sys.argv[1])) == []" json
'

test_expect_success 'snapshots --json escapes awkward dataset names' '
	weird=$(printf "we\042ird\nname\134\377") &&
	mkdir "$weird" &&
	autosync snapshot "$weird@s" &&
	autosync snapshots --json >json &&
	python3 -m json.tool json >/dev/null &&
	autosync snapshots >out 2>err &&
	test_must_be_empty err
'

test_expect_success 'snapshots without DATASET lists every dataset' '
	autosync snapshots -H >out &&
	test_grep -q "src@one" out && test_grep -q "src@two" out
'

test_expect_success '--state-dir and AUTOSYNC_STATE_DIR choose the catalog store' '
	mkdir sd &&
	autosync --state-dir "$TRASH_DIRECTORY/sd" snapshot src@elsewhere &&
	autosync --state-dir "$TRASH_DIRECTORY/sd" snapshots -H src >out &&
	test_line_count = 1 out && test_grep -q "^elsewhere" out &&
	autosync snapshots -H src >out &&
	test_grep ! -q "^elsewhere" out &&
	AUTOSYNC_STATE_DIR=$TRASH_DIRECTORY/sd autosync snapshots -H src >out &&
	test_grep -q "^elsewhere" out &&
	test -n "$(ls -A sd)"
'

test_expect_success 'the source tree is not written to by snapshot' '
	test_path_is_missing src/.autosync &&
	manifest src >before &&
	autosync snapshot src@three &&
	assert_manifest src before
'

test_expect_success 'destroy removes one snapshot' '
	autosync destroy src@three &&
	autosync snapshots -H src >out &&
	test_grep ! -q "^three" out &&
	test_grep -q "^one" out && test_grep -q "^two" out
'

test_expect_success 'destroy of a missing snapshot: not found (3)' '
	test_expect_code 3 autosync destroy src@three 2>err &&
	one_line_error err &&
	test_expect_code 2 autosync destroy ./src 2>err &&
	test_expect_code 3 autosync destroy no-such-service 2>err
'

test_expect_success 'destroy keeps a snapshot a sync destination holds unless -f' '
	autosync sync src dst &&
	snap=$(autosync snapshots -H src | tail -n 1 | cut -f1) &&
	case "$snap" in autosync_*) ;; *) false ;; esac &&
	test_expect_code 20 autosync destroy "src@$snap" 2>err &&
	one_line_error err &&
	test_grep -q "dst" err &&
	autosync snapshots -H src >out && test_grep -q "^$snap" out &&
	autosync destroy -f "src@$snap" &&
	autosync snapshots -H src >out && test_grep ! -q "^$snap" out
'

test_expect_success 'receive does not need the sender: send > file, receive < file' '
	autosync send src@two >full.as &&
	autosync receive dst-two <full.as &&
	autosync verify src@two dst-two &&
	autosync destroy src@two
'

test_expect_success 'the last @ separates the snapshot name' '
	mkdir -p "at@dir" && echo x >"at@dir/f" &&
	autosync snapshot "at@dir@s1" &&
	autosync snapshots -H "at@dir" >out &&
	test_line_count = 1 out && test_grep -q "^s1	" out &&
	# "at@dir" alone is dataset "at", snapshot "dir": there is no "at"
	test_expect_code 3 autosync snapshot "at@dir" 2>err &&
	test_path_is_missing at &&
	autosync send "at@dir@s1" >at.as &&
	autosync receive at-copy <at.as &&
	assert_same_tree "at@dir" at-copy
'

test_expect_success 'verify: a lone trailing @ names a directory with an @' '
	autosync verify "at@dir@" at-copy &&
	autosync verify "at@dir@s1" at-copy &&
	test_expect_code 3 autosync verify "at@dir@nosuch" at-copy 2>err
'

test_expect_success 'send -i accepts @base, base and DATASET@base' '
	echo more >"at@dir/g" &&
	autosync snapshot "at@dir@s2" &&
	autosync send -i @s1 "at@dir@s2" >i1.as &&
	autosync send -i s1 "at@dir@s2" >i2.as &&
	autosync send -i "at@dir@s1" "at@dir@s2" >i3.as &&
	test $(file_size i1.as) -gt 0 &&
	test $(file_size i1.as) = $(file_size i2.as) &&
	test $(file_size i1.as) = $(file_size i3.as) &&
	test_expect_code 2 autosync send -i "src@one" "at@dir@s2" >x.as 2>err &&
	test_expect_code 3 autosync send -i @nosuch "at@dir@s2" >x.as 2>err &&
	test_expect_code 2 autosync send -i @s2 "at@dir@s2" >x.as 2>err
'

test_expect_success 'send of a missing snapshot: not found (3)' '
	test_expect_code 3 autosync send src@nosuch >x.as 2>err &&
	one_line_error err
'

test_expect_success 'recover on a directory with nothing to recover' '
	autosync recover at-copy &&
	autosync recover -v at-copy >out &&
	test_grep -q "nothing to recover" out
'

test_expect_success 'receive of garbage is a format error, and changes nothing' '
	mkdir garbage-dst &&
	echo "this is not a stream" >garbage.as &&
	test_must_fail autosync receive garbage-dst <garbage.as 2>err &&
	one_line_error err &&
	rc=0 && autosync receive garbage-dst <garbage.as 2>/dev/null || rc=$? &&
	case $rc in 10|11|12|13) ;; *) echo "exit $rc"; false ;; esac &&
	test -z "$(ls -A garbage-dst | grep -vx .autosync)" &&
	test_expect_code 10 autosync receive empty-dst </dev/null 2>err
'

test_done
