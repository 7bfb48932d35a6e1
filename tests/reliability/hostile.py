#!/usr/bin/env python3
"""hostile.py API_URL MAX_BODY N SEED - hostile JSON bodies over HTTP (stdlib only; driven by
test_hostile.sh): documents that are not JSON, not objects, nested past any sane depth,
wide, long, with numbers past every range, duplicate keys, odd encodings; then N random
mutations (bytes flipped, cut, repeated, spliced) of valid bodies. Each answer must be a
4xx (or a 200 where the mutation left a valid request) with a JSON error, never a 5xx or a
dropped connection; the daemon stays healthy throughout.
"""
import random
import sys

import relib
from relib import figure, report

API, MAX_BODY, N, SEED = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
J = {"Content-Type": "application/json"}

FIXED = [
    b" ", b"null", b"0", b"-0", b'"str"', b"[]", b"[{}]", b"true", b"{", b"}", b"{]", b"{}}",
    b'{"steps": 4,}', b"{'steps': 4}", b'{"steps": 4} {"steps": 5}', b'{"steps": 4}\x00',
    b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b'{"model": "\xc3\x28"}', b'{"model": "\xed\xa0\x80"}',
    b'{"model": "\\ud800"}', b'{"model": "\\u0000"}', b'{"steps": NaN}', b'{"steps": Infinity}',
    b'{"steps": -Infinity}', b'{"steps": 1e999}', b'{"steps": -1e999}', b'{"steps": 1e-999}',
    b'{"steps": 99999999999999999999999999}', b'{"steps": -9223372036854775809}', b'{"steps": 4.5}',
    b'{"steps": "4"}', b'{"steps": true}', b'{"steps": [4]}', b'{"steps": {"n": 4}}',
    b'{"steps": 4, "steps": 5}', b'{"n": 0}', b'{"n": -1}', b'{"n": 1e6}', b'{"seed": -1}', b'{"seed": 1.5}',
    b'{"seed": 18446744073709551616}', b'{"seeds": []}', b'{"seeds": [1, "2"]}', b'{"class_label": -2}',
    b'{"class_label": 1e300}', b'{"unknown": 1}', b'{"": 1}', b'{"\\u0000": 1}', b'{"timeout_ms": -5}',
    b'{"timeout_ms": 1e300}', b'{"sigma_min": "small"}', b'{"solver": "heun\\u0000"}', b'{"solver": ""}',
    b'{"model": "' + b"m" * 100000 + b'"}', b'{"seeds": [' + b"1," * 200000 + b'1]}',
    b"[" * 100000 + b"]" * 100000, b'{"a":' * 20000 + b"1" + b"}" * 20000,
    b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(50000)) + b"}",
    b'{"steps": 4' + b" " * (MAX_BODY - 20) + b"}" + b" " * 20,
]
# odd but valid: an empty body is {}, null is the default, whitespace up to max-body
ODD_VALID = [b"", b'{"steps": null}', b'{"steps": 4' + b" " * (MAX_BODY - 20) + b"}"]


def valid_bodies():
    return [b'{"steps": 4, "seed": 1}', b'{"n": 2, "steps": 3, "seeds": [1, 2], "solver": "euler"}',
            b'{"steps": 5, "S_churn": 10, "S_noise": 1.003, "schedule": "vp", "scaling": "vp", "seed": 2}',
            b'{"steps": 3, "sigma_min": 0.01, "sigma_max": 40, "rho": 5, "timeout_ms": 60000}']


def mutate(rng, b):
    b = bytearray(b)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[i:i] = bytes([rng.choice(b'{}[]",:0-.eE\\ \x00\xff')])
        elif op == 2:
            del b[i:i + rng.randint(1, 8)]
        elif op == 3:
            b[i:i] = b[i:i + rng.randint(1, 16)] * rng.randint(2, 50)
        elif op == 4:
            b[i:i] = rng.choice([b"1e308", b"-1e308", b"1e-320", b"null", b'"x"', b"[]", b"{}", b"99999999999"])
        else:
            b = b[:i]
    return bytes(b[:MAX_BODY])


def send(body):
    st, h, raw, t = relib.request(API, "POST", "/v1/images/generations", body, J, timeout=120)
    is_json = h.get("content-type") == "application/json"
    return st, is_json, relib.error_code(raw)


def main():
    fivexx, dropped, nonjson, codes = [], 0, 0, {}
    for body in FIXED:
        st, is_json, code = send(body)
        ok = st is not None and 400 <= st < 500 and is_json and code
        report(ok, "hostile %r...: %r %s" % (body[:40], st, code))
        codes[code] = codes.get(code, 0) + 1
    for body in ODD_VALID:
        st, is_json, code = send(body)
        report(st == 200 and is_json, "odd but valid %r...: %r" % (body[:20], st))
    rng = random.Random(SEED)
    bases = valid_bodies()
    for i in range(N):
        body = mutate(rng, rng.choice(bases))
        st, is_json, code = send(body)
        if st is None:
            dropped += 1
        elif st >= 500:
            fivexx.append((st, body[:80]))
        elif not is_json:
            nonjson += 1
        codes[code or st] = codes.get(code or st, 0) + 1
    report(not fivexx, "%d random mutations: no 5xx %s" % (N, fivexx[:3]))
    report(dropped == 0 and nonjson == 0, "%d random mutations: every one answered with JSON (%d dropped, %d not JSON)"
           % (N, dropped, nonjson))
    st, _, _, _ = relib.request(API, path="/readyz")
    report(st == 200, "ready after the hostile bodies")
    figure("%d fixed hostile bodies and %d mutations: 5xx %d; answers %s" % (
        len(FIXED), N, len(fivexx), ", ".join("%s %d" % kv for kv in sorted(codes.items(), key=str))))
    return relib.done()


sys.exit(main())
