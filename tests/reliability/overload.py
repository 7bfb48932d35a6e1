#!/usr/bin/env python3
"""overload.py API_URL ADMIN_URL CLIENTS SECONDS - more clients than the queue holds, each
sending synchronous generations back to back (stdlib only; driven by test_overload.sh).

Every request gets exactly one answer: a 200 or a quick 429 with Retry-After; no 5xx, no
transport error; the admin port answers every probe meanwhile; afterwards the queue
empties, every accepted request completed, and /metrics agrees with the tallies.
"""
import collections
import sys
import threading
import time

import relib
from relib import figure, ms, pct, report

API, ADMIN, CLIENTS, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
BODY = b'{"steps": 12}'
lock = threading.Lock()
lat = collections.defaultdict(list)  # status -> seconds
bad = []


def client(i, end):
    while time.monotonic() < end:
        st, h, body, t = relib.request(API, "POST", "/v1/images/generations", BODY,
                                       {"Content-Type": "application/json"}, timeout=120)
        with lock:
            lat[st].append(t)
            if st == 429 and (h.get("retry-after") is None or relib.error_code(body) != "queue_full"):
                bad.append("429 without Retry-After or queue_full")
        if st == 429:
            time.sleep(0.05)  # a client that honours nothing still paces itself a little


def main():
    base = relib.metrics(ADMIN)
    end = time.monotonic() + SECONDS
    prober = [[], 0]

    def probe():
        while time.monotonic() < end:
            st, _, _, t = relib.request(ADMIN, path="/healthz", timeout=2)
            if st == 200:
                prober[0].append(t)
            else:
                prober[1] += 1
            time.sleep(0.2)
    threads = [threading.Thread(target=client, args=(i, end)) for i in range(CLIENTS)] + [threading.Thread(target=probe)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 150)
    wall = time.monotonic() - t0
    n = sum(len(v) for v in lat.values())
    others = {k: len(v) for k, v in lat.items() if k not in (200, 429)}
    report(n > 0 and not others, "%d requests, every answer a 200 or a 429 (others: %s)" % (n, others or "none"))
    report(len(lat[429]) > 0, "the queue overflowed: %d answers were 429" % len(lat[429]))
    report(not bad, "every 429 has Retry-After and code queue_full (%d without)" % len(bad))
    p99 = pct(lat[429], 99)
    report(p99 is not None and p99 < 2.0, "429s come at once: p99 %s (bound 2 s)" % ms(p99))
    report(prober[1] == 0 and prober[0], "admin /healthz during the overload: %d of %d answered"
           % (len(prober[0]), len(prober[0]) + prober[1]))
    figure("%d clients, %.0f s: %d requests, 200: %d (p50 %s, p99 %s), 429: %d (p50 %s, p99 %s, max %s), "
           "%.1f completions/s" % (CLIENTS, SECONDS, n, len(lat[200]), ms(pct(lat[200], 50)), ms(pct(lat[200], 99)),
                                   len(lat[429]), ms(pct(lat[429], 50)), ms(p99), ms(max(lat[429] or [0])),
                                   len(lat[200]) / wall))
    figure("admin /healthz during the overload: p50 %s, p99 %s" % (ms(pct(prober[0], 50)), ms(pct(prober[0], 99))))
    m = relib.metrics(ADMIN)
    d = lambda k: int(m.get(k, 0) - base.get(k, 0))  # noqa: E731
    report(m.get("edm_queue_depth") == 0 and m.get("edm_images_in_flight") == 0, "the queue emptied")
    report(d('edm_requests_total{mode="sync",outcome="completed"}') == len(lat[200]),
           "every accepted request completed (%d = %d 200s)" % (d('edm_requests_total{mode="sync",outcome="completed"}'),
                                                                 len(lat[200])))
    report(d('edm_rejections_total{reason="queue_full"}') == len(lat[429]),
           "edm_rejections_total{reason=\"queue_full\"} %d = %d 429s" % (d('edm_rejections_total{reason="queue_full"}'),
                                                                          len(lat[429])))
    return relib.done()


sys.exit(main())
