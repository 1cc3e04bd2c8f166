#!/usr/bin/env python3
"""faultproxy.py - a small deterministic TCP fault proxy for the tests.

    faultproxy.py --listen [HOST:]PORT --upstream [HOST:]PORT [FAULT] [OPTIONS]

Forwards every accepted connection to the upstream and injects at most one
fault per connection, at an exact byte offset of one direction:

  --stall-after N   forward N bytes, then forward nothing more in either
                    direction and keep both sockets open (a blackhole as
                    the applications see it)
  --flip N:BIT      flip bit BIT (0-7) of the byte at offset N (0-based)
  --truncate N      forward N bytes, then close both sides (FIN)
  --rst N           forward N bytes, then reset both sides (SO_LINGER 0)
  --delay N:MS      forward N bytes, pause MS milliseconds, carry on
  --drop-rst N:MS   forward N bytes, then read and drop what that
                    direction carries for MS milliseconds, then reset both
                    sides: a cut the sender does not feel until after it
                    has written everything it had to say

  --direction c2s|s2c  which direction's bytes N counts (default c2s:
                    client to server)
  --only-conn K     inject into the K-th accepted connection only (1-based;
                    default: every connection)
  --max-seconds S   exit after S seconds whatever happens (default 120)
  --max-conns K     exit once K connections have ended (default: never)
  --port-file F     write the port actually listened on to F (listen on
                    port 0 to let the kernel pick one)
  --record PREFIX   append what each direction carried (as forwarded,
                    after any flip) to PREFIX.c2s and PREFIX.s2c

Logs one line per event on stderr: "accept", "fault" (with ms=, the wall
clock in milliseconds since the epoch), and per ended
connection "stat conn=K c2s=BYTES s2c=BYTES c2s_secs=S s2c_secs=S
fault=KIND|none", where *_secs is the time from the first to the last
byte of that direction (for throughput).
Standard library only; test-only code.
"""

import argparse
import asyncio
import os
import signal
import socket
import struct
import sys
import time

CHUNK = 65536


