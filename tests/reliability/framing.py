#!/usr/bin/env python3
"""framing.py API_URL ADMIN_URL MAX_BODY - message framing, bodies past max-body, and the
headers of every answer (stdlib only; driven by test_framing.sh; lines as relib.py prints).

  - framing that two parts of a chain could read differently (RFC 9112 section 6) is a JSON
    400 at once and the connection closes; a transfer coding edmd does not implement is a
    501; each also closes; a plain chunked body still works;
  - a body past max-body sent without Expect: 100-continue, the way http.client and most
    libraries send it (the whole body, then read): the client reads the 413 (and a 404 on
    an unknown path); a client that goes quiet halfway is closed within the lingering bounds;
  - every answer edmd writes, of every route and error, carries X-Content-Type-Options:
    nosniff and, when it has a body, a Content-Type;
  - what libmicrohttpd still answers itself (the cases it handles before edmd sees the
    request) keeps the daemon healthy.
"""
import http.client
import socket
import sys
import time
import urllib.error
import urllib.request

import relib
from relib import figure, report

API, ADMIN = sys.argv[1], sys.argv[2]
MAX_BODY = int(sys.argv[3])
HOST, PORT = relib.split_url(API)
POST = b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
BODY = b'{"steps": 2, "seed": 1}'


def exchange(data, wait=5.0):
    """(answer, seconds until the server closed or None) of raw request bytes."""
    return relib.exchange(API, data, timeout=wait)


