#!/usr/bin/env python3
"""Steady load through the local balancer while replicas are drained, killed and restarted.

    deploy/local/loadtest.py --lb deploy/local/lb.sh [--duration 40] [--concurrency 6] ...

Needs a balancer already up (lb.sh up). The timeline, in seconds from the start of the load:
    0 .. t_drain        steady state; async jobs are created and read back through the balancer
    t_drain             replica 1 gets SIGTERM (drain); once it exits it is started again
    t_kill              replica 2 gets SIGKILL (crash); t_restart later it is started again
    .. duration         load goes on; async jobs again in the last window
Every request is a synchronous generation with a known seed, checked against the image that
seed gave before the load (decoded PNG pixels, at most --tolerance apart per pixel). Closes
with the figures and one line per claim, then "N passed, N failed, N skipped":
  every accepted request got exactly one answer, and it was correct; no 5xx (none from
  draining); the drained replica exited 0; the killed one came back and served; throughput
  in the last window recovered to --recovery of the steady one; every async job was readable
  through the balancer and its image correct.
With the Redis job store (lb.sh up with EDM_LB_STORE=redis) any replica answers for any job,
so async reads need no fan-out; and a stream of longer async jobs runs through the whole
timeline, so that the drained and the killed replica hold some: none may be lost or complete
twice (Redis says so: each job's attempt and completions), their images are their seeds',
and the killed replica's jobs must be taken over by another within the lease.
Only loopback addresses are used; every loop is bounded by --duration.
"""
import argparse
import base64
import http.client
import json
import random
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib


# ------------------------------------------------------------------------------- calibration
def stream_steps(url, a):
    """Steps for the async stream's jobs: enough that one runs about --async-seconds on an idle
    replica (at least 3 x --steps, at most the server's 1000), timed through the balancer."""
    steps, c = 3 * a.steps, Client(url, a.timeout)
    while steps < 1000:
        t = time.time()
        st, _, _ = c.request("POST", "/v1/images/generations", {"n": 1, "seed": 4999, "steps": steps})
        took = time.time() - t
        if st != 200 or took >= a.async_seconds:
            break
        steps = min(1000, max(steps + 1, int(steps * a.async_seconds / max(took, 1e-3) * 1.1)))
    c.close()
    return steps


# ------------------------------------------------------------------------------- PNG
def png_pixels(data):
    """Decodes an 8-bit, non-interlaced PNG (gray, gray+alpha, RGB, RGBA) to raw bytes."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(typ + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("bad CRC")
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        elif typ == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace:
        raise ValueError("unsupported PNG")
    bpp = {0: 1, 4: 2, 2: 3, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * bpp
    out = bytearray()
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return (w, h, bpp), bytes(out)


def max_diff(a, b):
    if a[0] != b[0]:
        return 256
    return max((abs(x - y) for x, y in zip(a[1], b[1])), default=0)


# ------------------------------------------------------------------------------ HTTP
class Client:
    def __init__(self, url, timeout):
        u = urllib.parse.urlparse(url)
        assert u.hostname in ("127.0.0.1", "localhost", "::1") or u.hostname.startswith("127."), \
            "loopback only"
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.conn = None

    def request(self, method, path, body=None):
        """(status, headers, body bytes) or raises OSError/HTTPException."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                hdr = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                                  headers=hdr)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the client's keep-alive connection to nginx went stale before the request
                # was sent: a new connection, once (nginx never saw the request)
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None


