"""UUID parsing, formatting and version 7 generation."""

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
        "0190f5b4-7c1a-7000-8000-0000 0000 0a",  # ... and these two, for 15 bytes
        "0190f5b4-7c1a-7000-8000-00000000-0-a",  # replace("-", "") would drop these
        "0190f5b4-7c1a-7000-8000_00000000000a",
        "0190f5b4-7c1a-7000-8000-00000000000a ",
    ],
)
def test_parse_refuses_anything_else(text: str) -> None:
    assert ids.parse(text) is None


HEX = "[0-9a-fA-F]"
CANONICAL = re.compile(f"{HEX}{{8}}-{HEX}{{4}}-{HEX}{{4}}-{HEX}{{4}}-{HEX}{{12}}")
ODD_CHARS = "0aF-- \t\n{}g\u0663\uff10\u00e9"


@st.composite
def near_uuids(draw: st.DrawFn) -> str:
    """A UUID's text in either case, with up to two characters replaced, added or dropped."""
    chars = list(str(draw(st.uuids())))
    if draw(st.booleans()):
        chars = [c.upper() for c in chars]
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(chars) - 1))
        edit = draw(st.sampled_from(["replace", "insert", "drop"]))
        odd = draw(st.sampled_from(ODD_CHARS))
        if edit == "replace":
            chars[at] = odd
        elif edit == "insert":
            chars.insert(at, odd)
        else:
            del chars[at]
    return "".join(chars)


@given(near_uuids())
def test_parse_accepts_exactly_the_hyphenated_hex_form(text: str) -> None:
    expected = uuid.UUID(text).bytes if CANONICAL.fullmatch(text) else None

    assert ids.parse(text) == expected


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


def _v7_or_none(text: str) -> bytes | None:
    key = ids.parse(text)
    return key if key is not None and ids.is_v7(key) else None


V7_TEXT = st.builds(lambda: ids.to_str(ids.uuid7()))


@given(st.lists(st.one_of(V7_TEXT, V7_TEXT, near_uuids()), max_size=8))
def test_a_column_of_ids_parses_as_each_one_would(texts: list[str]) -> None:
    one_by_one = [_v7_or_none(text) for text in texts]
    expected = None if None in one_by_one else one_by_one

    assert ids.parse_v7_column(texts) == expected


@pytest.mark.parametrize(
    "texts",
    [
        # Long and short ids whose text, joined, is two good ones.
        ["0190f5b4-7c1a-7000-8000-00000000000", "a0190f5b4-7c1a-7000-8000-00000000000a"],
        ["0190f5b4-7c1a-6000-8000-00000000000a"],  # version 6
        ["0190f5b4-7c1a-7000-c000-00000000000a"],  # another variant
        ["0190f5b4-7c1a-7000-8000-0000 0000 0a"],
    ],
)
def test_a_column_with_one_bad_id_is_refused_whole(texts: list[str]) -> None:
    good = ids.to_str(ids.uuid7())

    assert ids.parse_v7_column([good, *texts, good]) is None
    assert ids.parse_v7_column([good, *texts]) is None
