#!/usr/bin/env python3
"""What Prometheus metrics and request logs cost a worker call: GET and PUT under wrk against two
``taskstore serve`` processes on one database, side by side in one run:

- **on**: the defaults, ``TASKSTORE_METRICS=on`` and ``TASKSTORE_LOG_LEVEL=INFO`` (a JSON line
  per request to stderr, which goes to a file, as under a process manager);
- **off**: ``TASKSTORE_METRICS=off`` and ``TASKSTORE_LOG_LEVEL=WARNING``.

Both run all along; only one is loaded at a time. Cells alternate on/off, then off/on in the next
round (ABBA), so a machine whose speed drifts treats both alike; the report gives each figure's
median over the rounds, and on/off. ``--arms on,off,metrics,logs`` adds a server with metrics
only and one with request logs only, to tell the two costs apart. The CPU per request (the
server's processes, from /proc) holds up better than req/s on a busy machine.

**In-process** (``--parts inprocess``): the same calls through Flask's test client in one thread,
no network and no gunicorn, each arm in a process of its own (metrics in multiprocess mode as
under ``serve``; log lines to a file), the arms alternated round by round: the CPU per call of
the app alone, a smaller denominator than the server's, so the ratio is an upper bound.

    python bench/metrics_cost.py                                  # SQLite and PostgreSQL, c=8, 5 rounds, both parts
    python bench/metrics_cost.py --dbs sqlite --rounds 3 --duration 3 --parts wrk
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from common import (
    BENCH_DIR,
    SECRET_KEY,
    count_errors,
    cpu_seconds,
    create_bench_ti,
    describe_measured,
    git_state,
    http,
    log,
    machine_info,
    pg_database,
    prepare_taskstore_db,
    start_taskstore,
    taskstore_env,
    temp_dir,
    utc_now,
    wrk,
)

ARMS = {
    "on": {"TASKSTORE_METRICS": "on", "TASKSTORE_LOG_LEVEL": "INFO", "TASKSTORE_LOG_FORMAT": "json"},
    "off": {"TASKSTORE_METRICS": "off", "TASKSTORE_LOG_LEVEL": "WARNING", "TASKSTORE_LOG_FORMAT": "json"},
    # --arms on,off,metrics,logs: which of the two costs what
    "metrics": {"TASKSTORE_METRICS": "on", "TASKSTORE_LOG_LEVEL": "WARNING", "TASKSTORE_LOG_FORMAT": "json"},
    "logs": {"TASKSTORE_METRICS": "off", "TASKSTORE_LOG_LEVEL": "INFO", "TASKSTORE_LOG_FORMAT": "json"},
}
EXPECTED = {"get": {200}, "put": {204}}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dbs", default="sqlite,pg")
    ap.add_argument("--ops", default="get,put")
    ap.add_argument("--conc", type=int, default=8, help="connections (wrk -c)")
    ap.add_argument("--rounds", type=int, default=5, help="cells per arm, op and database")
    ap.add_argument("--duration", type=float, default=5, help="seconds per timed cell")
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--port", type=int, default=18131, help="the first arm's; the next use +1, +2, ...")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--parts", default="wrk,inprocess", help="wrk,inprocess (default both)")
    ap.add_argument("--calls", type=int, default=3000, help="in-process: timed calls per run")
    ap.add_argument("--arms", default="on,off", help="on,off (default); metrics and logs switch on one of the two")
    ap.add_argument("--json-out", default=str(BENCH_DIR / "out" / "metrics-cost.json"))
    args = ap.parse_args(argv)
    args.arms = [a for a in args.arms.split(",") if a]
    args.parts = [p for p in args.parts.split(",") if p]
    if "on" not in args.arms or "off" not in args.arms or set(args.arms) - set(ARMS):
        ap.error(f"--arms: on and off, and any of {', '.join(ARMS)}")
    args.dbs = [d for d in args.dbs.split(",") if d]
    args.ops = [o for o in args.ops.split(",") if o]
    return args


def cell(arm: str, target: dict, op: str, round_number: int, args) -> dict:
    server, url = target["server"], target["server"].base_url
    kw = dict(token=target["token"], ti=target["ti"], op=op, conc=args.conc)
    tag = f"{arm}{round_number}"
    if op == "get":
        status, body = http("PUT", f"{url}/execution/store/ti/{target['ti']}/h{tag}-hot", token=target["token"],
                            body={"value": {"seed": "hot"}, "expires_at": None})
        if status != 204:
            raise RuntimeError(f"{arm}: seeding the GET key answered {status}: {body[:200]!r}")
    wrk(url, **kw, duration=args.warmup, prefix=f"w{tag}" if op == "put" else f"h{tag}")
    cpu0 = cpu_seconds(server.pids())
    r = wrk(url, **kw, duration=args.duration, prefix=f"p{tag}" if op == "put" else f"h{tag}")
    cpu = cpu_seconds(server.pids()) - cpu0
    r.update(arm=arm, op=op, round=round_number, server_cpu_s=round(cpu, 2),
             cpu_ms_per_request=round(1000 * cpu / r["requests"], 4) if r["requests"] else None,
             errors=count_errors(r, EXPECTED[op]))
    log(f"{target['db']:6s} {op:3s} {arm:3s} round {round_number + 1}: {r['rps']:8.1f} req/s  "
        f"p50 {r['p50_ms']:6.2f}  p99 {r['p99_ms']:7.2f} ms  CPU {r['cpu_ms_per_request']} ms/req  "
        f"errors {r['errors']}  busy {r.get('machine_busy_pct')}%")
    return r


def measure_database(db: str, args, stack: ExitStack, workdir: Path) -> list[dict]:
    if db == "sqlite":
        url = f"sqlite:///{workdir / 'metrics-cost.db'}"
    else:
        name = stack.enter_context(pg_database(args.pg_url, "_metrics"))
        url = f"{args.pg_url.rstrip('/')}/{name}"
    env = taskstore_env(url, str(workdir / f"instance-{db}"))
    api_key = prepare_taskstore_db(env)
    rows = measure_in_process(db, url, args, workdir) if "inprocess" in args.parts else []
    if "wrk" in args.parts:
        rows += measure_served(db, env, api_key, args, stack, workdir)
    return rows


def measure_served(db: str, env: dict, api_key: str, args, stack: ExitStack, workdir: Path) -> list[dict]:
    targets = {}
    for offset, arm in enumerate(args.arms):
        arm_env = {**env, **ARMS[arm]}
        server = start_taskstore(arm_env, args.port + offset, args.workers, args.threads,
                                 workdir / f"server-{db}-{arm}.log")
        stack.callback(server.stop)
        ti, token = create_bench_ti(server, api_key, arm_env, dag_id=f"metrics_cost_{arm}")
        targets[arm] = {"db": db, "server": server, "ti": ti, "token": token}
    rows = []
    for round_number in range(args.rounds):
        order = args.arms if round_number % 2 == 0 else args.arms[::-1]
        for op in args.ops:
            for arm in order:
                rows.append({"part": "wrk", "db": db, **cell(arm, targets[arm], op, round_number, args)})
    for arm, target in targets.items():
        log_path = target["server"].log_path
        lines = sum(1 for line in log_path.read_text(errors="replace").splitlines() if '"webapp.request"' in line)
        log(f"{db} {arm}: {lines} request lines in the server's log")
    return rows


def measure_in_process(db: str, url: str, args, workdir: Path) -> list[dict]:
    rows = []
    for round_number in range(args.rounds):
        order = args.arms if round_number % 2 == 0 else args.arms[::-1]
        for op in args.ops:
            for arm in order:
                command = [sys.executable, __file__, "--one-in-process", arm, url, op, str(args.calls),
                           str(workdir / f"in-process-{db}-{arm}.log")]
                result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=str(BENCH_DIR))
                if result.returncode != 0:
                    raise RuntimeError(f"in-process {db} {op} {arm} failed:\n{result.stdout}\n{result.stderr}")
                figure = json.loads(result.stdout.strip().splitlines()[-1])
                rows.append({"part": "inprocess", "db": db, "arm": arm, "op": op, "round": round_number, **figure})
                log(f"{db:6s} {op:3s} {arm:7s} in-process round {round_number + 1}: "
                    f"{figure['cpu_ms_per_request']:.4f} ms CPU per call")
    return rows


def one_in_process(arm: str, url: str, op: str, calls: int, log_path: str) -> None:
    """One run of the in-process part, in a process of its own; prints one JSON line."""
    if ARMS[arm]["TASKSTORE_METRICS"] == "on":  # as under taskstore serve
        shared = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="taskstore-bench-metrics-", dir=shared)
    from webapp import create_app, runs
    from webapp.auth import tokens
    from webapp.extensions import db

    settings = {"database_url": url, "secret_key": SECRET_KEY, "token_lifetime_seconds": 86400,
                **{name.removeprefix("TASKSTORE_").lower(): value for name, value in ARMS[arm].items()}}
    instance = tempfile.mkdtemp(prefix="taskstore-bench-instance-")
    app = create_app(settings, instance_path=instance)
    with app.app_context():
        _run, instances = runs.create_dag_run("metrics_cost", f"inprocess_{os.getpid()}", [runs.TaskSpec("t1")])
        db.session.commit()
        ti = str(instances[0].id)
        token, _ = tokens.issue(ti)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "airflow-api-version": "2026-06-30"}
    body = json.dumps({"value": {"i": 1, "s": "x" * 32}, "expires_at": None})
    base = f"/execution/store/ti/{ti}/"
    client.put(base + "hot", data=body, headers=headers).close()
    sys.stderr.flush()
    sys.stderr = open(log_path, "a", buffering=1)  # the log lines, as a server's stderr to a file

    def call(i: int) -> None:
        if op == "get":
            response = client.get(base + "hot", headers=headers)
        else:
            response = client.put(base + f"k{i}", data=body, headers=headers)
        assert response.status_code in (200, 204), response.status_code
        response.close()

    for i in range(300):
        call(-1 - i)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        call(i)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    print(json.dumps({"calls": calls, "cpu_ms_per_request": 1000 * cpu / calls, "wall_ms_per_request":
                      1000 * wall / calls}))


def _ratios(pick: dict, arm: str, key: str) -> float:
    """The median, over the rounds, of each round's arm/off ratio (each round measured both close together)."""
    return statistics.median(a[key] / b[key] for a, b in zip(pick[arm], pick["off"], strict=True))


