#!/usr/bin/env python3
"""xtime.py - wall clock and CPU time of one transfer (bench/transport.sh).

usage: xtime.py [--watch PID]... [--bg SHELLCMD --port PORT] [--stdin FILE]
                [--log FILE] -- CMD [ARG]...

Runs CMD (argv, standard input from FILE) and prints one line:

    WALL CPU RC

WALL: seconds from the start of CMD until CMD and the --bg command have
both exited (time.perf_counter).  CPU: user + system seconds of everything
that did the work: CMD and its children (wait4), the --bg shell pipeline
and its children (wait4), and the growth of utime + stime + cutime + cstime
of each --watch PID (a long-running server: autosync serve, sshd, the rsync
daemon), read from /proc before CMD starts and after the server has reaped
the children that served it.  RC: CMD's exit status, or the --bg command's
when CMD succeeded and it did not.

--bg starts a receiving pipeline (e.g. "nc -l ... | autosync receive D")
before CMD, and CMD starts only once something listens on 127.0.0.1:PORT
(read from /proc/net/tcp, so the listener sees no probe connection).
"""
import argparse
import os
import subprocess
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """utime + stime + cutime + cstime of pid, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0.0
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is the state (field 3); utime is field 14
    return sum(int(x) for x in fields[11:15]) / TCK


def has_children(pid):
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                if f.read().strip():
                    return True
    except OSError:
        return False
    return False


def listening(port):
    want = ":%04X" % port
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[1].endswith(want) and p[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--watch", type=int, action="append", default=[])
    ap.add_argument("--bg")
    ap.add_argument("--port", type=int)
    ap.add_argument("--stdin")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        sys.exit("xtime: no command")
    log = open(a.log, "ab")
    cpu0 = {p: proc_cpu(p) for p in a.watch}
    bg = None
    if a.bg:
        bg = subprocess.Popen(["/bin/sh", "-c", a.bg], stdin=subprocess.DEVNULL,
                              stdout=log, stderr=log)
        t = time.monotonic()
        while not listening(a.port):
            if bg.poll() is not None or time.monotonic() - t > 10:
                sys.exit("xtime: nothing listens on port %d" % a.port)
            time.sleep(0.01)
    stdin = open(a.stdin, "rb") if a.stdin else subprocess.DEVNULL
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=stdin, stdout=log, stderr=log)
    cpu = 0.0
    _, st, ru = os.wait4(p.pid, 0)
    cpu += ru.ru_utime + ru.ru_stime
    rc = os.waitstatus_to_exitcode(st)
    if bg is not None:
        _, st, ru = os.wait4(bg.pid, 0)
        cpu += ru.ru_utime + ru.ru_stime
        brc = os.waitstatus_to_exitcode(st)
        if rc == 0 and brc != 0:
            rc = brc
    wall = time.perf_counter() - t0
    # The servers reap the processes that served this transfer a little
    # later: wait for that (at most 5 s) so their CPU time is counted.
    t = time.monotonic()
    while any(has_children(w) for w in a.watch) and time.monotonic() - t < 5:
        time.sleep(0.02)
    for w in a.watch:
        cpu += proc_cpu(w) - cpu0[w]
    print("%.4f %.3f %d" % (wall, cpu, rc))


if __name__ == "__main__":
    main()
