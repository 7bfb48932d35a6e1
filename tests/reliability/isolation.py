#!/usr/bin/env python3
"""isolation.py - no request can fail another (stdlib only; driven by test_isolation.sh).

  isolation.py URL hostile          the issue's hostile settings: each a 400 naming its field
  isolation.py URL random N SEED    N settings drawn across and beyond the accepted ranges:
                                    never a 5xx, always JSON, 400s name a field
  isolation.py URL neighbours BODY  seven good requests sent together with BODY (which must
                                    fail): each good one succeeds with the same PNG bytes as
                                    when it runs alone, BODY fails alone
Prints one line per check ("ok ..." / "FAIL ...") and exits 1 on any failure.
"""
import json
import random
import sys
import threading
import urllib.error
import urllib.request

URL = sys.argv[1]
failures = 0


def report(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def post(body):
    """POST /v1/images/generations -> (status, parsed JSON or None)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(URL + "/v1/images/generations", data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def field_of(doc):
    err = (doc or {}).get("error") or {}
    return err.get("param"), err.get("message", "")


HOSTILE = [  # (body, the field the 400 must name)
    ({"sigma_max": 1e308, "steps": 8}, "sigma_max"),
    ({"sigma_max": 4e38}, "sigma_max"),
    ({"sigma_max": 3e38, "steps": 4}, "sigma_max"),
    ({"sigma_min": 1e-46}, "sigma_min"),
    ({"sigma_min": 1e-320}, "sigma_min"),
    ({"rho": 1e-300}, "rho"),
    ({"sigma_min": 1e-10, "rho": 1e-5}, "rho"),
    ({"sigma_min": 1e-30, "schedule": "vp", "steps": 8}, "sigma_min"),
    ({"S_churn": 10, "S_noise": 1e300, "steps": 4}, "S_noise"),
]


def hostile():
    for body, field in HOSTILE:
        status, doc = post(body)
        param, msg = field_of(doc)
        named = param == field
        report(status == 400 and named,
               f"hostile {json.dumps(body)}: {status} param={param} '{msg[:90]}'")


def draw(rng):
    """One request body, values across and beyond every accepted range."""
    def num(lo_exp, hi_exp):
        v = 10.0 ** min(rng.uniform(lo_exp, hi_exp), 308.0)
        return rng.choice([v, -v, 0.0, v]) if rng.random() < 0.15 else v
    b = {"steps": rng.randint(2, 6)}
    for key, lo, hi in [("sigma_min", -330, 3), ("sigma_max", -3, 308.2), ("rho", -308, 4),
                        ("S_churn", -3, 308.2), ("S_min", -5, 40), ("S_max", -5, 308.2),
                        ("S_noise", -5, 308.2)]:
        if rng.random() < 0.4:
            b[key] = num(lo, hi)
    if rng.random() < 0.3:
        b["solver"] = rng.choice(["euler", "heun"])
        b["disc"] = rng.choice(["vp", "ve", "iddpm", "edm"])
        b["schedule"] = rng.choice(["vp", "ve", "linear"])
        b["scaling"] = rng.choice(["vp", "none"])
    if rng.random() < 0.05:
        b["steps"] = rng.choice([0, 1, -1, 10**12, 2.5])
    return b


def random_settings(n, seed):
    rng = random.Random(seed)
    counts = {}
    for i in range(n):
        body = draw(rng)
        status, doc = post(body)
        counts[status] = counts.get(status, 0) + 1
        if status >= 500 or doc is None:
            report(False, f"random #{i} {json.dumps(body)}: {status} {doc}")
        elif status == 400:
            param, msg = field_of(doc)
            if param not in body:
                report(False, f"random #{i} {json.dumps(body)}: 400 names {param}, not a field "
                              f"it sent: '{msg}'")
        elif status not in (200, 422):  # 422: the image's sampling diverged, alone
            report(False, f"random #{i} {json.dumps(body)}: unexpected {status}")
    report(all(s < 500 for s in counts), f"random settings: {n} tried, by status {sorted(counts.items())}")


def neighbours(bad_body):
    good = [{"seed": 100 + i, "steps": 4, "class_label": i % 2} for i in range(7)]
    alone = [post(b) for b in good]
    results = [None] * 8

    def run(i, body):
        results[i] = post(body)
    threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(good + [bad_body])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad_status, bad_doc = results[7]
    report(bad_status >= 400, f"neighbours: the bad request fails: {bad_status} {field_of(bad_doc)}")
    for i in range(7):
        (s0, d0), (s1, d1) = alone[i], results[i]
        same = (s0 == s1 == 200 and d0["data"][0]["b64_json"] == d1["data"][0]["b64_json"])
        report(same, f"neighbours: good request {i}: alone {s0}, beside the bad one {s1}, "
                     f"same pixels {same}")


if __name__ == "__main__":
    mode = sys.argv[2]
    if mode == "hostile":
        hostile()
    elif mode == "random":
        random_settings(int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "neighbours":
        neighbours(json.loads(sys.argv[3]))
    sys.exit(1 if failures else 0)
