# lib-net.sh - network helpers for the transport and network-fault tests
# (t6xxx, t81xx), sourced after test-lib.sh.  Not a test script itself.
#
# Everything here is started by the test and torn down by it, pass or
# fail (test_cleanup_all_ is extended below): processes by PID, the
# network namespace (and with it its nft tables and qdiscs), sshd.
#
# Prerequisites added: SSHD (root, openssh-server and -client), NETNS
# (ip netns), NFT (nftables inside a namespace), TC (tc tbf inside a
# namespace), OPENSSL (the openssl program).
#
#   net_free_port [--ns]          print a free TCP port on 127.0.0.1
#   net_wait_listen PORT [PID] [--ns]   wait until something listens
#
#   sshd (root namespace, 127.0.0.1):
#   net_sshd_start                start a real sshd; sets SSHD_PORT,
#                                 SSHD_PID, NET_SSH (a wrapper usable as
#                                 AUTOSYNC_SSH), SSH_URL_BASE
#                                 (ssh://root@127.0.0.1:PORT)
#   net_ssh ARGS...               run the wrapper (ssh to the test sshd)
#   net_sshd_add_key NAME [OPTIONS]  a further user key whose
#                                 authorized_keys line carries OPTIONS
#                                 (command="...", environment=...); its
#                                 wrapper is $NET_DIR/ssh-NAME
#   $NET_DIR/ssh-argv.log         one line per wrapper run: its argv
#
#   namespace:
#   net_ns_setup                  make at-$$ with lo up; NET_NS is set
#   net_run CMD...                run CMD inside the namespace (argv)
#
#   nftables (inside the namespace; PORT is the server's port):
#   net_nft_setup                 table inet at with input/output chains
#   net_block PORT                drop both directions (blackhole)
#   net_reject PORT               reject with tcp reset, both directions
#   net_loss PORT PCT             drop PCT % at random, both directions
#   net_unblock                   remove every rule (flush both chains)
#   tc (inside the namespace):
#   net_rate RATE                 tbf on lo ("8mbit"); net_unrate
#
#   autosync serve:
#   net_serve NAME [--ns] ARGS... start "autosync serve --listen
#                                 127.0.0.1:PORT ARGS" in the background,
#                                 in a session of its own, log in
#                                 $NET_DIR/serve-NAME.log; wait until it
#                                 listens.  Sets SERVE_PORT, SERVE_PID,
#                                 SERVE_LOG.
#   net_kill PID [SIG]            kill a process this script started
#   net_kill_group PID [SIG]      kill a net_serve server and its children
#   net_has_serve                 this autosync has "serve" (else skip)
#   net_serve_ended LOG N         LOG says at least N sessions ended by
#                                 an error (poll it with net_wait_for)
#   net_serve_nended LOG          how many it says so far
#   net_logs_clean                no sanitizer report in the logs
#
#   fault proxy (tests/tools/faultproxy.py):
#   net_proxy NAME UPSTREAM_PORT [--ns] OPTIONS...
#                                 start it on a free port; sets
#                                 PROXY_PORT, PROXY_PID, PROXY_LOG
#   net_proxy_mark; net_proxy_stat KEY   wire counters of the next
#                                 connection that ends (c2s, s2c, ...)
#   net_proxy_fault_ms            when the last fault was injected
#
#   background commands and time:
#   net_bg NAME [--ns] CMD...; net_bg_wait [SECONDS]   BG_RC, BG_MS
#   net_deadline SECONDS CMD...   run CMD with a hard bound (timeout -k)
#   net_wait_for SECONDS CMD...   poll CMD until it succeeds
#   net_now_ms; net_mtime_ms FILE wall clock; when FILE was last written
#   net_not_crash RC; net_rc_in RC CODE...   exit status checks
#   net_ls_root DIR               a listing for "nothing was created"

NET_DIR=$TRASH_DIRECTORY/.net
mkdir -p "$NET_DIR" || BAIL_OUT "cannot create '$NET_DIR'"
FAULTPROXY=$TEST_ROOT/tests/tools/faultproxy.py
NET_NS=

# Background servers die with this script even when it is SIGKILLed (a
# timeout -k in CI): the parent-death signal survives exec.
NET_PDEATH=
if setpriv --pdeathsig KILL true 2>/dev/null; then
	NET_PDEATH="setpriv --pdeathsig KILL "
fi

# ---------------------------------------------------------------------------
# Prerequisites and cleanup: extend test-lib's without editing it.

