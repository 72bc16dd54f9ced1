"""Which DAGs (by id) and assets (by name) a person or API key may see: a list of patterns
where ``*`` stands for any run of characters and ``?`` for one, compared case-sensitively as
the ids are. No patterns means everything. The same rule answers in Python (one id) and in
SQL (a listing's WHERE clause), so a page never shows what a direct link would refuse."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from sqlalchemy import false, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, literal
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean

from ..errors import InvalidInput
from ..models import PATTERNS_LENGTH

MAX_PATTERNS_LENGTH = PATTERNS_LENGTH


@dataclass(frozen=True)
class NamePatterns:
    """``globs`` empty: every name."""

    globs: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.globs

    @property
    def text(self) -> str | None:
        """As stored and shown: ``etl_*,ml_*``; None for everything."""
        return ",".join(self.globs) or None

    def allows(self, name: str) -> bool:
        return self.everything or any(fnmatchcase(name, glob) for glob in self.globs)

    def condition(self, column) -> ColumnElement[bool] | None:
        """A WHERE clause keeping the names allowed; None when everything is."""
        if self.everything:
            return None
        return or_(false(), *(_Matches(column, literal(glob), literal(_like_pattern(glob))) for glob in self.globs))


EVERYTHING = NamePatterns()


def where(patterns: NamePatterns | None, column) -> list[ColumnElement[bool]]:
    """A listing's WHERE clauses keeping what ``patterns`` allow (none for everything)."""
    condition = patterns.condition(column) if patterns is not None else None
    return [] if condition is None else [condition]


def parse(field: str, text: str | None) -> NamePatterns:
    """``etl_*,ml_*`` (commas between patterns, spaces around them ignored); None, empty or
    ``*`` alone: everything. Refuses what is not a pattern with the field's name."""
    if text is None or not text.strip():
        return EVERYTHING
    if len(text) > MAX_PATTERNS_LENGTH:
        raise InvalidInput(field, f"is {len(text)} characters long; the limit is {MAX_PATTERNS_LENGTH}")
    globs = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    for glob in globs:
        if not glob:
            raise InvalidInput(field, "has an empty pattern between commas")
        if any(char in glob for char in "[]\\") or any(not char.isprintable() or char.isspace() for char in glob):
            raise InvalidInput(field, f"pattern {glob!r} may hold letters, digits, punctuation, * and ?, "
                                      "but no spaces, brackets or backslashes")
    return EVERYTHING if "*" in globs else NamePatterns(globs)


def stored(text: str | None) -> NamePatterns:
    """Patterns as the database holds them (already checked when they were set)."""
    return NamePatterns(tuple(text.split(","))) if text else EVERYTHING


@dataclass(frozen=True)
class Limits:
    """What a person or API key may see. ``None`` for a field in ``change``: leave it as it is."""

    dags: NamePatterns = EVERYTHING
    assets: NamePatterns = EVERYTHING

    @classmethod
    def of(cls, record) -> Limits:
        """A user's or API key's, as stored."""
        return cls(stored(record.dag_patterns), stored(record.asset_patterns))

    @classmethod
    def parse(cls, dags: str | None, assets: str | None) -> Limits:
        return cls(parse("dags", dags), parse("assets", assets))

    def describe(self) -> str:
        return f"dags {self.dags.text or '*'}, assets {self.assets.text or '*'}"


UNLIMITED = Limits()


def change(record, *, dags: str | None = None, assets: str | None = None) -> str | None:
    """Set a user's or API key's patterns (each given one; ``""`` or ``*``: everything); what
    changed, for the audit log, or None when nothing did."""
    before = Limits.of(record)
    after = Limits(parse("dags", dags) if dags is not None else before.dags,
                   parse("assets", assets) if assets is not None else before.assets)
    if after == before:
        return None
    record.dag_patterns, record.asset_patterns = after.dags.text, after.assets.text
    return f"{before.describe()} -> {after.describe()}"


class _Matches(FunctionElement):
    """``column`` matches the glob, case-sensitively on every database: (column, glob, the
    same as a LIKE pattern)."""

    type = Boolean()
    inherit_cache = True
    name = "glob_matches"


def _like_pattern(glob: str) -> str:
    escaped = glob.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return escaped.replace("*", "%").replace("?", "_")


# Both forms travel as bound parameters (the statement cache keys on the SQL, not on them).
@compiles(_Matches, "sqlite")
def _sqlite(element, compiler, **kw):  # GLOB is case-sensitive and has * and ? already
    column, glob, _like = element.clauses
    return f"({compiler.process(column, **kw)} GLOB {compiler.process(glob, **kw)})"


@compiles(_Matches)
def _like(element, compiler, **kw):
    # PostgreSQL's LIKE is case-sensitive; MariaDB's is here too, the columns being binary-collated.
    # "!" escapes rather than a backslash, which the two databases read differently in a literal.
    column, _glob, pattern = element.clauses
    return f"({compiler.process(column, **kw)} LIKE {compiler.process(pattern, **kw)} ESCAPE '!')"