def hostport(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Conn:
    def __init__(self, proxy, n, cr, cw):
        self.proxy = proxy
        self.n = n
        self.cr, self.cw = cr, cw
        self.sr = self.sw = None
        self.count = {"c2s": 0, "s2c": 0}
        self.first = {}
        self.last = {}
        self.fault_done = None
        self.stalled = asyncio.Event()
        self.dropping = False
        self.closed = False
        a = proxy.args
        self.armed = a.only_conn in (None, n) and a.kind is not None

    def writers(self):
        return [w for w in (self.cw, self.sw) if w is not None]

    def abort(self, rst):
        if self.closed:
            return
        self.closed = True
        for w in self.writers():
            if rst:
                sock = w.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                w.transport.abort()
            else:
                w.close()

    async def pump(self, direction, reader, writer):
        a = self.proxy.args
        try:
            while not self.closed:
                data = await reader.read(CHUNK)
                if not data:
                    # A clean EOF is passed on as a half-close.
                    if not self.stalled.is_set() and writer.can_write_eof():
                        writer.write_eof()
                    return
                if self.stalled.is_set():
                    await asyncio.Future()	# never forward again
                now = time.monotonic()
                self.first.setdefault(direction, now)
                self.last[direction] = now
                start = self.count[direction]
                self.count[direction] += len(data)
                if self.dropping and direction == a.direction:
                    continue
                if self.armed and direction == a.direction and \
                        self.fault_done is None:
                    data = await self.inject(data, start, writer)
                    if data is None:
                        return
                self.record(direction, data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            self.abort(False)

    def record(self, direction, data):
        r = self.proxy.rec.get(direction)
        if r is not None and data:
            r.write(data)
            r.flush()

    def secs(self, direction):
        if direction not in self.first:
            return 0.0
        return self.last[direction] - self.first[direction]

    async def inject(self, data, start, writer):
        """Apply the fault if offset N falls in data (bytes start..);
        returns what to forward, or None when the connection is done."""
        a = self.proxy.args
        end = start + len(data)
        if a.kind == "flip":
            if start <= a.at < end:
                i = a.at - start
                b = bytearray(data)
                b[i] ^= 1 << a.bit
                self.fault_done = "flip"
                log("fault conn=%d flip byte=%d bit=%d %02x->%02x ms=%d" %
                    (self.n, a.at, a.bit, data[i], b[i],
                     time.time() * 1000))
                return bytes(b)
            return data
        if end < a.at:
            return data
        # Offset N is inside this chunk (or at its end): forward the head.
        head = data[:a.at - start]
        if head:
            self.record(a.direction, head)
            writer.write(head)
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                pass
        self.fault_done = a.kind
        log("fault conn=%d %s after=%d ms=%d" %
            (self.n, a.kind, a.at, time.time() * 1000))
        if a.kind == "delay":
            await asyncio.sleep(a.ms / 1000.0)
            return data[a.at - start:]
        if a.kind == "stall":
            self.stalled.set()
            await asyncio.Future()
        if a.kind == "truncate":
            for w in self.writers():
                try:
                    await w.drain()
                except (ConnectionError, OSError):
                    pass
            self.abort(False)
            return None
        if a.kind == "rst":
            self.abort(True)
            return None
        if a.kind == "droprst":
            self.dropping = True
            asyncio.get_running_loop().call_later(a.ms / 1000.0,
                                                  self.abort, True)
            return b""
        return data

    async def run(self):
        a = self.proxy.args
        try:
            self.sr, self.sw = await asyncio.wait_for(
                asyncio.open_connection(*a.upstream), 10)
        except (OSError, asyncio.TimeoutError) as e:
            log("upstream conn=%d error: %s" % (self.n, e))
            self.abort(True)
            return
        for w in self.writers():
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t1 = asyncio.ensure_future(self.pump("c2s", self.cr, self.sw))
        t2 = asyncio.ensure_future(self.pump("s2c", self.sr, self.cw))
        pending = {t1, t2}
        while pending:
            done, pending = await asyncio.wait(
                pending, return_when=asyncio.FIRST_COMPLETED)
            if self.closed:
                break
        for t in pending:
            t.cancel()
        self.abort(False)


class Proxy:
    def __init__(self, args):
        self.args = args
        self.nconn = 0
        self.ended = 0
        self.done = asyncio.Event()
        self.rec = {}
        if args.record:
            for d in ("c2s", "s2c"):
                self.rec[d] = open(args.record + "." + d, "ab")

    async def handle(self, cr, cw):
        self.nconn += 1
        c = Conn(self, self.nconn, cr, cw)
        log("accept conn=%d from %s" % (c.n, cw.get_extra_info("peername")))
        try:
            await c.run()
        finally:
            log("stat conn=%d c2s=%d s2c=%d c2s_secs=%.3f s2c_secs=%.3f "
                "fault=%s" % (c.n, c.count["c2s"], c.count["s2c"],
                              c.secs("c2s"), c.secs("s2c"),
                              c.fault_done or "none"))
            self.ended += 1
            if self.args.max_conns and self.ended >= self.args.max_conns:
                self.done.set()


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", required=True, type=hostport)
    p.add_argument("--upstream", required=True, type=hostport)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stall-after", type=int, metavar="N")
    g.add_argument("--flip", metavar="N:BIT")
    g.add_argument("--truncate", type=int, metavar="N")
    g.add_argument("--rst", type=int, metavar="N")
    g.add_argument("--delay", metavar="N:MS")
    g.add_argument("--drop-rst", metavar="N:MS")
    p.add_argument("--direction", choices=("c2s", "s2c"), default="c2s")
    p.add_argument("--only-conn", type=int, metavar="K")
    p.add_argument("--max-seconds", type=float, default=120)
    p.add_argument("--max-conns", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--record", metavar="PREFIX")
    a = p.parse_args(argv)
    a.kind, a.at, a.bit, a.ms = None, 0, 0, 0
    if a.stall_after is not None:
        a.kind, a.at = "stall", a.stall_after
    elif a.truncate is not None:
        a.kind, a.at = "truncate", a.truncate
    elif a.rst is not None:
        a.kind, a.at = "rst", a.rst
    elif a.flip is not None:
        n, _, bit = a.flip.partition(":")
        a.kind, a.at, a.bit = "flip", int(n), int(bit or 0)
        if not 0 <= a.bit <= 7:
            p.error("--flip: BIT must be 0..7")
    elif a.delay is not None:
        n, _, ms = a.delay.partition(":")
        a.kind, a.at, a.ms = "delay", int(n), int(ms)
    elif a.drop_rst is not None:
        n, _, ms = a.drop_rst.partition(":")
        a.kind, a.at, a.ms = "droprst", int(n), int(ms)
    if a.at < 0:
        p.error("byte offsets must be >= 0")
    return a


async def main(args):
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, *args.listen)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    log("listen %s:%d upstream %s:%d fault=%s at=%d direction=%s" %
        (args.listen[0], port, args.upstream[0], args.upstream[1],
         args.kind, args.at, args.direction))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, proxy.done.set)
    try:
        await asyncio.wait_for(proxy.done.wait(), args.max_seconds)
        log("exit: done")
    except asyncio.TimeoutError:
        log("exit: --max-seconds reached")
    server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main(parse(sys.argv[1:])))
    except KeyboardInterrupt:
        pass
    # Connections still open are dropped with the process.
    sys.exit(0)
