"""Each kind of transfer line as the columns of its table, for any engine: its columns in the
line's field order, by name, with the codec that turns each field into its column and back;
the row a line stores (`incoming`); and the rules of import that read no database: names
claimed once, a dataset made from an experiment's, a score's author."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
from msgspec import UNSET, Raw, UnsetType

from app import clock, ids
from app.experiment_answers import id_or_unset
from app.lines import (
    DatasetItemLine,
    DatasetLine,
    ExperimentLine,
    ItemLine,
    Kind,
    NamedLine,
    Record,
    ScoreLine,
    SpanLine,
    SpanScoreLine,
    TraceLine,
    parse_instant,
)
from app.records import json_text, name_key


class _Codec(NamedTuple):
    """How a line's field becomes its column (`store`, raising ValueError with the rule it
    breaks; None for a field that is not stored) and how the column becomes the field."""

    store: Callable[[Any], object] | None
    show: Callable[[Any], Any]


def _stored_id(value: str | UnsetType | None) -> bytes | None:
    if value is UNSET or value is None:
        return None
    key = ids.parse(value)
    if key is None:
        raise ValueError("must be a UUID")
    return key


def _stored_v7(value: str | UnsetType | None) -> bytes | None:
    key = _stored_id(value)
    if key is not None and not ids.is_v7(key):
        raise ValueError("must be a UUID version 7")
    return key


def _stored_instant(value: str | UnsetType | None) -> int | None:
    return None if value is UNSET or value is None else parse_instant(value)


def _shown_instant(ns: int | None) -> str | UnsetType:
    return UNSET if ns is None else clock.format_instant(ns)


def _shown_json(text: str | None) -> Raw | UnsetType:
    # A line of the file ends at a line break. In stored JSON a line break can only be white
    # space between tokens (inside a string it is escaped), so a space in its place keeps
    # the value and the line whole.
    return UNSET if text is None else Raw(text.replace("\r", " ").replace("\n", " ").encode())


def _stored_plain(value: object) -> object:
    return None if value is UNSET else value


def _shown_plain(value: object) -> object:
    return UNSET if value is None else value


def _stored_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _shown_none(value: object) -> object:
    return UNSET


_tags = msgspec.json.Decoder(list[str])


def _stored_tags(value: list[str] | UnsetType) -> str | None:
    # As dataset_checks.tags_text writes them, but in the order given, repeats kept: as given.
    return None if value is UNSET else msgspec.json.encode(value).decode()


def _shown_tags(text: str | None) -> list[str] | UnsetType:
    return UNSET if text is None else _tags.decode(text)


PLAIN = _Codec(_stored_plain, _shown_plain)
_CODECS = {
    "id": _Codec(_stored_id, id_or_unset),
    "id7": _Codec(_stored_v7, id_or_unset),
    "instant": _Codec(_stored_instant, _shown_instant),
    "json": _Codec(json_text, _shown_json),
    "name": _Codec(_stored_name, _shown_plain),
    "tags": _Codec(_stored_tags, _shown_tags),  # a JSON array of strings, as datasets keep it
    "hidden": _Codec(lambda mode: int(mode == "hidden"), lambda on: "hidden" if on else "default"),
    "joined": _Codec(None, _shown_plain),  # read from another table: a name beside its id
    "joined_id": _Codec(None, id_or_unset),  # an id read again: DatasetItem's dataset_item_id
    "write_only": _Codec(None, _shown_none),  # only read from the file, as POST reads it
}
ITEM_AUDIT = ("created_at", "last_updated_at", "created_by", "last_updated_by")
AUDIT_SPEC = "created_at:instant last_updated_at:instant created_by last_updated_by"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One line to import: its record, the values it stores in its table's column order,
    and its line number, which names it in the report."""

    kind: Kind
    record: Record
    values: tuple[Any, ...]
    line: int


Refused = dict[int, str]  # why, by line number


