"""The floor: a bare Starlette route answering a constant JSON body of an item's size.

Nothing that reads a database and encodes an answer can be faster on this stack (uvicorn,
httptools, uvloop, Starlette routing), so it is the denominator of every ratio.
"""

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# run.py passes a real item's body, so both sides send the same bytes.
BODY_ENV = "BENCH_FLOOR_BODY"


def create_app() -> Starlette:
    body = os.environ.get(BODY_ENV, '{"id":"0"}').encode()

    async def get_item(request: Request) -> Response:
        return Response(body, media_type="application/json")

    # The service's route pattern, so routing costs the same.
    return Starlette(routes=[Route("/v1/private/experiments/items/{id}", get_item)])