eval "net_orig_lazy_prereq_() $(declare -f test_lazy_prereq_ | tail -n +2)"
test_lazy_prereq_() {
	local ns=at-probe-$$
	case "$1" in
	SSHD)	test "$(id -u)" = 0 && test -x /usr/sbin/sshd &&
		command -v ssh && command -v ssh-keygen ;;
	NETNS)	test "$(id -u)" = 0 && command -v ip &&
		ip netns add "$ns" && ip -n "$ns" link set lo up &&
		ip netns del "$ns" ;;
	NFT)	test "$(id -u)" = 0 && command -v nft && command -v ip &&
		ip netns add "$ns" &&
		{ ip netns exec "$ns" nft add table inet probe; local r=$?
		  ip netns del "$ns"; test "$r" = 0; } ;;
	TC)	test "$(id -u)" = 0 && command -v tc && command -v ip &&
		ip netns add "$ns" &&
		{ ip -n "$ns" link set lo up &&
		  ip netns exec "$ns" tc qdisc add dev lo root tbf rate 1mbit \
			burst 32kbit latency 400ms; local r=$?
		  ip netns del "$ns"; test "$r" = 0; } ;;
	OPENSSL) command -v openssl ;;
	*)	net_orig_lazy_prereq_ "$1" ;;
	esac
}

eval "net_orig_cleanup_all_() $(declare -f test_cleanup_all_ | tail -n +2)"
test_cleanup_all_() {
	net_cleanup_groups_	# servers and their children first
	net_orig_cleanup_all_	# processes: they may live in the namespace
	net_cleanup_
}

# net_kill_group PID [SIG]: kill the process group (session) of a
# process started with net_serve: the server and what it forked.
net_kill_group() {
	local pid=$1 sig=${2:-KILL} pgid
	test -n "$pid" || return 0
	pgid=$(awk '{ print $5 }' "/proc/$pid/stat" 2>/dev/null)
	if test -n "$pgid"; then
		# Alive: only if it is ours and leads its own group.
		test "$pgid" = "$pid" || return 0
		test "$(awk '{ print $4 }' "/proc/$pid/stat")" = "$$" || return 0
	fi
	# Leader gone (or ours): what is left in its group.
	kill -s "$sig" -- "-$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null
	return 0
}

net_cleanup_groups_() {
	local pid
	test -f "$NET_DIR/groups" || return 0
	while read -r pid; do
		test -n "$pid" && net_kill_group "$pid" KILL
	done <"$NET_DIR/groups"
	: >"$NET_DIR/groups"
}

net_cleanup_() {
	if test -n "$NET_NS"; then
		ip netns exec "$NET_NS" nft delete table inet at 2>/dev/null
		ip netns exec "$NET_NS" tc qdisc del dev lo root 2>/dev/null
		ip netns del "$NET_NS" 2>/dev/null ||
			echo "# cleanup: cannot delete netns '$NET_NS'" >&2
		NET_NS=
	fi
	return 0
}

# ---------------------------------------------------------------------------
# Ports

# net_nsrun [--ns]: the command prefix for "in the namespace" or not
net_prefix_() {
	if test "$1" = --ns; then
		test -n "$NET_NS" || { echo "net: no namespace (net_ns_setup)" >&2; return 1; }
		net_pfx=(ip netns exec "$NET_NS")
	else
		net_pfx=()
	fi
}

net_free_port() {
	net_prefix_ "$1" || return 1
	"${net_pfx[@]}" "$TEST_PYTHON" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
'
}

# net_wait_listen PORT [PID] [--ns]: until a socket listens on
# 127.0.0.1:PORT (by ss, so the server sees no probe connection); fails
# when PID dies first or after 10 s.
net_wait_listen() {
	local port=$1 pid= i
	shift
	if test -n "$1" && test "$1" != --ns; then pid=$1; shift; fi
	net_prefix_ "$1" || return 1
	for i in $(seq 200); do
		if "${net_pfx[@]}" ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
			return 0
		fi
		if test -n "$pid" && ! kill -0 "$pid" 2>/dev/null; then
			echo "net_wait_listen: process $pid exited before listening on $port" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "net_wait_listen: nothing listens on 127.0.0.1:$port after 10 s" >&2
	return 1
}

