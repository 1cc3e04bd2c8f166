#!/usr/bin/env python3
"""service.py - the service in continuous mode, on a tree of many files.

usage: AUTOSYNC=build/autosync bench/service.py [--files N] [--secs S]
           [--journals fanotify,inotify] [--no-every] DIR

Measures, side by side in one run:

  idle CPU   a daemon with one service on an unchanged N-file tree, over S
             seconds: CPU time of the daemon and its runs (utime + stime +
             cutime + cstime from /proc) as a percentage of one core, for
             --continuous 1s (change journal: runs only when something
             changed, or once a minute) and for --every 1s (a scan every
             second: what continuous mode cost before the journal); with
             the daemon's wakeups (voluntary context switches) per second
             and its resident memory;
  latency    --continuous 1s, once the first run after the daemon's start
             (a full scan: a new journal) is over, while one new file is
             written every 100 ms for S seconds: the time from each write to the file's appearance
             at the destination (polled every 10 ms), p50 / p99 / max;
             and from the service's log (trace level 3), per run: entries
             stat'ed and copied from the base by the narrowed scans, how
             many runs scanned in full, and the run times;
  journal    per journal kind (the service property journal=, one
             --continuous service each): the set-up time the daemon logs
             for the source's journal, its kernel marks (inotify watches
             or fanotify file system marks, from /proc/PID/fdinfo) and the
             growth of the kernel's notification slabs (inotify_inode_mark
             and fsnotify_mark_connector, whole machine: noisy) from
             before the daemon starts to the end of its first run.

A fanotify mark hears its whole file system: put DIR on the file system
whose traffic you want in the figure (a busy shared one, or a tmpfs of
its own).

The tree: N files of 16 bytes in 100 x 10 directories (--dirs 1000; the
file count is what a scan costs, the directory count what inotify
watches; the data is tiny so that setting up stays quick).
Prints a Markdown table.  The state directory is private (DIR/state).
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

AUTOSYNC = os.environ.get("AUTOSYNC", "build/autosync")


def run(*args, check=True):
    return subprocess.run([AUTOSYNC, *args], check=check,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def get(name, prop):
    return run("get", name, prop).stdout.strip()


def make_tree(root, nfiles, ndirs=1000):
    sub = max(1, ndirs // 100)
    per = max(1, nfiles // (100 * sub))
    n = 0
    for a in range(100):
        for b in range(sub):
            d = os.path.join(root, "d%02d" % a, "s%d" % b)
            os.makedirs(d, exist_ok=True)
            for i in range(per):
                if n == nfiles:
                    return
                with open(os.path.join(d, "f%d" % i), "wb") as f:
                    f.write(b"0123456789abcdef")
                n += 1


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(x) for x in fields[11:15])


def start_daemon(env):
    p = subprocess.Popen([AUTOSYNC, "daemon"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = os.path.join(env["AUTOSYNC_STATE_DIR"], "autosync.sock")
    for _ in range(200):
        if os.path.exists(sock):
            return p
        time.sleep(0.05)
    raise SystemExit("daemon did not start")


def stop_daemon(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)


def wait_success(name, n, timeout=600):
    end = time.time() + timeout
    while time.time() < end:
        if int(get(name, "successes")) >= n:
            return
        time.sleep(0.2)
    raise SystemExit("%s: no run %d in %d s" % (name, n, timeout))


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def marks(pid):
    """inotify watches and fanotify marks the process holds."""
    ino = fan = 0
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                for line in f:
                    if line.startswith("inotify wd:"):
                        ino += 1
                    elif line.startswith("fanotify ") and "sdev:" in line:
                        fan += 1
        except OSError:
            pass
    return ino, fan


SLABS = ("inotify_inode_mark", "fsnotify_mark_connector")


def slab_bytes():
    """Objects x object size of the notification slabs (whole machine)."""
    n = 0
    for s in SLABS:
        base = "/sys/kernel/slab/" + s
        try:
            with open(base + "/objects") as f:
                objs = int(f.read().split()[0])
            with open(base + "/object_size") as f:
                n += objs * int(f.read())
        except OSError:
            pass
    return n


def idle_cpu(name, secs, env):
    p = start_daemon(env)
    try:
        wait_success(name, int(get(name, "successes")) + 1)
        time.sleep(2)
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(p.pid)
        w0 = status(p.pid, "voluntary_ctxt_switches")
        r0 = int(get(name, "successes"))
        time.sleep(secs)
        t1, c1 = time.monotonic(), cpu_ticks(p.pid)
        w1 = status(p.pid, "voluntary_ctxt_switches")
        r1 = int(get(name, "successes"))
        rss = status(p.pid, "VmRSS")
    finally:
        stop_daemon(p)
    return (100.0 * (c1 - c0) / hz / (t1 - t0), r1 - r0,
            (w1 - w0) / (t1 - t0), rss)


def latency(name, src, dst, secs, env):
    slab0 = slab_bytes()
    p = start_daemon(env)
    lat = []
    try:
        # the first run after a start scans everything (a new journal):
        # measured apart, the writes begin once it is over
        t0 = time.monotonic()
        wait_success(name, int(get(name, "successes")) + 1)
        first = time.monotonic() - t0
        kmarks = marks(p.pid)
        slab = slab_bytes() - slab0
        time.sleep(1)
        lat_dir = "lat-" + name
        os.makedirs(os.path.join(src, lat_dir), exist_ok=True)
        pending = {}
        n = 0
        t_end = time.monotonic() + secs
        next_write = time.monotonic()
        while time.monotonic() < t_end or pending:
            now = time.monotonic()
            if now >= next_write and now < t_end:
                w = "w%05d" % n
                with open(os.path.join(src, lat_dir, w), "w") as f:
                    f.write("x")
                pending[w] = time.monotonic()
                n += 1
                next_write += 0.1
            for w in list(pending):
                if os.path.exists(os.path.join(dst, lat_dir, w)):
                    lat.append(time.monotonic() - pending.pop(w))
            if time.monotonic() > t_end + 60:
                raise SystemExit("%d writes never arrived" % len(pending))
            time.sleep(0.01)
    finally:
        stop_daemon(p)
    lat.sort()
    return lat, first, kmarks, slab


def log_stats(log):
    """From a service log: narrowed runs, full scans, run times, and the
    source journal's line."""
    nar = [(int(m.group(1)), int(m.group(2))) for m in
           (re.search(r"narrowed to \d+ director\w*: (\d+) entries stat'ed, "
                      r"(\d+) copied", x) for x in log) if m]
    full = [int(m.group(1)) for m in
            (re.search(r"scan full: (\d+) entries", x) for x in log) if m]
    rt = sorted(float(m.group(1)) for m in
                (re.search(r"run \d+ ok in ([0-9.]+) s", x) for x in log)
                if m)
    jl = [x.split("Z ", 1)[-1] for x in log
          if "change journal of the source" in x]
    return nar, full, rt, jl


