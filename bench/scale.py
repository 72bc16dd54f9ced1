"""Part 3 of the benchmark: the UI and admin API at scale, and garbage collection under write load.

    python bench/run.py --parts scale [--scale-dbs sqlite,pg] [--scale-runs 100000 --scale-keys 1000000]

1. A throw-away database (SQLite file / PostgreSQL taskstore_bench_<random>), migrated with
   ``taskstore db upgrade``, filled by bench/generate.py (bulk INSERT / COPY).
2. Server-side time of each page, in-process with Flask's test client (no network, no browser):
   logged in through the real login form as an admin user made with ``taskstore users create``;
   one untimed request, then the median of ``--scale-repeat`` requests. The admin API's listing
   endpoints are timed the same way with an admin API key.
3. ``taskstore clean`` of ``--scale-keys`` expired rows while wrk PUTs through ``taskstore serve``:
   the workers' p99 idle (a wrk run just before) and during the clean (a wrk run started 1 s before
   the clean and stopped by SIGINT when it ends).
"""

from __future__ import annotations

import re
import signal
import statistics
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

from common import (
    LUA,
    SECRET_KEY,
    TASKSTORE,
    count_errors,
    create_bench_ti,
    log,
    parse_wrk,
    pg_database,
    prepare_taskstore_db,
    run,
    start_taskstore,
    taskstore_env,
    temp_dir,
    wrk,
)

PAGE_TARGET_MS = 150
ADMIN_USER, ADMIN_PASSWORD = "benchadmin", "bench-password-123"


def _q(value: str) -> str:
    return quote(value, safe="")


def time_requests(client, path: str, repeat: int, headers: dict | None = None) -> dict:
    client.get(path, headers=headers)  # untimed: caches, connections, template compilation
    times, status, size = [], None, 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        resp = client.get(path, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        status, size = resp.status_code, len(resp.data)
    return {"path": path, "status": status, "bytes": size, "median_ms": statistics.median(times),
            "min_ms": min(times), "max_ms": max(times), "n": repeat}


def login(app, client) -> bool:
    page = client.get("/login")
    match = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data) or \
        re.search(rb'value="([^"]+)"[^>]*name="csrf_token"', page.data)
    if not match:
        return False
    resp = client.post("/login", data={"csrf_token": match.group(1).decode(), "username": ADMIN_USER,
                                       "password": ADMIN_PASSWORD})
    return resp.status_code in (302, 303) and "/login" not in resp.headers.get("Location", "")


def time_pages(url: str, instance: Path, info: dict, api_key: str, repeat: int) -> dict:
    from webapp import create_app

    app = create_app({"database_url": url, "secret_key": SECRET_KEY}, instance_path=str(instance))
    client = app.test_client()
    if not login(app, client):
        raise SystemExit("logging in through the login form failed")
    big = info["big_dag"]
    wide, sample, ti = info["wide_run"], info["sample_run"], info["big_ti"]
    run_path = f"/dags/{_q(big)}/runs/{_q(wide['run_id'])}"
    ui = [
        ("DAG list", "/"),
        ("DAG runs, first page", f"/dags/{_q(big)}"),
        ("DAG runs, deep page (90% down)", f"/dags/{_q(big)}?before={info['deep_before_id']}"),
        ("run's task instances (3 TIs)", f"/dags/{_q(big)}/runs/{_q(sample['run_id'])}"),
        (f"run's task instances ({wide['task_instances']} TIs, first page)", run_path),
        ("TI with 1,000 keys, first page", f"{run_path}/tasks/{ti['task_id']}"),
        ("TI with 1,000 keys, last page", f"{run_path}/tasks/{ti['task_id']}?offset=900"),
    ]
    ui += [
        ("key search (/search?q=part/0099)", "/search?q=part%2F0099"),
        # in 2 of every run's 10 keys: about 200,000 matches, counted up to the cap
        ("key search, common word (/search?q=checkpoint)", "/search?q=checkpoint"),
        (f"key search, common word, one DAG (/search?q=checkpoint&dag_id={big})",
         f"/search?q=checkpoint&dag_id={_q(big)}"),
    ]
    api_base = f"/api/v2/dags/{_q(big)}/dagRuns"
    api = [
        ("GET /api/v2/dags", "/api/v2/dags"),
        ("dagRuns, first 100", f"{api_base}?limit=100"),
        ("dagRuns, offset 90%", f"{api_base}?limit=100&offset={info['deep_offset']}"),
        ("taskInstances of the wide run", f"{api_base}/{_q(wide['run_id'])}/taskInstances?limit=100"),
        ("state-store of the 1,000-key TI, limit 100",
         f"{api_base}/{_q(wide['run_id'])}/taskInstances/{ti['task_id']}/state-store?limit=100"),
        ("state-store of the 1,000-key TI, limit 1000",
         f"{api_base}/{_q(wide['run_id'])}/taskInstances/{ti['task_id']}/state-store?limit=1000"),
    ]
    out = {"ui": [], "api": []}
    for label, path in ui:
        r = time_requests(client, path, repeat)
        r["label"] = label
        out["ui"].append(r)
        log(f"page {label:45s} {r['median_ms']:8.1f} ms median  (status {r['status']}, {r['bytes']} bytes)")
    auth = {"Authorization": f"Bearer {api_key}"}
    for label, path in api:
        r = time_requests(client, path, repeat, headers=auth)
        r["label"] = label
        out["api"].append(r)
        log(f"api  {label:45s} {r['median_ms']:8.1f} ms median  (status {r['status']}, {r['bytes']} bytes)")
    with app.app_context():
        from webapp.extensions import db

        db.session.remove()
        db.engine.dispose()
    return out