# net_port_closed PORT [--ns]: nothing listens there (any more)
net_port_closed() {
	net_prefix_ "$2" || return 1
	! "${net_pfx[@]}" ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# Kill a process this script started, and reap it.
net_kill() {
	test -n "$1" || return 0
	test_kill "$1" "${2:-TERM}"
	{ wait "$1"; } 2>/dev/null
	return 0
}

net_deadline() {
	local s=$1
	shift
	timeout -k 5 "$s" "$@"
}

# ---------------------------------------------------------------------------
# sshd

SSHD_PORT= SSHD_PID= NET_SSH= SSH_URL_BASE=
SSHD_DIR=$NET_DIR/sshd

# net_ssh_wrapper_ NAME KEYFILE: write $NET_DIR/ssh-NAME
net_ssh_wrapper_() {
	local w=$NET_DIR/ssh-$1
	cat >"$w" <<-EOF || return 1
	#!/bin/sh
	# ssh to the test sshd with the throwaway key "$1"; logs its argv.
	# The test sshd's port unless the caller names one (ssh takes the
	# first -p).  curve25519 alone: the default post-quantum key exchange
	# costs 0.2 s a connection, and the tests make hundreds.
	printf '%s' "\$0" >>'$NET_DIR/ssh-argv.log'
	for a in "\$@"; do printf ' [%s]' "\$a"; done >>'$NET_DIR/ssh-argv.log'
	echo >>'$NET_DIR/ssh-argv.log'
	port=-p$SSHD_PORT
	for a in "\$@"; do
		case "\$a" in
		--) break ;;
		-p|-p*) port= ;;
		esac
	done
	exec ssh -F none -i '$2' -o IdentitiesOnly=yes -o IdentityAgent=none \\
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \\
		-o GlobalKnownHostsFile=/dev/null -o BatchMode=yes \\
		-o LogLevel=ERROR -o ConnectTimeout=10 \\
		-o KexAlgorithms=curve25519-sha256 \\
		-o ServerAliveInterval=5 -o ServerAliveCountMax=3 \\
		\${port:+"\$port"} "\$@"
	EOF
	chmod 0755 "$w"
}

net_sshd_start() {
	local i log
	test -z "$SSHD_PID" || { echo "net_sshd_start: already running" >&2; return 1; }
	mkdir -p "$SSHD_DIR" "$TRASH_DIRECTORY/.state-remote" /run/sshd || return 1
	chmod 0700 "$SSHD_DIR"
	test -f "$SSHD_DIR/host_ed25519" ||
		ssh-keygen -q -t ed25519 -N '' -C at-host -f "$SSHD_DIR/host_ed25519" ||
		return 1
	test -f "$SSHD_DIR/user_ed25519" ||
		ssh-keygen -q -t ed25519 -N '' -C at-user -f "$SSHD_DIR/user_ed25519" ||
		return 1
	# PATH per key (environment=), so that a key can be given one without
	# autosync; sshd's SetEnv would override that.
	{
		printf 'environment="PATH=%s" ' "$PATH"
		cat "$SSHD_DIR/user_ed25519.pub"
	} >"$SSHD_DIR/authorized_keys" || return 1
	for i in 1 2 3; do
		SSHD_PORT=$(net_free_port) || return 1
		log=$SSHD_DIR/sshd.log
		# The session gets this script's PATH (autosync first; by the key's
		# environment= option) and its own state directory and HOME;
		# nothing of the real root account.
		cat >"$SSHD_DIR/sshd_config" <<-EOF || return 1
		Port $SSHD_PORT
		ListenAddress 127.0.0.1
		HostKey $SSHD_DIR/host_ed25519
		PidFile $SSHD_DIR/sshd.pid
		AuthorizedKeysFile $SSHD_DIR/authorized_keys
		PermitRootLogin prohibit-password
		StrictModes no
		UsePAM no
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitUserEnvironment yes
		PrintMotd no
		PrintLastLog no
		Banner none
		X11Forwarding no
		AllowTcpForwarding no
		MaxStartups 50
		LoginGraceTime 20
		LogLevel VERBOSE
		SetEnv AUTOSYNC_STATE_DIR=$TRASH_DIRECTORY/.state-remote HOME=$HOME ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS
		EOF
		/usr/sbin/sshd -t -f "$SSHD_DIR/sshd_config" || return 1
		test_bg "$NET_PDEATH/usr/sbin/sshd -D -e -f '$SSHD_DIR/sshd_config' 2>>'$log'"
		SSHD_PID=$test_bg_pid
		if net_wait_listen "$SSHD_PORT" "$SSHD_PID"; then
			break
		fi
		net_kill "$SSHD_PID" KILL
		SSHD_PID=
		grep -q 'Address already in use' "$log" || { cat "$log" >&2; return 1; }
	done
	test -n "$SSHD_PID" || return 1
	net_ssh_wrapper_ user "$SSHD_DIR/user_ed25519" || return 1
	NET_SSH=$NET_DIR/ssh-user
	SSH_URL_BASE=ssh://root@127.0.0.1:$SSHD_PORT
	# One round trip proves the key, the config and the environment.
	net_deadline 20 "$NET_SSH" root@127.0.0.1 'echo ssh-ok' >"$SSHD_DIR/probe" 2>&1 &&
	test "$(cat "$SSHD_DIR/probe")" = ssh-ok || {
		echo "net_sshd_start: ssh round trip failed:" >&2
		cat "$SSHD_DIR/probe" "$log" >&2
		return 1
	}
}

