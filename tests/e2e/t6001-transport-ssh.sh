#!/bin/bash
test_description='transport: ssh:// over a real sshd on 127.0.0.1

A real sshd with throwaway host and user keys (lib-net.sh); autosync
reaches it through AUTOSYNC_SSH, a wrapper that adds the key and the port
and logs its argv.  Push and pull, full and incremental, must give the
same tree as a local sync.  RELIABILITY.md E57: a host or user that
starts with "-" is refused before ssh runs; paths with quotes, spaces,
$(...), backticks and ";" travel as data (never through a shell); a remote
without autosync (127), a remote that prints a banner first, one that
says nothing and one that hangs give a clear error, never a hang.'
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIRECTORY/lib-net.sh"

test_have_prereq SSHD || test_skip_all "no sshd or not root (apt-get install openssh-server)"
net_has_serve || test_skip_all "this autosync has no serve command yet"

T=$TRASH_DIRECTORY
PWNED=/tmp/at-pwned

# The argv of the wrapper's runs since the mark.
argv_mark() { : >"$NET_DIR/ssh-argv.log"; }

test_expect_success 'setup: sshd, keys, fixtures' '
	rm -rf "$PWNED" &&
	net_sshd_start &&
	AUTOSYNC_SSH=$NET_SSH && export AUTOSYNC_SSH &&
	R=$SSH_URL_BASE$T/remote &&
	mkdir remote &&
	mkfixture src every-kind &&
	mkfixture small small &&
	manifest small >small.manifest
'

test_expect_success 'push: full sync to ssh:// gives the same tree' '
	argv_mark &&
	net_deadline 60 autosync sync src "$R/dst" &&
	assert_same_tree src remote/dst &&
	test_path_is_missing "$PWNED"
'

test_expect_success 'ssh ran from an argv: no path on its command line' '
	cat "$NET_DIR/ssh-argv.log" &&
	test_grep -q "\[serve\] \[--stdio\]" "$NET_DIR/ssh-argv.log" &&
	test_grep ! -F "$T/remote" "$NET_DIR/ssh-argv.log"
'

test_expect_success 'push: incremental after changes' '
	mkfixture src mutate &&
	net_deadline 60 autosync sync -v src "$R/dst" >out 2>&1 &&
	cat out &&
	assert_same_tree src remote/dst
'

test_expect_success 'pull: full sync from ssh:// gives the same tree' '
	net_deadline 60 autosync sync "$R/dst" pulled &&
	assert_same_tree src pulled
'

test_expect_success 'pull: incremental after the remote side changed' '
	cp -a small remote/origin &&
	net_deadline 60 autosync sync "$R/origin" pulled-origin &&
	assert_same_tree remote/origin pulled-origin &&
	echo changed >remote/origin/a/f1 && rm remote/origin/a/f2 &&
	mkdir remote/origin/new && echo new >remote/origin/new/file &&
	net_deadline 60 autosync sync "$R/origin" pulled-origin &&
	assert_same_tree remote/origin pulled-origin
'

test_expect_success 'an unchanged push is a no-op that keeps the tree' '
	net_deadline 60 autosync sync src "$R/dst" &&
	assert_same_tree src remote/dst
'

test_expect_success 'a URL without a port uses ssh'"'"'s own (here the wrapper'"'"'s)' '
	net_deadline 60 autosync sync small "ssh://root@127.0.0.1$T/remote/noport" &&
	assert_same_tree small remote/noport
'

test_expect_success 'the documented forced command (serve --stdio) works' '
	net_sshd_add_key forced "command=\"autosync serve --stdio\",no-pty" &&
	AUTOSYNC_SSH=$NET_DIR/ssh-forced net_deadline 60 \
		autosync sync small "$R/forced" &&
	assert_same_tree small remote/forced
'

# --- E57: argument and command injection

# Each of these must be refused (USAGE) before any ssh runs.
evil_hosts() {
	printf "%s\n" \
		"ssh://-oProxyCommand=touch	$PWNED/x" \
		"ssh://-oProxyCommand=touch$PWNED/x" \
		"ssh://-oProxyCommand=touch	$PWNED:22/x" \
		"ssh://root@-oProxyCommand=touch	$PWNED/x" \
		"ssh://-oProxyCommand=touch	$PWNED@127.0.0.1/x" \
		"ssh://-p$SSHD_PORT/x" \
		"ssh://-/x" \
		"ssh://--/x" \
		"ssh://-oLocalCommand=touch	$PWNED/x"
}

