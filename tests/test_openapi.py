"""The OpenAPI document describes every JSON route, and the docs page renders it."""

import json
import re
from html.parser import HTMLParser

import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError

from webapp.errors import InvalidInput


def test_openapi_document_is_valid_and_covers_every_api_route(client, app):
    response = client.get("/api/v2/openapi.json")
    assert response.status_code == 200
    spec = response.json
    validate(spec)
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/execution", "/api/v2")) \
                or rule.rule.endswith(("/<ti_id>/", "openapi.json", "/docs")):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented, f"{method} {path} is not in the OpenAPI document"


def test_worker_put_body_matches_the_contract(client):
    schemas = client.get("/api/v2/openapi.json").json["components"]["schemas"]
    body = schemas["WorkerPutBody"]
    assert body["required"] == ["value"] and body["additionalProperties"] is False
    assert set(body["properties"]) == {"value", "expires_at"}


def test_docs_page_lists_operations(client):
    page = client.get("/api/v2/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/execution/store/ti/{ti_id}/{key}" in html and "Create or overwrite a key" in html
    assert "WorkerPutBody" in html


# --- examples: every operation has one, and each is true to its model ------------------------------


def operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def example(part):
    """The example value of a request body or response, or None."""
    examples = part.get("content", {}).get("application/json", {}).get("examples", {})
    return next(iter(examples.values()))["value"] if examples else None


def model_of(part):
    from webapp.api import schemas

    return getattr(schemas, part["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1])


def why_no_example(part, spec, *, request):
    """What the example maker says is missing (the field to give an example), for the message."""
    from webapp.api.examples import MissingExample, example_of

    try:
        example_of(part["content"]["application/json"]["schema"], spec["components"]["schemas"], "body",
                   request=request)
    except MissingExample as exc:
        return str(exc)
    return "no examples on the media type"


def test_every_operation_has_an_example_request_and_answer(client):
    spec = client.get("/api/v2/openapi.json").json
    missing = []
    for name, operation in operations(spec):
        for parameter in operation["parameters"]:
            if (parameter["in"] == "path" or parameter["required"]) and "example" not in parameter:
                missing.append(f"{name}: parameter {parameter['name']} has no example")
        if "requestBody" in operation and example(operation["requestBody"]) is None:
            missing.append(f"{name}: request body: {why_no_example(operation['requestBody'], spec, request=True)}")
        successes = {status: response for status, response in operation["responses"].items() if status < "300"}
        assert successes, f"{name} documents no success status"
        for status, response in successes.items():
            if status == "204":
                assert "content" not in response, f"{name}: 204 has no body"
            elif example(response) is None:
                missing.append(f"{name}: {status} answer: " + (
                    why_no_example(response, spec, request=False) if "content" in response else "no body documented"))
    assert missing == [], "\n".join(missing)


def test_example_request_bodies_are_valid_bodies_for_their_own_models(client):
    """Parsed as the route parses them: with the model, and for the worker API (whose hand-tuned
    path the models only describe) with the store's own parser too."""
    from webapp import store

    worker_parsers = {"WorkerPutBody": store.parse_worker_put_body, "AssetValueBody": store.parse_asset_put_body}
    spec = client.get("/api/v2/openapi.json").json
    checked = set()
    for name, operation in operations(spec):
        if "requestBody" not in operation:
            continue
        body, model = example(operation["requestBody"]), model_of(operation["requestBody"])
        try:
            model.model_validate(body)
            if model.__name__ in worker_parsers:
                worker_parsers[model.__name__](json.dumps(body).encode())
        except (ValidationError, InvalidInput) as exc:
            pytest.fail(f"{name}: its example body is not a valid {model.__name__}: {exc}")
        checked.add(model.__name__)
    assert {"WorkerPutBody", "AdminPutBody", "DagRunCreate", "UserCreate", "ServicePutBody"} <= checked


def test_example_answers_are_what_the_server_would_send(client):
    """A route answers ``out(Model, ...)``: the example, through its model, comes out unchanged."""
    spec = client.get("/api/v2/openapi.json").json
    for name, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status < "300" and example(response) is not None:  # a missing one: the test above names it
                answer, model = example(response), model_of(response)
                assert model.model_validate(answer).model_dump(mode="json") == answer, f"{name} {status}"


def test_an_example_request_fills_the_path_and_carries_credentials_and_body(client):
    html = client.get("/api/v2/docs").get_data(as_text=True)
    worker_put = article(html, "worker_put_key")
    assert "PUT /execution/store/ti/0193a9f2-6c1e-7b4d-9f3a-2d8e5c4b1a07/checkpoint\nAuthorization: Bearer ey" \
        in worker_put
    assert "Content-Type: application/json\n\n{\n  &#34;value&#34;" in worker_put and "204 No Content" in worker_put
    # A run id's '+' would read as a space in a query string: the path carries it encoded.
    put_key = article(html, "admin_put_key")
    assert "/dagRuns/scheduled__2026-12-01T00:00:00%2B00:00/taskInstances/load_orders/state-store/checkpoint" \
        in put_key
    assert "Authorization: Bearer tsk_" in put_key and "If-Match: &#34;41.3&#34;" in put_key
    assert "200 OK\nContent-Type: application/json" in put_key
    service_read = article(html, "service_get_asset_key")
    assert "GET /api/v2/service/assets/value?name=warehouse.orders&amp;key=checkpoint\nAuthorization: Bearer tsk_" \
        in service_read
    health = article(html, "health_health")
    assert "<code>GET /health</code>" in health and "Authorization" not in health


def article(html, anchor):
    start = html.index(f'<article class="api-op" id="{anchor}"')
    return html[start:html.index("</article>", start)]


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.contents, self.headings = [], [], [], {}
        self._nav = self._heading = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "nav":
            self._nav += 1
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
            if self._nav:
                self.contents.append(attrs["href"][1:])
        if tag in ("h2", "h3"):
            self._heading = tag
            self.headings.setdefault(tag, []).append("")

    def handle_endtag(self, tag):
        if tag == "nav":
            self._nav -= 1
        if tag == self._heading:
            self._heading = None

    def handle_data(self, data):
        if self._heading:
            self.headings[self._heading][-1] += data


def test_the_contents_link_to_every_operation_and_every_link_lands(client):
    spec = client.get("/api/v2/openapi.json").json
    page = _Anchors()
    page.feed(client.get("/api/v2/docs").get_data(as_text=True))
    assert len(page.ids) == len(set(page.ids)), "an id appears twice"
    assert sorted(set(page.links) - set(page.ids)) == [], "links to nothing"
    # Contents: each tag's section and each operation, by its operationId (a stable anchor).
    operation_ids = {operation["operationId"] for _name, operation in operations(spec)}
    assert len(operation_ids) == sum(1 for _ in operations(spec))
    assert operation_ids <= set(page.contents)
    tags = {operation["tags"][0] for _name, operation in operations(spec)}
    assert {"Worker", "Worker: assets", "Runs", "Stored keys", "Access", "Service"} <= tags
    # Each tag heads its own section, so a screen reader's list of headings reads as the contents.
    assert tags <= {text.strip() for text in page.headings["h2"]}
    assert "worker_put_key" in page.ids and "contents" in page.links
