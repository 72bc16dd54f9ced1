"""The OpenAPI 3.1 document of the JSON API, built from the code: the app's URL rules give
the paths and methods, each view's ``@documented`` metadata and the pydantic models in
``schemas`` give the rest; apispec assembles and checks the document."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from apispec import APISpec
from flask import Blueprint, Flask, current_app, render_template
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import schemas

bp = Blueprint("openapi", __name__, url_prefix="/api/v2")

REF = "#/components/schemas/{model}"
QUERY_DESCRIPTIONS = {
    "limit": ("integer", "Page size, 1 to 1000 (default 100)"),
    "offset": ("integer", "Entries to skip (default 0)"),
    "map_index": ("integer", "Map index of the task instance; -1 (default) for an unmapped task"),
    "state": ("string", "Only runs in this state"),
    "all_map_indices": ("boolean", "Clear every map index of the task"),
    "name": ("string", "The asset's name (any text: '/', '?', '#', spaces survive in a query parameter)"),
    "uri": ("string", "The asset's URI"),
    "key": ("string", "The key"),
    "name_pattern": ("string", "Only assets whose name contains this, ignoring case"),
    "uri_pattern": ("string", "Only assets whose URI contains this, ignoring case"),
}
PATH_DESCRIPTIONS = {
    "key": "The key; may contain '/', raw or percent-encoded",
    "ti_id": "Task instance UUID",
}
ERROR_TEXT = {
    401: "Missing, malformed, badly signed or expired credentials", 403: "Not allowed for these credentials",
    404: "Not found", 409: "Already exists", 412: "The key changed since it was read (If-Match)",
    413: "Body over the hard request limit", 422: "Invalid input; the message names the field",
    503: "Database unavailable or busy; retry",
}


@dataclass
class Operation:
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    ok: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    required: tuple[str, ...] = ()  # query parameters that must be given


def documented(summary: str, *, tag: str, body=None, ok=None, errors=(), query=(), headers=(),
               required=()) -> Callable:
    """Attach OpenAPI metadata to a view; ``ok`` maps success statuses to response models."""

    def attach(view: Callable) -> Callable:
        view.openapi = Operation(summary, tag, body, ok or {204: None}, tuple(errors), tuple(query), tuple(headers),
                                 tuple(required))
        return view

    return attach


def _path(rule: str) -> tuple[str, list[str]]:
    names = re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule)
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule), names


def _content(model: type[BaseModel]) -> dict:
    return {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}


def _operation(op: Operation, path_params: list[str], secured: str | None) -> dict:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
         "description": PATH_DESCRIPTIONS.get(name, "")}
        for name in path_params
    ]
    for name in op.query:
        kind, text = QUERY_DESCRIPTIONS[name]
        parameters.append({"name": name, "in": "query", "required": name in op.required, "schema": {"type": kind},
                           "description": text})
    for name in op.headers:
        parameters.append({"name": name, "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "An ETag from GET: refuse with 412 if the key changed since"})
    responses: dict = {}
    for status, model in op.ok.items():
        responses[str(status)] = {"description": "OK" if model else "Done, no body"}
        if model is not None:
            responses[str(status)]["content"] = _content(model)
    for status in op.errors:
        responses[str(status)] = {"description": ERROR_TEXT[status], "content": _content(schemas.ErrorBody)}
    operation = {"summary": op.summary, "tags": [op.tag], "parameters": parameters, "responses": responses}
    if op.body is not None:
        operation["requestBody"] = {"required": True, "content": _content(op.body)}
    if secured:
        operation["security"] = [{secured: []}]
    return operation


def build_spec(app: Flask) -> dict:
    spec = APISpec(
        title="Task Store API", version="1", openapi_version="3.1.0",
        info={"description": "Worker API (wire-compatible with Airflow's execution API task-state-store "
                             "routes) and admin API. Errors are {\"detail\": {\"reason\", \"message\", \"field\"}}."},
    )
    spec.components.security_scheme("workerToken", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer",
                                               "description": "An admin API key (taskstore api-keys create)"})
    models = {
        view.openapi.body for view in app.view_functions.values() if hasattr(view, "openapi")
    } | {
        model for view in app.view_functions.values() if hasattr(view, "openapi")
        for model in view.openapi.ok.values()
    } | {schemas.ErrorBody}
    models.discard(None)
    _, definitions = models_json_schema([(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
                                        ref_template=REF)
    for name, schema in definitions.get("$defs", {}).items():
        spec.components.schema(name, schema)

    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        op = getattr(view, "openapi", None)
        if op is None:
            continue
        path, names = _path(rule.rule)
        secured = "workerToken" if path.startswith("/execution") else "apiKey" if op.tag != "Service" else None
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(op, names, secured)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_json():
    if "openapi_spec" not in current_app.extensions:
        current_app.extensions["openapi_spec"] = build_spec(current_app)
    return current_app.extensions["openapi_spec"]


@bp.get("/docs")
def docs_page():
    spec = openapi_json()
    return render_template("api_docs.html", spec=spec)