test_expect_success 'a host or user starting with "-" is refused; ssh never runs (push)' '
	evil_hosts >hosts &&
	( while IFS= read -r url; do
		argv_mark &&
		test_expect_code 2 net_deadline 20 autosync sync small "$url" 2>err &&
		cat err && test -s err &&
		test_must_be_empty "$NET_DIR/ssh-argv.log" &&
		test_path_is_missing "$PWNED" || { echo "FAILED: $url"; exit 1; }
	done <hosts )
'

test_expect_success 'the same as a pull source' '
	( while IFS= read -r url; do
		argv_mark &&
		test_expect_code 2 net_deadline 20 autosync sync "$url" pulled-evil 2>err &&
		test_must_be_empty "$NET_DIR/ssh-argv.log" &&
		test_path_is_missing pulled-evil &&
		test_path_is_missing "$PWNED" || { echo "FAILED: $url"; exit 1; }
	done <hosts )
'

test_expect_success 'the same with the system ssh (no AUTOSYNC_SSH)' '
	( while IFS= read -r url; do
		test_expect_code 2 env -u AUTOSYNC_SSH timeout -k 5 20 \
			autosync sync small "$url" 2>err &&
		test_path_is_missing "$PWNED" || { echo "FAILED: $url"; exit 1; }
	done <hosts )
'

# Remote names that a shell would interpret: each must arrive as it is.
evil_names() {
	printf "%s\n" \
		"it's quoted" \
		"double\"quote" \
		"with space" \
		"\$(touch $PWNED)" \
		"\`touch $PWNED\`" \
		"semi;touch $PWNED" \
		"amp&&touch $PWNED" \
		"pipe|touch $PWNED" \
		"glob*?[x]" \
		"dollar\$HOME" \
		"back\\slash" \
		"-leading-dash" \
		"redir>$PWNED" \
		"\$(touch at-pwned-here)" \
		"\`touch at-pwned-here\`;touch at-pwned-here"
}

# What a shell would have made of them, if one had run.
not_pwned() {
	test_path_is_missing "$PWNED" &&
	test_path_is_missing "$HOME/at-pwned-here" &&
	test_path_is_missing "$T/at-pwned-here"
}

test_expect_success 'paths with quotes, spaces, $(...), ;, backticks travel as data (push)' '
	evil_names >names &&
	mkdir remote/evil &&
	( while IFS= read -r name; do
		# (the names holding /tmp/at-pwned are three levels deep)
		mkdir -p "remote/evil/$(dirname "$name")" &&
		net_deadline 60 autosync sync small "$R/evil/$name" 2>err || {
			cat err; echo "FAILED to push to: $name"; exit 1; }
		assert_manifest "remote/evil/$name" small.manifest &&
		not_pwned || { echo "FAILED: $name"; exit 1; }
	done <names )
'

test_expect_success 'the same names as pull sources' '
	mkdir pulled-names && i=0 &&
	( while IFS= read -r name; do
		i=$((i + 1)) &&
		net_deadline 60 autosync sync "$R/evil/$name" "pulled-names/$i" 2>err || {
			cat err; echo "FAILED to pull from: $name"; exit 1; }
		assert_manifest "pulled-names/$i" small.manifest &&
		not_pwned || { echo "FAILED: $name"; exit 1; }
	done <names )
'

test_expect_success 'a newline in a remote path: refused or taken literally' '
	name="$(printf "new\nline")" &&
	net_deadline 60 autosync sync small "$R/evil/$name" 2>err; rc=$? &&
	cat err &&
	if test $rc = 0; then
		assert_same_tree small "remote/evil/$name"
	else
		test $rc = 2 && test_path_is_missing "remote/evil/$name" &&
		test_path_is_missing remote/evil/new && test_path_is_missing line
	fi &&
	test_path_is_missing "$PWNED"
'

# --- remotes that do not speak the protocol