def report(rows: list[dict], args, measured: dict) -> str:
    out = [f"{describe_measured(measured)}", ""]
    if "wrk" in args.parts:
        out += [f"**wrk**: taskstore serve {args.workers} workers x {args.threads} threads, wrk -c{args.conc}, "
                f"{args.duration:g} s cells after {args.warmup:g} s warm-up, {args.rounds} rounds alternated (ABBA); "
                "medians, and the median of the rounds' own ratios",
                "",
                "| database | call | arm | req/s | /off | /off by round | server CPU ms/req | /off | /off by round | "
                "p99 ms | errors | each cell's req/s |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for db in args.dbs:
            for op in args.ops:
                pick = {arm: [r for r in rows if r["part"] == "wrk" and r["db"] == db and r["op"] == op
                              and r["arm"] == arm] for arm in args.arms}
                med = {arm: {k: statistics.median(r[k] for r in pick[arm])
                             for k in ("rps", "cpu_ms_per_request", "p99_ms")} for arm in args.arms}
                off = med["off"]
                for arm in args.arms:
                    m = med[arm]
                    cells = ", ".join(f"{r['rps']:,.0f}" for r in pick[arm])
                    cpu = m["cpu_ms_per_request"]
                    out.append(f"| {db} | {op.upper()} | {arm} | {m['rps']:,.0f} | {m['rps'] / off['rps']:.3f} | "
                               f"{_ratios(pick, arm, 'rps'):.3f} | {cpu:.3f} | {cpu / off['cpu_ms_per_request']:.3f} | "
                               f"{_ratios(pick, arm, 'cpu_ms_per_request'):.3f} | {m['p99_ms']:.1f} | "
                               f"{sum(r['errors'] for r in pick[arm])} | {cells} |")
        out.append("")
    if "inprocess" in args.parts:
        out += [f"**in-process**: Flask test client, one thread, {args.calls} calls per run, {args.rounds} runs per "
                "arm alternated; medians, and the median of the rounds' own ratios",
                "",
                "| database | call | arm | CPU ms/call | /off | /off by round | each run's CPU ms/call |",
                "|---|---|---|---:|---:|---:|---|"]
        for db in args.dbs:
            for op in args.ops:
                pick = {arm: [r for r in rows if r["part"] == "inprocess" and r["db"] == db and r["op"] == op
                              and r["arm"] == arm] for arm in args.arms}
                med = {arm: statistics.median(r["cpu_ms_per_request"] for r in pick[arm]) for arm in args.arms}
                for arm in args.arms:
                    runs = ", ".join(f"{r['cpu_ms_per_request']:.3f}" for r in pick[arm])
                    out.append(f"| {db} | {op.upper()} | {arm} | {med[arm]:.4f} | {med[arm] / med['off']:.3f} | "
                               f"{_ratios(pick, arm, 'cpu_ms_per_request'):.3f} | {runs} |")
    return "\n".join(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    measured = {**git_state(), "started_utc": utc_now()}
    info = machine_info(args.pg_url if "pg" in args.dbs else None)
    rows: list[dict] = []
    with temp_dir("taskstore_metrics_cost_") as workdir:
        for db in args.dbs:
            with ExitStack() as per_db:
                rows += measure_database(db, args, per_db, workdir)
    measured["finished_utc"] = utc_now()
    text = report(rows, args, measured)
    print(text)
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps({"measured": measured, "machine": info, "args": vars(args),
                                               "rows": rows, "report": text}, indent=1, default=str))
    log(f"raw results in {args.json_out}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one-in-process"]:
        arm, url, op, calls, log_path = sys.argv[2:7]
        one_in_process(arm, url, op, int(calls), log_path)
    else:
        raise SystemExit(main())
