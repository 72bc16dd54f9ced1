"""Airflow 3.3's real execution API with ``[state_store] backend =
webapp.integrations.airflow.TaskStoreBackend``, served by uvicorn in this process on a free
port, driven by Airflow's own Task SDK ``Client`` with a token Airflow's own JWT generator
issued for each task instance. Run by tests/test_airflow_end_to_end.py with AIRFLOW_HOME (a
migrated metadata database) and the AIRFLOW__* variables set; prints one JSON line."""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from common import create_dag_run, emit, sync_dags

DAG_ID = "taskstore_backend"
RUN_ID = "manual__2026-12-01T00:00:00+00:00"
ASSET = {"name": "warehouse.orders", "uri": "postgres://warehouse/public/orders"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def register_asset() -> int:
    """An active asset in Airflow's metadata database (the asset routes resolve it there)."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        asset = AssetModel(name=ASSET["name"], uri=ASSET["uri"], group="asset")
        session.add(asset)
        session.flush()
        session.add(AssetActive.for_asset(asset))
        session.flush()
        return asset.id


def serve_execution_api():
    """Airflow's API server app with the execution API only (mounted at /execution)."""
    import uvicorn
    from airflow.api_fastapi.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(apps="execution"), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the execution API did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def token_for(ti_id: str) -> str:
    """What an executor hands a worker: a JWT from Airflow's own generator, for this TI."""
    from airflow.api_fastapi.auth.tokens import JWTGenerator, get_signing_args
    from airflow.configuration import conf

    generator = JWTGenerator(
        valid_for=conf.getint("execution_api", "jwt_expiration_time"),
        audience=conf.get_mandatory_list_value("execution_api", "jwt_audience")[0],
        issuer=conf.get("api_auth", "jwt_issuer", fallback=None),
        **get_signing_args(make_secret_key_if_needed=False),
    )
    return generator.generate(extras={"sub": ti_id})


def main() -> None:
    started = time.monotonic()
    from airflow.sdk.api.client import Client
    from airflow.state import get_state_backend

    from webapp.integrations.airflow import TaskStoreBackend

    timings = {"import": time.monotonic() - started}
    sync_dags()
    tis = create_dag_run(DAG_ID, RUN_ID, datetime(2026, 12, 1, tzinfo=UTC))
    asset_id = register_asset()
    timings["dag_run"] = time.monotonic() - started
    server, thread, base_url = serve_execution_api()
    timings["serving"] = time.monotonic() - started
    results: dict = {"dag_id": DAG_ID, "run_id": RUN_ID, "tis": tis, "asset_id": asset_id, "asset": ASSET}
    expires_at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    results["expires_at"] = expires_at.isoformat()
    try:
        submit = uuid.UUID(tis["submit[-1]"])
        client = Client(base_url=base_url + "/execution/", token=token_for(str(submit)))
        store = client.task_state_store
        store.set(submit, "spark/job_id", {"app": "application_42", "attempt": [1, 2.5]}, expires_at)
        store.set(submit, "forever", "kept", None)
        store.set(submit, "scratch", 1, None)
        store.delete(submit, "scratch")
        results["submit"] = {
            "spark/job_id": store.get(submit, "spark/job_id").value,
            "forever": store.get(submit, "forever").value,
            "scratch": type(store.get(submit, "scratch")).__name__,  # ErrorResponse: not found
        }

        # A mapped task: each map index is its own task instance with its own keys.
        for index in (0, 1):
            ti = uuid.UUID(tis[f"copy[{index}]"])
            mapped = Client(base_url=base_url + "/execution/", token=token_for(str(ti))).task_state_store
            mapped.set(ti, "progress", {"map_index": index, "rows": 100 * (index + 1)}, None)
            mapped.set(ti, "to-clear", True, None)
            if index == 0:
                mapped.clear(ti)  # Airflow's clear: this map index only
                results["copy0_after_clear"] = type(mapped.get(ti, "progress")).__name__

        assets = client.asset_state_store
        assets.set("watermark", "2026-12-01", name=ASSET["name"])
        assets.set("offsets", {"p0": 17, "p1": 4}, uri=ASSET["uri"])
        assets.set("gone", 1, name=ASSET["name"])
        assets.delete("gone", uri=ASSET["uri"])
        results["asset_values"] = {
            "watermark": assets.get("watermark", uri=ASSET["uri"]).value,
            "offsets": assets.get("offsets", name=ASSET["name"]).value,
            "gone": type(assets.get("gone", name=ASSET["name"])).__name__,
        }

        # Proof that the execution API used this backend, not Airflow's own tables.
        from airflow.models.asset_state_store import AssetStateStoreModel
        from airflow.models.task_state_store import TaskStateStoreModel
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        with create_session() as session:
            results["airflow_rows"] = {
                "task_state_store": session.scalar(select(func.count()).select_from(TaskStateStoreModel)),
                "asset_state_store": session.scalar(select(func.count()).select_from(AssetStateStoreModel)),
            }
        results["backend"] = type(get_state_backend()).__qualname__
        results["backend_is_ours"] = isinstance(get_state_backend(), TaskStoreBackend)
    finally:
        timings["calls"] = time.monotonic() - started
        server.should_exit = True
        thread.join(timeout=10)
    results["timings"] = {name: round(seconds, 2) for name, seconds in timings.items()}
    emit(results)


if __name__ == "__main__":
    sys.exit(main())
