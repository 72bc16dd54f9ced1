#!/usr/bin/env python3
"""Task Store benchmark: one command, prints tables (see bench/RESULTS.md).

Run from the repository root with the project's virtualenv (``taskstore`` is taken from it):

    python bench/run.py --airflow-baseline-dir DIR        # load matrix (~13 min here) + scale part (~9 min)
    python bench/run.py --quick --airflow off             # a short smoke: SQLite, c=8, 3 s cells, no scale part
    python bench/run.py --parts load --dbs sqlite,pg --conc 8,32 --ops put,get --airflow off --floor on --duration 5
                                                          # re-measure GET/PUT at c=8/32 on both databases, no Airflow
    python bench/run.py --parts load --conc 8,32 --servers granian,gunicorn --airflow off
                                                          # ours and the floor under each HTTP server, side by side

Part "load": the worker API under wrk (PUT distinct keys, PUT one hot key, GET, DELETE, clear, a mixed
worker session, an asset's PUT and GET) at each concurrency against ``taskstore serve`` on SQLite and
PostgreSQL, the floor (a constant-JSON Flask endpoint with the same workers, threads and server
settings, bench/floor_app.py) and, with ``--airflow on``, Apache Airflow 3.3.2's execution API with
the same wrk script and settings.

``--servers granian,gunicorn`` (default: granian, the server ``taskstore serve`` uses by default)
measures ours and the floor under each HTTP server named. All of a database's servers run at once,
each on its own throw-away database (so one server's PUTs do not grow the table the other reads),
and only the one under wrk is busy. The order is interleaved so every server sees about the same
machine: per concurrency, the floor under each server back to back (once per run, with the first
database), then per op ours under each server back to back, then Airflow. Every row records its
HTTP server (``http_server``) and the tables name it.

After the load tables comes the round-3 target table, one row per target, database and concurrency
(8 and 32) measured: worker GET ≥ 50 % of the floor's req/s on SQLite (≥ 35 % on PostgreSQL), PUT of
distinct keys ≥ 30 % (≥ 25 %), p99 ≤ 25 ms at 32 connections for GET and PUT, ≥ 10× Airflow's req/s
on every cell Airflow was measured on, and ≤ 120 MB resident per process (peak VmHWM of any of the
server's processes). Ours is judged under granian (the default server; the first one listed if
granian was not measured) against the fastest floor of the run, whichever server that was; ours
under the other servers is shown beside it for information, as are the asset PUT and GET.
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
from webapp.serving import SERVERS as HTTP_SERVERS

OPS_ORDER = ["put", "delete", "put_hot", "get", "mixed", "clear", "asset_put", "asset_get", "service_put",
             "service_get"]
# Ours only: Airflow's asset routes need an asset in its metadata database, and it has no service API.
OURS_ONLY = ("asset_", "service_")
BENCH_ASSET = "bench/events 2026?#"  # asset keys by name, as Airflow's client sends them (ours only)
EXPECTED = {"put": {204}, "put_hot": {204}, "get": {200}, "delete": {204}, "clear": {204},
            "mixed": {200, 204}, "floor": {200}, "asset_put": {204}, "asset_get": {200}, "service_put": {204},
            "service_get": {200}}
OP_LABEL = {"put": "PUT distinct", "put_hot": "PUT hot key", "get": "GET", "delete": "DELETE",
            "clear": "clear", "mixed": "mixed session", "floor": "floor GET", "asset_put": "asset PUT distinct",
            "asset_get": "asset GET", "service_put": "service PUT distinct", "service_get": "service GET"}
DEFAULT_SERVER = next(iter(HTTP_SERVERS))  # taskstore serve's default
SERVER_KIND = {"granian": "Rust HTTP, WSGI in blocking threads", "gunicorn": "gthread"}
# Ports, offsets from --port: Airflow +1 and the scale part +2/+3 keep theirs.
OURS_PORT_OFFSET = {"granian": 0, "gunicorn": 4}
FLOOR_PORT_OFFSET = {"granian": 9, "gunicorn": 10}
SETTINGS: dict[str, str] = {}  # --setting: extra TASKSTORE_* variables for our server


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="load,scale", help="load,scale,purge (default load,scale)")
    ap.add_argument("--dbs", default="sqlite,pg", help="sqlite,pg")
    ap.add_argument("--conc", default="1,8,32", help="concurrent connections, comma-separated")
    ap.add_argument("--ops", default=",".join(OPS_ORDER),
                    help="put,delete,put_hot,get,mixed,clear,asset_put,asset_get,service_put,service_get "
                         "(asset_*, service_*: ours only; service_*: keys by identity with an API key)")
    ap.add_argument("--duration", type=float, default=6, help="seconds per timed cell (wrk -d)")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of untimed warmup before each cell")
    ap.add_argument("--servers", default=DEFAULT_SERVER,
                    help="HTTP servers to run ours and the floor under, comma-separated: granian,gunicorn "
                         f"(default {DEFAULT_SERVER})")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (ours and the floor, every server)")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker process")
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
    ap.add_argument("--port", type=int, default=18081,
                    help="ours under granian; under gunicorn +4, the floors +9 (granian) and +10 (gunicorn), "
                         "Airflow +1")
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
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in args.servers if s not in HTTP_SERVERS]
    if unknown or not args.servers:
        ap.error(f"--servers: {','.join(unknown) or '(none)'} is not one of {','.join(HTTP_SERVERS)}")
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
    def __init__(self, label: str, server, token: str, ti: str, pg: tuple[str, str] | None = None,
                 http_server: str | None = None, db: str | None = None):
        self.label, self.server, self.token, self.ti = label, server, token, ti
        self.pg = pg  # (server URL, database name): count the PostgreSQL backends' CPU too
        self.http_server = http_server  # granian or gunicorn; None for Airflow (its own api-server)
        self.db = db  # sqlite or pg; None for the floor
        self.service_key, self.service_path = "", ""  # ours: an API key and the bench TI's keys by identity
        self.put_issued: dict[int, int] = {}
        self.tags: dict[int, str] = {}


def run_cell(t: Target, op: str, conc: int, args) -> dict:
    url = t.server.base_url
    tag = t.tags.setdefault(conc, f"c{conc}-{secrets.token_hex(3)}")
    kw = dict(token=t.token, ti=t.ti, threads=args.wrk_threads, op=op, conc=conc, asset=BENCH_ASSET)
    if op.startswith("service_"):
        kw.update(token=t.service_key, service=t.service_path)
    seeded = -1
    if op in ("put", "asset_put", "service_put"):
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
    elif op == "service_get":
        status, body = http("PUT", f"{url}{t.service_path}s{tag}-hot", token=t.service_key,
                            body={"value_json": '{"seed": "hot"}', "expires_at": None})
        if status != 204:
            raise RuntimeError(f"{t.label}: seeding the service key answered {status}: {body[:200]!r}")
        wrk(url, **kw, duration=args.warmup, prefix=f"s{tag}")
    else:  # put_hot, clear, floor
        wrk(url, **kw, duration=args.warmup, prefix=f"h{tag}")
    prefix = {"put": f"p{tag}", "delete": f"p{tag}", "put_hot": f"h{tag}", "get": f"h{tag}",
              "mixed": f"m{tag}", "clear": f"h{tag}", "floor": "f", "asset_put": f"p{tag}", "asset_get": f"a{tag}",
              "service_put": f"p{tag}", "service_get": f"s{tag}"}[op]
    cpu0 = cpu_seconds(t.server.pids())
    db0 = pg_backend_cpu(*t.pg) if t.pg else None
    r = wrk(url, **kw, duration=args.duration, prefix=prefix, seeded=seeded)
    r["server_cpu_s"] = round(cpu_seconds(t.server.pids()) - cpu0, 2)
    if db0 is not None:
        db1 = pg_backend_cpu(*t.pg)
        r["db_cpu_s"] = round(sum(v - db0.get(pid, 0.0) for pid, v in db1.items()), 2)
    if op == "put":
        t.put_issued[conc] = r["issued"]
    r.update(server=t.label, http_server=t.http_server, db=t.db, op=op, conc=conc,
             errors=count_errors(r, EXPECTED[op]), memory=t.server.memory())
    log(f"{t.label:20s} {op:9s} c={conc:<3d} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f}  "
        f"p99 {r['p99_ms']:8.2f} ms  errors {r['errors']}  statuses {r['statuses']}"
        + (f"  misses {r['misses']}" if op == "delete" else "")
        + f"  busy {r.get('machine_busy_pct')}%")
    return r


def measure(targets: list[Target], floors: list[Target], args, floor_done: set) -> list[dict]:
    """Per concurrency: the floor under each server (unless measured with an earlier database), then
    per op every target (ours under each server, then Airflow) back to back."""
    rows = []
    for conc in args.conc:
        if floors and conc not in floor_done:
            rows += [run_cell(floor, "floor", conc, args) for floor in floors]
            floor_done.add(conc)
        for op in args.ops:
            for t in targets:
                if op.startswith(OURS_ONLY) and t.label.startswith("airflow"):
                    continue
                rows.append(run_cell(t, op, conc, args))
    return rows


def start_floor(http_server: str, args, log_dir: Path) -> Target:
    port = args.port + FLOOR_PORT_OFFSET[http_server]
    cmd = [sys.executable, str(BENCH_DIR / "floor_app.py"), "--server", http_server, "--port", str(port),
           "--workers", str(args.workers), "--threads", str(args.threads)]
    label = f"floor-{http_server}"
    server = start_process(label, cmd, dict(os.environ), log_dir / f"{label}.log", f"http://127.0.0.1:{port}",
                           "/floor")
    return Target(label, server, "", "", http_server=http_server)


def start_ours(db: str, http_server: str, args, log_dir: Path, stack: ExitStack) -> Target:
    """Ours under one HTTP server, on a throw-away database of its own (stopped, and the database
    dropped, when ``stack`` closes)."""
    instance = stack.enter_context(temp_dir())
    if db == "sqlite":
        url = f"sqlite:///{instance / 'bench.db'}"
    else:
        url = f"{args.pg_url.rstrip('/')}/{stack.enter_context(pg_database(args.pg_url))}"
    env = taskstore_env(url, str(instance), **SETTINGS)
    api_key = prepare_taskstore_db(env)
    label = f"ours-{db}-{http_server}"
    server = start_taskstore(env, args.port + OURS_PORT_OFFSET[http_server], args.workers, args.threads,
                             log_dir / f"taskstore-{db}-{http_server}.log", server=http_server)
    stack.callback(server.stop)  # before the temporary directory and database go (callbacks run last-in first)
    run_id = f"bench_{secrets.token_hex(4)}"
    ti, token = create_bench_ti(server, api_key, env, run_id=run_id)
    status, body = http("POST", f"{server.base_url}/api/v2/assets", token=api_key,
                        body={"name": BENCH_ASSET, "uri": "bench://events"})
    if status != 201:
        raise RuntimeError(f"registering the bench asset answered {status}: {body[:300]!r}")
    pg = (args.pg_url, url.rsplit("/", 1)[1]) if db == "pg" else None
    target = Target(label, server, token, ti, pg, http_server=http_server, db=db)
    target.service_key, target.service_path = api_key, f"/api/v2/service/tasks/bench/{run_id}/t1/keys/"
    return target


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
    return Target(f"airflow-{db}", server, prep["token"], prep["ti_id"], pg, db=db)


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


def db_name(db: str) -> str:
    return "SQLite" if db == "sqlite" else "PostgreSQL"


def by_server(rows: list[dict]) -> dict[str, dict[tuple[str, int], dict]]:
    """Each server's cells, keyed (op, conc); a cell measured twice counts as its last run."""
    cells: dict[str, dict[tuple[str, int], dict]] = {}
    for r in rows:
        cells.setdefault(r["server"], {})[(r["op"], r["conc"])] = r
    return cells


