"""The OpenAPI 3.1 document of the JSON API, built from the code: the app's URL rules give
the paths and methods, each view's ``@documented`` metadata and the pydantic models in
``schemas`` give the rest; apispec assembles and checks the document.

Every operation carries an example request body and answer (``examples`` on its media types),
made up from the models' own field examples (``examples.example_of``), and its parameters carry
the example values the docs page's example requests use."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from flask import Blueprint, Flask, current_app, render_template
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..http import INT_MAX
from . import api_docs, schemas
from .examples import MissingExample, example_of

bp = Blueprint("openapi", __name__, url_prefix="/api/v2")

REF = "#/components/schemas/{model}"
EXAMPLE = schemas.EXAMPLE


@dataclass(frozen=True)
class Parameter:
    kind: str  # its JSON schema type
    text: str
    example: Any = None
    shown: bool = False  # in the example request even where optional (required ones always are)
    bounds: tuple[int, int] | None = None  # an integer's range


PATH_PARAMETERS = {
    "key": Parameter("string", "The key; may contain '/', raw or percent-encoded", EXAMPLE["key"]),
    "ti_id": Parameter("string", "Task instance UUID", EXAMPLE["ti_id"]),
    "dag_id": Parameter("string", "The DAG's id", EXAMPLE["dag_id"]),
    "run_id": Parameter("string", "The DAG run's id", EXAMPLE["run_id"]),
    "task_id": Parameter("string", "The task's id", EXAMPLE["task_id"]),
    "username": Parameter("string", "The user's username", EXAMPLE["username"]),
    "name_or_prefix": Parameter("string", "The API key's name, or its prefix as lists show it", EXAMPLE["api_key"]),
    "asset_id": Parameter("integer", "The asset's id", 1, bounds=(1, INT_MAX)),
}
QUERY_PARAMETERS = {
    "limit": Parameter("integer", "Page size, 1 to 1000 (default 100)"),
    "offset": Parameter("integer", "Entries to skip (default 0)"),
    "map_index": Parameter("integer", "Map index of the task instance; -1 (default) for an unmapped task"),
    "state": Parameter("string", "Only runs in this state"),
    "all_map_indices": Parameter("boolean", "Clear every map index of the task"),
    "name": Parameter("string", "The asset's name (any text: '/', '?', '#', spaces survive in a query parameter)",
                      EXAMPLE["asset"], shown=True),
    "uri": Parameter("string", "The asset's URI", EXAMPLE["uri"]),
    "key": Parameter("string", "The key", EXAMPLE["key"], shown=True),
    "name_pattern": Parameter("string", "Only assets whose name contains this, ignoring case"),
    "uri_pattern": Parameter("string", "Only assets whose URI contains this, ignoring case"),
}
HEADER_PARAMETERS = {
    "If-Match": Parameter("string", "An ETag from GET: refuse with 412 if the key changed since", '"41.3"', shown=True),
}
SUCCESS_TEXT = {200: "OK", 201: "Created", 204: "Done, no body"}
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


def _parameter(name: str, where: str, described: Parameter | None, required: bool) -> dict:
    described = described or Parameter("string", "")
    schema: dict = {"type": described.kind}
    if described.bounds:
        schema["minimum"], schema["maximum"] = described.bounds
    parameter = {"name": name, "in": where, "required": required, "schema": schema, "description": described.text}
    if described.example is not None and (required or described.shown):
        parameter["example"] = described.example
    return parameter


def _content(model: type[BaseModel], definitions: dict[str, dict], *, request: bool) -> dict:
    """The JSON media type of ``model``, with an example when its fields give one (never a 500 for
    a missing one: tests/test_openapi.py names the operation instead)."""
    media_type: dict = {"schema": {"$ref": REF.format(model=model.__name__)}}
    try:
        value = example_of(media_type["schema"], definitions, model.__name__, request=request)
    except MissingExample:
        return {"application/json": media_type}
    media_type["examples"] = {"example": {"summary": f"A {model.__name__}", "value": value}}
    return {"application/json": media_type}


def _operation(op: Operation, path_params: list[str], secured: str | None, definitions: dict[str, dict]) -> dict:
    parameters = [_parameter(name, "path", PATH_PARAMETERS.get(name), True) for name in path_params]
    parameters += [_parameter(name, "query", QUERY_PARAMETERS[name], name in op.required) for name in op.query]
    parameters += [_parameter(name, "header", HEADER_PARAMETERS[name], False) for name in op.headers]
    responses: dict = {}
    for status, model in op.ok.items():
        responses[str(status)] = {"description": SUCCESS_TEXT.get(status, "OK")}
        if model is not None:
            responses[str(status)]["content"] = _content(model, definitions, request=False)
    for status in op.errors:
        responses[str(status)] = {"description": ERROR_TEXT[status],
                                  "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}}
    operation = {"summary": op.summary, "tags": [op.tag], "parameters": parameters, "responses": responses}
    if op.body is not None:
        operation["requestBody"] = {"required": True, "content": _content(op.body, definitions, request=True)}
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
    _, document = models_json_schema([(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
                                     ref_template=REF)
    definitions = document.get("$defs", {})
    for name, schema in definitions.items():
        spec.components.schema(name, schema)

    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        op = getattr(view, "openapi", None)
        if op is None:
            continue
        path, names = _path(rule.rule)
        # Workers send their token; everything under /api/ (the service API too) an API key; /health nothing.
        secured = "workerToken" if path.startswith("/execution") else "apiKey" if path.startswith("/api/") else None
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        for method in methods:
            operation = _operation(op, names, secured, definitions)
            # The endpoint's name: stable, unique, and the docs page's anchor for the operation.
            operation["operationId"] = rule.endpoint.replace(".", "_") + (f"_{method.lower()}" if len(methods) > 1 else "")
            paths.setdefault(path, {})[method.lower()] = operation
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
    return render_template("api_docs.html", spec=spec, groups=api_docs.groups(spec))
