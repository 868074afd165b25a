"""UUID parsing, formatting and version 7 generation."""

import uuid

import pytest

from app import ids


def test_parse_reads_canonical_uuids_in_either_case() -> None:
    text = "0190F5B4-7c1a-7000-8000-00000000000a"

    assert ids.parse(text) == uuid.UUID(text).bytes


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0190f5b47c1a7000800000000000000a",  # no hyphens
        "{0190f5b4-7c1a-7000-8000-00000000000a}",
        "0190f5b4-7c1a-7000-8000-00000000000g",
        "0190f5b4-7c1a-7000-8000-0000000000 a",  # fromhex would skip the space
        "0190f5b4-7c1a-7000-8000_00000000000a",
        "0190f5b4-7c1a-7000-8000-00000000000a ",
    ],
)
def test_parse_refuses_anything_else(text: str) -> None:
    assert ids.parse(text) is None


def test_to_str_is_the_canonical_lowercase_form() -> None:
    value = uuid.uuid4()

    assert ids.to_str(value.bytes) == str(value)


def test_uuid7_makes_version_7_ids_with_the_rfc_variant_and_the_current_time() -> None:
    import time

    before = time.time_ns() // 1_000_000
    made = uuid.UUID(bytes=ids.uuid7())
    after = time.time_ns() // 1_000_000

    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_uuid7_ids_made_in_a_row_strictly_increase() -> None:
    made = [ids.uuid7() for _ in range(10_000)]

    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_is_v7_checks_version_and_variant() -> None:
    assert ids.is_v7(ids.uuid7())
    assert not ids.is_v7(uuid.uuid4().bytes)
    wrong_variant = bytearray(ids.uuid7())
    wrong_variant[8] = 0xC0
    assert not ids.is_v7(bytes(wrong_variant))
