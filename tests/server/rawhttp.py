#!/usr/bin/env python3
"""rawhttp.py HOST PORT - malformed and unusual HTTP against edmd over raw sockets.

After each case the daemon must still answer /healthz. Prints FAIL lines and, last,
"RESULT <passed> <failed>".
"""
import json
import socket
import sys
import time

import tally
from tally import ok

HOST, PORT = sys.argv[1], int(sys.argv[2])


def exchange(data, read=True, timeout=5.0, shut=False):
    """Sends data; returns everything read until the peer closes or goes quiet."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        if not read:
            return b""
        out = b""
        s.settimeout(timeout)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and read == "one":
                head, _, body = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(body) >= int(line.split(b":")[1]):
                            return out
        return out
    finally:
        s.close()


def status(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def healthy(desc):
    r = exchange(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    ok("healthz after " + desc, status(r) == 200, repr(r[:80]))


def case(desc, data, want=None, **kw):
    t0 = time.time()
    r = exchange(data, **kw)
    if time.time() - t0 > 1.5:
        print("slow case (%.1f s): %s" % (time.time() - t0, desc), file=sys.stderr)
    if want is not None:
        st = status(r)
        ok(desc, st in want if isinstance(want, tuple) else st == want, "status %r: %r" % (st, r[:120]))
    healthy(desc)
    return r


POST = b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
body = b'{"steps": 2, "seed": 1}'
valid = POST + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body

case("garbage request line", b"HELLO\r\n\r\n", (400, None))
case("binary junk", bytes(range(256)) * 4, (400, None))
case("HTTP/1.1 without Host", b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", (400, 200))
case("conflicting Content-Length", POST + b"Content-Length: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{}",
     (400,))
case("negative Content-Length", POST + b"Content-Length: -1\r\nConnection: close\r\n\r\n", (400, None))
case("non-numeric Content-Length", POST + b"Content-Length: 1x\r\nConnection: close\r\n\r\n1", (400, None))
case("huge Content-Length", POST + b"Content-Length: 99999999999999999999\r\nConnection: close\r\n\r\n", (400, 413, None))
case("huge header", b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n", (400, 413, 431, None))
case("long URL", b"GET /" + b"x" * 100000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", (400, 404, 413, 414, None))
case("many headers", b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n", (200, 400, 413, 431, None))
case("invalid UTF-8 in JSON", POST + b"Content-Length: 14\r\nConnection: close\r\n\r\n{\"model\":\"\xff\xfe\"}", 400)
case("NUL in JSON", POST + b"Content-Length: 3\r\nConnection: close\r\n\r\n{\x00}", 400)
deep = b"[" * 200000 + b"]" * 200000
case("deeply nested JSON", POST + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(deep) + deep, (400, 413))
deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
case("deeply nested object", POST + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(deep) + deep, 400)
case("body shorter than Content-Length, then close",
     POST + b"Content-Length: 100\r\n\r\n{\"steps\":", None, read=False)
case("unknown method", b"BREW /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", (405, 501, 400))
case("chunked body", POST + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
     b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body), 200)
case("bad chunk size", POST + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", (400, None))
case("Expect: 100-continue", POST + b"Expect: 100-continue\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
     + body, (100, 200))
case("Expect: 100-continue, too large", POST + b"Expect: 100-continue\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n",
     413)

# every truncated prefix of a valid request, each closed at once
step = 3
for cut in range(0, len(valid), step):
    exchange(valid[:cut], read=False)
healthy("every truncated prefix")
# and with the write side shut (the server sees EOF mid-request)
t0 = time.time()
for cut in range(0, len(valid), 11):
    exchange(valid[:cut], read=True, timeout=0.5, shut=True)
print("EOF prefixes: %.1f s" % (time.time() - t0), file=sys.stderr)
healthy("truncated prefixes with EOF")

# keep-alive and pipelining
two = (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
r = exchange(two)
ok("pipelined requests both answered", r.count(b"HTTP/1.1 200") == 2, repr(r[:200]))
r = exchange(valid, read="one", timeout=30)
ok("valid raw request", status(r) == 200 and b'"nfe":3' in r, repr(r[:200]))

# nothing stuck: once the connection timeout (2 s here) has passed, the only request in
# flight is the /metrics request itself
inflight = None
for _ in range(40):
    m = exchange(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").decode("latin-1")
    inflight = [l for l in m.splitlines() if l.startswith("edm_http_requests_in_flight ")]
    if inflight and inflight[0].split()[1] == "1":
        break
    time.sleep(0.2)
ok("no request left in flight", inflight and inflight[0].split()[1] == "1", repr(inflight))
print("RESULT %d %d" % (tally.passed, tally.failed))
