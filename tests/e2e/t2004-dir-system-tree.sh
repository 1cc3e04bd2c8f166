#!/bin/bash
test_description='dir engine: replicate real system trees

Real directories of this machine, synced in place (read only) or copied
first with cp -a (for /etc and the setuid and capability binaries), must
come out identical by rsync -naHAXc, getfacl, getcap and the manifest.
A debootstrap minbase root is replicated too when debootstrap is present
and AUTOSYNC_TEST_NETWORK=1 allows it to download.'
. "$(dirname "$0")/test-lib.sh"

# sync_real NAME DIR: sync a system directory as it is, check, and make
# sure it was not modified.
sync_real() {
	test -d "$2" || { echo "no $2 here"; return 0; }
	manifest "$2" >"$1.before" &&
	autosync sync "$2" "$1" &&
	assert_same_tree "$2" "$1" &&
	autosync verify "$2" "$1" &&
	test_path_is_missing "$2/.autosync" &&
	assert_manifest "$2" "$1.before"
}

test_expect_success '/usr/sbin' '
	sync_real sbin /usr/sbin
'

test_expect_success '/usr/share/zoneinfo (hard links and symlinks)' '
	sync_real zoneinfo /usr/share/zoneinfo
'

# A library tree of a few thousand files, bounded in size to stay fast.
libtree=
for d in /usr/lib/python3.11 /usr/lib/python3 /usr/share/perl5 /usr/share/perl; do
	if test -d "$d" && test "$(du -sm "$d" | cut -f1)" -lt 200; then
		libtree=$d
		break
	fi
done
if test -n "$libtree"; then
	test_expect_success "a library tree ($libtree)" '
		sync_real libtree "$libtree"
	'
else
	test_skip 'a library tree' 'no /usr/lib/python3* or perl tree under 200 MiB'
fi

test_expect_success 'a cp -a copy of /etc, setuid programs and capabilities' '
	mkdir sys &&
	cp -a /etc sys/etc &&
	mkdir -p sys/usr/bin &&
	find /usr/bin /usr/sbin /usr/lib -xdev -perm /6000 -type f 2>/dev/null |
		head -n 40 | while read -r f; do
			mkdir -p "sys${f%/*}" && cp -a "$f" "sys$f" || exit 1
		done &&
	if test_have_prereq SETCAP; then
		getcap -r /usr 2>/dev/null | head -n 10 | while read -r f caps; do
			mkdir -p "sys${f%/*}" && cp -a "$f" "sys$f" || exit 1
		done
	fi &&
	autosync sync sys sys-copy &&
	assert_same_tree sys sys-copy
'

test_expect_success 'an incremental of the system tree: package-like changes' '
	mv sys/etc/passwd sys/etc/passwd- &&
	cp -a sys/etc/passwd- sys/etc/passwd &&
	echo "# local" >>sys/etc/passwd &&
	rm -rf sys/etc/ssl 2>/dev/null; mkdir -p sys/etc/new.d &&
	echo conf >sys/etc/new.d/10-conf &&
	chmod 0640 sys/etc/new.d/10-conf &&
	autosync sync -v sys sys-copy >out &&
	cat out &&
	test_grep -q incremental out &&
	assert_same_tree sys sys-copy
'

if test_have_prereq DEBOOTSTRAP && test "$AUTOSYNC_TEST_NETWORK" = 1; then
	test_expect_success ROOT 'a debootstrap --variant=minbase root' '
		debootstrap --variant=minbase stable root \
			"${AUTOSYNC_TEST_MIRROR:-http://deb.debian.org/debian}" \
			>debootstrap.log 2>&1 &&
		autosync sync root root-copy &&
		assert_same_tree root root-copy
	'
elif test_have_prereq DEBOOTSTRAP; then
	test_skip 'a debootstrap --variant=minbase root' \
		'debootstrap needs the network: set AUTOSYNC_TEST_NETWORK=1'
else
	test_skip 'a debootstrap --variant=minbase root' \
		'debootstrap is not installed'
fi

test_done
