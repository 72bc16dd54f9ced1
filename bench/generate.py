#!/usr/bin/env python3
"""Fill a migrated Task Store database with many DAG runs, task instances and keys, fast.

    TASKSTORE_DATABASE_URL=... taskstore db upgrade
    python bench/generate.py --url sqlite:////tmp/big.db --runs 100000 --keys 1000000

Bulk INSERTs straight into the tables, not through the API: sqlite3 ``executemany`` in large
transactions on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL (psycopg 3). Values are written in
the same representation SQLAlchemy's types use (naive UTC timestamps, UUIDs as 32 hex digits on
SQLite), so the app reads them as its own.

The shape (all deterministic from --seed):
- ``--dags`` DAGs ``gen_dag_00`` ...; ``gen_dag_00`` holds ``--big-dag-share`` of the runs (the
  "one DAG's runs page" case), the others share the rest.
- every run has the tasks extract, transform, load (3 task instances); the newest run of gen_dag_00
  also has a mapped task ``process`` with ``--wide-map`` map indexes (a wide run).
- keys: the ``transform`` TI of gen_dag_00's newest run gets ``--big-ti-keys`` keys; the rest are
  spread 10 per run (4/3/3 over the three TIs), run after run, until ``--keys`` is
  reached. Half never expire, half expire 1–30 days from now.

Prints one JSON line describing what it made (ids the page timings use) and how long it took.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, make_url, text

TASKS = ("extract", "transform", "load")
KEYS_PER_TI = {"extract": ("spark/job_id", "checkpoint", "progress", "cursor"),
               "transform": ("job_id", "checkpoint", "rows_done"),
               "load": ("batch_id", "offset", "target_table")}
KEYS_PER_RUN = sum(len(v) for v in KEYS_PER_TI.values())  # 10


def naive(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.astimezone(UTC).replace(tzinfo=None)


class Writer:
    """Batches rows per table and writes them with the fastest bulk path of the dialect."""

    COLUMNS = {
        "dag_run": ("id", "dag_id", "run_id", "state", "logical_date", "start_date", "end_date", "created_at"),
        "task_instance": ("id", "dag_run_id", "dag_id", "run_id", "task_id", "map_index", "state", "try_number",
                          "start_date", "end_date", "updated_at"),
        "task_state": ("dag_run_id", "dag_id", "run_id", "task_id", "map_index", "key", "value", "version",
                       "updated_at", "expires_at"),
    }

    def __init__(self, url: str, batch: int = 50_000):
        self.backend = make_url(url).get_backend_name()
        self.engine = create_engine(url)
        self.raw = self.engine.raw_connection()
        self.batch = batch
        self.pending: dict[str, list[tuple]] = {t: [] for t in self.COLUMNS}
        self.counts: dict[str, int] = {t: 0 for t in self.COLUMNS}
        if self.backend == "sqlite":
            cur = self.raw.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=OFF")  # a generator's load: durability does not matter
            cur.execute("PRAGMA foreign_keys=OFF")  # parents are written first anyway
            cur.close()
        elif self.backend != "postgresql":
            raise SystemExit(f"generate.py supports SQLite and PostgreSQL, not {self.backend}")

    def convert(self, value):
        if self.backend == "sqlite":
            if isinstance(value, datetime):
                return value.strftime("%Y-%m-%d %H:%M:%S.%f")
            if isinstance(value, uuid.UUID):
                return value.hex
        return value

    def add(self, table: str, row: tuple) -> None:
        rows = self.pending[table]
        rows.append(row)
        if len(rows) >= self.batch:
            self.finish_batches()

    def finish_batches(self) -> None:
        # parents before children: the foreign keys are checked on PostgreSQL
        for name in ("dag_run", "task_instance", "task_state"):
            self.flush(name)

    def flush(self, table: str | None = None) -> None:
        for name in ([table] if table else list(self.COLUMNS)):
            rows = self.pending[name]
            if not rows:
                continue
            cols = self.COLUMNS[name]
            quoted = ", ".join(f'"{c}"' for c in cols)
            cur = self.raw.cursor()
            if self.backend == "sqlite":
                marks = ", ".join("?" for _ in cols)
                cur.executemany(f"INSERT INTO {name} ({quoted}) VALUES ({marks})",
                                [tuple(self.convert(v) for v in row) for row in rows])
            else:
                with cur.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cur.close()
            self.raw.commit()
            self.counts[name] += len(rows)
            rows.clear()

    def finish(self) -> None:
        self.finish_batches()
        cur = self.raw.cursor()
        if self.backend == "postgresql":
            # explicit ids were written: move the sequence past them for rows the app adds later
            cur.execute("SELECT setval(pg_get_serial_sequence('dag_run', 'id'), (SELECT max(id) FROM dag_run))")
            self.raw.commit()
        cur.close()

    def analyze(self) -> None:
        if self.backend == "postgresql":
            # VACUUM as well: a bulk-loaded table has no visibility map yet, so index-only scans
            # (the DAG list's capped counts) fetch every heap row until autovacuum has run.
            # That state lasts minutes on a real server; measuring in it overstates page times.
            self.raw.commit()
            conn = self.raw.driver_connection
            conn.autocommit = True
            try:
                conn.execute("VACUUM ANALYZE")
            finally:
                conn.autocommit = False
            return
        cur = self.raw.cursor()
        cur.execute("ANALYZE")
        cur.close()
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()


def generate(url: str, *, runs: int, keys: int, dags: int = 20, big_dag_share: float = 0.5,
             big_ti_keys: int = 1000, wide_map: int = 500, seed: int = 42, analyze: bool = True) -> dict:
    rng = random.Random(seed)
    t0 = time.monotonic()
    w = Writer(url)
    now = datetime.now(UTC)
    with w.engine.connect() as conn:
        first_id = (conn.execute(text("SELECT coalesce(max(id), 0) FROM dag_run")).scalar() or 0) + 1
    big_runs = int(runs * big_dag_share)
    per_dag = [big_runs] + [(runs - big_runs) // (dags - 1) + (1 if i < (runs - big_runs) % (dags - 1) else 0)
                            for i in range(dags - 1)] if dags > 1 else [runs]
    # Runs are written oldest first per DAG, so ids grow with logical dates (like a real scheduler).
    keys_left = keys - big_ti_keys
    info: dict = {"dags": dags, "runs": runs, "big_dag": "gen_dag_00", "big_dag_runs": big_runs}
    run_id_counter = first_id
    big_dag_ids: list[int] = []
    for d, count in enumerate(per_dag):
        dag_id = f"gen_dag_{d:02d}"
        for i in range(count):
            age = count - 1 - i  # 0 = newest
            logical = now - timedelta(hours=age + 1, minutes=d)
            run_id = f"scheduled__{logical.strftime('%Y-%m-%dT%H:%M:%S+00:00')}"
            rid = run_id_counter
            run_id_counter += 1
            if d == 0:
                big_dag_ids.append(rid)
            newest = age == 0
            state = ("running" if age < 2 else "queued" if age == 2 else
                     "failed" if rng.random() < 0.06 else "success")
            start = logical + timedelta(minutes=1)
            end = None if state in ("running", "queued") else start + timedelta(minutes=rng.randint(1, 30))
            w.add("dag_run", (rid, dag_id, run_id, state, naive(logical), naive(start) if state != "queued" else None,
                              naive(end), naive(logical)))
            ti_state = {"success": "success", "failed": "failed", "running": "running", "queued": None}[state]
            tasks = [(t, -1) for t in TASKS]
            if d == 0 and newest:
                tasks += [("process", m) for m in range(wide_map)]
                info["wide_run"] = {"dag_id": dag_id, "run_id": run_id, "task_instances": len(tasks)}
                info["big_ti"] = {"dag_id": dag_id, "run_id": run_id, "task_id": "transform", "map_index": -1,
                                  "keys": big_ti_keys}
            for task_id, map_index in tasks:
                w.add("task_instance", (uuid.UUID(int=rng.getrandbits(128), version=4), rid, dag_id, run_id, task_id,
                                        map_index, ti_state, 1 if ti_state else 0, naive(start) if ti_state else None,
                                        naive(end), naive(end or start)))
            if d == 0 and newest:
                for k in range(big_ti_keys):
                    w.add("task_state", _key_row(rng, now, rid, dag_id, run_id, "transform", -1, f"part/{k:05d}", k))
            if keys_left > 0 and not (d == 0 and newest):
                for task_id in TASKS:
                    for name in KEYS_PER_TI[task_id]:
                        if keys_left <= 0:
                            break
                        w.add("task_state", _key_row(rng, now, rid, dag_id, run_id, task_id, -1, name, i))
                        keys_left -= 1
            if d == 0 and age == 1:
                info["sample_run"] = {"dag_id": dag_id, "run_id": run_id}
    if keys_left > 0:
        raise SystemExit(f"--runs too small for --keys: {keys_left} keys could not be placed (10 per run)")
    w.finish()
    loaded = time.monotonic()
    if analyze:
        w.analyze()
    w.close()
    # the deep page: 90% of the way down gen_dag_00's newest-first list
    deep_index = int(len(big_dag_ids) * 0.9)
    info.update(
        deep_before_id=big_dag_ids[len(big_dag_ids) - deep_index] if big_dag_ids else None,
        deep_offset=deep_index,
        rows=w.counts, load_seconds=round(loaded - t0, 1),
        analyze_seconds=round(time.monotonic() - loaded, 1) if analyze else None,
    )
    return info


def _key_row(rng: random.Random, now: datetime, rid: int, dag_id: str, run_id: str, task_id: str, map_index: int,
             key: str, n: int) -> tuple:
    expires = None if rng.random() < 0.5 else now + timedelta(days=rng.randint(1, 30), seconds=rng.randint(0, 86399))
    value = json.dumps({"job_id": f"application_{rid}_{n}", "offset": n * 100, "ok": True}, separators=(",", ":"))
    return (rid, dag_id, run_id, task_id, map_index, key, value, 1, naive(now), naive(expires))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="SQLAlchemy URL of a migrated database")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--dags", type=int, default=20)
    ap.add_argument("--big-dag-share", type=float, default=0.5)
    ap.add_argument("--big-ti-keys", type=int, default=1000)
    ap.add_argument("--wide-map", type=int, default=500)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-analyze", dest="analyze", action="store_false")
    a = ap.parse_args(argv)
    info = generate(a.url, runs=a.runs, keys=a.keys, dags=a.dags, big_dag_share=a.big_dag_share,
                    big_ti_keys=a.big_ti_keys, wide_map=a.wide_map, seed=a.seed, analyze=a.analyze)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
