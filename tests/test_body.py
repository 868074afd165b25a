"""msgspec's messages as the contract's '<json path> <rule>'."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from app.body import violation
from app.config import Settings
from app.main import create_app
from app.store import Store


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Object missing required field `ids`", "ids must not be null"),
        ("Object missing required field `x` - at `$.a[0]`", "a[0].x must not be null"),
        ("Expected `str`, got `null` - at `$.a.b`", "a.b must not be null"),
        ("Expected `int`, got `str` - at `$.n`", "n expected `int`, got `str`"),
        ("Expected `object`, got `array`", "body expected `object`, got `array`"),
    ],
)
def test_violation(message: str, expected: str) -> None:
    assert violation(message) == expected


@pytest.mark.anyio
async def test_the_body_deadline_is_the_apps_own_setting(
    client_store: tuple[Settings, Store],
) -> None:
    # Settings given to create_app, not the environment, set the deadline.
    settings, store = client_store
    app = create_app(replace(settings, body_timeout_seconds=0.3), store=store)

    async def dribble() -> AsyncIterator[bytes]:
        yield b'{"experiment_items": ['
        await asyncio.sleep(2)
        yield b"]}"

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post(
            "/v1/private/experiments/items",
            content=dribble(),
            headers={"Content-Type": "application/json"},
        )

    assert answer.status_code == 408
    assert answer.content == b'{"code":408,"message":"Request body did not arrive within 0.3 s"}'
