#!/usr/bin/env python3
"""service.py - the service in continuous mode, on a tree of many files.

usage: AUTOSYNC=build/autosync bench/service.py [--files N] [--secs S] DIR

Measures, side by side in one run:

  idle CPU   a daemon with one service on an unchanged N-file tree, over S
             seconds: CPU time of the daemon and its runs (utime + stime +
             cutime + cstime from /proc) as a percentage of one core, for
             --continuous 1s (change journal: runs only when something
             changed, or once a minute) and for --every 1s (a scan every
             second: what continuous mode cost before the journal);
  latency    --continuous 1s, once the first run after the daemon's start
             (a full scan: a new journal) is over, while one new file is
             written every 100 ms for S seconds: the time from each write to the file's appearance
             at the destination (polled every 10 ms), p50 / p99 / max;
             and from the service's log (trace level 3), per run: entries
             stat'ed and copied from the base by the narrowed scans, how
             many runs scanned in full, and the run times.

The tree: N files of 16 bytes in 100 x 10 directories (the file count is
what a scan costs; the data is tiny so that setting up stays quick).
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


def make_tree(root, nfiles):
    per = max(1, nfiles // 1000)
    n = 0
    for a in range(100):
        for b in range(10):
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


def idle_cpu(name, secs, env):
    p = start_daemon(env)
    try:
        wait_success(name, int(get(name, "successes")) + 1)
        time.sleep(2)
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(p.pid)
        r0 = int(get(name, "successes"))
        time.sleep(secs)
        t1, c1 = time.monotonic(), cpu_ticks(p.pid)
        r1 = int(get(name, "successes"))
    finally:
        stop_daemon(p)
    return 100.0 * (c1 - c0) / hz / (t1 - t0), r1 - r0


def latency(name, src, dst, secs, env):
    p = start_daemon(env)
    lat = []
    try:
        # the first run after a start scans everything (a new journal):
        # measured apart, the writes begin once it is over
        t0 = time.monotonic()
        wait_success(name, int(get(name, "successes")) + 1)
        first = time.monotonic() - t0
        time.sleep(1)
        os.makedirs(os.path.join(src, "lat"), exist_ok=True)
        pending = {}
        n = 0
        t_end = time.monotonic() + secs
        next_write = time.monotonic()
        while time.monotonic() < t_end or pending:
            now = time.monotonic()
            if now >= next_write and now < t_end:
                name = "w%05d" % n
                with open(os.path.join(src, "lat", name), "w") as f:
                    f.write("x")
                pending[name] = time.monotonic()
                n += 1
                next_write += 0.1
            for name in list(pending):
                if os.path.exists(os.path.join(dst, "lat", name)):
                    lat.append(time.monotonic() - pending.pop(name))
            if time.monotonic() > t_end + 60:
                raise SystemExit("%d writes never arrived" % len(pending))
            time.sleep(0.01)
    finally:
        stop_daemon(p)
    lat.sort()
    return lat, first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--secs", type=int, default=30)
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
    make_tree(src, a.files)
    print("tree: %d files in %.1f s" % (a.files, time.monotonic() - t),
          file=sys.stderr)

    run("create", "cont", "--source", src, "--dest", base + "/dst-cont",
        "--continuous", "1s", "--keep-src", "1", "--trace-level", "3")
    run("disable", "cont")
    run("create", "every", "--source", src, "--dest", base + "/dst-every",
        "--every", "1s", "--keep-src", "1")
    run("disable", "every")

    res = {}
    for name in ("every", "cont"):
        run("enable", name)
        res[name] = idle_cpu(name, a.secs, env)
        run("disable", name)
        print("%s: idle %.2f%% of a core, %d runs in %d s" %
              (name, res[name][0], res[name][1], a.secs), file=sys.stderr)
    run("enable", "cont")
    nlog = len(run("log", "cont").stdout.splitlines())
    lat, first = latency("cont", src, base + "/dst-cont", a.secs, env)
    log = run("log", "cont").stdout.splitlines()[nlog:]
    nar = [(int(m.group(1)), int(m.group(2))) for m in
           (re.search(r"narrowed to \d+ director\w*: (\d+) entries stat'ed, "
                      r"(\d+) copied", x) for x in log) if m]
    full = [int(m.group(1)) for m in
            (re.search(r"scan full: (\d+) entries", x) for x in log) if m]
    rt = sorted(float(m.group(1)) for m in
                (re.search(r"run \d+ ok in ([0-9.]+) s", x) for x in log) if m)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]

    print("| measure (%d files, %d s) | --every 1s (scan each second) | "
          "--continuous 1s (journal) | ratio |" % (a.files, a.secs))
    print("|---|---|---|---|")
    e, c = res["every"], res["cont"]
    print("| idle daemon CPU, %% of one core | %.2f %% | %.2f %% | %.3f |" %
          (e[0], c[0], c[0] / e[0] if e[0] > 0 else float("nan")))
    print("| runs while idle | %d | %d | |" % (e[1], c[1]))
    print("| write -> at destination, p50 / p99 / max (%d writes, 1 per "
          "100 ms) | | %.2f / %.2f / %.2f s | |" %
          (len(lat), p50, p99, lat[-1]))
    if nar:
        st = sorted(x[0] for x in nar)
        print("| runs while writing: narrowed / full scan | | %d / %d | |" %
              (len(nar), len(full)))
        print("| entries stat'ed per narrowed run, median / max (copied "
              "from the base: median) | | %d / %d (%d) | |" %
              (statistics.median(st), st[-1],
               statistics.median(x[1] for x in nar)))
    if rt:
        print("| run time while writing, p50 / max | | %.2f / %.2f s | |" %
              (statistics.median(rt), rt[-1]))
    print("| daemon start to its first run's end (a full scan) | | "
          "%.2f s | |" % first)
    if os.environ.get("KEEP") != "1":
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
