"""Query parameters as Structs: a route's query is declared once, as a Struct on its Operation;
the OpenAPI document describes each field as a parameter, and decode_query converts and
checks them with the contract's 422."""

from typing import Annotated

import httpx
import msgspec
import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.body import decode_query
from app.errors import HANDLERS
from app.openapi import Answer, ApiRoute, Operation, document


class Page(msgspec.Struct):
    page: Annotated[int, msgspec.Meta(ge=1)] = 1
    size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    name: str | None = None


async def find(request: Request) -> Response:
    query = decode_query(request, Page)
    return JSONResponse(msgspec.structs.asdict(query))


OPERATION = Operation("Find things", {200: Answer("A page")}, identity=False, query=Page)
ROUTES = [ApiRoute("", "/things", "GET", find, "findThings", OPERATION)]


def test_each_field_of_the_query_struct_is_a_documented_parameter() -> None:
    doc = document(ROUTES)
    validate(doc)

    parameters = doc["paths"]["/things"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [
        ("page", "query", False),
        ("size", "query", False),
        ("name", "query", False),
    ]
    assert parameters[1]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert "422" in doc["paths"]["/things"]["get"]["responses"]


@pytest.mark.anyio
async def test_the_query_is_converted_and_checked() -> None:
    app = Starlette(routes=ROUTES, exception_handlers=HANDLERS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        fine = await client.get("/things", params={"page": "2", "name": "n", "other": "x"})
        default = await client.get("/things")
        bad = await client.get("/things", params={"size": "1000"})
        not_a_number = await client.get("/things", params={"page": "two"})

    assert fine.json() == {"page": 2, "size": 10, "name": "n"}
    assert default.json() == {"page": 1, "size": 10, "name": None}
    assert (bad.status_code, bad.json()) == (422, {"errors": ["size expected `int` <= 100"]})
    assert not_a_number.status_code == 422
    assert not_a_number.json()["errors"][0].startswith("page ")
