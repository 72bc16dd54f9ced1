"""Counts that stop: counting every key of a DAG (or every match of a search) among a
million rows takes seconds on each page view, so counting stops at a cap and the pages
say "more than" instead. At 10,000 the DAG list of 20 DAGs still took 155-190 ms over 1M keys;
a person reads "more than 1,000" the same way."""

from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db

COUNT_CAP = 1_000


def capped_count(query) -> int:
    """The number of rows ``query`` gives, or COUNT_CAP + 1 when there are more than COUNT_CAP."""
    limited = query.limit(COUNT_CAP + 1).subquery()
    return db.session.execute(select(func.count()).select_from(limited)).scalar_one()
