#!/usr/bin/env python3
"""flood.py API_URL ADMIN_URL MODE ... - connection floods against edmd, while other clients
keep asking (stdlib only; driven by test_flood.sh; lines as relib.py prints them).

  idle N HEADER_S          N connections from 127.0.0.1 that send nothing
  trickle N HEADER_S       N connections from 127.0.0.1 that send a request line, then one
                           header line a second (slowloris)
  wide N K HEADER_S        N idle connections spread over K other addresses (127.0.1.k),
                           each below the per-address limit: together they fill the listener
  body N BODY_S            N requests whose headers are complete and whose body comes one
                           byte every half second

While a flood holds its connections, /healthz is probed every 0.2 s on the admin port and
from 127.0.0.2 on the API port (and one generation is asked from 127.0.0.2): every probe
must be answered. Each flood connection the server took is followed until the server
closes it: that must happen at its deadline (HEADER_S or BODY_S), however often it sends.
"""
import selectors
import socket
import sys
import threading
import time

import relib
from relib import figure, ms, pct, report

API, ADMIN, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]
SLACK = 2.5  # the housekeeping tick is 50 ms; this is for a loaded machine


class Flood:
    """Connections held open by one thread: each is opened without blocking, then watched
    until the server closes it (readable end of file); `line` bytes are sent to each open
    one every second when set."""

    def __init__(self, sources, n, first=b"", line=b""):
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # socket -> {"src", "t_open", "t_up", "t_closed"}
        self.first, self.line = first, line
        host, port = relib.split_url(API)
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            src = sources[i % len(sources)]
            s.bind((src, 0))
            s.connect_ex((host, port))
            self.conns[s] = {"src": src, "t_open": time.monotonic(), "t_up": None, "t_closed": None}
            self.sel.register(s, selectors.EVENT_WRITE)

    def _closed(self, s, now):
        c = self.conns[s]
        if c["t_closed"] is None:
            c["t_closed"] = now
            self.sel.unregister(s)
            s.close()

    def pump(self, seconds):
        end = time.monotonic() + seconds
        next_line = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            if now >= end:
                return
            for key, ev in self.sel.select(timeout=min(0.05, end - now)):
                s, now = key.fileobj, time.monotonic()
                c = self.conns[s]
                if c["t_up"] is None and ev & selectors.EVENT_WRITE:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self._closed(s, now)
                        continue
                    c["t_up"] = now
                    self.sel.modify(s, selectors.EVENT_READ)
                    if self.first:
                        self._send(s, self.first, now)
                    continue
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self._closed(s, now)
            if self.line and time.monotonic() >= next_line:
                next_line += 1.0
                for s, c in list(self.conns.items()):
                    if c["t_up"] is not None and c["t_closed"] is None:
                        self._send(s, self.line, time.monotonic())

    def _send(self, s, data, now):
        try:
            s.send(data)
        except OSError:
            self._closed(s, now)

    def held(self, at_least):
        """Connections the server kept open at least `at_least` s (it took them), with the
        seconds each stayed open (None: still open)."""
        out = []
        for c in self.conns.values():
            if c["t_up"] is None:
                continue
            life = None if c["t_closed"] is None else c["t_closed"] - c["t_open"]
            if life is None or life >= at_least:
                out.append(life)
        return out

    def close_all(self):
        for s, c in self.conns.items():
            if c["t_closed"] is None:
                self.sel.unregister(s)
                s.close()


class Prober(threading.Thread):
    """GET /healthz every 0.2 s on url from source, until stopped."""

    def __init__(self, url, source, timeout):
        super().__init__(daemon=True)
        self.url, self.source, self.timeout = url, source, timeout
        self.lat, self.failed, self.stop = [], 0, False

    def run(self):
        while not self.stop:
            st, _, _, t = relib.request(self.url, path="/healthz", source=self.source, timeout=self.timeout)
            if st == 200:
                self.lat.append(t)
            else:
                self.failed += 1
            time.sleep(0.2)

    def finish(self, what):
        self.stop = True
        self.join(self.timeout + 5)
        n = len(self.lat) + self.failed
        report(n > 0 and self.failed == 0, "%s: %d of %d probes answered" % (what, len(self.lat), n))
        figure("%s: %d probes, p50 %s, p99 %s, max %s" % (what, n, ms(pct(self.lat, 50)), ms(pct(self.lat, 99)),
                                                           ms(max(self.lat) if self.lat else None)))