class LineColumns:
    """One kind of line: its table; its columns in the line's field order, each written
    `column:codec` (PLAIN when none is named; one that is not stored is the SQL expression an
    export reads it with); the ids that must not be another workspace's, as (column, table,
    column there); and the columns a row stores beyond the line's (`extra`)."""

    def __init__(
        self,
        name: str,
        line: type[Record],
        spec: str,
        *,
        key: tuple[str, ...] = ("id",),
        refs: tuple[tuple[str, str, str], ...] = (),
        extra: tuple[str, ...] = (),
    ) -> None:
        columns = [(c, _CODECS[codec] if codec else PLAIN) for c, _, codec in _split(spec)]
        assert len(columns) == len(line.__struct_fields__), name
        for field, (column, codec) in zip(line.__struct_fields__, columns, strict=True):
            # A stored field is its column, by name; the line's visibility_mode is `hidden`.
            assert not codec.store or column in (field, "hidden"), f"{name}.{field}: {column}"
        self.name = name
        self.line = line
        self.key = key
        self.fields = line.__struct_fields__
        self.columns = tuple(column for column, _ in columns)
        self.codecs = tuple(codec for _, codec in columns)
        self.stored = tuple(column for column, codec in columns if codec.store)
        # (field index, codec.store) of the stored fields: import's inner loop
        self.storing = tuple((at, c.store) for at, (_, c) in enumerate(columns) if c.store)
        self.refs = refs
        self.extra = extra
        self.key_at = tuple(self.columns.index(column) for column in key)

    def record(self, row: Sequence[Any]) -> Record:
        fields = zip(self.fields, self.codecs, row, strict=True)
        return self.line(**{field: codec.show(value) for field, codec, value in fields})


def _split(spec: str) -> Iterator[tuple[str, str, str]]:
    return (column.partition(":") for column in spec.split())


COLUMNS: dict[Kind, LineColumns] = {
    "project": LineColumns(
        "projects",
        NamedLine,
        f"id:id name:name {AUDIT_SPEC}",
        refs=(("id", "projects", "id"),),
        extra=("name_key",),
    ),
    "dataset": LineColumns(
        "datasets",
        DatasetLine,
        "id:id name:name project_id:id type visibility tags:tags description "
        "created_at:instant created_by last_updated_at:instant last_updated_by",
        refs=(("id", "datasets", "id"), ("project_id", "projects", "id")),
        extra=("name_key",),
    ),
    "experiment": LineColumns(
        "experiments",
        ExperimentLine,
        "id:id7 d.name:joined dataset_id:id project_id:id p.name:joined name:name "
        "metadata:json tags:json type evaluation_method optimization_id:id "
        f"{AUDIT_SPEC} status experiment_scores:json prompt_version:json prompt_versions:json "
        "dataset_version_id:id",
        refs=(
            ("id", "experiments", "id"),
            ("dataset_id", "datasets", "id"),
            ("project_id", "projects", "id"),
        ),
    ),
    "trace": LineColumns(
        "traces",
        TraceLine,
        "id:id7 project_id:id name start_time:instant end_time:instant input:json output:json "
        "metadata:json tags:json error_info:json thread_id ttft source environment "
        f"hidden:hidden {AUDIT_SPEC}",
        refs=(("id", "traces", "id"), ("project_id", "projects", "id")),
    ),
    "span": LineColumns(
        "spans",
        SpanLine,
        "id:id7 trace_id:id7 project_id:id parent_span_id:id7 name type start_time:instant "
        "end_time:instant input:json output:json metadata:json model provider tags:json "
        "usage:json error_info:json total_estimated_cost total_estimated_cost_version ttft "
        f"source environment {AUDIT_SPEC}",
        refs=(
            ("id", "spans", "id"),
            ("trace_id", "traces", "id"),
            ("project_id", "projects", "id"),
        ),
    ),
    "feedback_score": LineColumns(
        "feedback_scores",
        ScoreLine,
        f"trace_id:id7 name:name author category_name value reason source {AUDIT_SPEC}",
        key=("trace_id", "name", "author"),
        refs=(("trace_id", "traces", "id"), ("trace_id", "feedback_scores", "trace_id")),
    ),
    "span_feedback_score": LineColumns(
        "span_feedback_scores",
        SpanScoreLine,
        f"span_id:id7 name:name author category_name value reason source {AUDIT_SPEC}",
        key=("span_id", "name", "author"),
        refs=(("span_id", "spans", "id"), ("span_id", "span_feedback_scores", "span_id")),
    ),
    "dataset_item": LineColumns(
        "dataset_items",
        DatasetItemLine,
        "id:id7 t.id:joined_id trace_id:id span_id:id source data:json description tags:tags "
        f"evaluators:json execution_policy:json dataset_id:id {AUDIT_SPEC}",
        refs=(
            ("id", "dataset_items", "id"),
            ("dataset_id", "datasets", "id"),
            ("trace_id", "traces", "id"),
            ("span_id", "spans", "id"),
        ),
    ),
    "experiment_item": LineColumns(
        "experiment_items",
        ItemLine,
        "experiment_id:id7 dataset_item_id:id7 trace_id:id7 id:id7 project_id:id "
        f"{AUDIT_SPEC} NULL:write_only",
        refs=(
            ("id", "experiment_items", "id"),
            ("experiment_id", "experiments", "id"),
            ("project_id", "projects", "id"),
        ),
    ),
}


