"""The dataset item filters' parser: JSON text to records, or a 400 saying what is wrong."""

import json

import pytest

from app.dataset_records import ItemFilter
from app.errors import ApiError
from app.item_filters import parse_item_filters


def test_each_filter_becomes_one_record_and_repeats_count_once() -> None:
    text = json.dumps(
        [
            {"field": "data", "key": "n", "operator": "=", "value": 2, "type": "map"},
            {"field": "source", "key": "ignored", "operator": "contains", "value": "sd"},
            {"field": "source", "key": "ignored", "operator": "contains", "value": "sd"},
            {"field": "created_at", "operator": ">", "value": "1970-01-01T00:00:01.5Z"},
        ]
    )

    assert parse_item_filters(text) == (
        ItemFilter("data", "=", "n", "2"),
        ItemFilter("source", "contains", "", "sd"),
        ItemFilter("created_at", ">", "", "1970-01-01T00:00:01.5Z", 1_500_000_000),
    )


@pytest.mark.parametrize("text", [None, "", "  ", "[]", "null"])
def test_no_filters_is_none(text: str | None) -> None:
    assert parse_item_filters(text) == ()


@pytest.mark.parametrize(
    "entry",
    [
        {"field": "id", "operator": "=", "value": True},
        {"field": "id", "operator": "=", "value": None},
        {"field": "id", "operator": 1, "value": "x"},
        {"field": "id", "operator": "=", "key": 1, "value": "x"},
        {"field": "input", "operator": "=", "value": "x"},
        {"field": "tags", "operator": "is_empty", "value": ""},
        {"field": "data", "operator": "=", "value": "x"},
    ],
)
def test_a_filter_opik_refuses_is_a_400(entry: dict[str, object]) -> None:
    with pytest.raises(ApiError) as refused:
        parse_item_filters(json.dumps([entry]))

    assert refused.value.status == 400
