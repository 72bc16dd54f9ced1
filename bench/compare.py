#!/usr/bin/env python3
"""Compare two bench/run.py result files (before → after), cell by cell.

    python bench/compare.py bench/results/round2-load.json bench/out/last-run.json
    python bench/compare.py bench/results/round2-load-sqlite-fts.json bench/out/last-run.json
    python bench/compare.py bench/results/round2-scale.json bench/out/last-run.json

Prints the commit and date each file measured, then, per database, ours' req/s, p99 and CPU per
request before and after with the ratio, and the ratio to Airflow and to the floor in each run (the
ratios are taken within a run, so they are less sensitive to how busy the machine was; "–" where a
run did not measure Airflow or the floor); then the scale part (page medians and clean) before/after.
Only cells present in both files are shown; a cell measured twice in one file counts as its last run.

Runs that measured several HTTP servers (``--servers``) are compared under one server each:
``--before-server`` / ``--after-server``, by default granian where the run measured it, else
gunicorn. Runs from before ``--servers`` existed measured gunicorn only.
"""

from __future__ import annotations

import argparse
import json
import sys

from common import describe_measured
from run import OP_LABEL, OPS_ORDER


def cpu_ms(r: dict | None) -> float | None:
    if not r or not r.get("requests"):
        return None
    return 1000 * r["server_cpu_s"] / r["requests"]


def f(v, d=1, suffix=""):
    return "–" if v is None else f"{v:.{d}f}{suffix}"


def http_server_of(row: dict) -> str | None:
    """The HTTP server a row of ours or of the floor ran under (None for Airflow's rows); rows of
    runs before the choice existed carry none and ran under gunicorn."""
    if row["server"].startswith("airflow"):
        return None
    return row.get("http_server") or "gunicorn"


def default_server(run: dict) -> str:
    return "granian" if any(r.get("http_server") == "granian" for r in run["rows"]) else "gunicorn"


def index(run: dict, http_server: str | None) -> dict:
    """The run's rows under one HTTP server (and Airflow's), keyed by ("floor" | "ours-<db>" |
    "airflow-<db>", op, conc), whatever the run called them."""
    chosen = http_server or default_server(run)
    found = {}
    for r in run["rows"]:
        server = http_server_of(r)
        if server is not None and server != chosen:
            continue
        label = r["server"].removesuffix(f"-{server}") if r.get("http_server") else r["server"]
        found[(label, r["op"], r["conc"])] = r
    return found


def load_compare(before: dict, after: dict, before_server: str | None = None, after_server: str | None = None) -> str:
    b, a = index(before, before_server), index(after, after_server)
    out = [f"Under {before_server or default_server(before)} before, {after_server or default_server(after)} "
           "after.\n"]
    fb = {c: r for (label, _op, c), r in b.items() if label == "floor"}
    fa = {c: r for (label, _op, c), r in a.items() if label == "floor"}
    if fb and fa:
        out += ["### Floor, before → after (the machine's state in each run)\n",
                "| conc | req/s | p99 ms | CPU ms/req |", "|---:|---|---|---|"]
        for c in sorted(set(fb) & set(fa)):
            out.append(f"| {c} | {fb[c]['rps']:.0f} → {fa[c]['rps']:.0f} | {fb[c]['p99_ms']:.1f} → "
                       f"{fa[c]['p99_ms']:.1f} | {f(cpu_ms(fb[c]), 2)} → {f(cpu_ms(fa[c]), 2)} |")
        out.append("")
    for db in ("sqlite", "pg"):
        keys = sorted({(op, c) for (s, op, c) in a if s == f"ours-{db}" and (s, op, c) in b},
                      key=lambda k: (OPS_ORDER.index(k[0]), k[1]))
        if not keys:
            continue
        out += [f"### {'SQLite' if db == 'sqlite' else 'PostgreSQL'}: ours before → after\n",
                "| op | conc | req/s before → after | × | p99 ms before → after | CPU ms/req before → after "
                "| × less CPU | ours/Airflow before → after | ours/floor before → after |",
                "|---|---:|---|---:|---|---|---:|---|---|"]
        for op, c in keys:
            ob, oa = b[(f"ours-{db}", op, c)], a[(f"ours-{db}", op, c)]
            ab, aa = b.get((f"airflow-{db}", op, c)), a.get((f"airflow-{db}", op, c))
            cb, ca = cpu_ms(ob), cpu_ms(oa)
            rab = ob["rps"] / ab["rps"] if ab else None
            raa = oa["rps"] / aa["rps"] if aa else None
            rfb = ob["rps"] / fb[c]["rps"] if c in fb else None
            rfa = oa["rps"] / fa[c]["rps"] if c in fa else None
            out.append(f"| {OP_LABEL[op]} | {c} | {ob['rps']:.0f} → {oa['rps']:.0f} | {oa['rps'] / ob['rps']:.2f} | "
                       f"{ob['p99_ms']:.0f} → {oa['p99_ms']:.0f} | {f(cb, 2)} → {f(ca, 2)} | "
                       f"{f(cb / ca if cb and ca else None, 2)} | {f(rab, 2, '×')} → {f(raa, 2, '×')} | "
                       f"{f(rfb, 2)} → {f(rfa, 2)} |")
        out.append("")
    return "\n".join(out)


def scale_compare(before: dict, after: dict) -> str:
    sb = {s["db"]: s for s in before.get("scale", [])}
    sa = {s["db"]: s for s in after.get("scale", [])}
    out = []
    for db in ("sqlite", "pg"):
        if db not in sb or db not in sa:
            continue
        out += [f"### Scale on {'SQLite' if db == 'sqlite' else 'PostgreSQL'}: page medians before → after\n",
                "| page | median ms before → after | × faster |", "|---|---|---:|"]
        for kind in ("ui", "api"):
            pb = {p["label"]: p for p in sb[db]["pages"][kind]}
            for p in sa[db]["pages"][kind]:
                q = pb.get(p["label"])
                if q:
                    out.append(f"| {'UI' if kind == 'ui' else 'API'}: {p['label']} | {q['median_ms']:.1f} → "
                               f"{p['median_ms']:.1f} | {q['median_ms'] / p['median_ms']:.1f} |")
        cb, ca = sb[db]["clean"], sa[db]["clean"]

        def p99r(c):
            return c["during"]["p99_ms"] / c["idle"]["p99_ms"] if c["idle"]["p99_ms"] else None

        out.append(f"\nclean ({'one expiry time' if ca.get('same_expiry') else 'spread expiry'} after; "
                   f"{'one expiry time' if cb.get('same_expiry') else 'spread expiry'} before): "
                   f"{cb['clean_s']} s → {ca['clean_s']} s; worker p99 during/idle {f(p99r(cb), 2)}× → "
                   f"{f(p99r(ca), 2)}×\n")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--before-server", choices=["granian", "gunicorn"], default=None)
    ap.add_argument("--after-server", choices=["granian", "gunicorn"], default=None)
    a = ap.parse_args(argv)
    with open(a.before) as fh:
        before = json.load(fh)
    with open(a.after) as fh:
        after = json.load(fh)
    for label, path, data in (("before", a.before, before), ("after", a.after, after)):
        measured = data.get("measured")
        print(f"{label}: {path}: " + (describe_measured(measured) if measured else "commit and date not recorded"))
    print()
    print(load_compare(before, after, a.before_server, a.after_server))
    print(scale_compare(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
