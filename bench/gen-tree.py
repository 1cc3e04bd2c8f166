#!/usr/bin/env python3
"""gen-tree.py - generate the benchmark data sets, deterministically.

usage: bench/gen-tree.py [--seed N] OUTDIR

Creates two data sets (two separate datasets for autosync):

  OUTDIR/tree/  100k regular files, ~1 GiB in all, sizes 1-64 KiB (skewed
                towards small files), in 100 x 10 directories, plus 1%
                symlinks, 1% extra hard-link names and user.* xattrs on 5% of
                the files and on a few directories.
  OUTDIR/big/   2 files of 1 GiB each (a multiple of 64 KiB).

The environment variable SCALE (default 1) scales the number of files and
the size of the big files; SCALE=0.1 gives 10k files (~100 MiB) and 2 x
~100 MiB.  File contents are pseudo-random (incompressible) bytes from a
seeded generator, and every mtime is fixed, so two runs with the same SCALE
and seed produce byte-identical trees with identical metadata (inode numbers
and ctimes aside).  Prints a one-line summary on stdout.
"""
import argparse
import os
import random
import sys

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
BLOCK = 64 * KIB
EPOCH = 1_600_000_000          # 2020-09-13, base of all generated mtimes

FILES = 100_000                # at SCALE=1
BIG_FILES = 2
BIG_SIZE = 1 * GIB
TOP_DIRS = 100                 # FILES / (TOP_DIRS * SUB_DIRS) files per leaf
SUB_DIRS = 10
SIZE_MIN = 1 * KIB
SIZE_MAX = 64 * KIB
SIZE_SKEW = 1.7                # size = MIN * (MAX/MIN) ** (u ** SKEW); mean ~10.5 KiB
SYMLINK_FRAC = 0.01
HARDLINK_FRAC = 0.01
XATTR_FRAC = 0.05


def scale():
    try:
        s = float(os.environ.get("SCALE", "1"))
    except ValueError:
        sys.exit("gen-tree: SCALE must be a number")
    if not 0 < s <= 10:
        sys.exit("gen-tree: SCALE must be in (0, 10]")
    return s


def write_random(path, size, rng, chunk=MIB):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, chunk)
            f.write(rng.randbytes(n))
            left -= n


def gen_tree(root, nfiles, seed):
    rng = random.Random(seed)
    os.mkdir(root)
    ndirs = max(1, min(TOP_DIRS * SUB_DIRS, nfiles // 100))
    ntop = max(1, min(TOP_DIRS, ndirs // SUB_DIRS or 1))
    nsub = max(1, ndirs // ntop)
    leaves = []
    for t in range(ntop):
        for s in range(nsub):
            d = os.path.join(root, "d%03d" % t, "s%02d" % s)
            os.makedirs(d)
            leaves.append(d)
    files = []
    total = 0
    for i in range(nfiles):
        u = rng.random()
        size = int(SIZE_MIN * (SIZE_MAX / SIZE_MIN) ** (u ** SIZE_SKEW))
        size = max(SIZE_MIN, min(SIZE_MAX, size))
        d = leaves[i % len(leaves)]
        p = os.path.join(d, "f%06d.dat" % i)
        with open(p, "wb") as f:
            f.write(rng.randbytes(size))
        t = EPOCH + i
        os.utime(p, ns=(t * 10**9 + 123, t * 10**9 + 456789))
        files.append(p)
        total += size
    nxattr = 0
    for p in rng.sample(files, int(len(files) * XATTR_FRAC)):
        os.setxattr(p, "user.bench.tag", b"tag-%d" % rng.randrange(10**6))
        if rng.random() < 0.3:
            os.setxattr(p, "user.bench.blob", rng.randbytes(rng.randrange(16, 256)))
        nxattr += 1
    for d in leaves[:: max(1, len(leaves) // 20)]:
        os.setxattr(d, "user.bench.dir", b"dir")
    nhard = 0
    for k, p in enumerate(rng.sample(files, int(len(files) * HARDLINK_FRAC))):
        d = leaves[rng.randrange(len(leaves))]
        os.link(p, os.path.join(d, "h%06d.lnk" % k))
        nhard += 1
    nsym = 0
    for k in range(int(len(files) * SYMLINK_FRAC)):
        d = leaves[rng.randrange(len(leaves))]
        target = files[rng.randrange(len(files))]
        if k % 50 == 0:
            rel = "../missing/target-%d" % k     # a dangling one now and then
        else:
            rel = os.path.relpath(target, d)
        lp = os.path.join(d, "l%06d.sym" % k)
        os.symlink(rel, lp)
        t = EPOCH + k
        os.utime(lp, ns=(t * 10**9, t * 10**9), follow_symlinks=False)
        nsym += 1
    # Directory times last, deepest first, so creating entries does not
    # move them again.
    for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -w[0].count("/")):
        os.utime(dirpath, ns=(EPOCH * 10**9, EPOCH * 10**9 + 777))
    return len(files), total, nsym, nhard, nxattr, len(leaves)


def gen_big(root, size, seed):
    os.mkdir(root)
    for i in range(BIG_FILES):
        p = os.path.join(root, "big%d.img" % i)
        write_random(p, size, random.Random(seed * 1000 + i))
        os.utime(p, ns=(EPOCH * 10**9, EPOCH * 10**9 + 1))
    os.utime(root, ns=(EPOCH * 10**9, EPOCH * 10**9))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=("tree", "big"))
    ap.add_argument("outdir")
    a = ap.parse_args()
    s = scale()
    nfiles = max(100, int(FILES * s))
    big = max(BLOCK, int(BIG_SIZE * s) // BLOCK * BLOCK)
    os.makedirs(a.outdir, exist_ok=True)
    for sub in ("tree", "big"):
        if (a.only in (None, sub)) and os.path.lexists(os.path.join(a.outdir, sub)):
            sys.exit("gen-tree: '%s' exists; remove it first"
                     % os.path.join(a.outdir, sub))
    if a.only in (None, "tree"):
        n, total, nsym, nhard, nx, nd = gen_tree(os.path.join(a.outdir, "tree"),
                                                 nfiles, a.seed)
        print("tree: %d files, %.1f MiB, %d dirs, %d symlinks, %d hard links, "
              "%d files with xattrs" % (n, total / MIB, nd, nsym, nhard, nx))
    if a.only in (None, "big"):
        gen_big(os.path.join(a.outdir, "big"), big, a.seed)
        print("big: %d files of %.1f MiB" % (BIG_FILES, big / MIB))


if __name__ == "__main__":
    main()
