"""What ``taskstore clean`` leaves for ``/metrics``: for each kind of clean (``job``), when its
last successful run finished, how long it took, what it deleted, and what every run deleted
together.

In the database, not in the server's metric files: clean runs as its own process, from cron,
possibly on another host than any server, and every server of the deployment reads the same
record. A dry run, or a run that stopped part-way (an error, Ctrl-C), records nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import CleanRun, utcnow
from .transactions import committed

EXPIRED_KEYS = "expired_keys"  # taskstore clean
OLD_RUNS = "old_runs"  # taskstore clean --runs-older-than


def record(job: str, deleted: int, seconds: float, finished_at: datetime | None = None) -> None:
    """A successful run: replace the job's last run, add its rows to the total (committed)."""
    finished_at = finished_at or utcnow()

    def write() -> None:
        table = CleanRun.__table__
        changed = db.session.execute(update(table).where(table.c.job == job).values(
            finished_at=finished_at, duration_seconds=seconds, deleted=deleted,
            deleted_total=table.c.deleted_total + deleted)).rowcount
        if not changed:
            db.session.add(CleanRun(job=job, finished_at=finished_at, duration_seconds=seconds, deleted=deleted,
                                    deleted_total=deleted))

    try:
        committed(write)
    except IntegrityError:  # another clean of this job recorded its first run meanwhile: add to it
        committed(write)


def latest() -> list[CleanRun]:
    """The last successful run of each job that ever ran, by job."""
    return list(db.session.execute(select(CleanRun).order_by(CleanRun.job)).scalars())