# --------------------------------------------------------------------------- the test
class Record:
    __slots__ = ("t0", "t1", "status", "upstreams", "correct", "error", "seed")

    def __init__(self, t0, seed):
        self.t0, self.seed = t0, seed
        self.t1 = self.status = self.upstreams = self.correct = self.error = None


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lb", required=True, help="deploy/local/lb.sh (for url, drain, kill, start)")
    ap.add_argument("--duration", type=float, default=40)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--seeds", type=int, default=24, help="distinct seeds (references)")
    ap.add_argument("--t-drain", type=float, default=8)
    ap.add_argument("--t-kill", type=float, default=20)
    ap.add_argument("--restart-after", type=float, default=2)
    ap.add_argument("--async-jobs", type=int, default=12, help="jobs per async window")
    ap.add_argument("--tolerance", type=int, default=2, help="largest per-pixel difference")
    ap.add_argument("--recovery", type=float, default=0.6, help="last window / steady throughput")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--async-every", type=float, default=0.5,
                    help="redis store: seconds between jobs of the async stream")
    ap.add_argument("--async-steps", type=int, default=0,
                    help="redis store: steps of those jobs [enough for --async-seconds each, at least 3 x --steps]")
    ap.add_argument("--async-seconds", type=float, default=1.0,
                    help="redis store: how long one job of the stream should run, unloaded (the kill must find one "
                         "running; a job that ends between the look and the kill cannot be taken over)")
    ap.add_argument("--lease", type=float, default=2, help="redis store: the replicas' --job-lease")
    ap.add_argument("--stream-seeds", type=int, default=8, help="redis store: distinct seeds of the async stream")
    a = ap.parse_args()

    url = subprocess.run([a.lb, "url"], capture_output=True, text=True, check=True).stdout.strip()
    state = {}
    run_dir = subprocess.run([a.lb, "dir"], capture_output=True, text=True, check=True).stdout.strip()
    with open(run_dir + "/state") as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            state[k] = v
    replica_of = {f"127.0.0.1:{state[f'PORT_{i}']}": f"r{i}" for i in range(1, int(state["REPLICAS"]) + 1)}
    name = lambda addr: replica_of.get(addr.strip(), addr.strip())  # noqa: E731
    redis = state.get("STORE") == "redis"

    def references(first, count, steps):
        """{seed: pixels} of seeds first.. first+count-1, each once, straight through the
        balancer before any disruption; None (after a FAIL line) when one fails."""
        out, c = {}, Client(url, a.timeout)
        for seed in range(first, first + count):
            st, h, body = c.request("POST", "/v1/images/generations", {"n": 1, "seed": seed, "steps": steps})
            if st != 200:
                print(f"FAIL reference for seed {seed}: HTTP {st}: {body[:200]!r}")
                return None
            out[seed] = png_pixels(base64.b64decode(json.loads(body)["data"][0]["b64_json"]))
        c.close()
        return out

    ref = references(1000, a.seeds, a.steps)
    if redis and ref is not None and not a.async_steps:
        a.async_steps = stream_steps(url, a)
        print(f"async stream: {a.async_steps} steps a job (about {a.async_seconds:g} s on an idle replica)")
    # redis: the async stream's seeds, at its step count
    ref_long = references(5000, a.stream_seeds if redis else 0, a.async_steps) if ref is not None else None
    if ref is None or ref_long is None:
        print("0 passed, 1 failed, 0 skipped")
        return 1

    records, lock = [], threading.Lock()
    events = []  # (t, text)
    t_start = time.time()
    t_end = t_start + a.duration
    stop = threading.Event()

    def log(text):
        t = time.time() - t_start
        events.append((t, text))
        print(f"  [{t:6.2f}s] {text}", flush=True)

    def worker(k):
        rng = random.Random(k)
        cl = Client(url, a.timeout)
        while time.time() < t_end and not stop.is_set():
            seed = 1000 + rng.randrange(a.seeds)
            r = Record(time.time(), seed)
            try:
                st, h, body = cl.request("POST", "/v1/images/generations", {"n": 1, "seed": seed, "steps": a.steps})
                r.status = st
                r.upstreams = [name(x) for x in h.get("x-upstream", "").split(",") if x.strip()]
                if st == 200:
                    d = json.loads(body)["data"]
                    img = png_pixels(base64.b64decode(d[0]["b64_json"]))
                    r.correct = len(d) == 1 and d[0]["seed"] == seed and max_diff(img, ref[seed]) <= a.tolerance
            except Exception as e:  # noqa: BLE001 - any failure is a finding
                r.error = f"{type(e).__name__}: {e}"
                cl.close()
            r.t1 = time.time()
            with lock:
                records.append(r)
        cl.close()

    jobs = []  # dicts

    def async_window(label, count):
        cl = Client(url, a.timeout)
        rng = random.Random(label)
        for _ in range(count):
            if time.time() > t_end - 1:
                break
            seed = 1000 + rng.randrange(a.seeds)
            j = {"window": label, "seed": seed, "ok": False, "why": ""}
            jobs.append(j)
            try:
                st, h, body = cl.request("POST", "/v1/jobs", {"n": 1, "seed": seed, "steps": a.steps})
                if st != 202:
                    j["why"] = f"create: HTTP {st}"
                    continue
                jid = json.loads(body)["id"]
                j["created_on"] = name(h.get("x-upstream", "?").split(",")[-1])
                deadline = time.time() + 30
                status = None
                while time.time() < deadline:
                    st, h, body = cl.request("GET", f"/v1/jobs/{jid}")
                    if st != 200:
                        j["why"] = f"get: HTTP {st}"
                        break
                    ups = [name(x) for x in h.get("x-upstream", "").split(",") if x.strip()]
                    j["read_from"] = ups[-1]
                    j["fanout"] = max(j.get("fanout", 0), len(ups) - 1)
                    status = json.loads(body)["status"]
                    if status in ("completed", "failed", "cancelled"):
                        break
                    time.sleep(0.05)
                if status != "completed":
                    j["why"] = j["why"] or f"status {status}"
                    continue
                st, h, png = cl.request("GET", f"/v1/jobs/{jid}/images/0")
                if st != 200:
                    j["why"] = f"image: HTTP {st}"
                    continue
                ok = max_diff(png_pixels(png), ref[seed]) <= a.tolerance
                j["image_from"] = name(h.get("x-upstream", "?").split(",")[-1])
                # memory: the job's own replica answers (after the 404s); redis: any replica
                j["ok"] = ok and (redis or j["read_from"] == j["created_on"])
                j["why"] = "" if j["ok"] else "wrong image or replica"
            except Exception as e:  # noqa: BLE001
                j["why"] = f"{type(e).__name__}: {e}"
                cl.close()
        cl.close()

    # ---- redis: a stream of longer async jobs across the whole timeline
    stream = []  # {"id", "seed", "t"}

    def async_stream():
        cl = Client(url, a.timeout)
        rng = random.Random("stream")
        while time.time() < t_end - 4 and not stop.is_set():
            seed = 5000 + rng.randrange(a.stream_seeds)
            try:
                st, h, body = cl.request("POST", "/v1/jobs", {"n": 1, "seed": seed, "steps": a.async_steps})
                if st == 202:
                    with lock:
                        stream.append({"id": json.loads(body)["id"], "seed": seed, "t": time.time() - t_start})
            except Exception:  # noqa: BLE001 - a refused creation is retried by nothing: the next one
                cl.close()
            time.sleep(a.async_every)
        cl.close()

    redis_port = state.get("REDIS_PORT", "")

    def jobs_now(ids):
        """{id: (lease holder or "-", state, attempt, completions)}, from Redis in one call."""
        if not ids:
            return {}
        script = ("local out = {} for i, id in ipairs(ARGV) do "
                  "local l = redis.call('GET', 'edm:job:' .. id .. ':lease') or '-' "
                  "local h = redis.call('HMGET', 'edm:job:' .. id, 'state', 'attempt', 'completions') "
                  "out[i] = id .. ' ' .. string.match(l, '^(%S+)') .. ' ' .. (h[1] or 'gone') .. ' ' .. "
                  "(h[2] or 0) .. ' ' .. (h[3] or 0) end return out")
        r = subprocess.run(["redis-cli", "-p", redis_port, "eval", script, "0"] + list(ids),
                           capture_output=True, text=True, timeout=20)
        out = {}
        for line in r.stdout.split("\n"):
            f = line.split()
            if len(f) == 5:
                out[f[0]] = (f[1], f[2], int(f[3]), int(f[4]))
        return out

    def consumer_of(replica):
        try:
            with open(f"{run_dir}/{replica}.log") as f:
                found = re.findall(r"\(consumer (\S+)\)", f.read())
            return found[-1] if found else None
        except OSError:
            return None

    chaos = {"drain_rc": None, "drain_s": None, "kill_at": None, "restart_ready_at": None,
             "held_by_killed": [], "held_by_drained": []}
    taken_at, done_at = {}, {}  # the killed replica's jobs: run by another, completed (s)

    def run_lb(*args):
        return subprocess.run([a.lb] + list(args), capture_output=True, text=True, timeout=120)

    def held_by(replica):
        who = consumer_of(replica)
        with lock:
            ids = [j["id"] for j in stream]
        return [i for i, v in jobs_now(ids).items() if v[0] == who and v[1] not in ("completed", "failed", "cancelled")]

    def watch_killed():
        """When each job the killed replica held is run by another (attempt 2) and completed."""
        ids = list(chaos["held_by_killed"])
        until = time.time() + 60
        while ids and time.time() < until and not stop.is_set():
            now = time.time() - t_start
            for i, (_, st, attempt, _) in jobs_now(ids).items():
                if attempt > 1:
                    taken_at.setdefault(i, now)
                if st in ("completed", "failed", "cancelled"):
                    done_at.setdefault(i, now)
            if all(i in done_at for i in ids):
                break
            time.sleep(0.05)

    def disruptions():
        time.sleep(max(0, t_start + a.t_drain - time.time()))
        if redis:
            chaos["held_by_drained"] = held_by("r1")
        log("SIGTERM r1 (drain)" + (f", holding {len(chaos['held_by_drained'])} async job(s)" if redis else ""))
        t = time.time()
        r = run_lb("drain", "1")
        chaos["drain_rc"] = r.returncode
        chaos["drain_s"] = time.time() - t
        log(f"r1: {r.stdout.strip() or r.stderr.strip()}")
        r = run_lb("start", "1")
        log(f"r1: {r.stdout.strip() or r.stderr.strip()}")
        time.sleep(max(0, t_start + a.t_kill - time.time()))
        if redis:  # kill r2 while it runs async jobs (waiting up to 3 s for one)
            until = time.time() + 3
            while not chaos["held_by_killed"] and time.time() < until:
                chaos["held_by_killed"] = held_by("r2")
                if not chaos["held_by_killed"]:
                    time.sleep(0.02)
        log("SIGKILL r2 (crash)" + (f", holding {len(chaos['held_by_killed'])} async job(s)" if redis else ""))
        run_lb("kill", "2")
        chaos["kill_at"] = time.time() - t_start
        if redis:  # what it had not finished when it died (it writes nothing more); watch it move
            now = jobs_now(chaos["held_by_killed"])
            chaos["held_by_killed"] = [i for i, v in now.items() if v[1] not in ("completed", "failed", "cancelled")]
            threading.Thread(target=watch_killed, daemon=True).start()
        time.sleep(a.restart_after)
        r = run_lb("start", "2")
        chaos["restart_ready_at"] = time.time() - t_start
        log(f"r2: {r.stdout.strip() or r.stderr.strip()}")

    print(f"load: {a.concurrency} clients, n=1, {a.steps} steps, {a.duration:g} s through {url}")
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.concurrency)]
    chaos_t = threading.Thread(target=disruptions)
    async_t = [threading.Thread(target=async_window, args=("steady", a.async_jobs))]
    if redis:
        async_t.append(threading.Thread(target=async_stream))
    for t in threads + [chaos_t] + async_t:
        t.start()
    # the second async window: after the restart, in the recovery window
    late_at = t_start + max(a.t_kill + a.restart_after + 3, a.duration - 8)
    time.sleep(max(0, late_at - time.time()))
    late = threading.Thread(target=async_window, args=("recovered", a.async_jobs))
    late.start()
    for t in threads + [chaos_t, late] + async_t:
        t.join(timeout=a.duration + 120)
    stop.set()

    # ---- redis: every job of the stream ends
    final = {}
    if redis:
        ids = [j["id"] for j in stream]
        until = time.time() + 90
        while time.time() < until:
            now = time.time() - t_start
            final = jobs_now(ids)
            for i, (holder, st, attempt, _) in final.items():
                if attempt > 1:
                    taken_at.setdefault(i, now)
                if st in ("completed", "failed", "cancelled"):
                    done_at.setdefault(i, now)
            if len(done_at) == len(ids):
                break
            time.sleep(0.1)
        cl = Client(url, a.timeout)
        for j in stream:
            v = final.get(j["id"], ("-", "gone", 0, 0))
            j["state"], j["attempt"], j["completions"] = v[1], v[2], v[3]
            j["correct"] = False
            if v[1] == "completed":
                try:
                    st, h, png = cl.request("GET", f"/v1/jobs/{j['id']}/images/0")
                    j["correct"] = st == 200 and max_diff(png_pixels(png), ref_long[j["seed"]]) <= a.tolerance
                except Exception:  # noqa: BLE001
                    cl.close()
        cl.close()

    # ------------------------------------------------------------------ figures
    sent = len(records)
    answered = [r for r in records if r.status is not None]
    ok200 = [r for r in answered if r.status == 200]
    correct = [r for r in ok200 if r.correct]
    retried = [r for r in answered if r.upstreams and len(r.upstreams) > 1]
    fivexx = [r for r in answered if r.status >= 500]
    failed = [r for r in records if r.status != 200 or not r.correct]
    lat = [(r.t1 - r.t0) * 1000 for r in ok200]

    def rate(t0, t1):
        n = sum(1 for r in ok200 if t0 <= r.t1 - t_start < t1)
        return n / max(1e-9, t1 - t0)
    steady = rate(1.0, a.t_drain)
    last_from = max(chaos["restart_ready_at"] or a.t_kill + a.restart_after, a.duration - 8)
    last = rate(last_from + 1, a.duration)
    served_after = {}
    for r in ok200:
        if chaos["restart_ready_at"] and r.t0 - t_start > chaos["restart_ready_at"] + 0.5 and r.upstreams:
            served_after[r.upstreams[-1]] = served_after.get(r.upstreams[-1], 0) + 1
    per = {}
    for r in ok200:
        if r.upstreams:
            per[r.upstreams[-1]] = per.get(r.upstreams[-1], 0) + 1
    by_second = {}
    for r in ok200:
        s = int(r.t1 - t_start)
        by_second[s] = by_second.get(s, 0) + 1

    print()
    print("figures")
    print(f"  requests sent        {sent}")
    print(f"  answered             {len(answered)}  (200: {len(ok200)}, correct images: {len(correct)})")
    print(f"  retried at balancer  {len(retried)}  (answered by another replica after a refusal, "
          f"a 503 or a reset)")
    # why nginx retried, from its access log (upstream statuses of each attempt)
    causes = {}
    try:
        with open(run_dir + "/nginx-access.log") as f:
            for line in f:
                if '"POST /v1/images/generations"' not in line:
                    continue
                us = line.split('ustatus="', 1)[1].split('"', 1)[0].split(", ")
                if float(line.split()[0]) < t_start:
                    continue
                for u in us[:-1]:
                    why = {"503": "503 from a draining or loading replica",
                           "502": "connection refused or reset"}.get(u, u)
                    causes[why] = causes.get(why, 0) + 1
    except (OSError, IndexError, ValueError):
        pass
    if causes:
        print("  retries by cause     " + ", ".join(f"{k}: {v}" for k, v in sorted(causes.items())))
    print(f"  failed               {len(failed)}  (5xx: {len(fivexx)}, transport errors: "
          f"{sum(1 for r in records if r.error)})")
    print(f"  latency              p50 {percentile(lat, 50):.0f} ms, p99 {percentile(lat, 99):.0f} ms, "
          f"max {max(lat) if lat else float('nan'):.0f} ms")
    print(f"  throughput           steady {steady:.1f}/s (1..{a.t_drain:g} s), last window {last:.1f}/s "
          f"({last_from + 1:.0f}..{a.duration:g} s)")
    print(f"  per second           " + " ".join(f"{by_second.get(s, 0)}" for s in range(int(a.duration) + 1)))
    print(f"  answered by          " + ", ".join(f"{k}: {v}" for k, v in sorted(per.items())))
    print(f"  drain of r1          {chaos['drain_s'] or float('nan'):.2f} s, exit "
          f"{'0' if chaos['drain_rc'] == 0 else 'non-zero'}")
    print(f"  async jobs           {sum(j['ok'] for j in jobs)}/{len(jobs)} read back correctly; created on "
          + ", ".join(f"{k}: {v}" for k, v in sorted(
              {r: sum(1 for j in jobs if j.get('created_on') == r) for r in replica_of.values()}.items()))
          + (f"; image read from another replica than the creator: "
             f"{sum(1 for j in jobs if j.get('image_from') not in (None, j.get('created_on')))}" if redis else
             f"; reads that crossed replicas (404 then the owner): {sum(1 for j in jobs if j.get('fanout', 0) > 0)}"))
    killed, drained = chaos["held_by_killed"], chaos["held_by_drained"]
    kill_at = chaos["kill_at"] or a.t_kill
    taken_ms = max([(taken_at.get(i, kill_at) - kill_at) * 1000 for i in killed] or [0])
    done_ms = max([(done_at.get(i, kill_at) - kill_at) * 1000 for i in killed] or [0])
    lost = [j for j in stream if j.get("state") != "completed"]
    dups = sum(max(0, j.get("completions", 0) - 1) for j in stream)
    if redis:
        print(f"  async stream         jobs sent (acknowledged) {len(stream)}, completed {len(stream) - len(lost)}, "
              f"lost {len(lost)}, duplicate completions {dups}, images correct "
              f"{sum(1 for j in stream if j['correct'])}, run more than once {sum(1 for j in stream if j['attempt'] > 1)}")
        print(f"  killed replica (r2)  held {len(killed)} job(s); all taken over by another replica "
              f"{taken_ms:.0f} ms after the kill (lease {a.lease:g} s), completed there {done_ms:.0f} ms after it")
        print(f"  drained replica (r1) held {len(drained)} job(s) at SIGTERM; they finished there or were handed back")
    for r in [r for r in records if r.status != 200 or not r.correct][:10]:
        print(f"    failed at {r.t0 - t_start:.2f}s seed {r.seed}: status {r.status} upstreams {r.upstreams} "
              f"{r.error or ''}")
    for j in [j for j in jobs if not j["ok"]][:10]:
        print(f"    async job ({j['window']}) seed {j['seed']}: {j['why']}")
    for j in [j for j in stream if j.get("state") != "completed" or not j["correct"]][:10]:
        print(f"    async stream job {j['id']} seed {j['seed']} sent at {j['t']:.2f}s: {j.get('state')}, "
              f"attempt {j.get('attempt')}, image correct: {j['correct']}")

    print()
    P = F = 0

    def check(name_, cond, detail=""):
        nonlocal P, F
        if cond:
            P += 1
            print(f"ok   {name_}")
        else:
            F += 1
            print(f"FAIL {name_}" + (f": {detail}" if detail else ""))
    check("load ran (at least 100 requests)", sent >= 100, f"{sent}")
    check("every request got exactly one answer (no transport errors)", len(answered) == sent,
          f"{sent - len(answered)} unanswered")
    check("every answer is a 200 with the correct image for its seed", len(correct) == sent,
          f"{sent - len(correct)} not")
    check("no 5xx, none from the drain", not fivexx, f"{len(fivexx)}")
    check("the balancer retried where a replica refused or died", len(retried) > 0)
    check("the drained replica exited 0", chaos["drain_rc"] == 0)
    check(f"the drain finished within edmd's drain timeout ({chaos['drain_s'] or 0:.2f} s)",
          chaos["drain_s"] is not None and chaos["drain_s"] < 30)
    check("every replica served after the restarts", set(served_after) >= set(replica_of.values()),
          f"served after restart: {served_after}")
    check(f"throughput recovered ({last:.1f}/s >= {a.recovery:g} x {steady:.1f}/s)", last >= a.recovery * steady)
    if not redis:
        check("every async job was readable through the balancer, from its own replica, image correct",
              jobs and all(j["ok"] for j in jobs), f"{sum(not j['ok'] for j in jobs)} not")
        check("async reads crossed replicas (the 404 fan-out was exercised)",
              any(j.get("fanout", 0) > 0 for j in jobs))
    else:
        check("every async job was readable through the balancer from any replica, image correct",
              jobs and all(j["ok"] for j in jobs), f"{sum(not j['ok'] for j in jobs)} not")
        check("replicas answered for jobs another replica created",
              any(j.get("image_from") not in (None, j.get("created_on")) for j in jobs))
        check(f"the async stream ran ({len(stream)} jobs acknowledged)", len(stream) >= 10)
        check("no acknowledged async job lost (drain, kill -9, restarts)", not lost, f"{len(lost)} lost")
        check("no async job completed twice", dups == 0, f"{dups}")
        check("every async job's image is its seed's", all(j["correct"] for j in stream),
              f"{sum(not j['correct'] for j in stream)} not")
        check(f"the killed replica held async jobs ({len(killed)}), taken over within lease + 5 s "
              f"({taken_ms:.0f} ms)", killed and all(i in taken_at for i in killed)
              and taken_ms < (a.lease + 5) * 1000)
    check("p99 latency below 10 s", lat and percentile(lat, 99) < 10000)
    print(f"{P} passed, {F} failed, 0 skipped")
    return 1 if F else 0


if __name__ == "__main__":
    sys.exit(main())
