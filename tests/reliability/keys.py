#!/usr/bin/env python3
"""keys.py API_URL ADMIN_URL KEY - the API key as an attacker tries it (stdlib only; driven
by test_keys.sh; edmd runs with --api-key KEY and one more key).

Near misses, other schemes, keys in the wrong place, several Authorization headers, huge
ones: 401 with WWW-Authenticate, counted; the right key in each accepted spelling: 200;
probes and metrics need none on either listener; the admin listener serves nothing else,
key or not; a 401 to a large body sent without Expect still reaches the client.
"""
import http.client
import sys

import relib
from relib import report

API, ADMIN, KEY = sys.argv[1], sys.argv[2], sys.argv[3]
HOST, PORT = relib.split_url(API)


def models(auth=None, extra=b""):
    """GET /v1/models with the given raw Authorization header lines."""
    lines = b"".join(b"Authorization: " + a + b"\r\n" for a in ([auth] if isinstance(auth, bytes) else auth or []))
    raw, _ = relib.exchange(API, b"GET /v1/models HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + lines + extra +
                            b"\r\n")
    return relib.parse_response(raw)


def main():
    base = relib.metrics(ADMIN)
    k = KEY.encode()
    refused = [
        ("no header", None), ("empty", b""), ("Bearer alone", b"Bearer"), ("Bearer and spaces", b"Bearer    "),
        ("one character short", b"Bearer " + k[:-1]), ("one character more", b"Bearer " + k + b"x"),
        ("last character changed", b"Bearer " + k[:-1] + bytes([k[-1] ^ 1])), ("case changed", b"Bearer " + k.upper()),
        ("Basic scheme", b"Basic " + k), ("no scheme", k), ("Token scheme", b"Token " + k),
        ("key twice", b"Bearer " + k + k),
        ("another key's prefix", b"Bearer " + k[:3]), ("8 KiB key", b"Bearer " + b"k" * 8192),
        ("two headers, the wrong one first", [b"Bearer wrong", b"Bearer " + k]),
    ]
    n401 = 0
    for what, auth in refused:
        st, h, body = models(auth)
        n401 += st == 401
        report(st == 401 and h.get("www-authenticate", "").startswith("Bearer") and
               relib.error_code(body) == "unauthorized", "%s: %r" % (what, st))
    st, _, _ = models(None, b"X-Api-Key: " + k + b"\r\n")
    n401 += st == 401
    report(st == 401, "the key in X-Api-Key: %r" % st)
    st, _, _, _ = relib.request(API, path="/v1/models?api_key=" + KEY)
    n401 += st == 401
    report(st == 401, "the key in the query string: %r" % st)
    for what, auth in [("Bearer KEY", b"Bearer " + k), ("bearer KEY", b"bearer " + k),
                       ("BEARER  KEY (two spaces)", b"BEARER  " + k), ("trailing space", b"Bearer " + k + b" "),
                       ("the second key", b"Bearer second-key-2")]:
        st, _, _ = models(auth)
        report(st == 200, "%s: %r" % (what, st))
    for url in (API, ADMIN):
        for path in ("/healthz", "/readyz", "/metrics"):
            st, _, _, _ = relib.request(url, path=path)
            report(st == 200, "%s%s without a key: %r" % ("admin " if url == ADMIN else "", path, st))
    for path, auth in (("/v1/models", "Bearer " + KEY), ("/openapi.json", "Bearer " + KEY), ("/", None)):
        st, _, _, _ = relib.request(ADMIN, path=path, headers={"Authorization": auth} if auth else {})
        report(st == 404, "admin %s (key %s): %r, the admin port serves only probes and metrics"
               % (path, "given" if auth else "none", st))
    # a 401 answered before the body is read still reaches a client that writes it all first
    c = http.client.HTTPConnection(HOST, PORT, timeout=30)
    try:
        c.request("POST", "/v1/images/generations", body=b"x" * (4 << 20), headers={"Content-Type": "application/json"})
        st = c.getresponse().status
    except OSError as e:
        st = repr(e)
    finally:
        c.close()
    n401 += st == 401
    report(st == 401, "a 4 MiB body without a key and without Expect: the client reads %r" % (st,))
    m = relib.metrics(ADMIN)
    got = int(m.get('edm_rejections_total{reason="unauthorized"}', 0) - base.get('edm_rejections_total{reason="unauthorized"}', 0))
    report(got == n401, "edm_rejections_total{reason=\"unauthorized\"} %d = %d 401s" % (got, n401))
    return relib.done()


sys.exit(main())
