#!/usr/bin/env python3
"""mutate.py - change a generated data set, deterministically.

usage: bench/mutate.py tree|big [--seed N] [--fraction F] DIR

tree: changes F (default 1%) of the regular files of DIR (hard-linked
      names count once), chosen with the seed:
        60%  overwrite 1-4 KiB at a random offset (size unchanged)
        25%  append 1-8 KiB
        15%  rewrite the whole file with a new size (1-64 KiB)
      Nothing is created, deleted or renamed.  mtimes become "now", as with
      any editor, but always at least one second later than before (rsync
      compares whole seconds).
big:  in every regular file of DIR, overwrites F (default 1%) of its
      aligned 64 KiB blocks, chosen with the seed, with new random bytes.

The same seed applied to the same tree gives the same result; run.sh uses a
different seed per round so that every round changes a fresh set.  Skips a
top-level .autosync directory.  Prints a one-line summary on stdout.
"""
import argparse
import os
import random
import sys
import time

KIB = 1024
BLOCK = 64 * KIB


def regular_files(root):
    """Sorted list of regular files under root, one name per inode."""
    out = []
    seen = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root and ".autosync" in dirnames:
            dirnames.remove(".autosync")
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not os.path.stat.S_ISREG(st.st_mode):
                continue
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            out.append((p, st.st_size, st.st_mtime_ns))
    return out


def touch(p, old_mtime_ns):
    """Give p a new mtime that differs from the old one in whole seconds:
    rsync's quick check compares seconds only (--modify-window=0), and
    rounds can come back to back within one second."""
    now = time.time_ns()
    sec = max(now // 10**9, old_mtime_ns // 10**9 + 1)
    ns = sec * 10**9 + now % 10**9
    os.utime(p, ns=(now, ns))


def mutate_tree(root, seed, frac):
    rng = random.Random(seed)
    files = regular_files(root)
    k = max(1, round(len(files) * frac))
    kinds = {"overwrite": 0, "append": 0, "rewrite": 0}
    changed = 0
    for p, size, mtime in rng.sample(files, k):
        r = rng.random()
        if r < 0.60 and size > 0:
            n = min(size, rng.randrange(KIB, 4 * KIB + 1))
            off = rng.randrange(0, size - n + 1)
            fd = os.open(p, os.O_WRONLY)
            try:
                os.pwrite(fd, rng.randbytes(n), off)
            finally:
                os.close(fd)
            touch(p, mtime)
            kinds["overwrite"] += 1
            changed += n
        elif r < 0.85:
            n = rng.randrange(KIB, 8 * KIB + 1)
            with open(p, "ab") as f:
                f.write(rng.randbytes(n))
            touch(p, mtime)
            kinds["append"] += 1
            changed += n
        else:
            n = rng.randrange(KIB, 64 * KIB + 1)
            with open(p, "wb") as f:
                f.write(rng.randbytes(n))
            touch(p, mtime)
            kinds["rewrite"] += 1
            changed += n
    print("tree: changed %d of %d files (%s), %d KiB written"
          % (k, len(files), ", ".join("%s %d" % kv for kv in kinds.items()),
             changed // KIB))


def mutate_big(root, seed, frac):
    rng = random.Random(seed)
    total = 0
    nblocks_all = 0
    for p, size, mtime in regular_files(root):
        nblocks = size // BLOCK
        if nblocks == 0:
            continue
        k = max(1, round(nblocks * frac))
        blocks = sorted(rng.sample(range(nblocks), k))
        fd = os.open(p, os.O_WRONLY)
        try:
            for b in blocks:
                os.pwrite(fd, rng.randbytes(BLOCK), b * BLOCK)
        finally:
            os.close(fd)
        touch(p, mtime)
        total += k
        nblocks_all += nblocks
    print("big: overwrote %d of %d 64 KiB blocks" % (total, nblocks_all))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("tree", "big"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("dir")
    a = ap.parse_args()
    if not os.path.isdir(a.dir):
        sys.exit("mutate: '%s' is not a directory" % a.dir)
    if not 0 < a.fraction <= 1:
        sys.exit("mutate: --fraction must be in (0, 1]")
    if a.what == "tree":
        mutate_tree(a.dir, a.seed, a.fraction)
    else:
        mutate_big(a.dir, a.seed, a.fraction)


if __name__ == "__main__":
    main()
