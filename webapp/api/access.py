"""Admin API routes for credentials (admin role): people, API keys, their sessions, and the
audit log every change lands in. The rules live in ``webapp.auth``."""

from __future__ import annotations

from typing import Any

from flask import g

from ..auth import api_keys, audit, name_patterns, users
from ..models import ApiKey, User
from ..transactions import committed
from . import schemas
from .core import actor, bp, out, paging, parse_body
from .openapi import documented
from .responses import no_content


def user_fields(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "created_at": user.created_at,
            "disabled_at": user.disabled_at, "dags": user.dag_patterns, "assets": user.asset_patterns}


def api_key_fields(record: ApiKey) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "prefix": record.prefix, "role": record.role,
            "created_at": record.created_at, "last_used_at": record.last_used_at, "revoked_at": record.revoked_at,
            "dags": record.dag_patterns, "assets": record.asset_patterns}


@bp.get("/users")
@documented("List the people who log in to the UI", tag="Access", ok={200: schemas.UserList}, errors=(401, 403))
def list_users():
    g.principal.require_access_admin()
    listed = [user_fields(user) for user in users.list_all()]
    return out(schemas.UserList, users=listed, total_entries=len(listed))


@bp.post("/users")
@documented("Create a user", tag="Access", body=schemas.UserCreate, ok={201: schemas.UserOut}, errors=(401, 403, 409, 422))
def create_user():
    g.principal.require_access_admin()
    body = parse_body(schemas.UserCreate)
    limits = name_patterns.Limits.parse(body.dags, body.assets)
    user = committed(lambda: users.create(body.username, body.password, body.role, actor=actor(), limits=limits))
    return out(schemas.UserOut, **user_fields(user)), 201


@bp.patch("/users/<username>")
@documented("Change a user's role, password or status (their sessions end)", tag="Access", body=schemas.UserPatch, ok={200: schemas.UserOut}, errors=(401, 403, 404, 422))
def change_user(username: str):
    g.principal.require_access_admin()
    body = parse_body(schemas.UserPatch)

    def change():
        user = users.require(username)
        if body.password is not None:
            users.set_password(user, body.password, actor=actor())
        if body.role is not None:
            users.set_role(user, body.role, actor=actor())
        users.set_limits(user, dags=body.dags, assets=body.assets, actor=actor())
        if body.disabled is True:
            users.disable(user, actor=actor())
        elif body.disabled is False:
            users.enable(user, actor=actor())
        return user_fields(user)

    return out(schemas.UserOut, **committed(change))


@bp.post("/users/<username>/logoutEverywhere")
@documented("End every session of a user", tag="Access", ok={200: schemas.SessionsEnded}, errors=(401, 403, 404))
def end_user_sessions(username: str):
    g.principal.require_access_admin()
    ended = committed(lambda: users.end_sessions(users.require(username), actor=actor()))
    return out(schemas.SessionsEnded, ended=ended)


@bp.delete("/users/<username>")
@documented("Delete a user and their sessions", tag="Access", errors=(401, 403, 404))
def delete_user(username: str):
    g.principal.require_access_admin()
    committed(lambda: users.remove(users.require(username), actor=actor()))
    return no_content()


@bp.get("/apiKeys")
@documented("List API keys (never the keys themselves)", tag="Access", ok={200: schemas.ApiKeyList}, errors=(401, 403))
def list_api_keys():
    g.principal.require_access_admin()
    listed = [api_key_fields(record) for record in api_keys.list_all()]
    return out(schemas.ApiKeyList, api_keys=listed, total_entries=len(listed))


@bp.post("/apiKeys")
@documented("Create an API key; the answer shows the key once", tag="Access", body=schemas.ApiKeyCreate, ok={201: schemas.ApiKeyCreated}, errors=(401, 403, 409, 422))
def create_api_key():
    g.principal.require_access_admin()
    body = parse_body(schemas.ApiKeyCreate)

    def create():
        record, key = api_keys.create(body.name, body.role, actor=actor(),
                                      limits=name_patterns.Limits.parse(body.dags, body.assets))
        return {**api_key_fields(record), "key": key}

    fields = committed(create)
    return out(schemas.ApiKeyCreated, **fields), 201


@bp.patch("/apiKeys/<name_or_prefix>")
@documented("Change the DAGs and assets an API key (by name or prefix) may see", tag="Access", body=schemas.ApiKeyPatch, ok={200: schemas.ApiKeyOut}, errors=(401, 403, 404, 409, 422))
def change_api_key(name_or_prefix: str):
    g.principal.require_access_admin()
    body = parse_body(schemas.ApiKeyPatch)

    def change():
        record = api_keys.find(name_or_prefix)
        api_keys.set_limits(record, dags=body.dags, assets=body.assets, actor=actor())
        return api_key_fields(record)

    return out(schemas.ApiKeyOut, **committed(change))


@bp.post("/apiKeys/<name_or_prefix>/revoke")
@documented("Revoke an API key (by name or prefix): 401 from its next use", tag="Access", ok={200: schemas.ApiKeyOut}, errors=(401, 403, 404, 409))
def revoke_api_key(name_or_prefix: str):
    g.principal.require_access_admin()

    def revoke():
        record = api_keys.find(name_or_prefix)
        api_keys.revoke(record, actor=actor())
        return api_key_fields(record)

    return out(schemas.ApiKeyOut, **committed(revoke))


@bp.delete("/apiKeys/<name_or_prefix>")
@documented("Delete an API key (by name or prefix)", tag="Access", errors=(401, 403, 404, 409))
def delete_api_key(name_or_prefix: str):
    g.principal.require_access_admin()
    committed(lambda: api_keys.remove(api_keys.find(name_or_prefix), actor=actor()))
    return no_content()


@bp.get("/auditLog")
@documented("Changes to credentials, newest first", tag="Access", ok={200: schemas.AuditLog}, errors=(401, 403, 422), query=("limit", "offset"))
def audit_log():
    g.principal.require_access_admin()
    events, total = audit.latest(*paging())
    return out(schemas.AuditLog, total_entries=total, events=[
        {"at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject, "details": e.details}
        for e in events])
