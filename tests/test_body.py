"""msgspec's messages as the contract's '<json path> <rule>'."""

import pytest

from app.body import violation


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