def probes(api_timeout=2.0):
    ps = [Prober(ADMIN, "127.0.0.1", 2.0), Prober(API, "127.0.0.2", api_timeout)]
    for p in ps:
        p.start()
    return ps


def check_closed(flood, deadline, what):
    """Every connection the server took was closed at deadline (+ SLACK), not before."""
    lives = flood.held(deadline * 0.5)
    still = sum(1 for x in lives if x is None)
    done = sorted(x for x in lives if x is not None)
    report(lives and not still, "%s: the server closed all %d connections it took (%d still open)"
           % (what, len(lives), still))
    if done:
        report(done[0] >= deadline - 0.3 and done[-1] <= deadline + SLACK,
               "%s: closed %.2f..%.2f s after opening (deadline %g s)" % (what, done[0], done[-1], deadline))
        figure("%s: %d connections closed after min %.2f s, median %.2f s, max %.2f s (deadline %g s)"
               % (what, len(done), done[0], pct(done, 50), done[-1], deadline))
    return len(lives)


def one_generation(source):
    st, _, body, t = relib.request(API, "POST", "/v1/images/generations", b'{"steps": 2, "seed": 1}',
                                   {"Content-Type": "application/json"}, source=source, timeout=30)
    report(st == 200, "a generation from %s during the flood: %r in %s" % (source, st, ms(t)))


def run_idle(n, header_s, trickle):
    first = b"GET /healthz HTTP/1.1\r\nHost: flood\r\n" if trickle else b""
    what = "%s flood (%d from 127.0.0.1)" % ("trickle" if trickle else "idle", n)
    f = Flood(["127.0.0.1"], n, first=first, line=b"X-Slow: 1\r\n" if trickle else b"")
    ps = probes()
    f.pump(1.0)
    taken = len(f.held(0.9))
    figure("%s: the server kept %d, closed %d at once (per-address limit)" % (what, taken, n - taken))
    one_generation("127.0.0.2")
    f.pump(header_s + SLACK)
    for p, who in zip(ps, ("admin /healthz", "API /healthz from 127.0.0.2")):
        p.finish("%s: %s" % (what, who))
    check_closed(f, header_s, what)
    f.close_all()


def run_wide(n, k, header_s):
    sources = ["127.0.1.%d" % (i + 1) for i in range(k)]
    what = "wide flood (%d over %d addresses)" % (n, k)
    f = Flood(sources, n)
    ps = probes(api_timeout=header_s + SLACK + 2)
    f.pump(header_s * 2 + SLACK)
    ps[0].finish("%s: admin /healthz" % what)
    p = ps[1]
    p.stop = True
    p.join(header_s + SLACK + 7)
    worst = max(p.lat) if p.lat else None
    report(p.failed == 0 and worst is not None and worst <= header_s + SLACK + 1,
           "%s: API /healthz from 127.0.0.2 waited at most %s (the flood is closed at header-timeout %g s); "
           "%d unanswered" % (what, ms(worst), header_s, p.failed))
    figure("%s: API probes from 127.0.0.2 waited p50 %s, max %s" % (what, ms(pct(p.lat, 50)), ms(worst)))
    f.close_all()


def run_body(n, body_s):
    head = (b"POST /v1/images/generations HTTP/1.1\r\nHost: flood\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{")
    what = "slow body (%d requests, one byte every 0.5 s)" % n
    f = Flood(["127.0.0.3"], n, first=head)
    t_end = time.monotonic() + body_s + SLACK
    while time.monotonic() < t_end:
        f.pump(0.5)
        for s, c in f.conns.items():
            if c["t_up"] is not None and c["t_closed"] is None:
                f._send(s, b" ", time.monotonic())
    check_closed(f, body_s, what)
    f.close_all()


def main():
    if MODE in ("idle", "trickle"):
        run_idle(int(ARGS[0]), float(ARGS[1]), MODE == "trickle")
    elif MODE == "wide":
        run_wide(int(ARGS[0]), int(ARGS[1]), float(ARGS[2]))
    elif MODE == "body":
        run_body(int(ARGS[0]), float(ARGS[1]))
    else:
        sys.exit("unknown mode " + MODE)
    return relib.done()


if __name__ == "__main__":
    sys.exit(main())
