"""Every table of schema.sql, described once: its name, its columns in the schema's order and
its key. The store's writes and the transfer's pages and upserts are made from these
descriptions at import time, and a statement that names a column no table has fails then, not
at its first request; tests/test_tables.py holds each description against PRAGMA table_info.

Rows are written by name (`:column` parameters from a mapping), so no row is a tuple whose
order must match a column list by eye; and every SELECT that fills a Struct is made by
`select()`, which checks its expressions against the Struct's fields by name, in order.
"""

from collections.abc import Iterable, Mapping, Sequence

import msgspec

AUDIT = ("created_at", "created_by", "last_updated_at", "last_updated_by")
LAST_KEY = b"\xff" * 16  # sorts after every 16-byte id: a cursor when no last_retrieved_id


def marks(count: int) -> str:
    return ", ".join("?" * count)


class Table:
    """One table: the columns it has, in the schema's order, and its primary key."""

    def __init__(self, name: str, columns: str, key: tuple[str, ...] = ("id",)) -> None:
        self.name = name
        self.columns = tuple(columns.split())
        self.key = key
        self.check(key)

    def check(self, columns: Iterable[str]) -> tuple[str, ...]:
        """The columns, each of which this table has (AssertionError otherwise)."""
        columns = tuple(columns)
        unknown = [c for c in columns if c not in self.columns]
        assert not unknown, f"{self.name} has no column {', '.join(unknown)}"
        return columns

    def insert(self, columns: Sequence[str] | None = None) -> str:
        """INSERT of `columns` (every one by default), each from its `:name` parameter."""
        columns = self.check(columns or self.columns)
        names = ", ".join(columns)
        values = ", ".join(f":{c}" for c in columns)
        return f"INSERT INTO {self.name} ({names}) VALUES ({values})"

    def upsert(
        self,
        columns: Sequence[str] | None = None,
        *,
        keep: Iterable[str] = ("created_at", "created_by"),
        merge: Mapping[str, str] | None = None,
        positional: bool = False,
    ) -> str:
        """INSERT that updates an existing row of the same workspace (never another's: ids are
        global), except its key and the columns to `keep`. `merge` gives the expression of a
        column's new value where it is not simply the one sent (`excluded.<column>`)."""
        columns = self.check(columns or self.columns)
        kept = {*self.key, "workspace", *self.check(keep)}
        merge = merge or {}
        self.check(merge)
        updates = ", ".join(
            f"{c} = {merge.get(c, f'excluded.{c}')}" for c in columns if c not in kept
        )
        values = marks(len(columns)) if positional else ", ".join(f":{c}" for c in columns)
        return (
            f"INSERT INTO {self.name} ({', '.join(columns)}) VALUES ({values})\n"
            f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}\n"
            f"WHERE {self.name}.workspace = excluded.workspace"
        )


# What projects, datasets and prompts share, and what a write that finds or makes one by name
# fills (write.Write.named); the other columns keep their defaults.
_NAMED = "id workspace name name_key created_at created_by last_updated_at last_updated_by"
NAMED_COLUMNS = tuple(_NAMED.split())
PROJECTS = Table("projects", _NAMED)
DATASETS = Table("datasets", _NAMED + " project_id description tags type visibility")
EXPERIMENTS = Table(
    "experiments",
    "id workspace name dataset_id project_id metadata tags type evaluation_method "
    "optimization_id status experiment_scores prompt_version prompt_versions "
    "dataset_version_id created_at created_by last_updated_at last_updated_by",
)
TRACES = Table(
    "traces",
    "id workspace project_id hidden name start_time end_time input output metadata tags "
    "error_info thread_id ttft source environment created_at created_by last_updated_at "
    "last_updated_by partial",
)
SPANS = Table(
    "spans",
    "id workspace trace_id project_id parent_span_id name type start_time end_time input "
    "output metadata model provider tags usage error_info total_estimated_cost "
    "total_estimated_cost_version ttft source environment created_at created_by "
    "last_updated_at last_updated_by partial",
)
FEEDBACK_SCORES = Table(
    "feedback_scores",
    "trace_id name author workspace category_name value reason source created_at created_by "
    "last_updated_at last_updated_by",
    key=("trace_id", "name", "author"),
)
SPAN_FEEDBACK_SCORES = Table(
    "span_feedback_scores",
    "span_id name author workspace category_name value reason source created_at created_by "
    "last_updated_at last_updated_by",
    key=("span_id", "name", "author"),
)
DATASET_ITEMS = Table(
    "dataset_items",
    "id workspace dataset_id source trace_id span_id data description tags evaluators "
    "execution_policy created_at created_by last_updated_at last_updated_by",
)
PROMPTS = Table(
    "prompts",
    "id workspace name name_key description tags template_structure created_at created_by "
    "last_updated_at last_updated_by",
)
PROMPT_VERSIONS = Table(
    "prompt_versions",
    "id workspace prompt_id commit_hash template metadata type change_description tags "
    "created_at created_by last_updated_at last_updated_by",
)
EXPERIMENT_ITEMS = Table(
    "experiment_items",
    "id workspace experiment_id dataset_item_id trace_id project_id created_at created_by "
    "last_updated_at last_updated_by",
)
TABLES = (
    PROJECTS,
    DATASETS,
    EXPERIMENTS,
    TRACES,
    SPANS,
    FEEDBACK_SCORES,
    SPAN_FEEDBACK_SCORES,
    EXPERIMENT_ITEMS,
    DATASET_ITEMS,
    PROMPTS,
    PROMPT_VERSIONS,
)
NAMED_TABLES = {"projects": PROJECTS, "datasets": DATASETS}
# Derived from the tables above, never exported or imported (app/sqlite/summaries.py).
EXPERIMENT_SUMMARIES = Table(
    "experiment_summaries",
    "experiment_id workspace summary trace_count cost cost_avg p50 p90 p99 scores folded_scores"
    " first_trace last_trace",
    key=("experiment_id",),
)
CACHES = (EXPERIMENT_SUMMARIES,)


def select(struct: type[msgspec.Struct], **expressions: str) -> str:
    """The select list that fills `struct`: one SQL expression per field, named by the field,
    in the field order (AssertionError otherwise), so that a row unpacks in that order."""
    fields = struct.__struct_fields__
    assert tuple(expressions) == fields, f"{struct.__name__}: {tuple(expressions)} != {fields}"
    return ", ".join(expressions.values())