net_sshd_stop() {
	net_kill "$SSHD_PID" TERM
	SSHD_PID=
}

net_ssh() { "$NET_SSH" "$@"; }

# net_sshd_add_key NAME [OPTIONS]: a new user key, authorized with the
# authorized_keys OPTIONS; without an environment="PATH=..." among them,
# the session gets this script's PATH as the first key does.  Writes the
# wrapper $NET_DIR/ssh-NAME.
net_sshd_add_key() {
	local name=$1 opts=$2 k=$SSHD_DIR/key_$1
	rm -f "$k" "$k.pub"
	ssh-keygen -q -t ed25519 -N '' -C "at-$name" -f "$k" || return 1
	case "$opts" in
	*'environment="PATH='*) ;;
	*) opts="environment=\"PATH=$PATH\"${opts:+,$opts}" ;;
	esac
	printf '%s %s\n' "$opts" "$(cat "$k.pub")" >>"$SSHD_DIR/authorized_keys" ||
		return 1
	net_ssh_wrapper_ "$name" "$k"
}

# ---------------------------------------------------------------------------
# Network namespace, nftables, tc

# Namespaces of earlier runs that were killed (at-PID, PID gone).
net_ns_gc_() {
	local ns
	for ns in $(ip netns list 2>/dev/null |
			sed -n 's/^\(at-[0-9][0-9]*\)\( .*\)\{0,1\}$/\1/p'); do
		kill -0 "${ns#at-}" 2>/dev/null || ip netns del "$ns" 2>/dev/null
	done
	return 0
}

net_ns_setup() {
	test -z "$NET_NS" || return 0
	net_ns_gc_
	NET_NS=at-$$
	ip netns add "$NET_NS" || { NET_NS=; return 1; }
	ip -n "$NET_NS" link set lo up || return 1
}

net_run() {
	test -n "$NET_NS" || { echo "net_run: no namespace" >&2; return 1; }
	ip netns exec "$NET_NS" "$@"
}

net_nft_() { net_run nft "$@"; }

net_nft_setup() {
	net_ns_setup || return 1
	net_nft_ delete table inet at 2>/dev/null
	net_nft_ -f - <<-'EOF'
	table inet at {
		chain input { type filter hook input priority 0; policy accept; }
		chain output { type filter hook output priority 0; policy accept; }
	}
	EOF
}

# net_block PORT: silently drop every segment to and from PORT
net_block() {
	net_nft_ add rule inet at output tcp dport "$1" drop &&
	net_nft_ add rule inet at output tcp sport "$1" drop
}

# net_reject PORT: answer every segment to or from PORT with a reset, so
# both ends see ECONNRESET
net_reject() {
	# Not the resets themselves (those the rules make pass here too).
	net_nft_ add rule inet at input tcp dport "$1" tcp flags '&' rst == 0 \
		reject with tcp reset &&
	net_nft_ add rule inet at input tcp sport "$1" tcp flags '&' rst == 0 \
		reject with tcp reset
}

# net_loss PORT PCT: drop PCT percent of the segments, both directions
net_loss() {
	net_nft_ add rule inet at output tcp dport "$1" numgen random mod 100 '<' "$2" drop &&
	net_nft_ add rule inet at output tcp sport "$1" numgen random mod 100 '<' "$2" drop
}

net_unblock() {
	net_nft_ flush chain inet at input &&
	net_nft_ flush chain inet at output
}

# net_rules: the current rule set (for logs)
net_rules() { net_nft_ list table inet at; }

