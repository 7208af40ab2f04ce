#!/usr/bin/env python3
"""Turns the raw measurements of bench/registry.sh into a Markdown report.

    report.py WORKDIR

Reads WORKDIR/raw.tsv (registry, metric, value; one line per sample), WORKDIR/wrk-<registry>.txt
(wrk --latency output) and WORKDIR/meta.txt (key=value lines) and prints the report: machine,
versions, the comparison table with berth/peer ratios and PASS/FAIL of the targets, and every
sample. Exit status 0 whatever the targets say (they are results, not errors).
"""

import re
import statistics
import os
import sys
from collections import defaultdict

REGS = ("berth", "peer")


def load(workdir):
    samples = defaultdict(list)
    with open(f"{workdir}/raw.tsv") as f:
        for line in f:
            reg, metric, value = line.rstrip("\n").split("\t")
            samples[(reg, metric)].append(float(value))
    meta = {}
    with open(f"{workdir}/meta.txt") as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return samples, meta


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p99 = float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    lat = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)\s", text, re.M)
    max_ms = float(lat.group(1)) * UNITS[lat.group(2)] if lat else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:(.*)", text)
    total = re.search(r"(\d+) requests in", text)
    return {
        "rps": rps,
        "p99_ms": p99,
        "max_ms": max_ms,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "requests": int(total.group(1)) if total else 0,
    }