def framing():
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    cases = [  # (what, request, status, error code)
        ("Content-Length with Transfer-Encoding: chunked",
         POST + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(chunk) + chunk, 400, "bad_request"),
        ("Transfer-Encoding: gzip, chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunk, 501,
         "not_implemented"),
        ("Transfer-Encoding: chunked, gzip (chunked not last)",
         POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n" + chunk, 400, "bad_request"),
        ("two Transfer-Encoding headers (chunked, then gzip)",
         POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n" + chunk, 400, "bad_request"),
        ("Transfer-Encoding: chunked twice", POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n" + chunk, 400,
         "bad_request"),
        ("Transfer-Encoding: identity", POST + b"Transfer-Encoding: identity\r\n\r\n" + BODY, 400, "bad_request"),
        ("Transfer-Encoding in HTTP/1.0",
         POST.replace(b"HTTP/1.1", b"HTTP/1.0") + b"Transfer-Encoding: chunked\r\n\r\n" + chunk, 400, "bad_request"),
        ("conflicting Content-Length headers", POST + b"Content-Length: 2\r\nContent-Length: 23\r\n\r\n" + BODY, 400,
         "bad_request"),
        ("Transfer-Encoding on a GET, unknown path",
         b"GET /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
         "bad_request"),
    ]
    for what, req, want, code in cases:
        raw, closed = exchange(req)
        st, h, body = relib.parse_response(raw)
        report(st == want and relib.error_code(body) == code and h.get("content-type") == "application/json",
               "%s: %r %s (want %d %s, JSON)" % (what, st, relib.error_code(body), want, code))
        report(closed is not None and closed < 2.0 and h.get("connection", "").lower() == "close",
               "%s: answered at once and closed (%s, Connection: %s)" % (
                   what, "%.2f s" % closed if closed is not None else "still open", h.get("connection")))
    raw, _ = exchange(POST + b"Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n" + chunk, wait=30)
    report(relib.parse_response(raw)[0] == 200, "plain chunked body (Chunked): 200")


def big_bodies():
    big = b"x" * (8 * MAX_BODY)
    # http.client: headers and the whole body, then the answer
    for path, want in (("/v1/images/generations", 413), ("/v1/nowhere", 404)):
        c = http.client.HTTPConnection(HOST, PORT, timeout=30)
        t0 = time.monotonic()
        try:
            c.request("POST", path, body=big, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            st, body = r.status, r.read()
        except OSError as e:
            st, body = repr(e), b""
        finally:
            c.close()
        report(st == want and relib.error_code(body) is not None,
               "http.client, %d MiB body to %s without Expect: the client reads %r (want %d)"
               % (len(big) >> 20, path, st, want))
        figure("http.client, %d MiB body past max-body: %r after %.2f s" % (len(big) >> 20, st, time.monotonic() - t0))
    # urllib (the same, with its own framing)
    req = urllib.request.Request(API + "/v1/images/generations", data=big, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=30)
        st = 200
    except urllib.error.HTTPError as e:
        st = e.code
    except OSError as e:
        st = repr(e)
    report(st == 413, "urllib, body past max-body: the client reads %r" % (st,))
    # a raw client that writes everything, then shuts its side, then reads
    raw, _ = relib.exchange(API, POST + b"Content-Length: %d\r\n\r\n" % len(big) + big, timeout=30, shut=True)
    st = relib.parse_response(raw)[0]
    report(st == 413, "raw socket, whole body then read: %r" % (st,))
    # lingering is bounded: a client that announces a large body, sends a little and goes
    # quiet is let go SRV_LINGER_IDLE_MS (2 s) after its last byte; one that keeps sending,
    # SRV_LINGER_MS (10 s) after the answer (long form only)
    linger_bound("a client that stops sending its big body", 0, 2.0)
    if relib.LONG:
        linger_bound("a client that keeps sending its big body slowly", 0.5, 10.0)


def lingering():
    return relib.metrics(API).get("edm_lingering_connections", -1)


def linger_bound(what, every, bound):
    s = socket.create_connection((HOST, PORT), timeout=5)
    try:
        s.sendall(POST + b"Content-Length: %d\r\n\r\n" % (64 * MAX_BODY) + b"x" * 4096)
        t0 = time.monotonic()
        st = relib.parse_response(s.recv(65536))[0]
        seen, gone, next_send = 0, None, t0 + (every or 1e9)
        while time.monotonic() - t0 < bound + 5:
            n = lingering()
            seen = max(seen, n)
            if seen and n == 0:
                gone = time.monotonic() - t0
                break
            if time.monotonic() >= next_send:
                next_send += every
                try:
                    s.send(b"x" * 1024)
                except OSError:
                    pass
            time.sleep(0.1)
    finally:
        s.close()
    report(st == 413 and seen == 1 and gone is not None and gone <= bound + 1.5,
           "%s: %r, the socket lingered %s (bound %g s)" % (what, st, "%.1f s" % gone if gone else "past the bound",
                                                          bound))
    figure("%s: lingered %s after the 413" % (what, "%.1f s" % gone if gone else "-"))


def answers():
    J = {"Content-Type": "application/json"}
    st, _, body, _ = relib.request(API, "POST", "/v1/jobs", b'{"steps": 2, "seed": 3}', J)
    job = relib.json.loads(body)["id"] if st == 202 else "none"
    for _ in range(100):  # until it has completed
        if b'"completed"' in relib.request(API, path="/v1/jobs/" + job)[2]:
            break
        time.sleep(0.05)
    cases = [  # (url, method, path, body, headers, status)
        (API, "GET", "/healthz", None, {}, 200), (API, "GET", "/readyz", None, {}, 200),
        (API, "GET", "/metrics", None, {}, 200), (API, "GET", "/openapi.json", None, {}, 200),
        (API, "GET", "/v1/models", None, {}, 200), (API, "GET", "/", None, {}, 200),
        (API, "GET", "/app.js", None, {}, 200), (API, "HEAD", "/healthz", None, {}, 200),
        (API, "OPTIONS", "/v1/models", None, {}, 204),
        (API, "POST", "/v1/images/generations", BODY, J, 200),
        (API, "POST", "/v1/images/generations", BODY, {**J, "Accept": "image/png"}, 200),
        (API, "GET", "/v1/jobs/" + job, None, {}, 200), (API, "GET", "/v1/jobs/%s/images/0" % job, None, {}, 200),
        (API, "GET", "/v1/jobs/%s/events" % job, None, {}, 200),
        (API, "POST", "/v1/images/generations", b"{", J, 400), (API, "GET", "/v1/jobs/nope", None, {}, 404),
        (API, "GET", "/nowhere", None, {}, 404), (API, "PUT", "/v1/models", None, {}, 405),
        (API, "POST", "/v1/images/generations", b'{"n": 2}', {**J, "Accept": "image/png"}, 406),
        (API, "DELETE", "/v1/jobs/" + job, None, {}, 409),
        (API, "POST", "/v1/images/generations", b"x" * (MAX_BODY + 1), J, 413),
        (API, "POST", "/v1/images/generations", BODY, {"Content-Type": "text/plain"}, 415),
        (API, "POST", "/v1/images/generations", None, {**J, "Transfer-Encoding": "gzip, chunked"}, 501),
        (ADMIN, "GET", "/healthz", None, {}, 200), (ADMIN, "GET", "/metrics", None, {}, 200),
        (ADMIN, "GET", "/v1/models", None, {}, 404),
    ]
    for url, method, path, body, headers, want in cases:
        st, h, _, _ = relib.request(url, method, path, body, headers, timeout=30)
        typed = "content-type" in h or want == 204
        report(st == want and h.get("x-content-type-options") == "nosniff" and typed,
               "%s%s %s: %r, nosniff %s, Content-Type %s" % ("admin " if url == ADMIN else "", method, path[:40], st,
                                                            h.get("x-content-type-options"), h.get("content-type")))


def mhd_own():
    """What libmicrohttpd 0.9.75 answers itself, before edmd sees a request (HTML, without
    Content-Type: see README): the daemon must stay healthy after each."""
    cases = [
        ("Content-Length: -1", POST + b"Content-Length: -1\r\n\r\n", 400),
        ("Content-Length: 1x", POST + b"Content-Length: 1x\r\n\r\n", 400),
        ("Content-Length past 2^64", POST + b"Content-Length: 99999999999999999999\r\n\r\n", 413),
        ("request line past the connection's memory (URI too long)",
         b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        ("header past the connection's memory", b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70000 +
         b"\r\n\r\n", 431),
        ("HTTP/2.0 request line", b"GET /healthz HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ]
    for what, req, want in cases:
        raw, _ = exchange(req)
        st = relib.parse_response(raw)[0]
        report(st == want, "libmicrohttpd's own answer, %s: %r (want %d)" % (what, st, want))
        st, _, _, _ = relib.request(API, path="/healthz")
        report(st == 200, "healthz after %s" % what)


framing()
big_bodies()
answers()
mhd_own()
sys.exit(relib.done())
