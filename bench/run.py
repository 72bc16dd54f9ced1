#!/usr/bin/env python3
"""Task Store benchmark: one command, prints tables (see bench/RESULTS.md).

Run from the repository root with the project's virtualenv (``taskstore`` is taken from it):

    python bench/run.py --airflow-baseline-dir DIR        # load matrix (~13 min here) + scale part (~9 min)
    python bench/run.py --quick --airflow off             # a short smoke: SQLite, c=8, 3 s cells, no scale part
    python bench/run.py --parts load --dbs sqlite,pg --conc 8,32 --ops put,get --airflow off --floor on --duration 5
                                                          # re-measure GET/PUT at c=8/32 on both databases, no Airflow

Part "load": the worker API under wrk (PUT distinct keys, PUT one hot key, GET, DELETE, clear, a mixed
worker session) at each concurrency against ``taskstore serve`` on SQLite and PostgreSQL, the floor (a
constant-JSON Flask endpoint under the same gunicorn settings, bench/floor_app.py) and, with
``--airflow on``, Apache Airflow 3.3.2's execution API with the same wrk script and settings.
Part "scale": bench/scale.py (100k runs / 1M keys, page timings, clean under write load).
Part "purge": the same data, keys dated at their run, then ``taskstore clean --runs-older-than``
under write load.

Measuring Airflow needs Airflow's baseline setup, which is not part of this repository:
``--airflow-baseline-dir DIR`` (or the environment variable AIRFLOW_BASELINE_DIR) names the directory
holding Airflow's baseline setup script, setup.sh, and its prepare.py. Airflow is installed into
``--airflow-dir`` (a scratch directory; default: afbench in the system temp dir) on first use and
reused afterwards.

The results file (``--json-out``) records the commit measured (``git rev-parse HEAD``, and whether the
working tree differed from it) and the UTC date and time the run started; the report prints both first.

Every wrk run is bounded by -d and --timeout; every server started here is stopped in a finally
block; throw-away PostgreSQL databases (taskstore_bench_<random>) are dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
import urllib.parse
from contextlib import ExitStack
from pathlib import Path

import airflow_ref
from common import (
    BENCH_DIR,
    REPO_DIR,
    count_errors,
    cpu_seconds,
    create_bench_ti,
    describe_measured,
    git_state,
    http,
    log,
    machine_info,
    pg_backend_cpu,
    pg_database,
    prepare_taskstore_db,
    start_process,
    start_taskstore,
    taskstore_env,
    temp_dir,
    utc_now,
    wrk,
)

OPS_ORDER = ["put", "delete", "put_hot", "get", "mixed", "clear", "asset_put", "asset_get"]
BENCH_ASSET = "bench/events 2026?#"  # asset keys by name, as Airflow's client sends them (ours only)
EXPECTED = {"put": {204}, "put_hot": {204}, "get": {200}, "delete": {204}, "clear": {204},
            "mixed": {200, 204}, "floor": {200}, "asset_put": {204}, "asset_get": {200}}
OP_LABEL = {"put": "PUT distinct", "put_hot": "PUT hot key", "get": "GET", "delete": "DELETE",
            "clear": "clear", "mixed": "mixed session", "floor": "floor GET", "asset_put": "asset PUT distinct",
            "asset_get": "asset GET"}
TARGET_OPS = ("put", "put_hot", "get")  # the "GET and PUT" of the targets (RESULTS.md, "Headline")
SETTINGS: dict[str, str] = {}  # --setting: extra TASKSTORE_* variables for our server


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="load,scale", help="load,scale,purge (default load,scale)")
    ap.add_argument("--dbs", default="sqlite,pg", help="sqlite,pg")
    ap.add_argument("--conc", default="1,8,32", help="concurrent connections, comma-separated")
    ap.add_argument("--ops", default=",".join(OPS_ORDER),
                    help="put,delete,put_hot,get,mixed,clear,asset_put,asset_get (asset_*: ours only)")
    ap.add_argument("--duration", type=float, default=6, help="seconds per timed cell (wrk -d)")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of untimed warmup before each cell")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (ours and the floor)")
    ap.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    ap.add_argument("--airflow", choices=["on", "off"], default="on")
    ap.add_argument("--airflow-workers", type=int, default=None, help="default: --workers")
    ap.add_argument("--airflow-baseline-dir", default=os.environ.get("AIRFLOW_BASELINE_DIR"),
                    help="the directory holding Airflow's baseline setup script, setup.sh (and prepare.py); "
                         "required with --airflow on (default: $AIRFLOW_BASELINE_DIR)")
    ap.add_argument("--airflow-dir", default=os.path.join(tempfile.gettempdir(), "afbench"),
                    help="scratch directory Airflow is installed into (setup.sh's BENCH_DIR, venv inside) "
                         "and reused from; default: afbench in the system temp dir")
    ap.add_argument("--airflow-fresh", action="store_true", help="re-migrate Airflow's SQLite home")
    ap.add_argument("--floor", choices=["on", "off"], default="on")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--port", type=int, default=18081, help="ours; the floor uses +9, Airflow +1")
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--json-out", default=str(BENCH_DIR / "out" / "last-run.json"),
                    help="raw results (default bench/out/last-run.json, ignored by git; copy a run that "
                         "RESULTS.md quotes into bench/results/ under a descriptive name)")
    ap.add_argument("--quick", action="store_true", help="SQLite, c=8, 3 s cells, load part only")
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                    help="a Task Store setting for our server, e.g. sqlite_synchronous=full (repeatable)")
    # scale part
    ap.add_argument("--scale-dbs", default=None, help="default: --dbs")
    ap.add_argument("--scale-runs", type=int, default=100_000)
    ap.add_argument("--scale-keys", type=int, default=1_000_000)
    ap.add_argument("--scale-repeat", type=int, default=7, help="timed requests per page (median)")
    ap.add_argument("--clean-conc", type=int, default=8, help="wrk PUT connections during clean")
    ap.add_argument("--clean-idle-seconds", type=float, default=8)
    ap.add_argument("--clean-batch-size", type=int, default=None,
                    help="TASKSTORE_CLEANUP_BATCH_SIZE for taskstore clean (default: the app's, 1000)")
    ap.add_argument("--purge-age", default="90d", help="the purge part's --runs-older-than")
    ap.add_argument("--clean-same-expiry", action="store_true",
                    help="give all expired rows one expires_at (worst case for the cleanup's ORDER BY)")
    args = ap.parse_args(argv)
    if args.quick:
        args.dbs, args.conc, args.duration, args.parts = "sqlite", "8", 3, "load"
    args.dbs = [d for d in args.dbs.split(",") if d]
    args.conc = [int(c) for c in args.conc.split(",") if c]
    args.ops = [o for o in OPS_ORDER if o in args.ops.split(",")]
    for setting in args.setting:
        name, _, value = setting.partition("=")
        SETTINGS[f"TASKSTORE_{name.strip().upper()}"] = value.strip()
    args.parts = args.parts.split(",")
    args.scale_dbs = args.scale_dbs.split(",") if args.scale_dbs else args.dbs
    args.airflow_workers = args.airflow_workers or args.workers
    if args.airflow == "on" and "load" in args.parts:
        try:
            args.airflow_baseline_dir = str(airflow_ref.baseline_dir(args.airflow_baseline_dir))
        except ValueError as exc:
            ap.error(str(exc))
    return args


# --- the matrix: ours and Airflow interleaved cell by cell -----------------------------------
# The machine is shared, so the background load drifts; running the same cell on each server
# back to back (and the floor once per concurrency) keeps the ratios fair under that drift.


class Target:
    def __init__(self, label: str, server, token: str, ti: str, pg: tuple[str, str] | None = None):
        self.label, self.server, self.token, self.ti = label, server, token, ti
        self.pg = pg  # (server URL, database name): count the PostgreSQL backends' CPU too
        self.put_issued: dict[int, int] = {}
        self.tags: dict[int, str] = {}


def run_cell(t: Target, op: str, conc: int, args) -> dict:
    url = t.server.base_url
    tag = t.tags.setdefault(conc, f"c{conc}-{secrets.token_hex(3)}")
    kw = dict(token=t.token, ti=t.ti, threads=args.wrk_threads, op=op, conc=conc, asset=BENCH_ASSET)
    seeded = -1
    if op in ("put", "asset_put"):
        wrk(url, **kw, duration=args.warmup, prefix=f"w{tag}")
    elif op == "delete":
        if conc not in t.put_issued:  # no timed PUT before: seed the keys now (untimed)
            t.put_issued[conc] = wrk(url, **dict(kw, op="put"), duration=args.duration, prefix=f"p{tag}")["issued"]
        # more keys than the timed PUT wrote, so DELETE does not run out (untimed)
        extra = wrk(url, **dict(kw, op="put"), duration=max(1, args.duration), prefix=f"p{tag}",
                    start=t.put_issued[conc])["issued"]
        seeded = t.put_issued[conc] + extra
        wrk(url, **kw, duration=args.warmup, prefix=f"w{tag}")
    elif op in ("get", "mixed"):
        names = [f"h{tag}-hot"] if op == "get" else [f"m{tag}-job", f"m{tag}-config"]
        for name in names:
            status, body = http("PUT", f"{url}/execution/store/ti/{t.ti}/{name}", token=t.token,
                                body={"value": {"seed": name}, "expires_at": None})
            if status != 204:
                raise RuntimeError(f"{t.label}: seeding {name} answered {status}: {body[:200]!r}")
        wrk(url, **kw, duration=args.warmup, prefix=f"h{tag}" if op == "get" else f"m{tag}")
    elif op == "asset_get":
        status, body = http("PUT", f"{url}/execution/store/asset/by-name/value?name="
                            f"{urllib.parse.quote(BENCH_ASSET, safe='')}&key=a{tag}-hot", token=t.token,
                            body={"value": {"seed": "hot"}})
        if status != 204:
            raise RuntimeError(f"{t.label}: seeding the asset key answered {status}: {body[:200]!r}")
        wrk(url, **kw, duration=args.warmup, prefix=f"a{tag}")
    else:  # put_hot, clear, floor
        wrk(url, **kw, duration=args.warmup, prefix=f"h{tag}")
    prefix = {"put": f"p{tag}", "delete": f"p{tag}", "put_hot": f"h{tag}", "get": f"h{tag}",
              "mixed": f"m{tag}", "clear": f"h{tag}", "floor": "f", "asset_put": f"p{tag}", "asset_get": f"a{tag}"}[op]
    cpu0 = cpu_seconds(t.server.pids())
    db0 = pg_backend_cpu(*t.pg) if t.pg else None
    r = wrk(url, **kw, duration=args.duration, prefix=prefix, seeded=seeded)
    r["server_cpu_s"] = round(cpu_seconds(t.server.pids()) - cpu0, 2)
    if db0 is not None:
        db1 = pg_backend_cpu(*t.pg)
        r["db_cpu_s"] = round(sum(v - db0.get(pid, 0.0) for pid, v in db1.items()), 2)
    if op == "put":
        t.put_issued[conc] = r["issued"]
    r.update(server=t.label, op=op, conc=conc, errors=count_errors(r, EXPECTED[op]), memory=t.server.memory())
    log(f"{t.label:14s} {op:8s} c={conc:<3d} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f}  "
        f"p99 {r['p99_ms']:8.2f} ms  errors {r['errors']}  statuses {r['statuses']}"
        + (f"  misses {r['misses']}" if op == "delete" else "")
        + f"  busy {r.get('machine_busy_pct')}%")
    return r


def measure(targets: list[Target], floor: Target | None, args, floor_done: set) -> list[dict]:
    rows = []
    for conc in args.conc:
        if floor is not None and conc not in floor_done:
            rows.append(run_cell(floor, "floor", conc, args))
            floor_done.add(conc)
        for op in args.ops:
            for t in targets:
                if op.startswith("asset_") and t.label.startswith("airflow"):
                    continue  # Airflow's asset routes need an asset in its own metadata database: ours only
                rows.append(run_cell(t, op, conc, args))
    return rows


def start_floor(args, log_dir: Path):
    port = args.port + 9
    cmd = [sys.executable, str(BENCH_DIR / "floor_app.py"), "--port", str(port), "--workers", str(args.workers),
           "--threads", str(args.threads)]
    server = start_process("floor", cmd, dict(os.environ), log_dir / "floor.log", f"http://127.0.0.1:{port}", "/floor")
    return Target("floor", server, "", "")


def start_ours(db: str, url: str, args, log_dir: Path, instance: Path, stack: ExitStack) -> list[Target]:
    env = taskstore_env(url, str(instance), **SETTINGS)
    api_key = prepare_taskstore_db(env)
    server = start_taskstore(env, args.port, args.workers, args.threads, log_dir / f"taskstore-{db}.log")
    stack.callback(server.stop)
    ti, token = create_bench_ti(server, api_key, env)
    status, body = http("POST", f"{server.base_url}/api/v2/assets", token=api_key,
                        body={"name": BENCH_ASSET, "uri": "bench://events"})
    if status != 201:
        raise RuntimeError(f"registering the bench asset answered {status}: {body[:300]!r}")
    pg = (args.pg_url, url.rsplit("/", 1)[1]) if db == "pg" else None
    return [Target(f"ours-{db}", server, token, ti, pg)]


def start_airflow(db: str, args, log_dir: Path, stack: ExitStack) -> Target:
    af_dir = Path(args.airflow_dir)
    baseline = Path(args.airflow_baseline_dir)
    airflow_ref.ensure_installed(af_dir, baseline)
    if db == "pg":
        name = stack.enter_context(pg_database(args.pg_url, suffix="_af"))
        sql_conn = args.pg_url.replace("postgresql://", "postgresql+psycopg2://", 1).rstrip("/") + "/" + name
        env, prep = airflow_ref.prepare(af_dir, baseline, f"pg-{name}", sql_conn, reuse=False)
        pg = (args.pg_url, name)
    else:
        pg = None
        env, prep = airflow_ref.prepare(af_dir, baseline, "sqlite", None, reuse=not args.airflow_fresh)
    server = airflow_ref.start(af_dir, env, args.port + 1, args.airflow_workers, log_dir / f"airflow-{db}.log")
    stack.callback(server.stop)
    return Target(f"airflow-{db}", server, prep["token"], prep["ti_id"], pg)


# --- tables -------------------------------------------------------------------------------


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def cpu_per_request(r: dict) -> str:
    if not r.get("requests"):
        return "–"
    text = f"{1000 * r['server_cpu_s'] / r['requests']:.2f}"
    if r.get("db_cpu_s") is not None:
        text += f" (+{1000 * r['db_cpu_s'] / r['requests']:.2f})"
    return text


def max_proc(memory: list[dict], key: str) -> float | None:
    return max((m[key] for m in memory), default=None)


def load_tables(rows: list[dict], dbs: list[str]) -> str:
    out = []
    floor = {r["conc"]: r for r in rows if r["server"] == "floor"}
    if floor:
        out.append("### Floor: constant JSON from Flask under the same gunicorn settings\n")
        out.append("| conc | req/s | p50 ms | p99 ms | errors | CPU ms/req | max RSS/proc MB |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|")
        for c, r in sorted(floor.items()):
            out.append(f"| {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
                       f"{cpu_per_request(r)} | "
                       f"{fmt(max_proc(r['memory'], 'rss_mb'))} |")
        out.append("")
    for db in dbs:
        ours = {(r["op"], r["conc"]): r for r in rows if r["server"] == f"ours-{db}"}
        af = {(r["op"], r["conc"]): r for r in rows if r["server"] == f"airflow-{db}"}
        if not ours:
            continue
        out.append(f"### Worker API on {'SQLite' if db == 'sqlite' else 'PostgreSQL'}\n")
        out.append("| op | conc | req/s | p50 ms | p99 ms | errors | CPU ms/req app (+DB) | max RSS/proc MB (HWM) "
                   "| Airflow req/s | Airflow p99 ms | Airflow errors | Airflow CPU ms/req app (+DB) "
                   "| ours/Airflow req/s | ours/floor req/s |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for (op, c), r in sorted(ours.items(), key=lambda kv: (OPS_ORDER.index(kv[0][0]), kv[0][1])):
            a = af.get((op, c))
            f = floor.get(c)
            cpu_ms = cpu_per_request(r)
            out.append(
                f"| {OP_LABEL[op]} | {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
                f"{cpu_ms} | {fmt(max_proc(r['memory'], 'rss_mb'))} ({fmt(max_proc(r['memory'], 'hwm_mb'))}) | "
                f"{fmt(a and round(a['rps']))} | {fmt(a and a['p99_ms'], 1)} | {fmt(a and a['errors'])} | "
                f"{cpu_per_request(a) if a else '–'} | "
                f"{fmt(a and r['rps'] / a['rps'], 2)}{'×' if a else ''} | {fmt(f and r['rps'] / f['rps'], 2)} |")
        out.append("")
    mem_rows = [(r["server"], m) for r in rows for m in r["memory"]]
    if mem_rows:
        out.append("### Memory per process at the end of each server's matrix (VmRSS, VmHWM = peak)\n")
        out.append("| server | pid | process | RSS MB | HWM MB |")
        out.append("|---|---:|---|---:|---:|")
        last = {}
        for r in rows:
            last[r["server"]] = r["memory"]
        for server, memory in last.items():
            for m in memory:
                out.append(f"| {server} | {m['pid']} | {m['cmd'][:50]} | {m['rss_mb']} | {m['hwm_mb']} |")
        out.append("")
    return "\n".join(out)


def target_checks(rows: list[dict], dbs: list[str]) -> str:
    floor = {r["conc"]: r for r in rows if r["server"] == "floor"}
    lines = ["### Targets\n", "| target | scope | result | met |", "|---|---|---|---|"]
    for db in dbs:
        ours = {(r["op"], r["conc"]): r for r in rows if r["server"] == f"ours-{db}"}
        af = {(r["op"], r["conc"]): r for r in rows if r["server"] == f"airflow-{db}"}
        if not ours:
            continue
        sel = [(op, c) for op in TARGET_OPS for c in (8, 32) if (op, c) in ours]
        if af:
            ratios = [(f"{op}@{c}", ours[(op, c)]["rps"] / af[(op, c)]["rps"]) for op, c in sel if (op, c) in af]
            if ratios:
                worst = min(ratios, key=lambda kv: kv[1])
                lines.append(f"| ≥ 3× Airflow req/s | {db}, GET/PUT at 8 and 32 | worst {worst[0]} {worst[1]:.2f}× | "
                             f"{'yes' if worst[1] >= 3 else '**no**'} |")
        p99s = [(f"{op}", r["p99_ms"]) for (op, c), r in ours.items() if c == 32]
        if p99s:
            worst = max(p99s, key=lambda kv: kv[1])
            lines.append(f"| p99 ≤ 50 ms at 32 conn | {db}, every op | worst {worst[0]} {worst[1]:.1f} ms | "
                         f"{'yes' if worst[1] <= 50 else '**no**'} |")
        if floor:
            fr = [(f"{op}@{c}", ours[(op, c)]["rps"] / floor[c]["rps"]) for op, c in sel if c in floor]
            if fr:
                worst = min(fr, key=lambda kv: kv[1])
                lines.append(f"| ≥ 60% of floor req/s | {db}, GET/PUT at 8 and 32 | worst {worst[0]} "
                             f"{100 * worst[1]:.0f}% | {'yes' if worst[1] >= 0.6 else '**no**'} |")
        hwm = max((m["hwm_mb"] for r in ours.values() for m in r["memory"]), default=0)
        lines.append(f"| ≤ 120 MB RSS per process | {db}, peak VmHWM of any process | {hwm:.0f} MB | "
                     f"{'yes' if hwm <= 120 else '**no**'} |")
        errs = sum(r["errors"] for r in ours.values())
        lines.append(f"| no errors | {db}, all cells | {errs} non-2xx/socket errors | "
                     f"{'yes' if errs == 0 else '**no**'} |")
    return "\n".join(lines) + "\n"


# --- main ---------------------------------------------------------------------------------


def repo_relative(path: str) -> str:
    """A path inside the repository as relative to its root (results files name no machine's layout)."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_DIR)) if resolved.is_relative_to(REPO_DIR) else path


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    measured = {"started_utc": utc_now(), **git_state()}
    log(f"measuring {describe_measured(measured)}")
    info = machine_info(args.pg_url if "pg" in args.dbs + args.scale_dbs else None)
    if args.airflow == "on" and "load" in args.parts:
        info["versions"]["apache-airflow"] = airflow_ref.airflow_version(Path(args.airflow_dir))
    recorded_args = dict(vars(args), json_out=repo_relative(args.json_out))
    result = {"measured": measured, "args": recorded_args, "info": info, "rows": [], "scale": []}
    log(f"machine: {info['nproc']} CPUs, {info.get('mem_total_gib')} GiB, {info['cpu_model']}; "
        f"load average at start {info.get('loadavg_at_start')}")
    out_path = Path(args.json_out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with temp_dir("taskstore_bench_logs_") as log_dir, ExitStack() as stack:
            if "load" in args.parts:
                floor = None
                if args.floor == "on":
                    floor = start_floor(args, log_dir)
                    stack.callback(floor.server.stop)
                floor_done: set = set()
                for db in args.dbs:
                    with temp_dir() as instance, ExitStack() as db_stack:
                        if db == "sqlite":
                            url = f"sqlite:///{instance / 'bench.db'}"
                        else:
                            url = f"{args.pg_url.rstrip('/')}/{db_stack.enter_context(pg_database(args.pg_url))}"
                        targets = start_ours(db, url, args, log_dir, instance, db_stack)
                        if args.airflow == "on":
                            targets.append(start_airflow(db, args, log_dir, db_stack))
                        result["rows"] += measure(targets, floor, args, floor_done)
                if floor is not None:
                    floor.server.stop()
            if "scale" in args.parts:
                import scale

                for db in args.scale_dbs:
                    result["scale"].append(scale.run_scale(db, args, log_dir))
            if "purge" in args.parts:
                import scale

                for db in args.scale_dbs:
                    result["scale"].append(scale.run_purge(db, args, log_dir))
    finally:
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        measured["finished_utc"] = utc_now()
        out_path.write_text(json.dumps(result, indent=1, default=str))
    print(f"# Task Store benchmark ({measured['started_utc']} – {measured['finished_utc']}, "
          f"{result['elapsed_s']:.0f} s)\n")
    print(f"Measured: {describe_measured(measured)}"
          + (f"; commit {measured['commit_date']}: {measured['subject']}" if measured.get("subject") else "") + "\n")
    if measured.get("dirty"):
        print("Uncommitted changes in the tree (part of what was measured): "
              + ", ".join(measured["dirty_paths"][:20]) + (" …" if len(measured["dirty_paths"]) > 20 else "") + "\n")
    v = info["versions"]
    print(f"Machine: {info['nproc']} CPUs ({info['cpu_model']}), {info.get('mem_total_gib')} GiB; "
          f"Python {info['python']}; " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + "\n")
    airflow = f"Airflow api-server -w {args.airflow_workers}" if args.airflow == "on" else "no Airflow"
    print(f"Settings: gunicorn gthread {args.workers} workers × {args.threads} threads (ours and floor), "
          f"{airflow}; wrk -t{args.wrk_threads}, {args.duration:g} s per cell "
          f"after {args.warmup:g} s warmup, --timeout 30s; errors = non-expected status + socket errors.\n")
    if result["rows"]:
        print(load_tables(result["rows"], args.dbs))
        print(target_checks(result["rows"], args.dbs))
    if result["scale"]:
        import scale

        print(scale.tables(result["scale"]))
    print(f"Raw results: {repo_relative(str(out_path))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
