# bench/lib-sshd.sh - a throwaway sshd on 127.0.0.1 for the benchmarks
# that measure ssh:// (btrfs.sh, zfs.sh), sourced by them.
#
#   sshd_start DIR PORT STATE_DIR
#       host and user keys made in DIR (the bench's own directory, removed
#       with it), /usr/sbin/sshd -D on 127.0.0.1:PORT, its PID in
#       sshd_pid (the caller's cleanup kills it by that PID), and DIR/ssh:
#       `ssh` with the user key and no host key checks, to give as
#       AUTOSYNC_SSH or to run by hand.  A login gets this PATH and
#       AUTOSYNC_STATE_DIR=STATE_DIR.  Waits up to 50 tries for a login;
#       returns whether the last try (its stderr shown) could log in.
#   sshd_stop
#       kill -TERM $sshd_pid and wait for it; sshd_pid emptied.

sshd_pid=

sshd_start() {
	local d=$1 port=$2 state=$3
	mkdir -p "$d" /run/sshd && chmod 700 "$d"
	ssh-keygen -q -t ed25519 -N '' -f "$d/host" &&
	ssh-keygen -q -t ed25519 -N '' -f "$d/user" &&
	{ printf 'environment="PATH=%s" ' "$PATH"; cat "$d/user.pub"; } \
	    >"$d/authorized_keys"
	cat >"$d/sshd_config" <<-EOF
	Port $port
	ListenAddress 127.0.0.1
	HostKey $d/host
	AuthorizedKeysFile $d/authorized_keys
	PermitRootLogin prohibit-password
	StrictModes no
	UsePAM no
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	PermitUserEnvironment yes
	PrintMotd no
	SetEnv AUTOSYNC_STATE_DIR=$state
	EOF
	/usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$d/log" &
	sshd_pid=$!
	cat >"$d/ssh" <<-EOF
	#!/bin/sh
	exec ssh -i $d/user -p $port -o StrictHostKeyChecking=no \
	    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes "\$@"
	EOF
	chmod +x "$d/ssh"
	for _ in $(seq 50); do
		"$d/ssh" 127.0.0.1 true 2>/dev/null && break
		sleep 0.2
	done
	"$d/ssh" 127.0.0.1 true
}

sshd_stop() {
	if test -n "$sshd_pid"; then
		kill -TERM "$sshd_pid" 2>/dev/null
		wait "$sshd_pid" 2>/dev/null
	fi
	sshd_pid=
}