def expire_generated(url: str, same_expiry: bool = False) -> tuple[int, float]:
    """Make every generated key expired; returns (rows, seconds).

    By default the expiry times are spread over the past day (one second apart by row id), as
    keys written at different times expire at different times. ``same_expiry`` gives them all
    one timestamp (keys written in one go with one computed expiry): the worst case for a
    cleanup that orders by (expires_at, id)."""
    from sqlalchemy import create_engine, text

    t0 = time.monotonic()
    engine = create_engine(url)
    sqlite = url.startswith("sqlite")
    if same_expiry:
        value = ("strftime('%Y-%m-%d %H:%M:%S', 'now', '-1 hour') || '.000000'" if sqlite
                 else "(now() AT TIME ZONE 'utc') - interval '1 hour'")
    else:
        value = ("strftime('%Y-%m-%d %H:%M:%S', 'now', '-1 hour', '-' || (id % 86400) || ' seconds') || '.000000'"
                 if sqlite else "(now() AT TIME ZONE 'utc') - interval '1 hour' - (id % 86400) * interval '1 second'")
    with engine.begin() as conn:
        rows = conn.execute(text(f"UPDATE task_state SET expires_at = {value} "
                                 "WHERE dag_id LIKE 'gen\\_dag\\_%' ESCAPE '\\'")).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE task_state" if not sqlite else "ANALYZE"))
    engine.dispose()
    return rows, time.monotonic() - t0


def _command_under_load(server, token: str, ti: str, conc: int, command: list[str], env: dict) -> dict:
    """Run ``command`` while wrk PUTs at ``conc`` connections (started 1 s before, stopped by
    SIGINT when the command ends): the command's time and output, and the workers' figures."""
    wrk_env = dict(env, OP="put", TOKEN=token, TI=ti, BASE="/execution", PREFIX="during", START="0", SEEDED="-1")
    bound = 3600  # a clean of 10M rows takes minutes; wrk is stopped by SIGINT when the command ends
    load = subprocess.Popen(["wrk", "-t1", f"-c{conc}", f"-d{bound}s", "--timeout", "30s", "-s", str(LUA),
                             server.base_url], env=wrk_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        time.sleep(1)
        t0 = time.monotonic()
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=bound - 5)
        seconds = time.monotonic() - t0
    finally:
        if load.poll() is None:
            load.send_signal(signal.SIGINT)
        try:
            stdout, stderr = load.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            load.kill()
            stdout, stderr = load.communicate()
    during = parse_wrk(stdout, stderr)
    during["errors"] = count_errors(during, {204})
    return {"seconds": round(seconds, 1), "exit": out.returncode,
            "message": (out.stdout.strip().splitlines() or [""])[-1], "stderr": out.stderr[-2000:],
            "during": _brief(during)}


