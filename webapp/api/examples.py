"""Example values for the OpenAPI document, made up from the JSON schemas it publishes, so the
pydantic models that validate and serialise the bodies are also where their examples live.

A value comes from, in turn: the schema's own ``examples`` (a field's ``Field(examples=[...])``,
a model's ``json_schema_extra``), what its type allows (a constant, an enum's first member, a
timestamp, a number), and the field's default. Free text and "any JSON" cannot be made up:
``MissingExample`` names the field, so whoever adds one knows where an example is wanted.

An answer shows every field (the server sends them all); a request shows its required fields
and the optional ones whose field gives an example, as a person would write it."""

from __future__ import annotations

from typing import Any

REF_PREFIX = "#/components/schemas/"
BY_FORMAT = {"date-time": "2026-12-01T06:00:00Z", "date": "2026-12-01", "uuid": "0193a9f2-6c1e-7b4d-9f3a-2d8e5c4b1a07"}


class MissingExample(Exception):
    """No example for this part of a body: its field needs ``Field(examples=[...])``."""

    def __init__(self, where: str):
        super().__init__(f"{where} has no example: give the field Field(examples=[...])")
        self.where = where


def example_of(schema: dict, definitions: dict[str, dict], where: str, *, request: bool = False) -> Any:
    """An instance of ``schema`` (whose ``$ref``s point into ``definitions``); ``where`` names it
    in errors; ``request``: a request body's, leaving out optional fields without an example."""
    if schema.get("examples"):
        return schema["examples"][0]
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF_PREFIX)
        return example_of(definitions[name], definitions, name, request=request)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "anyOf" in schema or "oneOf" in schema:
        return _first_branch(schema.get("anyOf") or schema["oneOf"], definitions, where, request)
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return _object(schema, definitions, where, request)
    if kind == "array" and "items" in schema:
        return [example_of(schema["items"], definitions, f"{where}[]", request=request)]
    if kind == "string" and schema.get("format") in BY_FORMAT:
        return BY_FORMAT[schema["format"]]
    if kind == "integer":
        one_or_least = max(1, schema.get("minimum", 1))
        return min(one_or_least, schema.get("maximum", one_or_least))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    raise MissingExample(where)


def _first_branch(branches: list[dict], definitions: dict[str, dict], where: str, request: bool) -> Any:
    """The first member of a union that yields an example; null only when nothing else does."""
    for branch in branches:
        if branch.get("type") == "null":
            continue
        try:
            return example_of(branch, definitions, where, request=request)
        except MissingExample:
            continue
    if any(branch.get("type") == "null" for branch in branches):
        return None
    raise MissingExample(where)


def _object(schema: dict, definitions: dict[str, dict], where: str, request: bool) -> dict[str, Any]:
    required = set(schema.get("required", ()))
    made = {}
    for name, part in schema["properties"].items():
        if request and name not in required and not part.get("examples"):
            continue
        try:
            made[name] = example_of(part, definitions, f"{where}.{name}", request=request)
        except MissingExample:
            if "default" not in part:
                raise
            made[name] = part["default"]  # an optional field nobody gave an example: its default is still true
    return made
