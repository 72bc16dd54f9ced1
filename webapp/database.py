"""Engine settings per database, chosen so that a database that is down or locked gives a
quick error (answered 503) rather than a hang."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from .config import Settings


def engine_options(settings: Settings, url: str) -> dict[str, Any]:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        # The busy timeout is set per connection below; pysqlite's own timeout would wait too.
        return {"connect_args": {"timeout": settings.sqlite_busy_timeout_ms / 1000}}
    options: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
        # Servers drop idle connections (MariaDB's wait_timeout); replace them before that.
        "pool_recycle": 1800,
    }
    if backend == "postgresql":
        options["connect_args"] = {"connect_timeout": settings.db_connect_timeout_seconds}
    elif backend in ("mysql", "mariadb"):
        options["connect_args"] = {"connect_timeout": settings.db_connect_timeout_seconds, "charset": "utf8mb4"}
        # Fewer gap locks than REPEATABLE READ: racing upserts deadlock less.
        options["isolation_level"] = "READ COMMITTED"
    return options


def configure_engine(engine: Engine, settings: Settings) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        # WAL lets readers work while one writer writes; NORMAL sync is durable across
        # process crashes in WAL mode (only an OS crash can lose the last commits).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.close()
