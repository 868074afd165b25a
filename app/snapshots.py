"""A snapshot for export and push, on either engine: each kind of transfer line read a page at
a time in primary-key order from one read transaction, and what one experiment refers to,
gathered into temporary tables first. The engines make their SQL from what is here."""

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from app import ids
from app.line_columns import COLUMNS, LineColumns
from app.lines import Kind, Record
from app.payloads import ItemWrite

PAGE_ROWS = 1000

# The joins of a kind whose line names another table's values (an experiment's dataset name).
JOINS: dict[Kind, str] = {
    "experiment": "JOIN datasets AS d ON d.id = t.dataset_id AND d.workspace = t.workspace "
    "LEFT JOIN projects AS p ON p.id = t.project_id AND p.workspace = t.workspace",
}
# What push sends of an item: the API's write shape, its project by name (the target's
# projects have ids of their own), the item's project else its trace's, as GET shows it.
PUSH_ITEM_COLUMNS = "t.experiment_id, t.dataset_item_id, t.trace_id, t.id, p.name"
PUSH_ITEM_KEY = ("id",)
PUSH_ITEM_JOINS = """
LEFT JOIN traces AS tr ON tr.id = t.trace_id AND tr.workspace = t.workspace
LEFT JOIN projects AS p ON p.id = coalesce(t.project_id, tr.project_id)
    AND p.workspace = t.workspace
"""

# The keys of one experiment and of what it refers to, each table's in temporary table
# export_<table>: its items, their traces, the traces' spans and scores, the spans' scores,
# the dataset items its items name, its dataset and theirs, and every project any of them
# names. Each fill is a SELECT of keys, inserted in this order (a later one reads the
# temporary tables of earlier ones), with :workspace and :experiment as its parameters.
SCOPE_KEYS: dict[str, tuple[str, ...]] = {columns.name: columns.key for columns in COLUMNS.values()}
SCOPE_FILLS: tuple[tuple[str, str], ...] = (
    ("experiments", "SELECT id FROM experiments WHERE workspace = :workspace AND id = :experiment"),
    ("experiment_items", """SELECT id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment"""),
    ("traces", """SELECT trace_id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment"""),
    ("spans", """SELECT s.id FROM export_traces AS x
       JOIN spans AS s ON s.workspace = :workspace AND s.trace_id = x.id"""),
    ("feedback_scores", """SELECT f.trace_id, f.name, f.author
       FROM export_traces AS x JOIN feedback_scores AS f ON f.trace_id = x.id
       WHERE f.workspace = :workspace"""),
    ("span_feedback_scores", """SELECT f.span_id, f.name, f.author
       FROM export_spans AS x JOIN span_feedback_scores AS f ON f.span_id = x.id
       WHERE f.workspace = :workspace"""),
    ("dataset_items", """SELECT d.id FROM experiment_items AS i
       JOIN dataset_items AS d ON d.id = i.dataset_item_id AND d.workspace = :workspace
       WHERE i.workspace = :workspace AND i.experiment_id = :experiment"""),
    ("datasets", """SELECT dataset_id FROM experiments
       WHERE workspace = :workspace AND id = :experiment"""),
    ("datasets", """SELECT d.dataset_id
       FROM export_dataset_items AS x JOIN dataset_items AS d ON d.id = x.id"""),
    ("projects", """SELECT project_id FROM experiments
       WHERE workspace = :workspace AND id = :experiment AND project_id IS NOT NULL"""),
    ("projects", """SELECT project_id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment AND project_id IS NOT NULL"""),
    ("projects", """SELECT t.project_id FROM export_traces
       AS x JOIN traces AS t ON t.id = x.id WHERE t.workspace = :workspace"""),
    ("projects", """SELECT s.project_id FROM export_spans
       AS x JOIN spans AS s ON s.id = x.id"""),
    ("projects", """SELECT d.project_id FROM export_datasets
       AS x JOIN datasets AS d ON d.id = x.id
       WHERE d.workspace = :workspace AND d.project_id IS NOT NULL"""),
)  # fmt: skip
_PARAMETER = re.compile(r":(workspace|experiment)\b")


def numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """A fill with $1, $2... for its :names, and the names in their order (PostgreSQL's
    parameters are numbered, and a statement takes only those it names)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _PARAMETER.sub(number, sql), tuple(names)


def is_id(column: str) -> bool:
    """Whether a key column holds ids (bytes) rather than text (a score's name and author)."""
    return column == "id" or column.endswith("_id")


def selected(columns: LineColumns) -> str:
    """The SELECT list of a kind's line: a stored field is its column of `t`, any other the
    SQL expression that reads it."""
    return ", ".join(
        f"t.{c}" if codec.store else c
        for c, codec in zip(columns.columns, columns.codecs, strict=True)
    )


def page_sql(template: str, table: str, columns: str, key: Sequence[str], joins: str,
             marks: str) -> str:  # fmt: skip
    """A paged SELECT of an engine's `template` ({table} {columns} {joins} {key} {x_key} {on}
    {marks}: the placeholders of the key after which the page starts)."""
    return template.format(
        table=table,
        columns=columns,
        joins=joins,
        key=", ".join(f"t.{column}" for column in key),
        x_key=", ".join(f"x.{column}" for column in key),
        on=" AND ".join(f"t.{column} = x.{column}" for column in key),
        marks=marks,
    )


Row = Sequence[Any]
Fetch = Callable[[str, tuple[Any, ...]], Sequence[Row]]


@dataclass(frozen=True, slots=True)
class Reads:
    """An engine's SQL for a snapshot, in one scope (a workspace, or one experiment): each
    kind's page (parameters: the workspace, the key the page starts after, the page's rows),
    its count (the workspace's, or the scope's without parameters) and push's items."""

    pages: dict[Kind, str]
    counts: dict[Kind, str]
    items: str


class Snapshot:
    """One consistent read of a workspace, or of one experiment and what it refers to, a
    page at a time in primary-key order; `fetch` runs one statement in the engine's read
    transaction."""

    def __init__(self, fetch: Fetch, reads: Reads, workspace: str, scoped: bool) -> None:
        self.fetch = fetch
        self.reads = reads
        self.workspace = workspace
        self.scoped = scoped

    def count(self, kind: Kind) -> int:
        params = () if self.scoped else (self.workspace,)
        return int(self.fetch(self.reads.counts[kind], params)[0][0])

    def pages(self, kind: Kind) -> Iterator[list[Record]]:
        """Every record of one kind, as lines."""
        columns = COLUMNS[kind]
        for rows in self._rows(self.reads.pages[kind], columns.key, columns.key_at):
            yield [columns.record(row) for row in rows]

    def items_to_push(self) -> Iterator[list[ItemWrite]]:
        """Every item, as POST /v1/private/experiments/items takes it."""
        for rows in self._rows(self.reads.items, PUSH_ITEM_KEY, (3,)):
            yield [
                ItemWrite(ids.to_str(e), ids.to_str(d), ids.to_str(t), ids.to_str(i), project)
                for e, d, t, i, project in rows
            ]

    def _rows(self, sql: str, key: Sequence[str], key_at: Sequence[int]) -> Iterator[Sequence[Row]]:
        # Before every key: an empty id, or empty text, of each key column's type.
        after = tuple(b"" if is_id(column) else "" for column in key)
        while rows := self.fetch(sql, (self.workspace, *after, PAGE_ROWS)):
            yield rows
            after = tuple(rows[-1][at] for at in key_at)