def fmt(v, digits=1):
    if v is None or v != v:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def main():
    workdir = sys.argv[1]
    samples, meta = load(workdir)
    wrk = {r: parse_wrk(f"{workdir}/wrk-{r}.txt") for r in REGS}
    anon = {r: parse_wrk(f"{workdir}/wrk-{r}-anon.txt") for r in REGS}

    def med(reg, metric):
        vals = samples.get((reg, metric))
        return statistics.median(vals) if vals else None

    def mx(reg, metric):
        vals = samples.get((reg, metric))
        return max(vals) if vals else None

    reps = meta.get("reps", "3")
    gets = meta.get("blob_gets", "5")
    rows = []  # (label, berth, peer, unit/extra cells, better, target text, passed or None)

    def throughput(label, metric, secs_metric, target=True):
        b, p = med("berth", metric), med("peer", metric)
        bs, ps = med("berth", secs_metric), med("peer", secs_metric)
        cell = lambda v, s: f"{fmt(v)} MB/s ({s:.2f} s)" if s is not None else f"{fmt(v)} MB/s"
        rows.append((label, cell(b, bs), cell(p, ps), b / p, "higher",
                     "≥ peer" if target else "", (b >= p) if target else None))

    def ceiling(client, metric):
        st = med("static", metric)
        if st:
            b, p = med("berth", metric), med("peer", metric)
            rows.append((f"… {client}'s ceiling: the same pull from nginx serving the files (sendfile; "
                         f"{fmt(st)} MB/s, median of {reps}; info)",
                         f"{b / st:.2f} × ceiling", f"{p / st:.2f} × ceiling", None, "higher", "", None))

    throughput(f"push 512 MiB, 1 layer (median of {reps})", "push_big_mbps", "push_big_s")
    fast = med("berth", "fastpull_big_mbps") is not None
    if fast:
        throughput(f"pull 512 MiB, 1 layer, berth-pull (median of {reps})", "fastpull_big_mbps", "fastpull_big_s")
        ceiling("berth-pull", "fastpull_big_mbps")
    throughput(f"pull 512 MiB, 1 layer, skopeo (median of {reps}{'; info: client-bound' if fast else ''})",
               "pull_big_mbps", "pull_big_s", target=not fast)
    ceiling("skopeo", "pull_big_mbps")
    throughput(f"push 64 MiB, 3 layers (median of {reps})", "push_small_mbps", "push_small_s")
    if fast:
        throughput(f"pull 64 MiB, 3 layers, berth-pull (median of {reps})", "fastpull_small_mbps",
                   "fastpull_small_s")
    throughput(f"pull 64 MiB, 3 layers, skopeo (median of {reps}{'; info' if fast else ''})",
               "pull_small_mbps", "pull_small_s", target=not fast)
    b, p = med("berth", "blob_get_mbps"), med("peer", "blob_get_mbps")
    rows.append((f"blob GET 512 MiB, curl (median of {gets})", f"{fmt(b)} MB/s", f"{fmt(p)} MB/s",
                 b / p, "higher", "≥ peer", b >= p))
    b, p = wrk["berth"]["rps"], wrk["peer"]["rps"]
    rows.append((f"manifest GET by tag, {meta.get('wrk_conns', 32)} conns, {meta.get('wrk_duration', '10s')}",
                 f"{fmt(b)} req/s", f"{fmt(p)} req/s", b / p, "higher", "≥ peer", b >= p))
    b, p = wrk["berth"]["p99_ms"], wrk["peer"]["p99_ms"]
    rows.append(("manifest GET p99 latency", f"{fmt(b, 2)} ms", f"{fmt(p, 2)} ms", b / p, "lower", "", None))
    b, p = anon["berth"], anon["peer"]
    rows.append(("manifest GET without credentials (info: berth anonymous on the public project, "
                 "distribution with auth off)",
                 f"{fmt(b['rps'])} req/s, p99 {fmt(b['p99_ms'], 2)} ms",
                 f"{fmt(p['rps'])} req/s, p99 {fmt(p['p99_ms'], 2)} ms",
                 b["rps"] / p["rps"], "higher", "", None))
    tok = f"{workdir}/wrk-berth-token.txt"
    if os.path.exists(tok):
        t = parse_wrk(tok)
        rows.append(("manifest GET with a bearer token (info: berth only; the peer has no token service)",
                     f"{fmt(t['rps'])} req/s, p99 {fmt(t['p99_ms'], 2)} ms", "", None, "higher", "", None))
    b, p = med("berth", "cpu_s_per_gib"), med("peer", "cpu_s_per_gib")
    rows.append((f"server CPU-s per GiB pushed (512 MiB push, median of {reps})",
                 f"{fmt(b, 2)} s", f"{fmt(p, 2)} s", b / p, "lower", "≤ 0.5 × peer", b <= 0.5 * p))
    bu, pu = med("berth", "cpu_user_s_per_gib"), med("peer", "cpu_user_s_per_gib")
    bs, ps = med("berth", "cpu_sys_s_per_gib"), med("peer", "cpu_sys_s_per_gib")
    rows.append(("… of which user / system (info)", f"{fmt(bu, 2)} / {fmt(bs, 2)} s",
                 f"{fmt(pu, 2)} / {fmt(ps, 2)} s", (bu + bs) / (pu + ps), "lower", "", None))
    for metric, client in (("cpu_s_per_gib_fastpulled", "berth-pull"), ("cpu_s_per_gib_pulled", "skopeo")):
        b, p = med("berth", metric), med("peer", metric)
        if b is not None:
            rows.append((f"server CPU-s per GiB pulled (512 MiB pull by {client}, median of {reps}; info)",
                         f"{fmt(b, 2)} s", f"{fmt(p, 2)} s", b / p, "lower", "", None))
    b, p = mx("berth", "rss_peak_mib"), mx("peer", "rss_peak_mib")
    rows.append(("peak VmRSS during 512 MiB push (fresh process, 50 ms samples)",
                 f"{fmt(b)} MiB", f"{fmt(p)} MiB", b / p, "lower", "berth < 100 MiB", b < 100))
    b, p = mx("berth", "hwm_mib"), mx("peer", "hwm_mib")
    rows.append(("VmHWM after that push", f"{fmt(b)} MiB", f"{fmt(p)} MiB", b / p, "lower",
                 "(berth < 100 MiB)", None))

    b, p = mx("berth", "burst_hwm_mib"), mx("peer", "burst_hwm_mib")
    bb, pb = parse_wrk(f"{workdir}/wrk-berth-burst.txt"), parse_wrk(f"{workdir}/wrk-peer-burst.txt")
    rows.append(("VmHWM after 3 s of 32 concurrent Basic-auth clients, fresh process (info)",
                 f"{fmt(b)} MiB (max latency {fmt(bb['max_ms'])} ms)",
                 f"{fmt(p)} MiB (max latency {fmt(pb['max_ms'])} ms)", b / p, "lower", "", None))

    out = []
    out.append("| metric | berth | distribution 2.8 | berth/peer | better | target | result |")
    out.append("| --- | ---: | ---: | ---: | --- | --- | --- |")
    for label, bc, pc, ratio, better, target, ok in rows:
        res = "" if ok is None else ("**PASS**" if ok else "**FAIL**")
        r = "" if ratio is None else f"{ratio:.2f}"
        out.append(f"| {label} | {bc} | {pc} | {r} | {better} | {target} | {res} |")
    passed = sum(1 for r in rows if r[6] is True)
    judged = sum(1 for r in rows if r[6] is not None)
    out.append("")
    out.append(f"Targets passed: {passed} of {judged}. MB = 10^6 bytes; MiB/GiB = 2^20/2^30 bytes. "
               "Throughput = bytes of the image (layers + config + manifest) / wall time of the "
               "client command (skopeo or bench/pull's berth-pull, which is not the bottleneck; the pull "
               "targets are judged with it when it ran). Ratios > 1 are better for throughput, < 1 better for latency, CPU and RSS.")
    st = med("static", "pull_big_mbps")
    b, p = med("berth", "pull_big_mbps"), med("peer", "pull_big_mbps")
    if st and b < p and b >= 0.97 * st:
        out.append(f"Note: the 512 MiB skopeo pull is client-bound: berth pulls at {b / st:.2f} × the rate of a "
                   "static file server (nginx, sendfile, no auth), so neither server can be told apart "
                   "from the ceiling by more than the run-to-run noise.")
    hwm = mx("berth", "hwm_mib")
    if hwm is not None and hwm >= 100:
        out.append(f"Note: berth's VmHWM ({fmt(hwm)} MiB) is ≥ 100 MiB: a peak the 50 ms samples missed.")
    for r, w in [(r, wrk[r]) for r in REGS] + [(r + " (no credentials)", anon[r]) for r in REGS]:
        if w["non2xx"] or w["socket_errors"]:
            out.append(f"**{r}: wrk saw {w['non2xx']} non-2xx responses, socket errors: "
                       f"{w['socket_errors'] or 'none'}** (of {w['requests']} requests)")

    out.append("")
    out.append("<details><summary>every sample</summary>")
    out.append("")
    out.append("| registry | metric | samples |")
    out.append("| --- | --- | --- |")
    for (reg, metric), vals in sorted(samples.items()):
        out.append(f"| {reg} | {metric} | {', '.join(fmt(v, 2) for v in vals)} |")
    bursts = [(r + " (burst, fresh process)", parse_wrk(f"{workdir}/wrk-{r}-burst.txt")) for r in REGS]
    for r, w in [(r, wrk[r]) for r in REGS] + [(r + " (no credentials)", anon[r]) for r in REGS] + bursts:
        out.append(f"| {r} | wrk | {w['requests']} requests, {fmt(w['rps'])} req/s, p99 {fmt(w['p99_ms'], 2)} ms, "
                   f"non-2xx {w['non2xx']}, socket errors: {w['socket_errors'] or 'none'} |")
    out.append("")
    out.append("</details>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
