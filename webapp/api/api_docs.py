"""What the API docs page shows, read from the OpenAPI document alone: the operations grouped by
tag (the page's table of contents and its sections), each with a stable anchor (its operationId)
and an example request and answer written out as HTTP messages, from the document's examples."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

AUTH_TEXT = {"workerToken": "a worker token (Bearer)", "apiKey": "an API key (Bearer)"}
# What a caller puts after "Bearer": an elided worker token (a JWT), a made-up admin API key.
CREDENTIALS = {
    "workerToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzYTlmMi…",
    "apiKey": "tsk_Xq3v9A7mKp2LwR8sT1uY4zB6nC0dE5fG9hJ3kM7pQ2r",
}


@dataclass(frozen=True)
class Response:
    status: str
    description: str
    schema: str | None  # the component schema of its body


@dataclass(frozen=True)
class DocumentedOperation:
    anchor: str
    method: str
    path: str
    summary: str
    auth: str | None  # the credentials it takes, in words
    parameters: list[dict]
    body_schema: str | None
    responses: list[Response]
    example_request: str
    example_response: str | None  # None until the operation's models give examples


@dataclass(frozen=True)
class Group:
    tag: str
    anchor: str
    operations: list[DocumentedOperation]


def groups(spec: dict) -> list[Group]:
    """Operations by tag, tags in order of first appearance, as the document lists paths."""
    by_tag: dict[str, list[DocumentedOperation]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            by_tag.setdefault(operation["tags"][0], []).append(_documented(path, method, operation))
    return [Group(tag, "tag-" + re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-"), listed)
            for tag, listed in by_tag.items()]


def _documented(path: str, method: str, operation: dict) -> DocumentedOperation:
    security = operation.get("security")
    return DocumentedOperation(
        anchor=operation["operationId"], method=method.upper(), path=path, summary=operation["summary"],
        auth=AUTH_TEXT[next(iter(security[0]))] if security else None, parameters=operation["parameters"],
        body_schema=_schema_name(operation.get("requestBody", {})),
        responses=[Response(status, response["description"], _schema_name(response))
                   for status, response in operation["responses"].items()],
        example_request=example_request(path, method, operation), example_response=example_response(operation),
    )


def _schema_name(part: dict) -> str | None:
    media_type = part.get("content", {}).get("application/json")
    return media_type["schema"]["$ref"].rsplit("/", 1)[-1] if media_type else None


def _example(part: dict) -> Any:
    """The example value of a request body or response; KeyError when it has none."""
    return next(iter(part["content"]["application/json"]["examples"].values()))["value"]


def example_request(path: str, method: str, operation: dict) -> str:
    """The request as an HTTP message: path and query filled with the parameters' examples, the
    credentials the operation needs, and the example body."""
    examples = {p["name"]: p["example"] for p in operation["parameters"] if p["in"] == "path" and "example" in p}

    def filled(match: re.Match) -> str:
        name = match[1]
        if name not in examples:
            return match[0]
        # A key's '/' separates nothing: it travels raw, as the key route allows.
        return quote(str(examples[name]), safe=":/" if name == "key" else ":")

    target = re.sub(r"\{(\w+)\}", filled, path)
    query = [(p["name"], p["example"]) for p in operation["parameters"] if p["in"] == "query" and "example" in p]
    if query:
        target += "?" + urlencode(query)
    lines = [f"{method.upper()} {target}"]
    if operation.get("security"):
        lines.append(f"Authorization: Bearer {CREDENTIALS[next(iter(operation['security'][0]))]}")
    lines += [f"{p['name']}: {p['example']}" for p in operation["parameters"] if p["in"] == "header" and "example" in p]
    if "requestBody" in operation:
        try:
            body = json.dumps(_example(operation["requestBody"]), indent=2, ensure_ascii=False)
        except KeyError:
            body = "(no example yet)"
        lines += ["Content-Type: application/json", "", body]
    return "\n".join(lines)


def example_response(operation: dict) -> str | None:
    """The answer to the example request: the first success status, with its example body."""
    status, response = next((status, response) for status, response in operation["responses"].items()
                            if status.startswith("2"))
    lines = [f"{status} {HTTPStatus(int(status)).phrase}"]
    if "content" in response:
        try:
            body = _example(response)
        except KeyError:
            return None
        lines += ["Content-Type: application/json", "", json.dumps(body, indent=2, ensure_ascii=False)]
    return "\n".join(lines)
