#!/bin/bash
test_description='man pages: autosync(8) and the section 5 pages render
without groff warnings, and every command of `autosync help` has its own
page autosync-VERB(8), cut from autosync(8) by scripts/man-split.py, with
its synopsis, its text, the exit status and the sections it needs'
. "$(dirname "$0")/test-lib.sh"

# The verbs the binary itself lists, so a new command without a page fails.
autosync help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' >verbs

# renders_clean PAGE: groff reports no warning, man(1) finds a NAME line.
renders_clean() {
	groff -man -ww -z "$1" 2>warn &&
	test_must_be_empty warn &&
	MANWIDTH=80 man -l "$1" 2>/dev/null >text &&
	test_grep -q "^NAME" text
}

test_expect_success 'autosync(8), autosync-stream(5), autosync-serve.conf(5) render cleanly' '
	for p in autosync.8 autosync-stream.5 autosync-serve.conf.5; do
		renders_clean "$TEST_ROOT/doc/$p" || { echo "$p"; cat warn; return 1; }
	done
'

test_expect_success 'one page per command, each rendering cleanly' '
	test "$(wc -l <verbs)" -ge 20 &&
	python3 "$TEST_ROOT/scripts/man-split.py" "$TEST_ROOT/doc/autosync.8" \
		"$TEST_ROOT/src/cli/main.c" man &&
	while read -r v; do
		test -f "man/autosync-$v.8" || { echo "no page for $v"; return 1; }
		renders_clean "man/autosync-$v.8" || { echo "$v"; cat warn; return 1; }
		test_grep -q "autosync-$v - " text &&
		test_grep -q "^EXIT STATUS" text &&
		test_grep -q "^SYNOPSIS" text || return 1
	done <verbs &&
	test "$(ls man | wc -l)" = "$(wc -l <verbs)"
'

test_expect_success 'a page carries its command text and the sections it needs' '
	MANWIDTH=200 man -l man/autosync-sync.8 >sync.txt 2>/dev/null &&
	test_grep -q "autosync sync \[-v\]" sync.txt &&
	test_grep -q "^ENDPOINTS" sync.txt &&
	test_grep -q "^TRANSPORT OPTIONS" sync.txt &&
	MANWIDTH=200 man -l man/autosync-set.8 >set.txt 2>/dev/null &&
	test_grep -q "^SERVICE PROPERTIES" set.txt &&
	test_grep -q "rate_limit" set.txt &&
	MANWIDTH=200 man -l man/autosync-disable.8 >dis.txt 2>/dev/null &&
	test_grep -Eq "takes +a +service +off +the +schedule" dis.txt
'

test_expect_success 'a command missing from autosync(8) is an error naming it' '
	sed "s/{ \"metrics\",/{ \"frobnicate\", cmd_x, \"x\" }, { \"metrics\",/" \
		"$TEST_ROOT/src/cli/main.c" >main.c &&
	test_must_fail python3 "$TEST_ROOT/scripts/man-split.py" \
		"$TEST_ROOT/doc/autosync.8" main.c man2 2>err &&
	test_grep -q "frobnicate" err
'

test_done
