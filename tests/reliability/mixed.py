#!/usr/bin/env python3
"""mixed.py API_URL METRICS_URL PID - a mixed run against edmd, then every counter of
/metrics against what the client saw (stdlib only; driven by test_counters.sh).
mixed.py API_URL METRICS_URL leave N - N clients whose sync requests are queued or running
leave at the same moment: each is a 499 and a cancelled request (edmd with max-batch +
max-queue >= N).

edmd must run with --max-batch 2 --max-queue 3 --max-steps 10000 and no API key. The run:
successes (sync and async), 400s, 404s (no route, no job), a 405, 409s (a finished job
cancelled, images of an unfinished one), 429s (queue full, sync and async), cancellations
(DELETE of queued and running jobs), clients that disconnect while their request is queued
and while it is in a batch, then SIGTERM (pid PID) with work running: refusals while
draining, a probe answered 503, the running request finishing. While the drain waits for a
finished job nobody has read, /metrics is read once more and compared with the client's
tallies, counter by counter:
  edm_http_responses_total{code}   every answer by status; a client that left is a 499
  edm_rejections_total{reason}     every error answer but a job's outcome and the probes'
  edm_requests_total{mode,outcome} generation requests by their end
Finally the job is read, which ends the drain. Counters are compared as differences from a
first reading, so what happened before the run (the start-up's readiness polls) is left out.
"""
import collections
import json
import os
import signal
import socket
import sys
import threading
import time

import relib
from relib import figure, report

API, METRICS = sys.argv[1], sys.argv[2]
PID = int(sys.argv[3]) if sys.argv[3].isdigit() else None
J = {"Content-Type": "application/json"}
LONG_JOB = b'{"steps": 10000, "seed": 5}'
statuses = collections.Counter()   # every answer the client saw (499: it left first)
rejections = collections.Counter()  # error codes of answers that refused a request
outcomes = collections.Counter()    # (mode, outcome) of generation requests
lock = threading.Lock()


def call(method, path, body=None, url=API, timeout=60):
    st, _, raw, _ = relib.request(url, method, path, body, J if body is not None else {}, timeout=timeout)
    code = relib.error_code(raw) if st and st >= 400 else None
    with lock:
        statuses[st] += 1
        if code and path not in ("/healthz", "/readyz"):
            rejections[code] += 1
    return st, raw


def scrape():
    """/metrics (tallied like any request: its own 200 is counted after it is rendered)."""
    m = relib.metrics(METRICS)
    with lock:
        statuses[200] += 1
    return m


