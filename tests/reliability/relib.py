"""relib.py - what the reliability drivers share (stdlib only).

Every driver prints one line per check, "ok   ..." or "FAIL ...", and "figure ..." lines
with the numbers worth reporting; tests/reliability/lib.sh counts the first two and shows
the third. Addresses are loopback only: 127.0.0.1 is "the attacker", other 127.x.y.z
addresses are other clients (Linux routes all of 127/8 to lo).
"""
import json
import os
import socket
import time

failures = 0
LONG = os.environ.get("EDM_RELIABILITY_LONG", "") not in ("", "0")


def report(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures += 1
    return ok


def figure(what):
    print("figure " + what, flush=True)


def pct(values, q):
    """The q-th percentile (nearest rank) of values, or None."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(q / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def ms(x):
    return "-" if x is None else "%.1f ms" % (x * 1e3)


def split_url(url):
    """'http://127.0.0.1:8080' -> ('127.0.0.1', 8080)"""
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def exchange(url, data, source="127.0.0.1", timeout=10.0, shut=False):
    """Sends raw bytes on a new connection from source (shut: then ends the writing side)
    and reads until the server closes. Returns (bytes read, seconds until the close, or
    None when the connection failed or the server was still open at the timeout)."""
    host, port = split_url(url)
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
    except OSError:
        return b"", None
    out, closed = b"", None
    try:
        s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        while True:
            c = s.recv(65536)
            if not c:
                closed = time.monotonic() - t0
                break
            out += c
    except socket.timeout:
        pass
    except OSError:
        closed = time.monotonic() - t0
    finally:
        s.close()
    return out, closed


def request(url, method="GET", path="/", body=None, headers=None, source="127.0.0.1", timeout=10.0):
    """One HTTP/1.1 request on a new connection from source, Connection: close.
    Returns (status or None, {lowercase header: value}, body bytes, seconds); status None
    when the connection failed or no answer came in time."""
    t0 = time.monotonic()
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, path, split_url(url)[0])
    for k, v in (headers or {}).items():
        head += "%s: %s\r\n" % (k, v)
    if body is not None:
        head += "Content-Length: %d\r\n" % len(body)
    out, _ = exchange(url, head.encode("latin-1") + b"\r\n" + (body or b""), source, timeout)
    return parse_response(out) + (time.monotonic() - t0,)


def parse_response(raw):
    """(status or None, headers, body) of one raw HTTP/1.1 response."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1]) if sep else None
    except (IndexError, ValueError):
        status = None
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    return status, headers, body


def error_code(body):
    """The "code" of an {"error": ...} body, or None."""
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def metrics(url, source="127.0.0.1"):
    """{sample name with labels: value} of /metrics."""
    st, _, body, _ = request(url, path="/metrics", source=source)
    if st != 200:
        raise RuntimeError("GET /metrics: %r" % st)
    out = {}
    for ln in body.decode().splitlines():
        if ln and not ln.startswith("#"):
            k, _, v = ln.rpartition(" ")
            out[k] = float(v)
    return out


def done():
    """Exit status of the driver."""
    return 1 if failures else 0
