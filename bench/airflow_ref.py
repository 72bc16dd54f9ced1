"""Apache Airflow 3.3.2's execution API as the reference server.

Airflow's baseline setup lives outside this repository: a directory holding Airflow's baseline setup
script, ``setup.sh`` (``setup.sh install`` puts Airflow 3.3.2 in ``$BENCH_DIR/venv``, several minutes),
and its ``prepare.py`` (creates a DAG run and task instance and mints a worker token). Its location is
required whenever Airflow is measured: ``bench/run.py --airflow-baseline-dir DIR`` or the environment
variable ``AIRFLOW_BASELINE_DIR``; there is no default.

Preparing a metadata database follows setup.sh's ``do_db`` step and prepare.py's token recipe, but with
our own AIRFLOW_HOME per database and, for PostgreSQL, a throw-away database on the same PostgreSQL
server our service uses (setup.sh's DB=pg would start a private PG cluster instead; here both services
share one server, so the comparison is on the same database)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from common import Server, log, run, start_process

BASELINE_ENV = "AIRFLOW_BASELINE_DIR"


def baseline_dir(path: str | os.PathLike | None = None) -> Path:
    """The directory holding Airflow's baseline setup script (setup.sh) and prepare.py: ``path``, else
    $AIRFLOW_BASELINE_DIR. Raises ValueError when neither is given or the scripts are not there."""
    value = path or os.environ.get(BASELINE_ENV)
    if not value:
        raise ValueError(f"Airflow's baseline directory is not set: pass --airflow-baseline-dir DIR or set "
                         f"{BASELINE_ENV} to the directory holding Airflow's baseline setup script, setup.sh "
                         f"(and prepare.py); or measure without Airflow (--airflow off)")
    base = Path(value).expanduser().resolve()
    missing = [name for name in ("setup.sh", "prepare.py") if not (base / name).is_file()]
    if missing:
        raise ValueError(f"{base} does not hold Airflow's baseline {' and '.join(missing)}")
    return base

DAG_FILE = '''from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="afbench", schedule=None, catchup=False):
    EmptyOperator(task_id="t1")
'''


def venv(af_dir: Path) -> Path:
    return af_dir / "venv"


def installed(af_dir: Path) -> bool:
    return (venv(af_dir) / "bin" / "airflow").exists()


def ensure_installed(af_dir: Path, baseline: Path) -> None:
    if installed(af_dir):
        return
    setup_sh = baseline / "setup.sh"
    log(f"installing Airflow 3.3.2 with {setup_sh} install into {af_dir} (takes minutes)")
    env = dict(os.environ, BENCH_DIR=str(af_dir), DB="pg")  # DB=pg also installs psycopg2 + asyncpg
    run(["bash", str(setup_sh), "install"], env=env, timeout=1800)


def airflow_version(af_dir: Path) -> str | None:
    try:
        return run([str(venv(af_dir) / "bin" / "python"), "-c",
                    "from importlib.metadata import version; print(version('apache-airflow'))"]).strip()
    except Exception:
        return None


def airflow_env(home: Path, sql_conn: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    if sql_conn:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = sql_conn
    return env


def prepare(af_dir: Path, baseline: Path, label: str, sql_conn: str | None, reuse: bool = True) -> tuple[dict, dict]:
    """Migrate a metadata DB, add the DAG, create run + TI, mint a token (24 h).
    Returns (env, {"ti_id", "token", ...}). A SQLite home is reused when it is already prepared."""
    home = af_dir / f"bench-home-{label}"
    prep_file = home / "prep.json"
    env = airflow_env(home, sql_conn)
    if reuse and sql_conn is None and prep_file.exists():
        prep = json.loads(prep_file.read_text())
        # a fresh token: the old one may have expired
        prep = _mint(af_dir, baseline, env, prep["ti_id"])
        return env, prep
    (home / "dags").mkdir(parents=True, exist_ok=True)
    (home / "dags" / "afbench_dag.py").write_text(DAG_FILE)
    airflow = str(venv(af_dir) / "bin" / "airflow")
    log(f"airflow[{label}]: db migrate")
    run([airflow, "db", "migrate"], env=env, timeout=900)
    log(f"airflow[{label}]: dags reserialize")
    run([airflow, "dags", "reserialize"], env=env, timeout=600)
    out = run([str(venv(af_dir) / "bin" / "python"), str(baseline / "prepare.py")], env=env, timeout=600)
    prep = json.loads(out.strip().splitlines()[-1])
    prep_file.write_text(json.dumps(prep))
    return env, prep


def _mint(af_dir: Path, baseline: Path, env: dict, ti_id: str) -> dict:
    out = run([str(venv(af_dir) / "bin" / "python"), str(baseline / "prepare.py"), "--ti-id", ti_id], env=env,
              timeout=300)
    return json.loads(out.strip().splitlines()[-1])


def start(af_dir: Path, env: dict, port: int, workers: int, log_path: Path) -> Server:
    cmd = [str(venv(af_dir) / "bin" / "airflow"), "api-server", "-H", "127.0.0.1", "-p", str(port),
           "-w", str(workers)]
    return start_process("airflow", cmd, env, log_path, f"http://127.0.0.1:{port}", "/execution/health",
                         timeout=180)