def wait_for(what, cond, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond(scrape()):
            return True
        time.sleep(0.1)
    report(False, "timed out waiting for " + what)
    return False


def job(body):
    st, raw = call("POST", "/v1/jobs", body)
    return json.loads(raw)["id"] if st == 202 else None


def status_of(jid):
    st, raw = call("GET", "/v1/jobs/" + jid)
    return json.loads(raw).get("status") if st == 200 else None


def cancel(jid, mode="async"):
    st, _ = call("DELETE", "/v1/jobs/" + jid)
    if st == 200:
        outcomes[(mode, "cancelled")] += 1
    return st


def sync(body, timeout=120):
    st, _ = call("POST", "/v1/images/generations", body, timeout=timeout)
    if st == 200:
        outcomes[("sync", "completed")] += 1
    return st


def abandon(body, until_cond, what):
    """A sync request whose client closes its connection once until_cond(metrics) holds."""
    host, port = relib.split_url(API)
    s = socket.create_connection((host, port))
    s.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    ok = wait_for(what, until_cond)
    s.close()
    with lock:
        statuses[499] += 1
    outcomes[("sync", "cancelled")] += 1
    n = outcomes[("sync", "cancelled")]
    wait_for("the server to see the client of %s leave" % what,
             lambda m: m.get('edm_requests_total{mode="sync",outcome="cancelled"}', 0) - base_of(
                 'edm_requests_total{mode="sync",outcome="cancelled"}') >= n)
    return ok


BASE = {}


def base_of(k):
    return BASE.get(k, 0)


def run():
    BASE.update(scrape())
    gauge = lambda m, k: m.get(k, 0)  # noqa: E731
    # successes and refusals of the request itself
    for seed in range(3):
        report(sync(b'{"steps": 4, "seed": %d}' % seed) == 200, "sync generation %d: 200" % seed)
    for path in ("/v1/jobs/nope", "/v1/jobs/nope2", "/v1/jobs/nope3", "/nowhere", "/nowhere/either"):
        call("GET", path)
    call("POST", "/v1/images/generations", b"{")
    call("POST", "/v1/images/generations", b'{"steps": 1}')
    call("PUT", "/v1/models")
    call("GET", "/healthz")
    a = job(b'{"steps": 4, "seed": 9}')
    for _ in range(600):
        if status_of(a) == "completed":
            break
        time.sleep(0.05)
    outcomes[("async", "completed")] += 1
    report(call("DELETE", "/v1/jobs/" + a)[0] == 409, "cancel of a finished job: 409")
    # two long jobs fill the batch (max-batch 2), three more fill the queue (max-queue 3)
    l1, l2 = job(LONG_JOB), job(LONG_JOB)
    wait_for("two long jobs running", lambda m: gauge(m, "edm_images_in_flight") == 2)
    q1, q2, q3 = job(LONG_JOB), job(LONG_JOB), job(LONG_JOB)
    report(call("GET", "/v1/jobs/%s/images/0" % q1)[0] == 409, "images of a queued job: 409")
    report(sync(b'{"steps": 4}') == 429 and sync(b'{"steps": 4}') == 429, "sync requests past the queue: 429")
    report(job(b'{"steps": 4}') is None, "an async request past the queue: 429")
    # a client that leaves while its request waits in the queue
    report(cancel(q3) == 200, "cancel of a queued job: 200")
    abandon(LONG_JOB, lambda m: gauge(m, "edm_queue_depth") == 3, "a queued sync request")
    # a client that leaves while its request is in a batch
    for j in (q1, q2, l2):
        report(cancel(j) == 200, "cancel of job %s: 200" % j)
    abandon(LONG_JOB, lambda m: gauge(m, "edm_images_in_flight") == 2 and gauge(m, "edm_queue_depth") == 0,
            "a running sync request")
    # a finished job nobody reads holds the drain open until it is read
    u = job(b'{"steps": 4, "seed": 11}')
    wait_for("the unread job to complete", lambda m: m.get('edm_requests_total{mode="async",outcome="completed"}', 0)
             - base_of('edm_requests_total{mode="async",outcome="completed"}') >= 2)
    outcomes[("async", "completed")] += 1
    # the drain: SIGTERM while a sync request and a long job run
    results = {}
    t = threading.Thread(target=lambda: results.update(st=sync(b'{"steps": 3000, "seed": 12}', timeout=300)))
    t.start()
    wait_for("the drained request to run", lambda m: gauge(m, "edm_images_in_flight") == 2)
    os.kill(PID, signal.SIGTERM)
    wait_for("the drain to begin", lambda m: gauge(m, "edm_draining") == 1, 10)
    report(sync(b'{"steps": 4}') == 503, "a generation while draining: 503")
    report(job(b'{"steps": 4}') is None, "a job while draining: refused")
    report(call("GET", "/readyz")[0] == 503, "readiness while draining: 503")
    report(call("GET", "/healthz")[0] == 200, "liveness while draining: 200")
    report(cancel(l1) == 200, "cancel of the long job while draining: 200")
    t.join(300)
    report(results.get("st") == 200, "the request running at SIGTERM finished: %r" % results.get("st"))

    # the comparison
    seen = dict(statuses)
    m = scrape()
    d = lambda k: int(m.get(k, 0) - base_of(k))  # noqa: E731
    codes = {int(k.split('"')[1]) for k in m if k.startswith("edm_http_responses_total{")} | {
        c for c in seen if c is not None}
    for c in sorted(codes):
        got = d('edm_http_responses_total{code="%d"}' % c)
        report(got == seen.get(c, 0), "edm_http_responses_total{code=\"%d\"} %d, client saw %d" % (c, got, seen.get(c, 0)))
    report(None not in seen, "every request got an answer or was left by its client (%d without)" % seen.get(None, 0))
    reasons = {k.split('"')[1] for k in m if k.startswith("edm_rejections_total{")}
    for r in sorted(reasons | set(rejections)):
        got = d('edm_rejections_total{reason="%s"}' % r)
        if got or rejections[r]:
            report(got == rejections[r], "edm_rejections_total{reason=\"%s\"} %d, client saw %d" % (r, got, rejections[r]))
    for mode in ("sync", "async"):
        for out in ("completed", "failed", "cancelled", "deadline_exceeded"):
            got = d('edm_requests_total{mode="%s",outcome="%s"}' % (mode, out))
            report(got == outcomes[(mode, out)], "edm_requests_total{mode=\"%s\",outcome=\"%s\"} %d, client saw %d"
                   % (mode, out, got, outcomes[(mode, out)]))
    figure("answers by status, /metrics = client: %s" % ", ".join(
        "%s %d" % (c, n) for c, n in sorted(seen.items(), key=lambda x: str(x[0]))))
    figure("rejections, /metrics = client: %s" % ", ".join("%s %d" % kv for kv in sorted(rejections.items())))
    figure("generations, /metrics = client: %s" % ", ".join(
        "%s/%s %d" % (k[0], k[1], n) for k, n in sorted(outcomes.items())))
    # reading the last job ends the drain
    report(call("GET", "/v1/jobs/" + u)[0] == 200, "the unread job is read during the drain")


def leave(n):
    """N clients leave at once: the disconnect check and MHD race to notice each; either
    way the request is counted once, as a 499."""
    BASE.update(scrape())
    host, port = relib.split_url(API)
    socks = []
    for i in range(n):
        s = socket.create_connection((host, port))
        s.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(LONG_JOB) + LONG_JOB)
        socks.append(s)
    wait_for("%d requests accepted" % n,
             lambda m: m.get("edm_queue_depth", 0) + m.get("edm_images_in_flight", 0) == n)
    for s in socks:
        s.close()
    key = 'edm_requests_total{mode="sync",outcome="cancelled"}'
    wait_for("every request cancelled", lambda m: m.get(key, 0) - base_of(key) == n)
    t_end = time.monotonic() + 10
    while time.monotonic() < t_end:  # the completions of the connections may trail the cancellations
        m = scrape()
        if m.get("edm_http_requests_in_flight", 0) == 1:
            break
        time.sleep(0.1)
    got = int(m.get('edm_http_responses_total{code="499"}', 0) - base_of('edm_http_responses_total{code="499"}'))
    report(got == n, "%d clients left at once: edm_http_responses_total{code=\"499\"} counted %d" % (n, got))
    figure("%d clients leaving at once: %d counted as 499" % (n, got))


if len(sys.argv) > 4 and sys.argv[4] == "leave":
    leave(int(sys.argv[5]))
else:
    run()
sys.exit(relib.done())
