#!/usr/bin/env python3
"""logs.py API_URL ACCESS_LOG DAEMON_LOG - log injection (stdlib only; driven by
test_logs.sh): request bytes that try to forge log lines or terminal escapes (CR, LF,
escaped %0a, ESC, quotes, backslashes, bytes that are not UTF-8) in the path, the query,
the method, X-Request-Id and other headers, and in JSON fields echoed by error messages.

Every access-log line must stay one valid JSON object with printable ASCII strings, one
line per request, none forged; a client's X-Request-Id is kept only when plain; no error
body carries a control byte; edmd's own log never repeats the marker.
"""
import json
import sys
import time

import relib
from relib import report

API, ACCESS, DAEMON_LOG = sys.argv[1], sys.argv[2], sys.argv[3]
MARK = b"INJECTED"
FORGED = b'{"ts":"2000-01-01T00:00:00.000Z","remote":"6.6.6.6","method":"GET","path":"/forged","status":200}'


def raw(req):
    return relib.parse_response(relib.exchange(API, req)[0])


def main():
    before = sum(1 for _ in open(ACCESS, "rb"))
    sent, bodies = 0, []
    nasty = [b"%0d%0a" + FORGED.replace(b" ", b"") + b"%0a", b"\x1b[31m" + MARK + b"\x1b[0m", b'"quoted"\\back',
             b"\xff\xfe\xc3(" + MARK, b"%1b%5b2J" + MARK, b"%00" + MARK, b"%e2%80%ae" + MARK]
    for n in nasty:
        for path in (b"/v1/jobs/" + n, b"/" + n, b"/healthz?x=" + n):
            st, h, body = raw(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            sent += 1
            if h.get("content-type") == "application/json":  # (/%00...: MHD cuts the path at the NUL: /)
                bodies.append(body)
        st, h, body = raw(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Request-Id: " + n +
                          b"\r\nUser-Agent: " + n + b"\r\nReferer: " + n + b"\r\n\r\n")
        sent += 1
        report(st == 200 and h.get("x-request-id", "").startswith("req_"),
               "X-Request-Id %r...: replaced by a new id (%s)" % (n[:16], h.get("x-request-id")))
        js = b'{"model": "' + n.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'", "steps": 2}'
        st, h, body = raw(b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(js) + js)
        sent += 1
        bodies.append(body)
    st, h, body = raw(b"G\x1bET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    sent += 1
    bodies.append(body)
    st, h, _ = raw(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Request-Id: client-id_1.2:3\r\n\r\n")
    sent += 1
    report(h.get("x-request-id") == "client-id_1.2:3", "a plain X-Request-Id is kept: %r" % h.get("x-request-id"))
    bad = [b for b in bodies if any(c < 0x20 or c >= 0x7f for c in b)]
    report(not bad, "no JSON answer carries a control byte or a byte past ASCII (%d of %d do: %r)"
           % (len(bad), len(bodies), bad[:1]))
    not_json = []
    for b in bodies:
        try:
            json.loads(b)
        except ValueError:
            not_json.append(b[:80])
    report(not not_json, "every JSON answer parses (%r)" % not_json[:1])
    time.sleep(0.3)  # the access log is written as each request completes
    lines = open(ACCESS, "rb").read().split(b"\n")[before:-1]
    report(len(lines) == sent, "one access-log line per request (%d lines, %d requests)" % (len(lines), sent))
    broken, forged, unprintable = 0, 0, 0
    for ln in lines:
        if any(c < 0x20 or c >= 0x7f for c in ln):
            unprintable += 1
        try:
            e = json.loads(ln)
            forged += e.get("remote") == "6.6.6.6" or e.get("path") == "/forged"
        except ValueError:
            broken += 1
    report(broken == 0 and unprintable == 0, "every line is one JSON object of printable ASCII (%d broken, %d with "
           "control or non-ASCII bytes)" % (broken, unprintable))
    report(forged == 0, "no forged line (%d)" % forged)
    report(MARK not in open(DAEMON_LOG, "rb").read(), "edmd's own log does not repeat request bytes")
    return relib.done()


sys.exit(main())
