#!/usr/bin/env python3
"""A recording TCP proxy for registry traffic, and a reader that turns the recording into the
sequence of HTTP requests each client made (python3 stdlib only).

    traceproxy.py proxy LISTEN_PORT UPSTREAM_PORT TRACE_FILE   forward 127.0.0.1:LISTEN -> 127.0.0.1:UPSTREAM
    traceproxy.py report TRACE_FILE [--steps STEPS_TSV] [--jsonl OUT]

The proxy copies bytes unchanged in both directions and appends every chunk it forwards to
TRACE_FILE with a timestamp; it parses nothing while running, so it cannot break a client.
`report` reassembles each connection, parses the HTTP/1.1 messages (Content-Length and chunked
bodies, HEAD, 1xx) and prints one line per request: method, path (digests shortened), the
request headers that matter to a registry (Content-Type, Content-Length, Content-Range,
Transfer-Encoding with the chunk count, Accept, Range, auth scheme) and the response status and
headers (Location, Range, Docker-Content-Digest, Content-Type, OCI-Subject, ...). With --steps
(the steps.tsv clients.sh writes: name, start, end in epoch seconds) lines are grouped by step.

Registries that build absolute Location URLs from the Host header (distribution does) keep the
clients on the proxy port, so the whole upload flow is recorded.
"""

import argparse
import json
import re
import signal
import socket
import struct
import sys
import threading
import time

REC = struct.Struct("<dIBI")  # time, connection id, direction (0 = client->server), length


def proxy(listen_port, upstream_port, trace_path):
    out = open(trace_path, "ab", buffering=0)
    lock = threading.Lock()
    counter = [0]

    def record(conn_id, direction, data):
        with lock:
            out.write(REC.pack(time.time(), conn_id, direction, len(data)) + data)

    def pump(src, dst, conn_id, direction):
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                record(conn_id, direction, data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                try:
                    s.shutdown(how)
                except OSError:
                    pass

    def handle(client):
        with lock:
            counter[0] += 1
            conn_id = counter[0]
        try:
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
        except OSError:
            client.close()
            return
        t = threading.Thread(target=pump, args=(upstream, client, conn_id, 1), daemon=True)
        t.start()
        pump(client, upstream, conn_id, 0)
        t.join()
        client.close()
        upstream.close()

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(128)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"traceproxy: 127.0.0.1:{listen_port} -> 127.0.0.1:{upstream_port}, recording to {trace_path}",
          flush=True)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=handle, args=(client,), daemon=True).start()


# ---------------------------------------------------------------- report

class Stream:
    """The bytes of one direction of one connection, with the time each byte arrived."""

    def __init__(self):
        self.buf = bytearray()
        self.marks = []  # (offset, time)

    def add(self, t, data):
        self.marks.append((len(self.buf), t))
        self.buf += data

    def time_at(self, offset):
        t = self.marks[0][1] if self.marks else 0.0
        for off, tt in self.marks:
            if off > offset:
                break
            t = tt
        return t


def read_trace(path):
    conns = {}
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + REC.size <= len(data):
        t, cid, direction, n = REC.unpack_from(data, pos)
        pos += REC.size
        chunk = data[pos:pos + n]
        pos += n
        conns.setdefault(cid, (Stream(), Stream()))[direction].add(t, chunk)
    return conns


def parse_head(buf, pos):
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        return None
    lines = bytes(buf[pos:end]).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        headers[k] = (headers[k] + ", " + v.strip()) if k in headers else v.strip()
    return lines[0], headers, end + 4


def skip_body(buf, pos, headers, no_body=False, to_eof=False):
    """Returns (end offset, body length, number of chunks or None)."""
    if no_body:
        return pos, 0, None
    if "chunked" in headers.get("transfer-encoding", "").lower():
        total = chunks = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return len(buf), total, chunks
            size = int(bytes(buf[pos:eol]).split(b";")[0].strip() or b"0", 16)
            pos = eol + 2
            if size == 0:
                # trailers end with an empty line
                end = buf.find(b"\r\n", pos)
                while end >= 0 and end != pos:
                    pos = end + 2
                    end = buf.find(b"\r\n", pos)
                return (end + 2 if end >= 0 else len(buf)), total, chunks
            total += size
            chunks += 1
            pos += size + 2
    if "content-length" in headers:
        n = int(headers["content-length"].split(",")[0])
        return pos + n, n, None
    if to_eof:
        return len(buf), len(buf) - pos, None
    return pos, 0, None


def parse_conn(cid, c2s, s2c):
    reqs, pos = [], 0
    while pos < len(c2s.buf):
        head = parse_head(c2s.buf, pos)
        if not head:
            break
        line, headers, body = head
        t = c2s.time_at(pos)
        pos, n, chunks = skip_body(c2s.buf, body, headers)
        method, _, rest = line.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        reqs.append({"conn": cid, "time": t, "method": method, "target": target,
                     "req": headers, "req_body": n, "req_chunks": chunks})
    pos = 0
    for r in reqs:
        while True:
            head = parse_head(s2c.buf, pos)
            if not head:
                r["status"] = None
                break
            line, headers, body = head
            status = int(line.split(" ")[1])
            no_body = r["method"] == "HEAD" or status in (204, 304) or status < 200
            pos, n, _ = skip_body(s2c.buf, body, headers, no_body=no_body, to_eof=True)
            if status < 200:
                r.setdefault("interim", []).append(status)
                continue
            r["status"], r["resp"], r["resp_body"] = status, headers, n
            break
    return reqs


