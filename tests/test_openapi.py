"""The OpenAPI document describes every JSON route, and the docs page renders it."""

import re

from openapi_spec_validator import validate


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
