#!/usr/bin/env python3
"""keepalive.py PORT N [PID]: GETs / on one keep-alive connection to
127.0.0.1:PORT: 10 warm-up requests (the first, a miss for a cache), then N.
With the PID of a server running under callgrind, its counters are zeroed
(`callgrind_control -z`) after the warm-up and dumped (`-d`) after the N
requests, so that the dump counts those N alone. Every answer must be a 200
(exit 1 otherwise). Used by `instructions` in scripts/lib/load.sh."""
import http.client
import subprocess
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
pid = sys.argv[3] if len(sys.argv) > 3 else None
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)


def get():
    conn.request("GET", "/")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"GET /: {response.status}")
    return len(body)


def callgrind(command):
    if pid:
        subprocess.run(["callgrind_control", command, pid], check=True, stdout=subprocess.DEVNULL)


lengths = {get() for _ in range(10)}
callgrind("-z")
lengths |= {get() for _ in range(n)}
callgrind("-d")
print(f"10 + {n} requests, body lengths {sorted(lengths)}")