def load_tables(rows: list[dict], dbs: list[str], servers: list[str]) -> str:
    out = []
    cells = by_server(rows)
    floors = {s: {c: r for (_, c), r in cells.get(f"floor-{s}", {}).items()} for s in servers}
    if any(floors.values()):
        out.append("### Floor: constant JSON from Flask, same workers, threads and settings, under each server\n")
        out.append("| server | conc | req/s | p50 ms | p99 ms | errors | CPU ms/req | max RSS/proc MB |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for c in sorted({c for f in floors.values() for c in f}):
            for s in servers:
                if r := floors[s].get(c):
                    out.append(f"| {s} | {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                               f"{r['errors']} | {cpu_per_request(r)} | {fmt(max_proc(r['memory'], 'rss_mb'))} |")
        out.append("")
    for db in dbs:
        ours = {s: cells.get(f"ours-{db}-{s}", {}) for s in servers}
        af = cells.get(f"airflow-{db}", {})
        keys = sorted({k for o in ours.values() for k in o}, key=lambda k: (OPS_ORDER.index(k[0]), k[1]))
        if not keys:
            continue
        out.append(f"### Worker API on {db_name(db)}, under {' and '.join(servers)}\n")
        out.append("| op | conc | server | req/s | p50 ms | p99 ms | errors | CPU ms/req app (+DB) "
                   "| max RSS/proc MB (HWM) | Airflow req/s | Airflow p99 ms | Airflow errors "
                   "| Airflow CPU ms/req app (+DB) | ours/Airflow req/s | ours/floor req/s (same server) |")
        out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for op, c in keys:
            a = af.get((op, c))
            for s in servers:
                r = ours[s].get((op, c))
                if r is None:
                    continue
                f = floors[s].get(c)
                out.append(
                    f"| {OP_LABEL[op]} | {c} | {s} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                    f"{r['errors']} | {cpu_per_request(r)} | "
                    f"{fmt(max_proc(r['memory'], 'rss_mb'))} ({fmt(max_proc(r['memory'], 'hwm_mb'))}) | "
                    f"{fmt(a and round(a['rps']))} | {fmt(a and a['p99_ms'], 1)} | {fmt(a and a['errors'])} | "
                    f"{cpu_per_request(a) if a else '–'} | "
                    f"{fmt(a and r['rps'] / a['rps'], 2)}{'×' if a else ''} | {fmt(f and r['rps'] / f['rps'], 2)} |")
        out.append("")
    if rows:
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


# Round 3's targets: share of the floor's req/s by op and database (ours under the default server
# against the fastest floor of the run), p99 at 32 connections, the margin over Airflow, and memory.
FLOOR_SHARE = {("get", "sqlite"): 0.50, ("get", "pg"): 0.35, ("put", "sqlite"): 0.30, ("put", "pg"): 0.25}
INFO_BESIDE = {"get": ("asset_get", "service_get"), "put": ("asset_put", "service_put")}  # beside GET/PUT, no target
TARGET_CONC = (8, 32)
P99_CONC, P99_MS = 32, 25.0
AIRFLOW_TIMES = 10
RSS_MB = 120


def peak_process_mb(cells: dict[tuple[str, int], dict], conc: int) -> float | None:
    """The largest peak resident size (VmHWM) of any of a server's processes, read after its cells at conc."""
    return max((m["hwm_mb"] for (_, c), r in cells.items() if c == conc for m in r["memory"]), default=None)


def target_checks(rows: list[dict], dbs: list[str], servers: list[str]) -> str:
    """The round-3 target table: one row per target, database and concurrency measured."""
    cells = by_server(rows)
    judged = DEFAULT_SERVER if DEFAULT_SERVER in servers else servers[0]
    others = [s for s in servers if s != judged]
    fastest_floor: dict[int, dict] = {}
    for s in servers:
        for (_, c), r in cells.get(f"floor-{s}", {}).items():
            if c not in fastest_floor or r["rps"] > fastest_floor[c]["rps"]:
                fastest_floor[c] = r

    def errors_note(r: dict) -> str:
        return f", **{r['errors']} errors**" if r["errors"] else ""

    def share(r: dict | None, c: int) -> str:
        if r is None:
            return "–"
        f = fastest_floor.get(c)
        if f is None:
            return f"{r['rps']:.0f} req/s (no floor measured){errors_note(r)}"
        return f"{100 * r['rps'] / f['rps']:.0f} % ({r['rps']:.0f} req/s){errors_note(r)}"

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    lines = [f"### Round-3 targets: ours under {judged}, against the fastest floor of this run\n"]
    for c, f in sorted(fastest_floor.items()):
        lines.append(f"- fastest floor at {c} connections: {f['http_server']}, {f['rps']:.0f} req/s")
    if fastest_floor:
        lines.append("")
    info_head = f"ours under {', '.join(others)} (info)" if others else "info"
    lines += [f"| target | db | conc | measured | threshold | result | {info_head} |",
              "|---|---|---:|---|---|---|---|"]
    for db in dbs:
        ours = {s: cells.get(f"ours-{db}-{s}", {}) for s in servers}
        af = cells.get(f"airflow-{db}", {})
        mine = ours[judged]
        concs = [c for c in TARGET_CONC if any(k[1] == c for o in ours.values() for k in o)]
        if not concs:
            continue
        name = db_name(db)
        for op in ("get", "put"):
            threshold = FLOOR_SHARE[(op, db)]
            for c in concs:
                r = mine.get((op, c))
                if r is None and not any((op, c) in ours[s] for s in others):
                    continue
                result = "not measured" if r is None else (
                    "no floor" if c not in fastest_floor else
                    met(r["rps"] >= threshold * fastest_floor[c]["rps"] and not r["errors"]))
                info = "; ".join(f"{s}: {share(ours[s].get((op, c)), c)}" for s in others) or "–"
                lines.append(f"| {OP_LABEL[op]} req/s vs floor | {name} | {c} | {share(r, c)} | "
                             f"≥ {100 * threshold:.0f} % | {result} | {info} |")
            for beside in INFO_BESIDE[op]:
                for c in concs:
                    if not any((beside, c) in ours[s] for s in servers):
                        continue
                    info = "; ".join(f"{s}: {share(ours[s].get((beside, c)), c)}" for s in others) or "–"
                    lines.append(f"| {OP_LABEL[beside]} req/s vs floor | {name} | {c} | "
                                 f"{share(mine.get((beside, c)), c)} | (info; {OP_LABEL[op]}'s: "
                                 f"≥ {100 * threshold:.0f} %) | info | {info} |")
        if P99_CONC in concs:
            for op in ("get", "put"):
                r = mine.get((op, P99_CONC))
                if r is None and not any((op, P99_CONC) in ours[s] for s in others):
                    continue
                info = "; ".join(f"{s}: {fmt(ours[s].get((op, P99_CONC), {}).get('p99_ms'))} ms"
                                 for s in others) or "–"
                measured = "–" if r is None else f"{r['p99_ms']:.1f} ms{errors_note(r)}"
                result = "not measured" if r is None else met(r["p99_ms"] <= P99_MS)
                lines.append(f"| {OP_LABEL[op]} p99 | {name} | {P99_CONC} | {measured} | ≤ {P99_MS:g} ms | "
                             f"{result} | {info} |")
        for c in concs:
            ratios = [(op, mine[(op, cc)]["rps"] / a["rps"]) for (op, cc), a in af.items()
                      if cc == c and (op, cc) in mine and a["rps"] > 0]
            if ratios:
                op, worst = min(ratios, key=lambda kv: kv[1])
                measured = f"worst of {len(ratios)} ops: {OP_LABEL[op]} {worst:.1f}×"
                result = met(worst >= AIRFLOW_TIMES)
            else:
                measured, result = "not measured", "not measured"
            lines.append(f"| req/s vs Airflow 3.3.2's execution API | {name} | {c} | {measured} | "
                         f"≥ {AIRFLOW_TIMES}× on every cell | {result} | – |")
        for c in concs:
            hwm = peak_process_mb(mine, c)
            info = "; ".join(f"{s}: {fmt(peak_process_mb(ours[s], c), 0)} MB" for s in others) or "–"
            lines.append(f"| resident memory per process (peak VmHWM, largest process) | {name} | {c} | "
                         f"{fmt(hwm, 0)} MB | ≤ {RSS_MB} MB | "
                         f"{'not measured' if hwm is None else met(hwm <= RSS_MB)} | {info} |")
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
                floors = []
                if args.floor == "on":
                    for http_server in args.servers:
                        floors.append(start_floor(http_server, args, log_dir))
                        stack.callback(floors[-1].server.stop)
                floor_done: set = set()
                for db in args.dbs:
                    with ExitStack() as db_stack:
                        targets = [start_ours(db, http_server, args, log_dir, db_stack)
                                   for http_server in args.servers]
                        if args.airflow == "on":
                            targets.append(start_airflow(db, args, log_dir, db_stack))
                        result["rows"] += measure(targets, floors, args, floor_done)
                for floor in floors:  # the scale part runs without them
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
    servers = ", ".join(f"{s} ({SERVER_KIND[s]})" for s in args.servers)
    print(f"Settings: {args.workers} workers × {args.threads} threads (ours and floor alike) under {servers}, "
          f"{airflow}; wrk -t{args.wrk_threads}, {args.duration:g} s per cell "
          f"after {args.warmup:g} s warmup, --timeout 30s; errors = non-expected status + socket errors.\n")
    if result["rows"]:
        print(load_tables(result["rows"], args.dbs, args.servers))
        print(target_checks(result["rows"], args.dbs, args.servers))
    if result["scale"]:
        import scale

        print(scale.tables(result["scale"]))
    print(f"Raw results: {repo_relative(str(out_path))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