def _idle_puts(server, token: str, ti: str, conc: int, seconds: float) -> dict:
    wrk(server.base_url, op="put", conc=conc, duration=1, token=token, ti=ti, prefix="warm")
    idle = wrk(server.base_url, op="put", conc=conc, duration=seconds, token=token, ti=ti, prefix="idle")
    idle["errors"] = count_errors(idle, {204})
    return _brief(idle)


def _count(url: str, sql: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    engine.dispose()
    return value


def clean_under_load(url: str, env: dict, args, log_dir: Path, label: str) -> dict:
    api_key = env.pop("_API_KEY")
    server = start_taskstore(env, args.port + 2, args.workers, args.threads, log_dir / f"taskstore-scale-{label}.log")
    try:
        ti, token = create_bench_ti(server, api_key, env)
        conc = args.clean_conc
        idle = _idle_puts(server, token, ti, conc, args.clean_idle_seconds)
        log(f"clean[{label}]: idle PUT c={conc} {idle['rps']:.0f} req/s p99 {idle['p99_ms']:.1f} ms")
        expired, expire_s = expire_generated(url, args.clean_same_expiry)
        log(f"clean[{label}]: {expired} rows made expired in {expire_s:.1f} s; starting wrk + taskstore clean")
        clean_env = env
        if args.clean_batch_size:
            clean_env = dict(env, TASKSTORE_CLEANUP_BATCH_SIZE=str(args.clean_batch_size))
        done = _command_under_load(server, token, ti, conc, [TASKSTORE, "clean"], clean_env)
        during = done["during"]
        log(f"clean[{label}]: {done['message']!r} in {done['seconds']:.1f} s (exit {done['exit']}); during: "
            f"{during['rps']:.0f} req/s p99 {during['p99_ms']:.1f} ms errors {during['errors']}")
        left = _count(url, "SELECT count(*) FROM task_state WHERE dag_id LIKE 'gen\\_dag\\_%' ESCAPE '\\'")
        return {"same_expiry": args.clean_same_expiry, "expired_rows": expired, "expire_setup_s": round(expire_s, 1),
                "clean_s": done["seconds"], "clean_exit": done["exit"], "clean_message": done["message"],
                "clean_stderr": done["stderr"], "rows_left": left, "conc": conc, "idle": idle, "during": during}
    finally:
        server.stop()


def _runs_and_keys(url: str) -> dict:
    generated = "WHERE dag_id LIKE 'gen\\_dag\\_%' ESCAPE '\\'"  # not the bench task instance's PUTs
    return {"runs": _count(url, f"SELECT count(*) FROM dag_run {generated}"),
            "keys": _count(url, f"SELECT count(*) FROM task_state {generated}")}


def age_generated_keys(url: str) -> float:
    """Date each generated key's last change at its run's logical date, as if written while the
    run ran (the generator stamps them now, which would keep every run from being purged)."""
    from sqlalchemy import create_engine, text

    t0 = time.monotonic()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE task_state SET updated_at = (SELECT r.logical_date FROM dag_run r "
                          "WHERE r.id = task_state.dag_run_id) WHERE dag_id LIKE 'gen\\_dag\\_%' ESCAPE '\\'"))
    engine.dispose()
    return time.monotonic() - t0


def purge_under_load(url: str, env: dict, args, log_dir: Path, label: str) -> dict:
    """``taskstore clean --runs-older-than AGE`` on the generated runs (hourly, the oldest years
    back) while wrk PUTs: how long, how many runs and keys went, and the workers' p99."""
    api_key = env.pop("_API_KEY")
    age_s = age_generated_keys(url)
    server = start_taskstore(env, args.port + 3, args.workers, args.threads, log_dir / f"taskstore-purge-{label}.log")
    try:
        ti, token = create_bench_ti(server, api_key, env)
        conc = args.clean_conc
        before = _runs_and_keys(url)
        idle = _idle_puts(server, token, ti, conc, args.clean_idle_seconds)
        log(f"purge[{label}]: idle PUT c={conc} {idle['rps']:.0f} req/s p99 {idle['p99_ms']:.1f} ms")
        done = _command_under_load(server, token, ti, conc,
                                   [TASKSTORE, "clean", "--runs-older-than", args.purge_age], env)
        after = _runs_and_keys(url)
        during = done["during"]
        log(f"purge[{label}]: {done['message']!r} in {done['seconds']:.1f} s (exit {done['exit']}); during: "
            f"{during['rps']:.0f} req/s p99 {during['p99_ms']:.1f} ms errors {during['errors']}")
        return {"age": args.purge_age, "aging_setup_s": round(age_s, 1), "before": before, "after": after,
                "purge_s": done["seconds"], "purge_exit": done["exit"], "purge_message": done["message"],
                "purge_stderr": done["stderr"], "conc": conc, "idle": idle, "during": during}
    finally:
        server.stop()


