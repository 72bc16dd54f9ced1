#!/usr/bin/env python3
"""Compare the in-process cost of worker calls between two checkouts, measured alternately in
one run so that a machine whose speed drifts (a shared host) treats both alike.

    python bench/ab.py --base ../base-checkout --head . --dbs sqlite,pg --ops get,put --rounds 5

Each round runs ``bench/profile_worker.py --no-profile`` of this checkout once per checkout,
database and operation (the checkout's own ``webapp`` first on PYTHONPATH) and reads its CPU ms
per request; the report gives the median of each, the head/base ratio, and the commits."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINE = re.compile(r"([\d.]+) ms wall and ([\d.]+) ms CPU per request")


def commit(tree: Path) -> str:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "?"


def measure(tree: Path, db: str, op: str, n: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run([sys.executable, str(HERE / "profile_worker.py"), "--db", db, "--op", op, "-n", str(n),
                             "--no-profile"], cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    found = LINE.search(result.stdout + result.stderr)
    if not found:
        raise RuntimeError(f"{tree} {db} {op}: no figure in\n{result.stdout}\n{result.stderr}")
    return float(found.group(2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, type=Path)
    ap.add_argument("--head", default=Path("."), type=Path)
    ap.add_argument("--dbs", default="sqlite,pg")
    ap.add_argument("--ops", default="get,put")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=2000)
    args = ap.parse_args(argv)
    trees = {"base": args.base.resolve(), "head": args.head.resolve()}
    cells = [(db, op) for db in args.dbs.split(",") for op in args.ops.split(",")]
    figures: dict[tuple[str, str, str], list[float]] = {}
    for round_number in range(args.rounds):
        for db, op in cells:
            for name in (("base", "head") if round_number % 2 == 0 else ("head", "base")):
                figures.setdefault((name, db, op), []).append(measure(trees[name], db, op, args.n))
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    print(f"base {commit(trees['base'])}, head {commit(trees['head'])}: CPU ms per worker call in-process, "
          f"median of {args.rounds} alternated rounds of {args.n} calls")
    print("| db | op | base | head | head/base |")
    print("|---|---|---:|---:|---:|")
    for db, op in cells:
        base = statistics.median(figures[("base", db, op)])
        head = statistics.median(figures[("head", db, op)])
        print(f"| {db} | {op} | {base:.3f} | {head:.3f} | {head / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