# (lo's MTU is 64 KiB: a smaller burst would drop every full segment)
net_rate() {
	net_ns_setup || return 1
	net_run tc qdisc replace dev lo root tbf rate "$1" burst 256kb latency 400ms
}

net_unrate() { net_run tc qdisc del dev lo root 2>/dev/null; return 0; }

# ---------------------------------------------------------------------------
# autosync serve and the fault proxy in the background

# net_bg_port_ NAME NS CMD-ARRAY-AFTER-PORT...: internal; see net_serve
SERVE_PORT= SERVE_PID= SERVE_LOG=

net_serve() {
	local name=$1 ns= i cmd a
	shift
	if test "$1" = --ns; then ns=--ns; shift; fi
	SERVE_LOG=$NET_DIR/serve-$name.log
	for i in 1 2 3; do
		SERVE_PORT=$(net_free_port $ns) || return 1
		# In a session of its own (setsid execs: same PID), so that
		# net_kill_group and the cleanup reach the children it forks.
		cmd=
		test -z "$ns" || cmd="ip netns exec $NET_NS "
		cmd="${cmd}setsid ${NET_PDEATH}autosync serve --listen 127.0.0.1:$SERVE_PORT"
		for a in "$@"; do cmd="$cmd $(printf '%q' "$a")"; done
		echo "# net_serve: $cmd" >>"$SERVE_LOG"
		test_bg "$cmd </dev/null >>$(printf '%q' "$SERVE_LOG") 2>&1"
		SERVE_PID=$test_bg_pid
		echo "$SERVE_PID" >>"$NET_DIR/groups"
		if net_wait_listen "$SERVE_PORT" "$SERVE_PID" $ns; then
			return 0
		fi
		net_kill "$SERVE_PID" KILL
		SERVE_PID=
		tail -n 5 "$SERVE_LOG" | grep -qi 'in use' || break
	done
	echo "net_serve: 'autosync serve' did not start:" >&2
	cat "$SERVE_LOG" >&2
	return 1
}

# net_serve_ended LOG N: the server of LOG has logged at least N
# sessions that ended by an error.  A client that sees its connection cut
# exits at once, while the server's session may still be making its
# checkpoint durable and holding the destination: a retry must wait.
net_serve_ended() {
	test "$(net_serve_nended "$1")" -ge "$2"
}

# net_serve_nended LOG: how many sessions LOG's server ended by an error
# (0 too is an answer: grep -c's status 1 is not a failure)
net_serve_nended() {
	grep -c "session with '.*' ended" "$1" || :
}

PROXY_PORT= PROXY_PID= PROXY_LOG=

# net_proxy NAME UPSTREAM_PORT [--ns] OPTIONS...: the fault proxy on a
# port it picks itself (reported through a file, so no race).
net_proxy() {
	local name=$1 up=$2 ns= cmd a pf i
	shift 2
	if test "$1" = --ns; then ns=t; shift; fi
	PROXY_LOG=$NET_DIR/proxy-$name.log
	pf=$NET_DIR/proxy-$name.port
	rm -f "$pf"
	cmd=
	test -z "$ns" || cmd="ip netns exec $NET_NS "
	cmd="$cmd$NET_PDEATH$(printf '%q' "$TEST_PYTHON") $(printf '%q' "$FAULTPROXY")"
	cmd="$cmd --listen 127.0.0.1:0 --upstream 127.0.0.1:$up"
	cmd="$cmd --port-file $(printf '%q' "$pf")"
	for a in "$@"; do cmd="$cmd $(printf '%q' "$a")"; done
	test_bg "$cmd </dev/null >>$(printf '%q' "$PROXY_LOG") 2>&1"
	PROXY_PID=$test_bg_pid
	PROXY_MARK=0
	for i in $(seq 200); do
		if test -s "$pf"; then
			PROXY_PORT=$(cat "$pf")
			return 0
		fi
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "net_proxy: the fault proxy did not start:" >&2
	cat "$PROXY_LOG" >&2
	return 1
}

# net_proxy_stat KEY: a value from the proxy's last "stat" log line
# (c2s=, s2c=, c2s_secs=, s2c_secs=, fault=), once a connection ended
# after net_proxy_mark (waits up to 10 s for it)
net_proxy_stat() {
	local i
	for i in $(seq 200); do
		test "$(grep -c '^stat ' "$PROXY_LOG")" -gt "${PROXY_MARK:-0}" && break
		sleep 0.05
	done
	grep '^stat ' "$PROXY_LOG" | tail -n 1 | tr ' ' '\n' |
		sed -n "s/^$1=//p"
}

