"""Finding keys by name (and, when asked, by value) across all scopes of a kind (the UI's
search page)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, column, func, inspect, literal_column, or_, select, table

from ..auth import name_patterns
from ..errors import InvalidInput
from ..extensions import db
from .access import live_condition
from .counting import capped_count
from .scopes import TASK_KEYS, ScopeKind


@dataclass(frozen=True)
class KeyHit:
    kind: str
    labels: dict[str, Any]  # whose key it is: the kind's label columns (dag_id, run_id, ...)
    key: str
    value_json: str
    updated_at: datetime
    expires_at: datetime | None
    in_key: bool = True  # where the text was found: the key's name, its value, or both
    in_value: bool = False


# Longer than any key (512) and than most fragments of a value one would paste; it also keeps
# a pattern within SQLite's LIKE limit (50,000 bytes), past which SQLite raises an error.
SEARCH_TEXT_LIMIT = 1_000


def search_keys(substring: str, *, kind: ScopeKind = TASK_KEYS, within: dict[str, Any] | None = None, limit: int,
                offset: int = 0, now: datetime | None = None, visible=None,
                in_values: bool = False) -> tuple[list[KeyHit], int]:
    """Live keys of a kind whose name contains ``substring``, ignoring case, across all its
    scopes (or those whose labels match ``within``, e.g. one DAG's), newest first; one page
    and the total (capped).

    Newest first is an order the databases can stream, so the query stops after one page
    however many keys match: sorted by DAG, run and task instead, a word found in 200,000 of
    1M keys took 250 ms to fetch and sort them all (bench/RESULTS.md), now 3-5 ms. "Newest" is
    the kind's ``newest_first`` on PostgreSQL and MariaDB; the newest key on SQLite, whose FTS5
    table streams in key order only, except for a common word within a DAG, which SQLite
    reads from the DAG's keys in ``newest_first`` order too (``_matching``).

    The user's ``%``, ``_`` and the escape character match literally (``autoescape``). On
    PostgreSQL this is ILIKE, which the trigram index of migration 0006 serves; on SQLite plain
    LIKE, which ignores the case of ASCII letters by itself, driven by the FTS5 trigram table of
    migration 0006 for substrings of 3 characters or more; on MariaDB's binary collation
    LOWER() LIKE, which reads keys newest first until it has a page.

    ``in_values`` also finds keys whose value contains the text, in the same way: in its JSON
    text as stored (``"done"`` finds the string done) or in a string in it (``say "hi"``
    finds the string written ``say \\"hi\\"``). No index serves that: the databases read keys
    newest first until they have a page, every key when fewer match. Each hit says where the
    text was found.

    A text longer than ``SEARCH_TEXT_LIMIT`` is refused (field ``q``, the search page's)."""
    if len(substring) > SEARCH_TEXT_LIMIT:
        raise InvalidInput("q", f"is {len(substring):,} characters long; search for at most {SEARCH_TEXT_LIMIT:,}")
    dialect = db.session.get_bind().dialect.name
    source, conditions, newest_first = _matching(kind, substring, in_values, bool(within))
    conditions.append(live_condition(now, kind))
    conditions += [kind.column(name) == value for name, value in (within or {}).items()]
    conditions += name_patterns.where(visible, kind.column(kind.permission_label))  # whose the caller may see
    labels = [kind.column(name) for name in kind.labels]
    found_in = [_contains(kind.column("key"), substring, dialect).label("in_key")]
    if in_values:
        found_in.append(_value_contains(kind.column("value"), substring, dialect).label("in_value"))
    rows = db.session.execute(
        select(*labels, kind.column("key"), kind.column("value"), kind.column("updated_at"),
               kind.column("expires_at"), *found_in)
        .select_from(source).where(*conditions).order_by(*newest_first).limit(limit).offset(offset)
    ).all()
    if offset == 0 and len(rows) < limit:
        total = len(rows)  # a first page that is not full is every match: no second query
    else:
        total = capped_count(select(kind.column("id")).select_from(source).where(*conditions))
    count = len(labels)
    hits = [KeyHit(kind.name, dict(zip(kind.labels, row[:count], strict=True)), *row[count:count + 4],
                   in_key=bool(row.in_key), in_value=in_values and bool(row.in_value)) for row in rows]
    return hits, total


def _contains(text_column, substring: str, dialect: str) -> ColumnElement[bool]:
    """``text_column`` contains ``substring`` literally (``%``, ``_`` and the escape character
    escaped), ignoring case: ILIKE on PostgreSQL, LOWER() LIKE on MariaDB's binary collation;
    SQLite's LIKE ignores the case of ASCII letters by itself."""
    if dialect == "sqlite":
        return text_column.contains(substring, autoescape=True)
    return text_column.icontains(substring, autoescape=True)


def _value_contains(value_column, substring: str, dialect: str) -> ColumnElement[bool]:
    """A value holds the text in its JSON text, or in one of its strings, where JSON writes a
    quote, a backslash or a control character escaped."""
    in_string = json.dumps(substring, ensure_ascii=False)[1:-1]
    if in_string == substring:
        return _contains(value_column, substring, dialect)
    return or_(_contains(value_column, substring, dialect), _contains(value_column, in_string, dialect))


TRIGRAM = 3
# More FTS5 matches than this makes a search within a DAG read the DAG's keys instead (_matching).
# Counting this many takes about 5 ms on SQLite.
WITHIN_FTS_CANDIDATES = 10_000
_sqlite_key_index: dict[tuple[str, str], bool] = {}  # per database URL and table: does it exist?


def _matching(kind: ScopeKind, substring: str, in_values: bool,
              within: bool) -> tuple[FromClause, list, tuple[ColumnElement, ...]]:
    """Where to look, what a match is, and the newest-first order the database can stream
    (``within``: the search is restricted to some labels, e.g. one DAG)."""
    bind = db.session.get_bind()
    dialect = bind.dialect.name
    state, key, row_id = kind.table, kind.column("key"), kind.column("id")
    contains = _contains(key, substring, dialect)
    if in_values:
        contains = or_(contains, _value_contains(kind.column("value"), substring, dialect))
    if dialect != "sqlite":
        return state, [contains], tuple(kind.column(name).desc() for name in kind.newest_first)
    index_name = kind.sqlite_search_index
    if (in_values or len(substring) < TRIGRAM or index_name is None
            or not _has_sqlite_key_index(bind, index_name)):
        return state, [contains], (row_id.desc(),)
    # The FTS5 phrase finds the rows holding the substring (folding case beyond ASCII) in rowid
    # order, which it streams only when the ORDER BY names its own rowid; LIKE keeps exactly the
    # matches it always has.
    index = table(index_name, column("rowid"))
    phrase = '"' + substring.replace('"', '""') + '"'
    match = literal_column(index_name).op("MATCH")(phrase)
    if within and _more_than(select(index.c.rowid).where(match), WITHIN_FTS_CANDIDATES):
        # The FTS5 table streams every kind's newest matches first, whoever they belong to:
        # for a common word within a DAG whose keys are older than most, it read 2M other
        # matches before the DAG's (870 ms at 10M keys, bench/RESULTS.md). The labels' index,
        # newest run first (the other databases' order), finds a page of a common word within
        # its first few hundred rows; a rare word keeps the FTS5 table, whose matches are few.
        return state, [contains], tuple(kind.column(name).desc() for name in kind.newest_first)
    return (
        state.join(index, index.c.rowid == row_id),
        [match, contains],
        (index.c.rowid.desc(),),
    )


def _more_than(query, count: int) -> bool:
    limited = query.limit(count + 1).subquery()
    return db.session.execute(select(func.count()).select_from(limited)).scalar_one() > count


def _has_sqlite_key_index(bind, index_name: str) -> bool:
    cache_key = (str(bind.url), index_name)
    if cache_key not in _sqlite_key_index:
        _sqlite_key_index[cache_key] = inspect(bind).has_table(index_name)
    return _sqlite_key_index[cache_key]
