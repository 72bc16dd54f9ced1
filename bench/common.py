"""Helpers shared by the benchmark scripts: processes, /proc readings, wrk, throw-away databases.

Everything here only touches processes this benchmark started (by pid / process group) and
databases it created (named taskstore_bench_<random>)."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
LUA = BENCH_DIR / "wrk" / "store.lua"
VENV_BIN = Path(sys.executable).parent
TASKSTORE = str(VENV_BIN / "taskstore")
SECRET_KEY = secrets.token_urlsafe(48)  # throw-away databases only: a fresh one per run
TOKEN_LIFETIME = 86400  # no Refreshed-API-Token churn inside a run (Airflow's recipe does the same)


def log(*parts) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)


# --- processes ----------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """Direct and indirect children of pid (from /proc/*/stat)."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent_of[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        kids = [p for p, pp in parent_of.items() if pp == current]
        out.extend(kids)
        todo.extend(kids)
    return out


def proc_status(pid: int) -> dict | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    kb = lambda name: int(fields.get(name, "0 kB").split()[0])  # noqa: E731
    return {"pid": pid, "name": fields.get("Name", "").strip(), "cmd": cmd[:80],
            "rss_mb": round(kb("VmRSS") / 1024, 1), "hwm_mb": round(kb("VmHWM") / 1024, 1)}


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of the given processes (clock ticks -> seconds)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies from /proc/stat; the difference of two readings gives the load."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    base_url: str
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        return [self.pid, *children_of(self.pid)]

    def memory(self) -> list[dict]:
        return [s for s in (proc_status(p) for p in self.pids()) if s]

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only what we started
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        # gunicorn/uvicorn workers leave with the master; make sure nothing lingers
        time.sleep(0.3)


def start_process(name: str, cmd: list[str], env: dict, log_path: Path, base_url: str, health_path: str,
                  timeout: float = 120, cwd: str | None = None) -> Server:
    log_file = open(log_path, "ab")
    proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd,
                            start_new_session=True)
    server = Server(name, proc, base_url, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_path}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(base_url + health_path, timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"{name} did not answer {health_path} within {timeout}s; see {log_path}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run(cmd: list[str], env: dict | None = None, timeout: float = 600, input: str | None = None) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, input=input)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def http(method: str, url: str, *, token: str | None = None, body: dict | None = None,
         timeout: float = 30) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- our server ---------------------------------------------------------------------------


def taskstore_env(database_url: str, instance_path: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSTORE_")}
    env.update({
        "TASKSTORE_DATABASE_URL": database_url,
        "TASKSTORE_SECRET_KEY": SECRET_KEY,
        "TASKSTORE_INSTANCE_PATH": instance_path,
        "TASKSTORE_TOKEN_LIFETIME_SECONDS": str(TOKEN_LIFETIME),
    })
    env.update(extra)
    return env


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1].strip()


def prepare_taskstore_db(env: dict) -> str:
    """Migrate and create an admin API key; returns the key."""
    run([TASKSTORE, "db", "upgrade"], env=env, timeout=300)
    return last_line(run([TASKSTORE, "api-keys", "create", "bench", "--role", "admin"], env=env))


def start_taskstore(env: dict, port: int, workers: int, threads: int, log_path: Path,
                    server: str = "granian") -> Server:
    """``taskstore serve`` under the HTTP server named (granian, the serve default, or gunicorn)."""
    cmd = [TASKSTORE, "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--threads", str(threads), "--server", server]
    return start_process("taskstore", cmd, env, log_path, f"http://127.0.0.1:{port}", "/health", cwd=str(REPO_DIR))


def create_bench_ti(server: Server, api_key: str, env: dict, dag_id: str = "bench",
                    run_id: str | None = None) -> tuple[str, str]:
    """A DAG run with one task through /api/v2; returns (ti_id, worker token)."""
    run_id = run_id or f"bench_{secrets.token_hex(4)}"
    status, body = http("POST", f"{server.base_url}/api/v2/dags/{dag_id}/dagRuns", token=api_key,
                        body={"dag_run_id": run_id, "tasks": [{"task_id": "t1"}]})
    if status != 201:
        raise RuntimeError(f"creating the bench run answered {status}: {body[:300]!r}")
    ti_id = json.loads(body)["task_instances"][0]["id"]
    token = last_line(run([TASKSTORE, "token", ti_id], env=env))
    return ti_id, token


# --- wrk ----------------------------------------------------------------------------------


def wrk(url: str, *, op: str, conc: int, duration: float, token: str = "", ti: str = "",
        base: str = "/execution", prefix: str = "k", start: int = 0, seeded: int = -1,
        threads: int = 1, timeout_s: int = 30, asset: str = "", service: str = "") -> dict:
    """One bounded wrk run (-d duration, every request times out after timeout_s)."""
    env = dict(os.environ, OP=op, TOKEN=token, TI=ti, BASE=base, PREFIX=prefix, START=str(start),
               SEEDED=str(seeded), ASSET=urllib.parse.quote(asset, safe=""), SERVICE=service)
    cmd = ["wrk", f"-t{min(threads, conc)}", f"-c{conc}", f"-d{max(1, int(round(duration)))}s",
           "--timeout", f"{timeout_s}s", "-s", str(LUA), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = machine_busy()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    busy1 = machine_busy()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return parse_wrk(out.stdout, out.stderr, busy0, busy1,
                     (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))


def parse_wrk(stdout: str, stderr: str, busy0=None, busy1=None, wrk_cpu: float | None = None) -> dict:
    for line in stdout.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[len("WRKJSON "):])
            break
    else:
        raise RuntimeError(f"wrk printed no result:\n{stdout}\n{stderr}")
    secs = r["duration_us"] / 1e6
    r["rps"] = r["requests"] / secs if secs else 0.0
    r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"] = (r[k] / 1000 for k in ("p50_us", "p90_us", "p99_us", "max_us"))
    r["socket_errors"] = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    if busy0 and busy1:
        total = busy1[1] - busy0[1]
        r["machine_busy_pct"] = round(100 * (busy1[0] - busy0[0]) / total, 1) if total else None
    if wrk_cpu is not None:
        r["wrk_cpu_s"] = round(wrk_cpu, 2)
    return r


def count_errors(r: dict, expected: set[int]) -> int:
    """Responses whose status is not an expected one, plus socket errors and timeouts."""
    bad = sum(count for code, count in r["statuses"].items() if int(code) not in expected)
    return bad + r["socket_errors"]


# --- throw-away databases -----------------------------------------------------------------


def pg_admin_url(server_url: str) -> str:
    return server_url.rstrip("/") + "/postgres"


@contextmanager
def pg_database(server_url: str, suffix: str = ""):
    """CREATE DATABASE taskstore_bench_<random>; DROP ... WITH (FORCE) afterwards."""
    import psycopg

    name = f"taskstore_bench_{secrets.token_hex(4)}{suffix}"
    with psycopg.connect(pg_admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        try:
            with psycopg.connect(pg_admin_url(server_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # never hide the real error behind the cleanup's
            log(f"could not drop {name}: {exc}")


def pg_backend_cpu(server_url: str, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to one database (same machine)."""
    import psycopg

    try:
        with psycopg.connect(pg_admin_url(server_url), autocommit=True) as conn:
            pids = [row[0] for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,))]
    except Exception:
        return {}
    return {pid: cpu_seconds([pid]) for pid in pids}


@contextmanager
def temp_dir(prefix: str = "taskstore_bench_"):
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- what was measured, and when ---------------------------------------------------------


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def git_state() -> dict:
    """The commit under test: ``git rev-parse HEAD`` of this repository, its subject and date, and
    whether the working tree differed from it (``git status --porcelain``, untracked files included;
    the paths are listed, at most 100). Values are None when git or the repository is unavailable."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    log_line = git("log", "-1", "--format=%cI%x09%s")
    paths = [line[3:] for line in (status or "").splitlines() if line.strip()]
    committed, subject = (log_line.rstrip("\n").split("\t", 1) + [None])[:2] if log_line else (None, None)
    return {"commit": head.strip() if head else None, "commit_date": committed, "subject": subject,
            "dirty": bool(paths) if status is not None else None, "dirty_paths": paths[:100]}


def describe_measured(measured: dict) -> str:
    """One line: commit (dirty or clean) and UTC start time, for the top of a report."""
    commit = measured.get("commit") or "unknown commit"
    dirty = measured.get("dirty")
    if dirty is None:
        tree = "tree unknown"
    elif dirty:
        tree = f"tree DIRTY: {len(measured.get('dirty_paths') or [])} changed/untracked paths"
    else:
        tree = "tree clean"
    return f"commit {commit} ({tree}), started {measured.get('started_utc')}"


# --- the machine --------------------------------------------------------------------------


def machine_info(pg_url: str | None = None) -> dict:
    info: dict = {"nproc": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else "?"
    except OSError:
        info["cpu_model"] = "?"
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    from importlib import metadata

    for pkg in ("taskstore", "Flask", "Werkzeug", "gunicorn", "SQLAlchemy", "Flask-SQLAlchemy", "psycopg", "PyJWT",
                "pydantic"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    try:
        versions["wrk"] = re.search(r"wrk (\S+)", subprocess.run(["wrk", "-v"], capture_output=True,
                                                                  text=True).stdout).group(1)
    except Exception:
        versions["wrk"] = None
    if pg_url:
        try:
            import psycopg

            with psycopg.connect(pg_admin_url(pg_url)) as conn:
                versions["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        except Exception as exc:
            versions["postgresql"] = f"unreachable ({exc.__class__.__name__})"
    info["versions"] = versions
    try:
        info["loadavg_at_start"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    return info
