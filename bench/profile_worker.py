#!/usr/bin/env python3
"""Profile the worker API in-process (Flask test client, no network, one thread) with pyinstrument.

    python bench/profile_worker.py --db sqlite --op put -n 2000 [--html out.html]
    python bench/profile_worker.py --db pg --op get -n 2000 --no-profile   # just ms/request

Prints the mean wall and CPU time per request, and pyinstrument's text report (or writes HTML).
Uses a throw-away database (a SQLite file in a temp dir, or taskstore_bench_<random> on PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack

from common import SECRET_KEY, pg_database, prepare_taskstore_db, taskstore_env, temp_dir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--op", choices=["put", "put_hot", "get", "delete", "floor_health"], default="put")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--html", default=None)
    ap.add_argument("--interval", type=float, default=0.0005)
    ap.add_argument("--cprofile", type=int, default=0, metavar="N",
                    help="use cProfile instead and print the N top functions by cumulative time")
    a = ap.parse_args(argv)
    with temp_dir() as instance, ExitStack() as stack:
        if a.db == "sqlite":
            url = f"sqlite:///{instance / 'p.db'}"
        else:
            url = f"{a.pg_url.rstrip('/')}/{stack.enter_context(pg_database(a.pg_url, suffix='_prof'))}"
        prepare_taskstore_db(taskstore_env(url, str(instance)))
        from webapp import create_app, runs
        from webapp.auth import tokens
        from webapp.extensions import db

        app = create_app({"database_url": url, "secret_key": SECRET_KEY, "token_lifetime_seconds": 86400},
                         instance_path=str(instance))
        with app.app_context():
            _run, tis = runs.create_dag_run("prof", "prof_1", [runs.TaskSpec("t1")])
            db.session.commit()
            ti = str(tis[0].id)
            token, _ = tokens.issue(ti)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}", "airflow-api-version": "2026-06-30"}
        body = json.dumps({"value": {"i": 1, "s": "x" * 32}, "expires_at": None})
        base = f"/execution/store/ti/{ti}/"
        client.put(base + "hot", data=body, headers=headers)
        if a.op == "delete":
            for i in range(a.n + 50):
                client.put(base + f"k{i}", data=body, headers=headers)

        def one(i: int):
            if a.op == "put":
                return client.put(base + f"k{i}", data=body, headers=headers)
            if a.op == "put_hot":
                return client.put(base + "hot", data=body, headers=headers)
            if a.op == "get":
                return client.get(base + "hot", headers=headers)
            if a.op == "delete":
                return client.delete(base + f"k{i}", headers=headers)
            return client.get("/health")

        for i in range(50):  # warm up
            one(i)
        profiler = cprof = None
        if a.cprofile:
            import cProfile

            cprof = cProfile.Profile()
            cprof.enable()
        elif a.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=a.interval)
            profiler.start()
        w0, c0 = time.perf_counter(), time.process_time()
        statuses: dict[int, int] = {}
        for i in range(50, 50 + a.n):
            status = one(i).status_code
            statuses[status] = statuses.get(status, 0) + 1
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if profiler:
            profiler.stop()
        if cprof:
            cprof.disable()
        print(f"{a.db} {a.op}: {a.n} requests, {1000 * wall / a.n:.3f} ms wall and {1000 * cpu / a.n:.3f} ms CPU "
              f"per request in-process, statuses {statuses}")
        if cprof:
            import pstats

            pstats.Stats(cprof).sort_stats("cumulative").print_stats(a.cprofile)
        if profiler:
            if a.html:
                with open(a.html, "w") as f:
                    f.write(profiler.output_html())
                print(f"HTML profile: {a.html}")
            else:
                print(profiler.output_text(unicode=False, color=False, show_all=False))
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
