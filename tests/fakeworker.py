#!/usr/bin/env python3
"""A fleet of wire-level fake workers in one asyncio process.

For the herd rows of the bench (tests/bench_herd.py): a real `sandd
worker` takes ~1 MiB, so 10,000 of them do not fit beside the rest of a
small machine; these do, at a few KiB each. Each fake does what a worker
does on the wire up to an idle link and no more:

  - dials (ws:// or wss://), sends the upgrade request with the unmasked
    frames offer, reads the answer;
  - on 503 waits Retry-After plus up to 1 s of jitter, on a failed dial
    backs off like `sandd worker` (full jitter, 0.5 s doubling to 30 s);
  - on 101 says hello (no labels, no channels), reads the welcome, and
    answers pings with pongs;
  - when the link goes, dials again within its first second (the
    worker's fast first retry), then backs off.

It runs no command: channels are refused by never answering. Stdout gets
one line of counts when it stops (SIGTERM or SIGINT):
    fakeworker: links N registered R dials D refused503 S failed F

Usage: fakeworker.py URL COUNT [--prefix P] [--spread] [--ca FILE]
  --spread: dial from 127.0.0.2 .. 127.0.255.254 instead of one address,
  250 links per source address.

Stdlib only.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import signal
import ssl
import struct
import sys
import urllib.parse

BACKOFF_START = 0.5
BACKOFF_CAP = 30.0
FIRST_RETRY = 1.0


class Stats:
    links = 0
    registered = 0
    dials = 0
    refused = 0
    failed = 0


def source_addr(i, spread):
    if not spread:
        return None
    n = 2 + i // 250
    return ("127.0.%d.%d" % (n // 254, n % 254 + 1), 0)


async def read_head(r):
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        fields[k.strip().lower()] = v.strip()
    if "content-length" in fields:
        await r.readexactly(int(fields["content-length"]))
    return status, fields


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        h = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        h = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        h = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return h + payload


async def read_frame(r):
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7f
    if n == 126:
        n = struct.unpack("!H", await r.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await r.readexactly(8))[0]
    return b0 & 0x0f, await r.readexactly(n)


async def link(i, a, ctx):
    """One link: returns how long to wait before the next dial."""
    wid = "%s%d" % (a.prefix, i)
    welcomed = False
    Stats.dials += 1
    try:
        r, w = await asyncio.open_connection(
            a.host, a.port, ssl=ctx, limit=65536,
            local_addr=source_addr(i, a.spread),
            server_hostname=a.host if ctx else None)
    except OSError:
        Stats.failed += 1
        return None
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        w.write(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Protocol: sandd.1\r\n"
                 "Sandd-Worker-Id: %s\r\nSandd-Frames: unmasked\r\n\r\n"
                 % (a.path, a.host, a.port, key, wid)).encode())
        status, fields = await read_head(r)
        if status == 503:
            Stats.refused += 1
            return float(fields.get("retry-after", "1")) + random.random()
        if status != 101:
            Stats.failed += 1
            return None
        hello = {"t": "hello", "proto": 1, "id": wid, "boot": a.boot + str(i),
                 "labels": {}, "hostname": "fake", "os": "Linux",
                 "arch": "x86_64", "version": "fake", "channels": []}
        w.write(frame(1, json.dumps(hello).encode()))
        Stats.links += 1
        try:
            while True:
                op, p = await read_frame(r)
                if op == 9:
                    w.write(frame(10, p))
                elif op == 8:
                    break
                elif op == 1 and not welcomed and b'"welcome"' in p:
                    welcomed = True
                    Stats.registered += 1
        finally:
            Stats.links -= 1
            if welcomed:
                Stats.registered -= 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ValueError, IndexError):
        if not welcomed:
            Stats.failed += 1
            return None
    finally:
        w.close()
    return random.random() * FIRST_RETRY if welcomed else None


async def fake(i, a, ctx):
    attempt = 0
    while True:
        wait = await link(i, a, ctx)
        if wait is None:
            attempt += 1
            wait = random.random() * min(BACKOFF_CAP,
                                         BACKOFF_START * 2 ** (attempt - 1))
        else:
            attempt = 0
        await asyncio.sleep(wait)


async def main(a):
    ctx = None
    if a.tls:
        ctx = ssl.create_default_context(cafile=a.ca)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    tasks = [asyncio.create_task(fake(i, a, ctx)) for i in range(a.count)]
    await stop.wait()
    print("fakeworker: links %d registered %d dials %d refused503 %d "
          "failed %d" % (Stats.links, Stats.registered, Stats.dials,
                         Stats.refused, Stats.failed), flush=True)
    for t in tasks:
        t.cancel()


def parse(argv):
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("count", type=int)
    p.add_argument("--prefix", default="f")
    p.add_argument("--spread", action="store_true")
    p.add_argument("--ca")
    a = p.parse_args(argv)
    u = urllib.parse.urlsplit(a.url)
    a.tls = u.scheme == "wss"
    a.host, a.port, a.path = u.hostname, u.port, u.path or "/ws"
    a.boot = os.urandom(8).hex()
    return a


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(parse(sys.argv[1:])))
    sys.exit(0)
