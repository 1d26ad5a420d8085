#!/usr/bin/env python3
"""keepalive.py PORT N [PATH]: one warm-up GET (a miss for a cache), then N
sequential GETs on one keep-alive connection to 127.0.0.1:PORT; every answer
must be a 200 (exit 1 otherwise). Prints the body lengths seen. Used by
`instructions` in scripts/lib/load.sh."""
import http.client
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
path = sys.argv[3] if len(sys.argv) > 3 else "/"
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)


def get():
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"GET {path}: {response.status}")
    return len(body)


first = get()
lengths = {get() for _ in range(n)}
print(f"warm-up length {first}; {n} requests, lengths {sorted(lengths)}")
