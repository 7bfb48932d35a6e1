#!/usr/bin/env python3
"""crash.py EDMD MODEL TMPDIR - stopping edmd with work in it (stdlib only; driven by
test_crash.sh). Starts edmd itself (CPU backend, one thread):

  1. SIGTERM with requests running and queued (max-batch 2, six sync requests, two async
     jobs): every sync request gets its 200, new work a 503 with Retry-After and
     Connection: close, the probes say draining / alive, the jobs are read during the
     drain, exit 0;
  2. SIGTERM with more work than the drain timeout allows: each accepted request gets
     exactly one answer, a 200 or a 503 "draining"; exit 0 soon after the timeout;
  3. kill -9 with requests in flight: every client sees its connection fail at once (none
     hangs); edmd restarts on the same port at once and serves; a job of the old process
     is gone (404).
"""
import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time

import relib
from relib import figure, report

EDMD, MODEL, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
started = []  # every edmd started here: none outlives the driver
atexit.register(lambda: [p.kill() for p in started if p.poll() is None])


def start(port=0, *extra):
    pf = os.path.join(TMP, "crash.port")
    if os.path.exists(pf):
        os.unlink(pf)
    log = open(os.path.join(TMP, "crash.log"), "ab")
    p = subprocess.Popen([EDMD, "--host", "127.0.0.1", "--port", str(port), "--port-file", pf, "--model", MODEL,
                          "--backend", "cpu", "--compute-threads", "1", "--access-log", "off", *extra],
                         stdout=log, stderr=log)
    started.append(p)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and p.poll() is None:
        try:
            url = "http://127.0.0.1:%d" % int(open(pf).read())
            if relib.request(url, path="/readyz", timeout=2)[0] == 200:
                return p, url
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    p.kill()
    raise SystemExit("edmd did not start: " + open(os.path.join(TMP, "crash.log")).read()[-400:])


def background(url, bodies, timeout=300):
    """Sync requests, one thread each; returns (threads, results: index -> status)."""
    results = {}

    def go(i, b):
        results[i] = relib.request(url, "POST", "/v1/images/generations", b, {"Content-Type": "application/json"},
                                   timeout=timeout)[:3]
    threads = [threading.Thread(target=go, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    return threads, results


def wait_gauges(url, running, queued, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        m = relib.metrics(url)
        if m.get("edm_images_in_flight") == running and m.get("edm_queue_depth") == queued:
            return True
        time.sleep(0.05)
    return False


def drain_with_work():
    p, url = start(0, "--max-batch", "2", "--max-queue", "16", "--drain-timeout", "120", "--max-steps", "10000")
    threads, res = background(url, [b'{"steps": 200, "seed": %d}' % i for i in range(6)])
    report(wait_gauges(url, 2, 4), "SIGTERM: 2 requests running, 4 queued")
    jobs = [json.loads(relib.request(url, "POST", "/v1/jobs", b'{"steps": 4, "seed": 7}',
                                     {"Content-Type": "application/json"})[2])["id"] for _ in range(2)]
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    st, h, body, _ = relib.request(url, "POST", "/v1/images/generations", b'{"steps": 2}',
                                   {"Content-Type": "application/json"})
    report(st == 503 and relib.error_code(body) == "draining" and h.get("retry-after") and
           h.get("connection", "").lower() == "close", "new work while draining: %r %s, Retry-After %s, Connection %s"
           % (st, relib.error_code(body), h.get("retry-after"), h.get("connection")))
    report(relib.request(url, path="/readyz")[0] == 503 and relib.request(url, path="/healthz")[0] == 200,
           "while draining: /readyz 503, /healthz 200")
    for t in threads:
        t.join(300)
    codes = [res.get(i, (None,))[0] for i in range(6)]
    report(codes == [200] * 6, "every request running or queued at SIGTERM: 200 (%s)" % codes)
    for j in jobs:  # finished async jobs keep the drain open until they are read
        end, state = time.monotonic() + 60, None
        while state != "completed" and time.monotonic() < end:
            st, _, body, _ = relib.request(url, path="/v1/jobs/" + j)
            state = json.loads(body).get("status") if st == 200 else None
            time.sleep(0.05)
        report(state == "completed", "job %s completed and read during the drain" % j)
    try:
        rc = p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "still running"
    report(rc == 0, "exit %r once everything was answered and read" % rc)
    figure("SIGTERM with 2 running, 4 queued, 2 unread jobs: drained and exited in %.2f s" % (time.monotonic() - t0))


def drain_timeout():
    p, url = start(0, "--max-batch", "2", "--max-queue", "16", "--drain-timeout", "1", "--max-steps", "10000")
    threads, res = background(url, [b'{"steps": 10000, "seed": %d}' % i for i in range(5)])
    report(wait_gauges(url, 2, 3), "drain timeout: 2 long requests running, 3 queued")
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    answers = sorted((res.get(i, (None, {}, b""))[0], relib.error_code(res.get(i, (None, {}, b""))[2]))
                     for i in range(5))
    report(all(a == (503, "draining") for a in answers), "past the drain timeout each request got one 503 draining (%s)"
           % answers)
    rc = p.wait(30)
    took = time.monotonic() - t0
    report(rc == 0 and took < 1 + 5 + 5, "exit %r %.1f s after SIGTERM (drain timeout 1 s)" % (rc, took))


def kill_restart():
    p, url = start(0, "--max-batch", "2", "--max-queue", "16", "--max-steps", "10000")
    port = relib.split_url(url)[1]
    job = json.loads(relib.request(url, "POST", "/v1/jobs", b'{"steps": 4}', {"Content-Type": "application/json"})[2])["id"]
    threads, res = background(url, [b'{"steps": 10000, "seed": %d}' % i for i in range(4)], timeout=60)
    report(wait_gauges(url, 2, 2), "kill -9: 2 long requests running, 2 queued")
    t0 = time.monotonic()
    p.kill()
    p.wait()
    for t in threads:
        t.join(60)
    waited = time.monotonic() - t0
    report(all(res.get(i, (0,))[0] is None for i in range(4)) and waited < 5,
           "every client saw its connection fail, none hung (%.2f s)" % waited)
    t1 = time.monotonic()
    p, url2 = start(port)
    report(url2 == url, "restarted on the same port %d" % port)
    figure("kill -9 to ready again on the same port: %.2f s" % (time.monotonic() - t1))
    report(relib.request(url, path="/v1/jobs/" + job)[0] == 404, "a job of the killed process is gone: 404")
    st = relib.request(url, "POST", "/v1/images/generations", b'{"steps": 4}', {"Content-Type": "application/json"})[0]
    report(st == 200, "the restarted edmd serves: %r" % st)
    p.send_signal(signal.SIGTERM)
    report(p.wait(30) == 0, "the restarted edmd stops with exit 0")


drain_with_work()
drain_timeout()
kill_restart()
sys.exit(relib.done())
