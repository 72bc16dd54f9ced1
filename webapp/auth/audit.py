"""The audit log: every change to a credential (users, API keys, sessions), with who made it.
Written in the change's own transaction; admins read it in the UI and the admin API."""

from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from ..models import AuditEvent


def record(actor: str, action: str, subject: str, details: str | None = None) -> None:
    db.session.add(AuditEvent(actor=actor[:150], action=action, subject=subject[:150], details=details))


def latest(limit: int, offset: int = 0) -> tuple[list[AuditEvent], int]:
    total = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    events = db.session.execute(
        select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)
    ).scalars().all()
    return list(events), total