# net_proxy_fault_ms: when the proxy injected its last fault (epoch ms)
net_proxy_fault_ms() {
	grep '^fault ' "$PROXY_LOG" | tail -n 1 | tr ' ' '\n' | sed -n 's/^ms=//p'
}

# net_mtime_ms FILE: when FILE was last written (epoch ms); for a log,
# when its last line was written
net_mtime_ms() {
	local t
	t=$(stat -c %.3Y "$1") || return 1
	echo "${t%.*}${t#*.}" | sed 's/^0*//'
}

# net_proxy_mark: the connections that ended so far are not the next one
net_proxy_mark() { PROXY_MARK=$(grep -c '^stat ' "$PROXY_LOG"); }

# ---------------------------------------------------------------------------
# Small helpers for the tests

# net_now_ms: wall clock in milliseconds (test-lib.sh's)
net_now_ms() { test_now_ms; }

# net_ls_root DIR: everything below DIR (names, types, sizes), for a
# "nothing was created" check
net_ls_root() {
	(cd "$1" && find . -printf '%p %y %s\n' | LC_ALL=C sort)
}

# net_bg NAME [--ns] CMD...: run CMD (argv) in the background, inside the
# namespace with --ns, output in $NET_DIR/NAME.out and NAME.err; sets
# BG_PID and BG_T0 (ms).  net_bg_wait [SECONDS]: wait for it (killing it
# after SECONDS, default 60); sets BG_RC and BG_MS (its run time, ms).
net_bg() {
	local name=$1 cmd= a
	shift
	if test "$1" = --ns; then cmd="ip netns exec $NET_NS "; shift; fi
	cmd="$cmd$NET_PDEATH"
	for a in "$@"; do cmd="$cmd$(printf '%q' "$a") "; done
	BG_OUT=$NET_DIR/$name.out BG_ERR=$NET_DIR/$name.err
	BG_T0=$(net_now_ms)
	test_bg "$cmd</dev/null >$(printf '%q' "$BG_OUT") 2>$(printf '%q' "$BG_ERR")"
	BG_PID=$test_bg_pid
}

net_bg_wait() {
	local limit=${1:-60} i=0
	while kill -0 "$BG_PID" 2>/dev/null &&
		test "$(awk '{ print $3 }' "/proc/$BG_PID/stat" 2>/dev/null)" != Z; do
		if test $(( $(net_now_ms) - BG_T0 )) -gt $((limit * 1000)); then
			echo "net_bg_wait: still running after ${limit}s; killed" >&2
			test_kill "$BG_PID" KILL
			break
		fi
		sleep 0.05
	done
	wait "$BG_PID"
	BG_RC=$?
	BG_MS=$(( $(net_now_ms) - BG_T0 ))
	echo "# background command: exit $BG_RC after $BG_MS ms" >&2
	sed -e 's/^/# stderr: /' "$BG_ERR" >&2
	return 0
}

# net_wait_for SECONDS CMD...: poll CMD (every 50 ms) until it succeeds
net_wait_for() {
	local limit=$(( $1 * 20 )) i
	shift
	for i in $(seq "$limit"); do
		"$@" && return 0
		sleep 0.05
	done
	"$@"
}

# The process is not a crash: an exit status that autosync gives.
net_not_crash() {	# RC
	test "$1" -lt 126 || test "$1" -gt 192 || {
		echo "exit status $1: a crash, a signal or a command not found" >&2
		return 1
	}
}

# net_rc_in RC CODE...: RC is one of CODEs
net_rc_in() {
	local rc=$1 c
	shift
	for c in "$@"; do test "$rc" = "$c" && return 0; done
	echo "exit status $rc, want one of: $*" >&2
	return 1
}

# net_logs_clean: no sanitizer report, assertion or crash in what the
# background processes of this script logged ($NET_DIR/*.log, *.err)
net_logs_clean() {
	local f bad=0
	for f in "$NET_DIR"/*.log "$NET_DIR"/*.err "$NET_DIR"/sshd/sshd.log; do
		test -f "$f" || continue
		if grep -El "ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|Assertion .* failed|internal error|INTERNAL" "$f"; then
			grep -E -A 20 "Sanitizer|runtime error:|Assertion|internal error|INTERNAL" "$f" | head -n 60
			bad=1
		fi
	done
	return $bad
}

# net_has_serve: this autosync has the serve command
net_has_serve() { autosync help 2>&1 | grep -q '^ *serve'; }
