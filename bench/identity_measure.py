#!/usr/bin/env python3
"""Samples and report of bench/identity.sh (token service: database vs LDAP users).

    identity_measure.py record WRK_OUT --config C --principal P --round N --berth-ticks T
                               --slapd-ticks T --clk-tck HZ --compilers N   -> one JSON line
    identity_measure.py report RAW.jsonl                                   -> Markdown

`record` reads the JSON line bench/identity_measure.lua prints at the end of a wrk run and adds
the rate and the CPU milliseconds per request of berth and slapd during the timed run.
`report` gives, per configuration and principal, the median over rounds (min–max), p50/p99 (median
over rounds), CPU per request, errors, and the ratio of each LDAP row to the database user's row
measured on the same berth processes (same configuration, same rounds).
"""

import argparse
import json
import statistics
import sys

ROWS = [
    ("cached", "db", "database user (`admin`, the local account in ldap_auth)"),
    ("cached", "ldap", "LDAP user `alice`, default `auth.directory_cache` (5 s): cached verification and groups"),
    ("nocache", "db", "database user, berth with `directory_cache = 0` (control)"),
    ("nocache", "ldap", "LDAP user `alice`, `directory_cache = 0`: search + bind + group search per token"),
]


def record(a):
    lines = [l for l in open(a.wrk_out) if l.startswith("{")]
    if not lines:
        sys.exit(f"identity_measure.py: no JSON line from the wrk script in {a.wrk_out}")
    s = json.loads(lines[-1])
    secs = s["duration_us"] / 1e6
    n = max(s["requests"], 1)
    out = {
        "config": a.config,
        "principal": a.principal,
        "round": a.round,
        "requests": s["requests"],
        "seconds": round(secs, 3),
        "rps": round(s["requests"] / secs, 1),
        "p50_ms": round(s["p50_us"] / 1000, 2),
        "p90_ms": round(s["p90_us"] / 1000, 2),
        "p99_ms": round(s["p99_us"] / 1000, 2),
        "max_ms": round(s["max_us"] / 1000, 2),
        "non2xx": s["non2xx"],
        "socket_errors": s["connect"] + s["read"] + s["write"] + s["timeout"],
        "berth_cpu_ms_per_req": round(a.berth_ticks * 1000 / a.clk_tck / n, 3),
        "slapd_cpu_ms_per_req": round(a.slapd_ticks * 1000 / a.clk_tck / n, 3),
        "compilers": a.compilers,
    }
    print(json.dumps(out))


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def report(a):
    samples = [json.loads(l) for l in open(a.raw) if l.strip()]
    by = {}
    for s in samples:
        by.setdefault((s["config"], s["principal"]), []).append(s)
    print("| configuration | token requests/s, median (min–max) | vs db user, same processes | p50 ms | p99 ms | berth CPU ms/token | slapd CPU ms/token | non-2xx + socket errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cfg, p, label in ROWS:
        ss = by.get((cfg, p), [])
        if not ss:
            print(f"| {label} | not measured | | | | | | |")
            continue
        rps = [s["rps"] for s in ss]
        ratio = ""
        if p != "db" and (cfg, "db") in by:
            db = {s["round"]: s["rps"] for s in by[(cfg, "db")]}
            rs = [s["rps"] / db[s["round"]] for s in ss if db.get(s["round"])]
            if rs:
                ratio = f"{med(rs):.2f}×"
        errs = sum(s["non2xx"] + s["socket_errors"] for s in ss)
        print(
            f"| {label} | **{med(rps):.0f}** ({min(rps):.0f}–{max(rps):.0f}) | {ratio} | "
            f"{med([s['p50_ms'] for s in ss]):.2f} | {med([s['p99_ms'] for s in ss]):.2f} | "
            f"{med([s['berth_cpu_ms_per_req'] for s in ss]):.3f} | {med([s['slapd_cpu_ms_per_req'] for s in ss]):.3f} | "
            f"{errs}{' **ERRORS**' if errs else ''} |"
        )
    print()
    print("Every sample (one line per wrk run; `compilers` = compiler processes running when it ended):")
    print()
    print("| round | configuration | principal | requests | req/s | p50 ms | p99 ms | max ms | berth CPU ms/token | slapd CPU ms/token | errors | compilers |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in sorted(samples, key=lambda s: (s["round"], s["config"], s["principal"])):
        print(
            f"| {s['round']} | {s['config']} | {s['principal']} | {s['requests']} | {s['rps']:.0f} | "
            f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['max_ms']:.2f} | {s['berth_cpu_ms_per_req']:.3f} | "
            f"{s['slapd_cpu_ms_per_req']:.3f} | {s['non2xx'] + s['socket_errors']} | {s['compilers']} |"
        )


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("wrk_out")
    r.add_argument("--config", required=True)
    r.add_argument("--principal", required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--berth-ticks", type=int, required=True)
    r.add_argument("--slapd-ticks", type=int, required=True)
    r.add_argument("--clk-tck", type=int, required=True)
    r.add_argument("--compilers", default="?")
    p = sub.add_parser("report")
    p.add_argument("raw")
    a = ap.parse_args()
    record(a) if a.cmd == "record" else report(a)


if __name__ == "__main__":
    main()
