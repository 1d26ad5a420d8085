#!/usr/bin/env python3
"""A cold herd: N GET requests written at the same instant, spread over one
or more servers, all with one Host header (as behind a load balancer).

    scripts/herd.py [-n 50] [--host HOST] URL [URL...]

`ab` never makes a herd: it sends its first request alone and opens the
other connections only when it has the answer. This opens every connection
first, then writes every request back to back, then reads the answers.
Prints one line: n=.. ok=.. non2xx=.. errors=.. wall_s=..
Loopback only; standard library only.
"""
import argparse
import asyncio
import time
from urllib.parse import urlsplit


async def answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(
        (k.strip().lower(), v.strip())
        for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
    )
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("urls", nargs="+")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--host")
    args = parser.parse_args()
    targets = [urlsplit(url) for url in args.urls]
    for target in targets:
        if target.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"loopback only: {target.geturl()}")
    host = args.host or targets[0].netloc
    conns = []
    for i in range(args.n):
        target = targets[i % len(targets)]
        reader, writer = await asyncio.open_connection(target.hostname, target.port)
        path = target.path or "/"
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        conns.append((reader, writer, request.encode()))
    started = time.monotonic()
    for _, writer, request in conns:
        writer.write(request)
    results = await asyncio.gather(
        *(answer(reader) for reader, _, _ in conns), return_exceptions=True
    )
    wall = time.monotonic() - started
    for _, writer, _ in conns:
        writer.close()
    ok = sum(1 for r in results if isinstance(r, int) and 200 <= r < 300)
    errors = sum(1 for r in results if not isinstance(r, int))
    print(f"n={args.n} ok={ok} non2xx={args.n - ok - errors} errors={errors} wall_s={wall:.3f}")


asyncio.run(main())