def incoming(kind: Kind, record: Record, line: int) -> Incoming:
    """The row that a line stores; ValueError saying which field breaks which rule."""
    table = COLUMNS[kind]
    if isinstance(record, ItemLine) and record.id in (UNSET, None):
        record = msgspec.structs.replace(record, id=ids.to_str(ids.uuid7()))  # as POST does
    fields, values = msgspec.structs.astuple(record), []
    for at, store in table.storing:
        try:
            values.append(store(fields[at]))
        except ValueError as exc:
            raise ValueError(f"bad value: {kind}.{table.fields[at]} {exc}") from None
    if isinstance(record, ItemLine) and len({v is None for v in values[-4:]}) > 1:
        raise ValueError(f"bad value: {kind} has some of {', '.join(ITEM_AUDIT)}: all or none")
    return Incoming(kind, record, tuple(values), line)


# --- Import's rules that read no database ---------------------------------------------------


def claim_names(
    table: str, records: list[Incoming], owners: dict[str, bytes], refused: Refused
) -> list[tuple[Incoming, str]]:
    """Projects or datasets, with their name keys, but none that takes a name another one
    holds (`owners`: the stored ones' ids by name key): names are unique in a workspace
    (case-insensitively)."""
    claimed = []
    for r in records:
        key, name = r.values[0], r.values[1]
        owner = owners.setdefault(name_key(name), key)
        if owner != key:
            refused[r.line] = f"name {name!r} belongs to {ids.to_str(owner)} in {table}"
        else:
            claimed.append((r, name_key(name)))
    return claimed


def datasets_to_make(
    records: list[Incoming], known: set[bytes], owners: dict[str, bytes]
) -> tuple[list[tuple[Incoming, str]], dict[bytes, str]]:
    """The datasets that experiments name by `dataset_id` and the workspace lacks (`known`:
    the ones it has), made from their `dataset_name`, with their name keys; and why the others
    cannot be made, by dataset id (`owners`: the stored datasets' ids by name key)."""
    at = COLUMNS["experiment"].stored.index("dataset_id")
    wanted = {r.values[at]: r.record for r in records if isinstance(r.record, ExperimentLine)}
    made, taken = [], {}
    for key, e in wanted.items():
        if key in known:
            continue
        name = e.dataset_name.strip()
        owner = owners.setdefault(name_key(name), key)
        if owner != key:
            taken[key] = f"its dataset {name!r} is {ids.to_str(owner)} in this workspace"
            continue
        made_line = DatasetLine(
            id=e.dataset_id, name=name, created_at=e.created_at, created_by=e.created_by,
            last_updated_at=e.created_at, last_updated_by=e.created_by,
        )  # fmt: skip
        made.append((incoming("dataset", made_line, 0), name_key(name)))
    return made, taken


def experiment_datasets(records: list[Incoming]) -> dict[bytes, str]:
    """The dataset ids the experiments name, each with the name of the last that names it."""
    at = COLUMNS["experiment"].stored.index("dataset_id")
    wanted: dict[bytes, str] = {}
    for r in records:
        if isinstance(r.record, ExperimentLine):
            wanted[r.values[at]] = r.record.dataset_name
    return wanted


def with_author(table: LineColumns, r: Incoming) -> list[Any]:
    """A score's values; one without an author (a file from before authors) is its last
    updater's, as the schema's migration to version 3 makes it."""
    values = list(r.values)
    author = table.stored.index("author")
    if values[author] is None:
        values[author] = values[table.stored.index("last_updated_by")]
    return values


def project_name(record: Record) -> str | None:
    """An item line's project by name, when it names one."""
    name = record.project_name if isinstance(record, ItemLine) else None
    return name.strip() if isinstance(name, str) and name.strip() else None