def pct(lat, q):
    return lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--secs", type=int, default=30)
    ap.add_argument("--dirs", type=int, default=1000,
                    help="leaf directories (100 x DIRS/100)")
    ap.add_argument("--journals", default="fanotify,inotify",
                    help="journal kinds to compare (service property)")
    ap.add_argument("--no-every", action="store_true",
                    help="leave out the --every 1s service")
    ap.add_argument("dir")
    a = ap.parse_args()
    base = os.path.abspath(a.dir)
    if os.path.exists(base):
        shutil.rmtree(base)
    src = os.path.join(base, "src")
    os.makedirs(src)
    env = dict(os.environ, AUTOSYNC_STATE_DIR=os.path.join(base, "state"))
    os.environ["AUTOSYNC_STATE_DIR"] = env["AUTOSYNC_STATE_DIR"]
    t = time.monotonic()
    make_tree(src, a.files, a.dirs)
    print("tree: %d files in %.1f s" % (a.files, time.monotonic() - t),
          file=sys.stderr)

    kinds = [k for k in a.journals.split(",") if k]
    names = ["cont-" + k for k in kinds]
    for k, name in zip(kinds, names):
        run("create", name, "--source", src, "--dest",
            base + "/dst-" + name, "--continuous", "1s", "--keep-src", "1",
            "--trace-level", "3")
        run("set", name, "journal=" + k)
        run("disable", name)
    if not a.no_every:
        run("create", "every", "--source", src, "--dest", base + "/dst-every",
            "--every", "1s", "--keep-src", "1")
        run("disable", "every")
        names = ["every"] + names

    res = {}
    for name in names:
        run("enable", name)
        res[name] = idle_cpu(name, a.secs, env)
        run("disable", name)
        print("%s: idle %.2f%% of a core, %d runs, %.1f wakeups/s in %d s" %
              (name, res[name][0], res[name][1], res[name][2], a.secs),
              file=sys.stderr)
    lres = {}
    for name in names:
        if name == "every":
            continue
        run("enable", name)
        nlog = len(run("log", name).stdout.splitlines())
        lat, first, kmarks, slab = latency(name, src, base + "/dst-" + name,
                                           a.secs, env)
        run("disable", name)
        log = run("log", name).stdout.splitlines()[nlog:]
        lres[name] = (lat, first, kmarks, slab, log_stats(log))
        print("%s: p50 %.2f s" % (name, statistics.median(lat)),
              file=sys.stderr)

    print("| measure (%d files in %d directories, %d s) | %s |" % (
        a.files, 101 + 100 * max(1, a.dirs // 100), a.secs, " | ".join(
        "`--every 1s`" if n == "every" else "`journal=%s`" % n[5:]
        for n in names)))
    print("|---|" + "---|" * len(names))

    def row(title, f, lat_only=False):
        print("| %s | %s |" % (title, " | ".join(
            "" if lat_only and n not in lres else f(n) for n in names)))

    def lrow(title, f):
        row(title, lambda n: f(lres[n]), lat_only=True)

    row("idle daemon CPU, % of one core", lambda n: "%.2f %%" % res[n][0])
    row("runs while idle", lambda n: "%d" % res[n][1])
    row("daemon wakeups while idle, per s", lambda n: "%.1f" % res[n][2])
    row("daemon resident memory while idle",
        lambda n: "%.1f MiB" % (res[n][3] / 1024.0))
    lrow("write -> at destination, p50 / p99 / max (1 per 100 ms)",
         lambda r: "%.2f / %.2f / %.2f s" % (statistics.median(r[0]),
                                             pct(r[0], 0.99), r[0][-1]))
    lrow("runs while writing: narrowed / full scan",
         lambda r: "%d / %d" % (len(r[4][0]), len(r[4][1])))
    lrow("entries stat'ed per narrowed run, median / max",
         lambda r: "%d / %d" % (statistics.median(x[0] for x in r[4][0]),
                                max(x[0] for x in r[4][0]))
         if r[4][0] else "")
    lrow("run time while writing, p50 / max",
         lambda r: "%.2f / %.2f s" % (statistics.median(r[4][2]), r[4][2][-1])
         if r[4][2] else "")
    lrow("daemon start to its first run's end (a full scan)",
         lambda r: "%.2f s" % r[1])
    lrow("journal set-up (the daemon's log)",
         lambda r: re.search(r"set up in ([0-9.]+ s)", r[4][3][0]).group(1)
         if r[4][3] and "set up in" in r[4][3][0] else "?")
    lrow("kernel marks: inotify watches / fanotify marks",
         lambda r: "%d / %d" % r[2])
    lrow("notification slab growth (whole machine)",
         lambda r: "%+.0f KiB" % (r[3] / 1024.0))
    for n in names:
        if n in lres:
            for x in lres[n][4][3]:
                print("%s: %s" % (n, x), file=sys.stderr)
    if os.environ.get("KEEP") != "1":
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
