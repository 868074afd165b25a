"""The transfer file's lines: instants read to the nanosecond, one record a line."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import clock, lines
from app.dataset_payloads import Dataset, DatasetItem
from app.experiment_payloads import Experiment
from app.lines import BadLine, ItemLine, NamedLine, parse_instant

YEAR_9999_NS = 253_402_300_799_999_999_999


@given(st.integers(min_value=0, max_value=YEAR_9999_NS))
def test_an_instant_reads_back_to_the_nanosecond(ns: int) -> None:
    assert parse_instant(clock.format_instant(ns)) == ns


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-01-15T09:30:00.1Z", 1_705_311_000_100_000_000),
        ("2024-02-29T23:59:59.000000001Z", 1_709_251_199_000_000_001),
    ],
)
def test_any_number_of_fraction_digits_up_to_nine_is_read(text: str, ns: int) -> None:
    assert parse_instant(text) == ns


@pytest.mark.parametrize(
    "text",
    ["2023-02-29T00:00:00Z", "2024-01-15T24:00:00Z", "2024-01-15T09:30:00", "2024-01-15 09:30Z"],
)
def test_what_is_not_an_instant_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be an instant like"):
        parse_instant(text)


def test_a_line_without_a_kind_is_a_bare_item() -> None:
    text = b'{"experiment_id":"a","dataset_item_id":"b","trace_id":"c","project_name":"P"}'

    kind, record = lines.decode(text)

    assert kind == "experiment_item"
    assert record == ItemLine(
        experiment_id="a", dataset_item_id="b", trace_id="c", project_name="P"
    )


def test_a_record_encodes_as_one_line_that_decodes_to_it() -> None:
    at = "2024-01-15T09:30:00Z"
    record = NamedLine(
        id="x", name="n", created_at=at, last_updated_at=at, created_by="a", last_updated_by="b"
    )

    line = lines.encode("project", record)

    assert line.endswith(b"}\n")
    assert line.count(b"\n") == 1
    assert lines.decode(line) == ("project", record)
    with pytest.raises(BadLine, match="one record a line, not project, dataset"):
        lines.decode(line[:-2] + b',"dataset":' + line[len(b'{"project":') : -2] + b"}")


def test_the_dataset_lines_have_the_fields_of_the_api_views_in_their_order() -> None:
    counts = {f for f in Dataset.__struct_fields__ if f.endswith(("_count", "experiment_at"))}
    shown = tuple(f for f in Dataset.__struct_fields__ if f not in counts)
    assert lines.DatasetLine.__struct_fields__ == shown
    assert lines.DatasetItemLine.__struct_fields__ == DatasetItem.__struct_fields__


def test_the_experiment_line_has_the_stored_fields_of_the_api_experiment_in_its_order() -> None:
    computed = {"feedback_scores", "trace_count", "dataset_item_count", "duration", "usage"}
    computed |= {"total_estimated_cost", "total_estimated_cost_avg"}
    stored = tuple(f for f in Experiment.__struct_fields__ if f not in computed)

    assert lines.ExperimentLine.__struct_fields__ == stored
