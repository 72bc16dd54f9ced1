"""Keys as workers see them: read, upsert, delete and clear, for a scope named by an
``Address`` (a task instance's id). A read and a write are one statement each, the scope's
lookup included; a delete looks the scope up only when nothing was deleted; a clear looks
it up first.

The statements are built once per address and database, with bind parameters, over the
tables (not ORM entities): a worker call constructs no SQL and goes through no ORM layer.

Each operation counts itself once its statement ran (``metrics.count_store_operation``), here
and in ``edits``: a read, delete or clear whatever it found, a write when it wrote; a
transaction retried after a deadlock counts again."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, literal, or_, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from .. import metrics
from ..errors import KeyNotFound
from ..extensions import db
from ..models import utcnow
from .rules import validate_key
from .scopes import TASK_KEYS, Address, Scope, ScopeKind


def live_condition(now: datetime | None = None, kind: ScopeKind | None = None):
    """The "not expired" condition for every query: expired keys vanish for every reader at
    once, before cleanup removes the rows. ``now`` may be a bind parameter."""

    expires_at = (kind or TASK_KEYS).column("expires_at")
    return or_(expires_at.is_(None), expires_at > (utcnow() if now is None else now))


def _connection(connection: Connection | None) -> Connection:
    return connection if connection is not None else db.session.connection()


def _given(kind: ScopeKind, name: str):
    return bindparam(name, type_=kind.column(name).type)


def _lookup(address: Address, name: str):
    """One of the address's values as a scalar subquery, which every database resolves once
    through the address's unique index."""
    return select(address.values[name]).select_from(address.source).where(address.where).scalar_subquery()


def _of_address(address: Address) -> list:
    """The address's scope, as a condition on its kind's table."""
    table = address.kind.table
    return [table.c[name] == _lookup(address, name) for name in address.kind.owner]


@cache
def _statements(address: Address) -> dict[str, Any]:
    kind, table = address.kind, address.kind.table
    live = live_condition(bindparam("now", type_=table.c.expires_at.type), kind)
    same_scope = [table.c[name] == address.values[name] for name in kind.owner] + kind.fenced(address.values)
    first_value = address.values[kind.owner[0]]
    return {
        # No row: no such scope. A row with a NULL value: no such live key.
        "read": select(first_value.label("found"), table.c.value).select_from(
            address.source.outerjoin(table, and_(*same_scope, table.c.key == bindparam("key"), live))
        ).where(address.where),
        "find": select(*(address.values[name].label(name) for name in kind.row_columns))
        .select_from(address.source).where(address.where),
        "delete": delete(table).where(*_of_address(address), table.c.key == bindparam("key"),
                                      *kind.fenced({name: _lookup(address, name) for name in kind.fence})),
    }


@cache
def _upsert(address: Address, dialect: str):
    """INSERT ... SELECT from the address's row, then the dialect's own "on conflict, update";
    the version counts every write, the writer columns say who wrote last. Nothing inserted
    means no such scope."""
    kind, table = address.kind, address.kind.table
    writer = list(address.writer)
    columns = [*kind.row_columns, "key", "value", "version", "updated_at", "expires_at", *writer]
    from_scope = select(
        *(address.values[name] for name in kind.row_columns),
        _given(kind, "key"), _given(kind, "value"), literal(1), _given(kind, "updated_at"),
        _given(kind, "expires_at"), *(address.writer[name] for name in writer),
    ).select_from(address.source).where(address.where)
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(table).from_select(columns, from_scope)
        proposed = statement.inserted
    else:
        statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect](table).from_select(
            columns, from_scope)
        proposed = statement.excluded
    # The row at this position and key becomes the writer's: its fence (a different map key
    # means a set-aside key the new input overwrites) and who wrote it.
    changed = {name: proposed[name] for name in ("value", "updated_at", "expires_at", *kind.fence, *writer)}
    changed["version"] = table.c.version + 1
    if dialect in ("mysql", "mariadb"):
        statement = statement.on_duplicate_key_update(**changed)
    else:
        statement = statement.on_conflict_do_update(index_elements=[*kind.owner, "key"], set_=changed)
    # An INSERT's row count is what says whether the scope exists; drivers drop it unless asked.
    return statement.execution_options(preserve_rowcount=True)


def find(address: Address, connection: Connection | None = None, **names: Any) -> Scope:
    """The scope an address names; the address's error (NotFound in Airflow's words) when it
    names none."""
    connection = _connection(connection)
    row = connection.execute(_statements(address)["find"], address.bind(**names)).first()
    if row is None:
        raise address.not_found(connection, **names)
    return address.scope_from_row(row, **names)


def read_value_json(address: Address, key: str, now: datetime | None = None, *,
                    connection: Connection | None = None, **names: Any) -> str:
    """The stored JSON text of a live key; NotFound for an unknown scope, KeyNotFound naming the key."""
    validate_key(key)
    connection = _connection(connection)
    row = connection.execute(
        _statements(address)["read"], {**address.bind(**names), "key": key, "now": now or utcnow()}).first()
    metrics.count_store_operation("read", address.kind.name)
    if row is None:
        raise address.not_found(connection, **names)
    if row.value is None:
        raise KeyNotFound(key)
    return row.value


def write(address: Address, key: str, encoded_value: str, expires_at: datetime | None,
          now: datetime | None = None, *, connection: Connection | None = None, **names: Any) -> None:
    """Create or overwrite in one statement, so racing writers never collide: last write wins."""
    validate_key(key)
    connection = _connection(connection)
    parameters = {**address.bind(**names), "key": key, "value": encoded_value, "updated_at": now or utcnow(),
                  "expires_at": expires_at}
    if connection.execute(_upsert(address, connection.dialect.name), parameters).rowcount == 0:
        raise address.not_found(connection, **names)
    metrics.count_store_operation("write", address.kind.name)


def delete_key(address: Address, key: str, *, connection: Connection | None = None, **names: Any) -> bool:
    """Deleting a key that is not there is fine (False); an unknown scope is NotFound."""
    validate_key(key)
    connection = _connection(connection)
    deleted = connection.execute(_statements(address)["delete"], {**address.bind(**names), "key": key}).rowcount
    metrics.count_store_operation("delete", address.kind.name)
    if deleted > 0:
        return True
    find(address, connection, **names)  # NotFound for an unknown scope
    return False


def clear_addressed(address: Address, *, connection: Connection | None = None, **names: Any) -> int:
    """Every key of the scope an address names (a task instance: its own map index)."""
    connection = _connection(connection)
    return clear(find(address, connection, **names), connection=connection)


def clear(scope: Scope, *, connection: Connection | None = None) -> int:
    """Every key of a resolved scope (expired ones too), without history: for the system's
    own clears (``clear_on_success``). People's clears go through ``edits.clear_entries``."""
    cleared = _connection(connection).execute(delete(scope.kind.table).where(scope.condition())).rowcount
    metrics.count_store_operation("clear", scope.kind.name)
    return cleared
