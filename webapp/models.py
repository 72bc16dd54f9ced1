"""Tables. The schema itself is created by the migrations in
``webapp/migrations``; these classes describe it for queries."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

ID_LENGTH = 250
INT_MAX = 2**31 - 1  # the integer columns are 32-bit: a larger number would overflow in the database
KEY_LENGTH = 512
ASSET_NAME_LENGTH = 1500
PATTERNS_LENGTH = 1000  # a user's or API key's DAG or asset name patterns, comma-separated



_uuid7_lock = threading.Lock()
_last_uuid7 = 0


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (version 7: 48 bits of Unix milliseconds, then random bits), as
    Airflow gives each try of a task instance. Each one this process makes is greater than the
    one before, even within a millisecond (then it is the last one plus one): a run's task
    instances, all created in the same millisecond, keep the order they were created in."""
    global _last_uuid7
    value = (time.time_ns() // 1_000_000 & (1 << 48) - 1) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    value &= ~(1 << 61)  # the low random bits start below half: counting up never reaches the variant
    with _uuid7_lock:
        if value <= _last_uuid7:
            value = _last_uuid7 + 1
        _last_uuid7 = value
    return uuid.UUID(int=value)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in every database.

    One representation on SQLite, PostgreSQL and MariaDB means comparisons with a
    Python-computed "now" mean the same everywhere, whatever the server's time zone.
    MySQL's DATETIME drops fractions unless asked for microseconds."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
AutoIncrementBigInteger = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class DagRun(db.Model):
    __tablename__ = "dag_run"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", name="dag_run_dag_id_run_id_uq"),
        Index("dag_run_dag_id_state_idx", "dag_id", "state"),
        Index("dag_run_dag_id_id_idx", "dag_id", "id"),  # the UI's runs page, newest first (0002)
        # the DAG list's last activity: each the last entry per DAG (0012)
        Index("dag_run_dag_id_created_at_idx", "dag_id", "created_at"),
        Index("dag_run_dag_id_start_date_idx", "dag_id", "start_date"),
        Index("dag_run_dag_id_end_date_idx", "dag_id", "end_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    state: Mapped[str] = mapped_column(String(20))
    logical_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskInstance(db.Model):
    __tablename__ = "task_instance"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", "task_id", "map_index", name="task_instance_ti_uq"),
        Index("task_instance_dag_run_idx", "dag_run_id", "task_id", "map_index"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    dag_run_id: Mapped[int] = mapped_column(ForeignKey("dag_run.id", ondelete="CASCADE"))
    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    # NULL is Airflow's "none" state: not yet scheduled.
    state: Mapped[str | None] = mapped_column(String(20))
    try_number: Mapped[int] = mapped_column(Integer, default=0)
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # A mapped index's input fingerprint, when the scheduler sends one: keys follow it.
    map_key: Mapped[str | None] = mapped_column(String(ID_LENGTH))


class TaskInstanceHistory(db.Model):
    """A try that ended: its own id (the task instance's id during that try), number, state
    and times. The task instance row holds the current try."""

    __tablename__ = "task_instance_history"
    __table_args__ = (Index("task_instance_history_ti_idx", "dag_run_id", "task_id", "map_index", "try_number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    dag_run_id: Mapped[int] = mapped_column(ForeignKey("dag_run.id", ondelete="CASCADE"))
    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int] = mapped_column(Integer)
    try_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str | None] = mapped_column(String(20))
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    map_key: Mapped[str | None] = mapped_column(String(ID_LENGTH))


class TaskState(db.Model):
    """One stored key of one task instance: the store itself."""

    __tablename__ = "task_state"
    __table_args__ = (
        UniqueConstraint("dag_run_id", "task_id", "map_index", "key", name="task_state_ti_key_uq"),
        Index("task_state_expires_at_idx", "expires_at"),
        Index("task_state_dag_idx", "dag_id", "dag_run_id", "task_id", "map_index", "expires_at"),
        # PostgreSQL also has task_state_key_trgm_idx, a trigram index on key for search, where
        # the pg_trgm extension can be created (migration 0006).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(AutoIncrementBigInteger, primary_key=True)
    dag_run_id: Mapped[int] = mapped_column(ForeignKey("dag_run.id", ondelete="CASCADE"))
    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    value: Mapped[str] = mapped_column(LongText)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The map key of the task instance that wrote it (None unmapped, or without map keys):
    # a key is handed only to a task instance with the same map key.
    map_key: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    written_by_try: Mapped[int | None] = mapped_column(Integer)  # None: written by a person or tool
    # A key set aside to make room for its position's rightful key (the same name, from the item
    # that index now maps over) waits off the positions (a negative map_index) and remembers its own.
    parked_from: Mapped[int | None] = mapped_column(Integer)


class ApiKey(db.Model):
    """An admin API key. Only a SHA-256 digest is stored: the keys are 256-bit random
    tokens, so a slow password hash would add latency without adding safety."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="admin")
    # DAG ids and asset names this key may see (``auth.name_patterns``); null: all.
    dag_patterns: Mapped[str | None] = mapped_column(String(PATTERNS_LENGTH))
    asset_patterns: Mapped[str | None] = mapped_column(String(PATTERNS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # refused from then on (401)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # updated at most once a minute


class User(db.Model):
    """A person who logs in to the admin UI. Roles: ``auth.roles``."""

    __tablename__ = "app_user"  # "user" is a reserved word on PostgreSQL
    __table_args__ = (UniqueConstraint("username", name="app_user_username_uq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    # Werkzeug's scrypt hashes are about 160 characters; 255 leaves room for its next default.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="viewer")
    dag_patterns: Mapped[str | None] = mapped_column(String(PATTERNS_LENGTH))  # as for API keys
    asset_patterns: Mapped[str | None] = mapped_column(String(PATTERNS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # may not log in; sessions ended


class UserSession(db.Model):
    """A login. The cookie carries a random token; only its SHA-256 is kept. A session ends
    (``ended_at``) at logout, when its user's password, role or status changes, or on "log out
    everywhere"; it also lapses after the idle timeout and the absolute lifetime."""

    __tablename__ = "user_session"
    __table_args__ = (
        UniqueConstraint("token_hash", name="user_session_token_hash_uq"),
        Index("user_session_user_idx", "user_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(db.Model):
    """A change to a credential (users, API keys, sessions): who, what, to whom, when."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("audit_event_at_idx", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(150))
    details: Mapped[str | None] = mapped_column(Text)


class Asset(db.Model):
    """A dataset, identified by a name and a URI (each unique), whose keys every task and
    watcher that reads or writes it shares across runs. Names and URIs are up to 1,500
    characters, as in Airflow; they are looked up by their SHA-256, which every database can
    index at that length."""

    __tablename__ = "asset"
    __table_args__ = (
        UniqueConstraint("name_hash", name="asset_name_hash_uq"),
        UniqueConstraint("uri_hash", name="asset_uri_hash_uq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(ASSET_NAME_LENGTH))
    uri: Mapped[str] = mapped_column(String(ASSET_NAME_LENGTH))
    group_name: Mapped[str] = mapped_column(String(ASSET_NAME_LENGTH), default="")
    name_hash: Mapped[str] = mapped_column(String(64))
    uri_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssetState(db.Model):
    """One stored key of one asset. Asset keys never expire (``expires_at`` stays NULL) and
    record who last wrote them: a task instance, a watcher, or a person or API key."""

    __tablename__ = "asset_state"
    __table_args__ = (
        UniqueConstraint("asset_id", "key", name="asset_state_asset_key_uq"),
        Index("asset_state_writer_idx", "written_by_dag_id", "written_by_run_id", "written_by_task_id",
              "written_by_map_index"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(AutoIncrementBigInteger, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id", ondelete="CASCADE"))
    asset_name: Mapped[str] = mapped_column(String(ASSET_NAME_LENGTH))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    value: Mapped[str] = mapped_column(LongText)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    written_by_kind: Mapped[str | None] = mapped_column(String(16))  # task, watcher or api
    written_by_dag_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    written_by_run_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    written_by_task_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    written_by_map_index: Mapped[int | None] = mapped_column(Integer)
    written_by_name: Mapped[str | None] = mapped_column(String(150))  # the watcher, person or API key


class TaskAsset(db.Model):
    """An asset a task of a run declared as an inlet or an outlet (by name), for
    ``asset_access = declared``."""

    __tablename__ = "task_asset"
    __table_args__ = (UniqueConstraint("dag_run_id", "task_id", "asset_name_hash", "direction",
                                       name="task_asset_uq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dag_run_id: Mapped[int] = mapped_column(ForeignKey("dag_run.id", ondelete="CASCADE"))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    asset_name_hash: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(6))  # inlet or outlet


class KeyChange(db.Model):
    """History: one row per key changed by a person (UI) or a tool (admin API). Worker
    writes are not recorded: they are the data, and recording them would double every write.
    ``scope_kind`` says whose key: a task instance's (dag_id, run_id, task_id, map_index) or an
    asset's (asset_id, asset_name)."""

    __tablename__ = "key_change"
    __table_args__ = (
        Index("key_change_ti_idx", "dag_id", "run_id", "task_id", "map_index", "changed_at"),
        Index("key_change_asset_idx", "asset_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(AutoIncrementBigInteger, primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(20))
    scope_kind: Mapped[str] = mapped_column(String(10), default="task")
    dag_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int | None] = mapped_column(Integer)
    asset_id: Mapped[int | None] = mapped_column(Integer)
    asset_name: Mapped[str | None] = mapped_column(String(ASSET_NAME_LENGTH))
    try_number: Mapped[int | None] = mapped_column(Integer)  # the try that had written the key before the change
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    old_value: Mapped[str | None] = mapped_column(LongText)
    new_value: Mapped[str | None] = mapped_column(LongText)
    old_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    new_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(db.Model):
    """A failed login, kept for the throttle window. In the database rather than in memory,
    so every process behind a load balancer counts the same attempts."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("login_failure_user_idx", "username", "failed_at"),
        Index("login_failure_addr_idx", "remote_addr", "failed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    remote_addr: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CleanRun(db.Model):
    """The last successful run of each kind of ``taskstore clean`` (``job``: expired keys, old
    runs), for ``/metrics``: clean runs as its own process, from cron, maybe on another host,
    so the server learns of it here. One row per job, rewritten by each run."""

    __tablename__ = "clean_run"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[float] = mapped_column(Float)
    deleted: Mapped[int] = mapped_column(BigInteger)  # rows the last run deleted
    deleted_total: Mapped[int] = mapped_column(BigInteger)  # rows every run so far deleted, together