def _brief(r: dict) -> dict:
    return {k: r.get(k) for k in ("requests", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "statuses",
                                  "duration_us")}


def _generated(db: str, args, instance: Path, stack: ExitStack) -> tuple[str, dict, dict]:
    """A throw-away database filled by the generator: its URL, the server env and what was loaded."""
    if db == "sqlite":
        url = f"sqlite:///{instance / 'scale.db'}"
    else:
        url = f"{args.pg_url.rstrip('/')}/{stack.enter_context(pg_database(args.pg_url, suffix='_scale'))}"
    env = taskstore_env(url, str(instance))
    env["_API_KEY"], info = _fill(db, url, env, args)
    return url, env, info


def _fill(db: str, url: str, env: dict, args) -> tuple[str, dict]:
    """Migrate an empty database, add the admin user the page timings log in as, and run the
    generator: an admin API key and what was loaded (with the migration's time)."""
    t0 = time.monotonic()
    api_key = prepare_taskstore_db(env)
    migrate_s = time.monotonic() - t0
    run([TASKSTORE, "users", "create", ADMIN_USER, "--role", "admin", "--password-stdin"], env=env,
        input=ADMIN_PASSWORD + "\n")
    import generate

    log(f"scale[{db}]: generating {args.scale_runs} runs / {args.scale_keys} keys into {url}")
    info = generate.generate(url, runs=args.scale_runs, keys=args.scale_keys)
    info["migrate_seconds"] = round(migrate_s, 1)
    log(f"scale[{db}]: loaded {info['rows']} in {info['load_seconds']} s (+ANALYZE {info['analyze_seconds']} s)")
    return api_key, info


def run_scale(db: str, args, log_dir: Path) -> dict:
    with temp_dir() as instance, ExitStack() as stack:
        url, env, info = _generated(db, args, instance, stack)
        pages = time_pages(url, instance, info, env["_API_KEY"], args.scale_repeat)
        clean = clean_under_load(url, env, args, log_dir, db)
        return {"db": db, "generate": info, "pages": pages, "clean": clean}


def run_purge(db: str, args, log_dir: Path) -> dict:
    with temp_dir() as instance, ExitStack() as stack:
        url, env, info = _generated(db, args, instance, stack)
        return {"db": db, "generate": info, "purge": purge_under_load(url, env, args, log_dir, db)}


