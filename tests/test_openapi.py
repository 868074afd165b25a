"""The OpenAPI document: valid 3.1, made from the payload Structs, covering every served route."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from openapi_spec_validator import validate
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app import payloads
from app.config import Settings
from app.main import create_app
from app.openapi import REF, document
from app.routes import OPERATIONS, PREFIXES

Document = dict[str, Any]


@pytest.fixture
def routes(tmp_path: Path) -> list[BaseRoute]:
    return create_app(Settings(db=tmp_path / "items.db")).routes


def served(routes: Iterable[BaseRoute]) -> set[tuple[str, str]]:
    return {
        (route.path, method)
        for route in routes
        # The web UI's pages (app/ui/) say include_in_schema=False: they are not the API.
        if isinstance(route, Route) and route.methods and route.include_in_schema
        for method in route.methods - {"HEAD"}
    }


def undocumented(routes: Iterable[BaseRoute], doc: Document) -> list[str]:
    documented = {(path, m.upper()) for path, item in doc["paths"].items() for m in item}
    return sorted(f"{method} {path}" for path, method in served(routes) - documented)


def resolve(doc: Document, node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = doc["components"][section][name]
    return node


def test_the_document_is_valid_openapi_3_1(routes: list[BaseRoute]) -> None:
    doc = document(routes)

    validate(doc)  # raises on the first fault
    assert doc["openapi"] == "3.1.0"


def test_every_served_route_and_method_is_in_the_document(routes: list[BaseRoute]) -> None:
    missing = undocumented(routes, document(routes))

    assert not missing, (
        f"served but not described: {missing}. Declare each in app/routes.py ENDPOINTS, "
        "with the Operation that describes it"
    )


def test_a_route_served_without_a_description_is_reported(routes: list[BaseRoute]) -> None:
    async def endpoint(request: Request) -> Response:
        return Response()

    more = [*routes, Route("/api/v1/private/novel", endpoint, methods=["GET", "PUT"])]

    assert undocumented(more, document(more)) == [
        "GET /api/v1/private/novel",
        "PUT /api/v1/private/novel",
    ]


def test_every_described_operation_is_served_under_every_prefix(
    routes: list[BaseRoute],
) -> None:
    expected = {(prefix + path, method) for path, method in OPERATIONS for prefix in PREFIXES}

    assert sorted(expected - served(routes)) == []


@pytest.mark.anyio
async def test_the_document_is_served_under_both_prefixes(
    client: httpx.AsyncClient, routes: list[BaseRoute]
) -> None:
    plain = await client.get("/openapi.json")
    under_api = await client.get("/api/openapi.json")

    assert plain.status_code == under_api.status_code == 200
    assert plain.headers["content-type"] == "application/json"
    assert plain.content == under_api.content
    assert plain.json() == document(routes)


def test_bodies_are_described_by_the_structs_that_decode_them(routes: list[BaseRoute]) -> None:
    doc = document(routes)
    schemas = doc["components"]["schemas"]
    create = doc["paths"]["/v1/private/experiments/items"]["post"]
    read = doc["paths"]["/api/v1/private/experiments/items/{id}"]["get"]

    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": REF.format(name="ItemBatch")
    }
    assert read["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": REF.format(name="Item")
    }
    batch = schemas["ItemBatch"]
    assert batch["description"] == payloads.ItemBatch.__doc__
    assert batch["properties"]["experiment_items"]["maxItems"] == payloads.MAX_BATCH_ITEMS
    assert list(schemas["Item"]["properties"]) == list(payloads.Item.__struct_fields__)


def test_a_field_left_out_while_unset_is_not_required(routes: list[BaseRoute]) -> None:
    item = document(routes)["components"]["schemas"]["Item"]

    assert "project_id" not in item["required"]
    assert "trace_visibility_mode" in item["required"]


def test_ids_say_which_uuids_they_take(routes: list[BaseRoute]) -> None:
    schemas = document(routes)["components"]["schemas"]
    written = schemas["ItemWrite"]["properties"]

    assert written["trace_id"]["pattern"].count("7") == 1  # version 7 only
    assert written["id"]["anyOf"][0]["format"] == "uuid"
    assert schemas["IdList"]["properties"]["ids"]["items"]["format"] == "uuid"


def test_integer_fields_that_take_whole_floats_are_plain_integers(
    routes: list[BaseRoute],
) -> None:
    # payloads.WholeNumber decodes as int or a float that is a multiple of 1: together, what
    # JSON Schema's "integer" means.
    schemas = document(routes)["components"]["schemas"]
    limit = schemas["StreamRequest"]["properties"]["limit"]
    usage = schemas["SpanWrite"]["properties"]["usage"]["anyOf"][0]

    assert limit["anyOf"] == [
        {"type": "integer", "minimum": 1, "maximum": payloads.MAX_STREAM_LIMIT},
        {"type": "null"},
    ]
    assert usage["additionalProperties"] == {
        "type": "integer",
        "minimum": payloads.MIN_USAGE,
        "maximum": payloads.MAX_USAGE,
    }


def test_every_error_status_has_the_contract_body(routes: list[BaseRoute]) -> None:
    doc = document(routes)
    error, invalid = REF.format(name="Error"), REF.format(name="ValidationErrors")

    for path, item in doc["paths"].items():
        if path.endswith("/is-alive/ping"):
            continue  # the health check's own body; below
        for method, operation in item.items():
            statuses = operation["responses"]
            assert "500" in statuses, f"{method} {path}"
            if "requestBody" in operation:
                assert {"400", "408", "413", "415", "422"} <= set(statuses), f"{method} {path}"
            for status, response in statuses.items():
                if int(status) < 400:
                    continue
                if status == "404" and "/projects/" in path:
                    continue  # Opik's {"errors":["Project not found"]} (datasets-traces.md 3.2)
                schema = resolve(doc, response)["content"]["application/json"]["schema"]
                own = {"$ref": invalid if status == "422" else error}
                # Opik answers some 404s and 409s in its ErrorMessage shape (errors.Listed).
                listed = [{"$ref": invalid}, {"oneOf": [{"$ref": error}, {"$ref": invalid}]}]
                assert schema in [own, *(listed if status in ("404", "409") else [])], status


def test_storage_failures_are_documented_where_the_database_is_used(
    routes: list[BaseRoute],
) -> None:
    doc = document(routes)
    writes: set[str] = set()
    reads: set[str] = set()

    for path, item in doc["paths"].items():
        for method, operation in item.items():
            statuses = operation["responses"]
            if operation["security"] == []:  # health, version, this document: no workspace
                assert "507" not in statuses, f"{method} {path}"
                continue
            assert "503" in statuses, f"{method} {path}"
            (writes if "507" in statuses else reads).add(f"{method.upper()} {path}")
    unavailable = doc["components"]["responses"]["503"]

    assert {key.removeprefix("/api") for key in reads} >= {
        "GET /v1/private/experiments/items/{id}",
        "GET /v1/private/experiments/{id}",
        "POST /v1/private/experiments/items/stream",
    }
    assert not any(key.startswith("GET ") for key in writes)
    assert "PUT /v1/private/experiments/items/bulk" in writes
    assert "POST /v1/private/experiments/delete" in writes
    assert unavailable["headers"]["Retry-After"]["schema"]["type"] == "integer"


def test_identity_routes_take_the_workspace_and_an_optional_key(routes: list[BaseRoute]) -> None:
    doc = document(routes)
    read = doc["paths"]["/v1/private/experiments/items/{id}"]["get"]
    ping = doc["paths"]["/is-alive/ping"]["get"]

    assert {p["name"] for p in read["parameters"]} == {"id", "Comet-Workspace", "workspace_name"}
    assert read["security"] == [{}, {"apiKey": []}]
    assert {"401", "403"} <= set(read["responses"])
    assert ping["security"] == []
    assert "401" not in ping["responses"]


@pytest.mark.parametrize(
    "key", [key for key, operation in OPERATIONS.items() if operation.example is not None]
)
def test_request_examples_decode_into_their_structs(key: tuple[str, str]) -> None:
    operation = OPERATIONS[key]
    assert operation.body is not None

    # Raises when the example no longer fits its Struct.
    msgspec.json.decode(msgspec.json.encode(operation.example), type=operation.body)


def test_the_health_check_says_unhealthy_in_its_own_body(routes: list[BaseRoute]) -> None:
    answers = document(routes)["paths"]["/api/is-alive/ping"]["get"]["responses"]
    health = {"$ref": REF.format(name="Health")}

    assert answers["200"]["content"]["application/json"]["schema"] == health
    assert answers["500"]["content"]["application/json"]["schema"] == health
