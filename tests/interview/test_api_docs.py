"""The API's OpenAPI document: what /api/docs renders, so it must be one a parser accepts."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise ValueError(f"duplicated mapping keys {duplicated}")
    return dict(pairs)


@pytest.mark.django_db
def test_openapi_document_has_no_duplicate_keys_and_validates_as_openapi_3(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    # Swagger UI's YAML parser rejects a document with a repeated key; json.loads keeps the last.
    document = json.loads(response.content, object_pairs_hook=_no_duplicate_keys)
    assert document["openapi"].startswith("3.")
    validate(document)
    events = document["paths"]["/api/submissions/{submission_id}/events"]["get"]["responses"]
    assert "text/event-stream" in events["200"]["content"]


@pytest.mark.django_db
def test_api_docs_page_loads_its_assets_from_this_server(client):
    page = client.get("/api/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