DIGEST = re.compile(r"sha256(:|%3A|-)([0-9a-f]{64})", re.I)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MEDIA = {
    "application/vnd.oci.image.manifest.v1+json": "oci.manifest",
    "application/vnd.oci.image.index.v1+json": "oci.index",
    "application/vnd.docker.distribution.manifest.v2+json": "docker.v2s2",
    "application/vnd.docker.distribution.manifest.list.v2+json": "docker.list",
    "application/vnd.docker.distribution.manifest.v1+prettyjws": "docker.v2s1.signed",
    "application/vnd.docker.distribution.manifest.v1+json": "docker.v2s1",
    "application/vnd.docker.container.image.v1+json": "docker.config",
    "application/vnd.oci.image.config.v1+json": "oci.config",
}


def short(text):
    text = DIGEST.sub(lambda m: f"sha256{m.group(1)}{m.group(2)[:8]}", text)
    text = UUID.sub(lambda m: m.group(0)[:8] + "…", text)
    text = re.sub(r"_state=[^&]+", "_state=…", text)
    return text


def short_media(value):
    parts = []
    for item in value.split(","):
        item = item.strip()
        base, _, params = item.partition(";")
        base = MEDIA.get(base.strip(), base.strip())
        parts.append(base + (";" + params if params else ""))
    return ",".join(parts)


def describe(r):
    q, s = r["req"], r.get("resp", {})
    bits = [f"{r['method']} {short(r['target'])}"]
    auth = q.get("authorization", "")
    bits.append("[" + (auth.split(" ")[0] if auth else "anon") + "]")
    if "accept" in q and r["method"] in ("GET", "HEAD") and "/manifests/" in r["target"]:
        bits.append("Accept=" + short_media(q["accept"]))
    for h in ("content-type", "content-range", "range"):
        if h in q:
            bits.append(f"{h}={short_media(q[h])}")
    if r["req_chunks"] is not None:
        bits.append(f"body=chunked({r['req_chunks']} chunks,{r['req_body']}B)")
    elif r["req_body"] or "content-length" in q:
        bits.append(f"body={r['req_body']}B")
    if q.get("expect"):
        bits.append("expect=" + q["expect"])
    status = r.get("status")
    out = [f"-> {status}" + (f" (after {r['interim']})" if r.get("interim") else "")]
    for h in ("location", "range", "docker-content-digest", "content-type", "oci-subject",
              "oci-filters-applied", "docker-upload-uuid", "www-authenticate", "link"):
        if h in s:
            v = s[h]
            if h == "location":
                v = re.sub(r"^https?://[^/]+", "", v)
            if h == "docker-upload-uuid":
                v = "yes"
            out.append(f"{h}={short_media(short(v))}")
    if s and r["method"] != "HEAD" and r.get("resp_body"):
        out.append(f"body={r['resp_body']}B")
    elif r["method"] == "HEAD" and "content-length" in s:
        out.append(f"content-length={s['content-length']}")
    return " ".join(bits) + "  " + " ".join(out)


def report(trace_path, steps_path=None, jsonl=None):
    conns = read_trace(trace_path)
    reqs = []
    for cid, (c2s, s2c) in conns.items():
        reqs += parse_conn(cid, c2s, s2c)
    reqs.sort(key=lambda r: r["time"])
    steps = []
    if steps_path:
        with open(steps_path) as f:
            for line in f:
                name, start, end = line.split()[:3]
                steps.append((name, float(start), float(end) if end != "-" else float("inf")))

    def step_of(t):
        for name, a, b in steps:
            if a <= t <= b:
                return name
        return "-"

    current = object()
    t0 = reqs[0]["time"] if reqs else 0
    for r in reqs:
        r["step"] = step_of(r["time"])
        if r["step"] != current:
            current = r["step"]
            print(f"\n## step {current}")
        ua = r["req"].get("user-agent", "")
        print(f"{r['time'] - t0:8.3f} c{r['conn']:<3} {describe(r)}"
              + (f"   ua={ua.split(' ')[0]}" if ua else ""))
    if jsonl:
        with open(jsonl, "w") as f:
            for r in reqs:
                if "authorization" in r["req"]:  # keep the scheme, drop the credentials
                    r["req"]["authorization"] = r["req"]["authorization"].split(" ")[0] + " …"
                f.write(json.dumps(r) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    px = sub.add_parser("proxy")
    px.add_argument("listen_port", type=int)
    px.add_argument("upstream_port", type=int)
    px.add_argument("trace")
    rp = sub.add_parser("report")
    rp.add_argument("trace")
    rp.add_argument("--steps")
    rp.add_argument("--jsonl")
    a = p.parse_args()
    if a.cmd == "proxy":
        proxy(a.listen_port, a.upstream_port, a.trace)
    else:
        report(a.trace, a.steps, a.jsonl)


if __name__ == "__main__":
    main()
