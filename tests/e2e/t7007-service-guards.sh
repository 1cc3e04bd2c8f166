#!/bin/bash
test_description='service, RELIABILITY.md §F: 70 endpoints checked at
creation; 71 control characters in names and errors never reach the log
or JSON raw; 67 runs of a service never overlap and triggers coalesce;
61 a full state volume stops runs safely (NOSPACE) and they resume'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-service.sh"

refused() {	# PATTERN create-args...
	local pat=$1; shift
	test_expect_code 2 autosync create "$@" --every 1d 2>err &&
	test_grep "$pat" err
}

test_expect_success '§F 70: dangerous or overlapping endpoints are refused before any I/O' '
	mkdir -p src other &&
	refused "is a system directory" g1 --source "$PWD/src" --dest / &&
	refused "is a system directory" g1 --source "$PWD/src" --dest /etc &&
	refused "is a system directory" g1 --source "$PWD/src" --dest /usr/ &&
	refused "is \$HOME" g1 --source "$PWD/src" --dest "$HOME" &&
	refused "not an absolute path" g1 --source "$PWD/src" --dest rel/dst &&
	refused "not an absolute path" g1 --source src --dest "$PWD/d" &&
	refused "overlap" g1 --source "$PWD/src" --dest "$PWD/src/inner" &&
	refused "overlap" g1 --source "$PWD/src/a" --dest "$PWD/src" &&
	refused "overlap" g1 --source "$PWD/src" --dest "$PWD/src/" &&
	test_path_is_missing src/inner &&
	autosync create g1 --source "$PWD/src" --dest "$PWD/backup/one" \
		--every 1d &&
	refused "overlaps the destination .* of service .g1." g2 \
		--source "$PWD/other" --dest "$PWD/backup/one/sub" &&
	refused "overlaps the destination .* of service .g1." g2 \
		--source "$PWD/other" --dest "$PWD/backup" &&
	autosync create g2 --source "$PWD/other" --dest "$PWD/backup/one-b" \
		--every 1d &&
	autosync create r1 --source "$PWD/src" --dest ssh://h/srv/x --every 1d &&
	refused "overlaps" r2 --source "$PWD/other" --dest ssh://h/srv/x/y &&
	autosync create r2 --source "$PWD/other" --dest ssh://other/srv/x \
		--every 1d &&
	test_path_is_missing backup &&
	for s in g1 g2 r1 r2; do autosync destroy $s || return 1; done
'

test_expect_success '§F 71: control bytes in paths and errors are escaped in log, show and JSON' '
	evil=$(printf "%s/no\nsuch\033[2J\233\"q" "$PWD") &&
	autosync create inj --source "$evil" --dest "$PWD/inj-dst" --every 1d &&
	test_expect_code 3 autosync run inj 2>err &&
	autosync log inj >log &&
	test "$(wc -l <log)" = 2 &&
	test_grep "no\\\\x0asuch\\\\x1b\[2J\\\\x9b" log &&
	! grep -q "$(printf "\033")" log &&
	autosync get inj last_error >e &&
	test "$(wc -l <e)" = 1 &&
	autosync show inj --json >show.json &&
	python3 -c "
import json, sys
d = json.load(open(\"show.json\"))
assert \"\\n\" in d[\"source\"] and \"\\x1b\" in d[\"source\"], d
assert \"does not exist\" in d[\"last_error\"], d
" &&
	autosync list --json | python3 -c "import json, sys; json.load(sys.stdin)" &&
	test "$(autosync list | wc -l)" = 2 &&
	autosync destroy inj
'

test_expect_success '§F 71: a file name in a receiver error is escaped' '
	mkfixture s2 small &&
	evil=$(printf "evil\n\033[2Jname") &&
	echo x >"s2/$evil" &&
	autosync create fn --source "$PWD/s2" --dest "$PWD/d2" --every 1d &&
	autosync run fn &&
	chmod 600 "d2/$evil" &&
	test_must_fail autosync run fn &&
	autosync log fn >log &&
	test "$(wc -l <log)" = 3 &&
	test_grep "evil\\\\x0a\\\\x1b\[2Jname" log &&
	! grep -q "$(printf "\033")" log &&
	autosync show fn --json | python3 -c "import json, sys; json.load(sys.stdin)"
'

# a pre hook that records when runs start and end, slowly
test_expect_success '§F 67: one run at a time; triggers during a run coalesce into one' '
	cat >slow.sh <<-EOF &&
	#!/bin/sh
	echo "start \$AUTOSYNC_RUN_ID" >>"$PWD/runs.log"
	sleep 1
	echo "end \$AUTOSYNC_RUN_ID" >>"$PWD/runs.log"
	EOF
	chmod +x slow.sh &&
	mkfixture s3 small &&
	autosync create ov --source "$PWD/s3" --dest "$PWD/d3" --every 1d \
		--pre-hook "$PWD/slow.sh" &&
	start_daemon &&
	wait_for 10 test -s runs.log &&
	autosync run ov && autosync run ov && autosync run ov &&
	wait_for 20 prop_is ov successes 2 &&
	sleep 2 &&
	prop_is ov successes 2 &&
	test "$(grep -c ^start runs.log)" = 2 &&
	awk "{ if ((NR % 2 == 1) != (\$1 == \"start\")) exit 1 }" runs.log &&
	stop_daemon
'

test_expect_success ROOT '§F 61: the state volume full: NOSPACE, nothing half-recorded, then it resumes' '
	mkdir st &&
	test_mount -t tmpfs -o size=512k tmpfs st &&
	mkfixture s4 small &&
	AUTOSYNC_STATE_DIR=$PWD/st autosync create full --source "$PWD/s4" \
		--dest "$PWD/d4" --every 1d &&
	AUTOSYNC_STATE_DIR=$PWD/st autosync run full &&
	dd if=/dev/zero of=st/filler bs=4k 2>/dev/null;
	echo more >s4/more &&
	test_expect_code 41 env AUTOSYNC_STATE_DIR=$PWD/st autosync run full \
		2>err &&
	test_grep "no space" err &&
	test_path_is_missing d4/more &&
	rm st/filler &&
	AUTOSYNC_STATE_DIR=$PWD/st autosync run full &&
	assert_same_tree s4 d4 &&
	test "$(AUTOSYNC_STATE_DIR=$PWD/st autosync get full successes)" = 2 &&
	test "$(AUTOSYNC_STATE_DIR=$PWD/st autosync get full failures)" = 0 &&
	python3 -c "
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
assert c.execute(\"PRAGMA integrity_check\").fetchone()[0] == \"ok\"
assert c.execute(\"SELECT COUNT(*) FROM runs WHERE ended IS NULL\").fetchone()[0] == 0
" st/autosync.db &&
	test_umount st
'

test_done