test_expect_success 'a remote without autosync (ssh exits 127): a clear error' '
	net_sshd_add_key nobin "environment=\"PATH=/usr/bin:/bin\"" &&
	AUTOSYNC_SSH=$NET_DIR/ssh-nobin net_deadline 30 \
		autosync sync small "$R/nobin" 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc &&
	test_grep -i "autosync" err &&
	test_grep -Ei "not found|not installed|127|no such" err &&
	test_path_is_missing remote/nobin
'

test_expect_success 'the same for a pull, and with AUTOSYNC_REMOTE naming a missing program' '
	AUTOSYNC_SSH=$NET_DIR/ssh-nobin net_deadline 30 \
		autosync sync "$R/dst" pulled-nobin 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc &&
	test_grep -Ei "not found|not installed|127|no such" err &&
	test_path_is_missing pulled-nobin &&
	AUTOSYNC_REMOTE=/nonexistent/autosync net_deadline 30 \
		autosync sync small "$R/nobin2" 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc &&
	test_grep -Ei "not found|not installed|127|no such" err &&
	test_path_is_missing remote/nobin2
'

test_expect_success 'a remote that prints a banner before the protocol: a clear error' '
	net_sshd_add_key banner "command=\"echo Welcome to the backup host; exec sh -c \\\"\$SSH_ORIGINAL_COMMAND\\\"\"" &&
	"$NET_DIR/ssh-banner" root@127.0.0.1 echo works >out &&
	printf "Welcome to the backup host\nworks\n" >expect && test_cmp expect out &&
	AUTOSYNC_SSH=$NET_DIR/ssh-banner net_deadline 30 \
		autosync sync small "$R/banner" 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc &&
	test_grep -Ei "protocol|greeting|hello|banner|unexpected|not an autosync|magic" err &&
	test_path_is_missing remote/banner
'

test_expect_success 'the banner case as a pull' '
	AUTOSYNC_SSH=$NET_DIR/ssh-banner net_deadline 30 \
		autosync sync "$R/dst" pulled-banner 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc &&
	test_path_is_missing pulled-banner
'

test_expect_success 'a banner on stderr (motd-like) does not disturb the protocol' '
	net_sshd_add_key errbanner "command=\"echo Welcome on stderr >&2; exec sh -c \\\"\$SSH_ORIGINAL_COMMAND\\\"\"" &&
	AUTOSYNC_SSH=$NET_DIR/ssh-errbanner net_deadline 60 \
		autosync sync small "$R/errbanner" 2>err &&
	assert_same_tree small remote/errbanner
'

test_expect_success 'a remote that exits at once without a word: a clear error' '
	net_sshd_add_key silent "command=\"true\"" &&
	AUTOSYNC_SSH=$NET_DIR/ssh-silent net_deadline 30 \
		autosync sync small "$R/silent" 2>err; rc=$? &&
	cat err &&
	test $rc != 0 && net_not_crash $rc && test -s err &&
	test_path_is_missing remote/silent
'

test_expect_success 'a remote that hangs without a word: TIMEOUT (30) within --timeout' '
	net_sshd_add_key hang "command=\"exec cat >/dev/null\"" &&
	t0=$(net_now_ms) &&
	AUTOSYNC_SSH=$NET_DIR/ssh-hang net_deadline 30 \
		autosync sync --timeout 3 small "$R/hang" 2>err; rc=$? &&
	ms=$(( $(net_now_ms) - t0 )) &&
	cat err && echo "exit $rc after $ms ms" &&
	test $rc = 30 &&
	test $ms -lt 8000 &&
	test_path_is_missing remote/hang
'

test_expect_success 'ssh itself fails (nothing listens): a clear IO error' '
	port=$(net_free_port) &&
	env -u AUTOSYNC_SSH timeout -k 5 30 \
		autosync sync small "ssh://root@127.0.0.1:$port$T/remote/noport2" 2>err; rc=$? &&
	cat err &&
	test $rc = 40 &&
	test -s err &&
	test_path_is_missing remote/noport2
'

test_expect_success 'nothing ever created /tmp/at-pwned' '
	not_pwned
'

test_expect_success 'no sanitizer report or internal error in the server logs' '
	net_logs_clean
'

test_done
