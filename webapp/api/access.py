"""Admin API routes for credentials (admin role): people, API keys, their sessions, and the
audit log every change lands in. The rules live in ``webapp.auth``."""

from __future__ import annotations

from typing import Any

from ..auth import api_keys, audit, users
from ..models import ApiKey, User
from ..transactions import committed
from . import schemas
from .core import actor, bp, out, paging, parse_body, require_role
from .openapi import documented
from .responses import no_content


def user_fields(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "created_at": user.created_at,
            "disabled_at": user.disabled_at}


def api_key_fields(record: ApiKey) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "prefix": record.prefix, "role": record.role,
            "created_at": record.created_at, "last_used_at": record.last_used_at, "revoked_at": record.revoked_at}


@bp.get("/users")
@documented("List the people who log in to the UI", tag="Access", ok={200: schemas.UserList}, errors=(401, 403))
def list_users():
    require_role("admin")
    listed = [user_fields(user) for user in users.list_all()]
    return out(schemas.UserList, users=listed, total_entries=len(listed))


@bp.post("/users")
@documented("Create a user", tag="Access", body=schemas.UserCreate, ok={201: schemas.UserOut}, errors=(401, 403, 409, 422))
def create_user():
    require_role("admin")
    body = parse_body(schemas.UserCreate)
    user = committed(lambda: users.create(body.username, body.password, body.role, actor=actor()))
    return out(schemas.UserOut, **user_fields(user)), 201


@bp.patch("/users/<username>")
@documented("Change a user's role, password or status (their sessions end)", tag="Access", body=schemas.UserPatch, ok={200: schemas.UserOut}, errors=(401, 403, 404, 422))
def change_user(username: str):
    require_role("admin")
    body = parse_body(schemas.UserPatch)

    def change():
        user = users.require(username)
        if body.password is not None:
            users.set_password(user, body.password, actor=actor())
        if body.role is not None:
            users.set_role(user, body.role, actor=actor())
        if body.disabled is True:
            users.disable(user, actor=actor())
        elif body.disabled is False:
            users.enable(user, actor=actor())
        return user_fields(user)

    return out(schemas.UserOut, **committed(change))


@bp.post("/users/<username>/logoutEverywhere")
@documented("End every session of a user", tag="Access", ok={200: schemas.SessionsEnded}, errors=(401, 403, 404))
def end_user_sessions(username: str):
    require_role("admin")
    ended = committed(lambda: users.end_sessions(users.require(username), actor=actor()))
    return out(schemas.SessionsEnded, ended=ended)


@bp.delete("/users/<username>")
@documented("Delete a user and their sessions", tag="Access", errors=(401, 403, 404))
def delete_user(username: str):
    require_role("admin")
    committed(lambda: users.remove(users.require(username), actor=actor()))
    return no_content()


@bp.get("/apiKeys")
@documented("List API keys (never the keys themselves)", tag="Access", ok={200: schemas.ApiKeyList}, errors=(401, 403))
def list_api_keys():
    require_role("admin")
    listed = [api_key_fields(record) for record in api_keys.list_all()]
    return out(schemas.ApiKeyList, api_keys=listed, total_entries=len(listed))


@bp.post("/apiKeys")
@documented("Create an API key; the answer shows the key once", tag="Access", body=schemas.ApiKeyCreate, ok={201: schemas.ApiKeyCreated}, errors=(401, 403, 409, 422))
def create_api_key():
    require_role("admin")
    body = parse_body(schemas.ApiKeyCreate)

    def create():
        record, key = api_keys.create(body.name, body.role, actor=actor())
        return {**api_key_fields(record), "key": key}

    fields = committed(create)
    return out(schemas.ApiKeyCreated, **fields), 201


@bp.post("/apiKeys/<name_or_prefix>/revoke")
@documented("Revoke an API key (by name or prefix): 401 from its next use", tag="Access", ok={200: schemas.ApiKeyOut}, errors=(401, 403, 404, 409))
def revoke_api_key(name_or_prefix: str):
    require_role("admin")

    def revoke():
        record = api_keys.find(name_or_prefix)
        api_keys.revoke(record, actor=actor())
        return api_key_fields(record)

    return out(schemas.ApiKeyOut, **committed(revoke))


@bp.delete("/apiKeys/<name_or_prefix>")
@documented("Delete an API key (by name or prefix)", tag="Access", errors=(401, 403, 404, 409))
def delete_api_key(name_or_prefix: str):
    require_role("admin")
    committed(lambda: api_keys.remove(api_keys.find(name_or_prefix), actor=actor()))
    return no_content()


@bp.get("/auditLog")
@documented("Changes to credentials, newest first", tag="Access", ok={200: schemas.AuditLog}, errors=(401, 403, 422), query=("limit", "offset"))
def audit_log():
    require_role("admin")
    events, total = audit.latest(*paging())
    return out(schemas.AuditLog, total_entries=total, events=[
        {"at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject, "details": e.details}
        for e in events])