def tables(results: list[dict]) -> str:
    out = []
    for res in results:
        db = "SQLite" if res["db"] == "sqlite" else "PostgreSQL"
        g = res["generate"]
        if "purge" in res:
            out.append(purge_table(db, g, res["purge"]))
            continue
        out.append(f"### UI and admin API at scale on {db}\n")
        out.append(f"{g['rows']['dag_run']:,} DAG runs ({g['big_dag_runs']:,} in {g['big_dag']}), "
                   f"{g['rows']['task_instance']:,} task instances, {g['rows']['task_state']:,} keys; generated in "
                   f"{g['load_seconds']} s. Median of {res['pages']['ui'][0]['n']} in-process requests "
                   "(Flask test client, admin logged in through the login form).\n")
        out.append("| page | median ms | min | max | status | KB | ≤ 150 ms |")
        out.append("|---|---:|---:|---:|---:|---:|---|")
        for kind in ("ui", "api"):
            for r in res["pages"][kind]:
                ok = "yes" if r["median_ms"] <= PAGE_TARGET_MS and r["status"] == 200 else "**no**"
                out.append(f"| {'UI' if kind == 'ui' else 'API'}: {r['label']} | {r['median_ms']:.1f} | "
                           f"{r['min_ms']:.1f} | {r['max_ms']:.1f} | {r['status']} | {r['bytes'] / 1024:.0f} | {ok} |")
        out.append("")
        c = res["clean"]
        i, d = c["idle"], c["during"]
        ratio = d["p99_ms"] / i["p99_ms"] if i["p99_ms"] else None
        spread = "all with one expiry time" if c.get("same_expiry") else "expiry times spread over a day"
        out.append(f"### `taskstore clean` of {c['expired_rows']:,} expired rows ({spread}) on {db} under PUT load "
                   f"(c={c['conc']})\n")
        out.append("| | req/s | p50 ms | p99 ms | max ms | errors |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for label, r in (("workers idle (no clean)", i), ("workers during clean", d)):
            out.append(f"| {label} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.0f} | "
                       f"{r['errors']} |")
        out.append("")
        # the 60 s goal is for a million rows; larger cleans report their rate instead
        goal = (f"target ≤ 60 s: {'yes' if c['clean_s'] <= 60 else '**no**'}" if c["expired_rows"] <= 1_000_000
                else f"{c['expired_rows'] / c['clean_s']:,.0f} rows/s" if c["clean_s"] else "")
        out.append(f"clean: {c['clean_s']} s ({goal}), "
                   f"exit {c['clean_exit']}, \"{c['clean_message']}\", {c['rows_left']} generated rows left; "
                   f"p99 during / idle = {ratio:.2f}× "
                   f"(target ≤ 2×: {'yes' if ratio is not None and ratio <= 2 else '**no**'})\n")
    return "\n".join(out)


def purge_table(db: str, g: dict, p: dict) -> str:
    i, d = p["idle"], p["during"]
    ratio = d["p99_ms"] / i["p99_ms"] if i["p99_ms"] else float("nan")
    rows = [f"### `taskstore clean --runs-older-than {p['age']}` on {db} under PUT load (c={p['conc']})\n",
            f"Generated {g['rows']['dag_run']:,} runs (hourly; the oldest years back), "
            f"{g['rows']['task_instance']:,} task instances, {g['rows']['task_state']:,} keys. "
            f"Generated rows before: {p['before']['runs']:,} runs / {p['before']['keys']:,} keys; after: "
            f"{p['after']['runs']:,} / {p['after']['keys']:,}.\n",
            "| | req/s | p50 ms | p99 ms | max ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    for label, r in (("workers idle", i), ("workers during the purge", d)):
        rows.append(f"| {label} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.0f} | "
                    f"{r['errors']} |")
    rows.append(f"\npurge: {p['purge_s']} s, exit {p['purge_exit']}, \"{p['purge_message']}\"; "
                f"p99 during / idle = {ratio:.2f}×\n")
    return "\n".join(rows)


# --- a kept database: generate once, time the pages before and after a change, then clean ---------


def _kept_url(db: str, args, work: Path, snapshot: bool = False) -> str:
    if db == "sqlite":
        return f"sqlite:///{work / ('scale-snapshot.db' if snapshot else 'scale.db')}"
    return f"{args.pg_url.rstrip('/')}/{_kept_pg_name(args, snapshot)}"


def _kept_pg_name(args, snapshot: bool = False) -> str:
    return f"taskstore_bench_kept_{args.scale_runs}" + ("_snapshot" if snapshot else "")


def _pg_admin(args, *statements: str) -> None:
    import psycopg

    from common import pg_admin_url

    with psycopg.connect(pg_admin_url(args.pg_url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _copy_database(db: str, args, work: Path, to_snapshot: bool) -> float:
    """Copy the kept database to its snapshot (or back): the clean deletes the keys the pages show."""
    import shutil
    import sqlite3

    t0 = time.monotonic()
    if db == "sqlite":
        src = work / ("scale.db" if to_snapshot else "scale-snapshot.db")
        dst = work / ("scale-snapshot.db" if to_snapshot else "scale.db")
        with sqlite3.connect(src) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for suffix in ("-wal", "-shm"):
            Path(f"{dst}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(src, dst)
    else:
        src, dst = _kept_pg_name(args, not to_snapshot), _kept_pg_name(args, to_snapshot)
        _pg_admin(args, f'DROP DATABASE IF EXISTS "{dst}" WITH (FORCE)', f'CREATE DATABASE "{dst}" TEMPLATE "{src}"')
    return time.monotonic() - t0


def _generate_kept(db: str, args, work: Path, instance: Path) -> dict:
    url = _kept_url(db, args, work)
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work / 'scale.db'}{suffix}").unlink(missing_ok=True)
    else:
        name = _kept_pg_name(args)
        _pg_admin(args, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    api_key, info = _fill(db, url, taskstore_env(url, str(instance)), args)
    return {"url": url, "api_key": api_key, "info": info}


def main(argv=None) -> int:
    """Steps on one kept database, each recorded into --out (JSON, updated after every step):

        python bench/scale.py --db sqlite --work-dir /tmp/scale10x --out bench/out/scale10x-sqlite.json \\
            --steps generate,pages,snapshot,clean -- --scale-runs 1000000 --scale-keys 10000000

    generate: a fresh database (SQLite file in --work-dir / PostgreSQL taskstore_bench_kept_<runs>),
    migrated and filled by bench/generate.py. pages: the page timings, stored under --label.
    snapshot: a copy of the database (the clean deletes the keys the pages show). restore: the copy
    back, to time the pages again after a change. clean: clean_under_load. drop: remove both.
    Arguments after ``--`` are bench/run.py's (--scale-runs, --scale-repeat, --clean-conc, ...)."""
    import argparse
    import json

    import run as bench_run
    from common import git_state, utc_now

    ap = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "pg"], required=True)
    ap.add_argument("--work-dir", required=True, help="kept between invocations: database, state, logs")
    ap.add_argument("--out", required=True, help="results JSON, updated after every step")
    ap.add_argument("--steps", default="generate,pages,snapshot,clean",
                    help="generate,pages,snapshot,restore,clean,drop")
    ap.add_argument("--label", default="before", help="name of this pages measurement")
    own, rest = ap.parse_known_args(argv)
    args = bench_run.parse_args([a for a in rest if a != "--"] + ["--airflow", "off"])
    work = Path(own.work_dir) / own.db
    instance, logs = work / "instance", work / "logs"
    for path in (instance, logs):
        path.mkdir(parents=True, exist_ok=True)
    state_path, out_path = work / "state.json", Path(own.out)
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    result = json.loads(out_path.read_text()) if out_path.exists() else {"db": own.db, "steps": []}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for step in own.steps.split(","):
        started, t0 = utc_now(), time.monotonic()
        record: dict = {"step": step, "started_utc": started, "measured": git_state()}
        if step == "generate":
            state = _generate_kept(own.db, args, work, instance)
            state_path.write_text(json.dumps(state))
            result = {"db": own.db, "steps": [], "generate": state["info"], "pages_by_label": {}}
        elif step == "pages":
            pages = time_pages(state["url"], instance, state["info"], state["api_key"], args.scale_repeat)
            pages["measured"] = record["measured"]
            result.setdefault("pages_by_label", {})[own.label] = pages
            result.setdefault("pages", pages)
        elif step in ("snapshot", "restore"):
            record["seconds"] = round(_copy_database(own.db, args, work, step == "snapshot"), 1)
        elif step == "clean":
            env = dict(taskstore_env(state["url"], str(instance)), _API_KEY=state["api_key"])
            result["clean"] = clean_under_load(state["url"], env, args, logs, own.db)
        elif step == "drop":
            if own.db == "pg":
                _pg_admin(args, *(f'DROP DATABASE IF EXISTS "{_kept_pg_name(args, snap)}" WITH (FORCE)'
                                  for snap in (False, True)))
            else:
                for name in ("scale.db", "scale-snapshot.db"):
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{work / name}{suffix}").unlink(missing_ok=True)
        else:
            raise SystemExit(f"unknown step {step!r}")
        record["elapsed_s"] = round(time.monotonic() - t0, 1)
        result["steps"].append(record)
        out_path.write_text(json.dumps(result, indent=1, default=str))
        log(f"step {step} done in {record['elapsed_s']} s")
    if "pages" in result and "clean" in result:
        print(tables([result]))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
