"""Datasets, their items, compare rows and prompt versions as the API answers them, from the
rows any engine reads (as app/experiment_answers.py for experiments), so that both engines
answer alike."""

import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from msgspec import UNSET, Raw

from app import clock, ids
from app.dataset_payloads import CompareRow, Dataset, DatasetItem, ExecutionPolicy
from app.experiment_answers import id_or_unset
from app.payloads import FullItem
from app.prompt_payloads import PromptVersion
from app.records import truncate_images

_policy = msgspec.json.Decoder(ExecutionPolicy)
_tags = msgspec.json.Decoder(list[str])
# Mustache's {{name}}, without sections ({{#x}}, {{/x}}, {{^x}}), comments and partials.
_VARIABLE = re.compile(r"{{\s*([^{}#/^!>&\s][^{}]*?)\s*}}")


def dataset(row: Sequence[Any]) -> Dataset:
    """A dataset from its row: id, name, project_id, type, visibility, tags, description, the
    audit columns, then its experiment count, item count and newest experiment's creation."""
    (key, name, project_id, type_, visibility, tags, description) = row[:7]
    created_at, created_by, updated_at, updated_by, experiments, items, last_experiment = row[7:]
    last = UNSET if last_experiment is None else clock.format_instant(last_experiment)
    return Dataset(
        id=ids.to_str(key),
        name=name,
        project_id=id_or_unset(project_id),
        type=type_,
        visibility=visibility,
        tags=UNSET if tags is None else _tags.decode(tags),
        description=UNSET if description is None else description,
        created_at=clock.format_instant(created_at),
        created_by=created_by,
        last_updated_at=clock.format_instant(updated_at),
        last_updated_by=updated_by,
        experiment_count=experiments,
        dataset_items_count=items,
        optimization_count=0,
        most_recent_experiment_at=last,
        last_created_experiment_at=last,
    )


def dataset_item(row: Sequence[Any], truncate: bool = False) -> DatasetItem:
    """A dataset item from its row (the columns of DatasetItem's fields, in the engines'
    item statements' order); `data` is the stored text, byte for byte, unless truncated."""
    (key, trace_id, span_id, source, data, description, tags, evaluators, policy) = row[:9]
    dataset_id, created_at, updated_at, created_by, updated_by = row[9:]
    text = str(data)
    return DatasetItem(
        id=ids.to_str(key),
        dataset_item_id=ids.to_str(key),
        trace_id=id_or_unset(trace_id),
        span_id=id_or_unset(span_id),
        source=source,
        data=Raw((truncate_images(text) if truncate else text).encode()),
        description=UNSET if description is None else description,
        tags=[] if tags is None else _tags.decode(tags),
        evaluators=UNSET if evaluators is None else Raw(evaluators.encode()),
        execution_policy=UNSET if policy is None else _policy.decode(policy),
        dataset_id=ids.to_str(dataset_id),
        created_at=clock.format_instant(created_at),
        last_updated_at=clock.format_instant(updated_at),
        created_by=created_by,
        last_updated_by=updated_by,
    )


def compare_rows(
    dataset_id: bytes,
    stored: Mapping[bytes, Sequence[Any]],
    by_dataset_item: dict[bytes, list[FullItem]],
    truncate: bool,
) -> list[CompareRow]:
    """The compare view's rows, in the order of `by_dataset_item` (each dataset item with its
    experiments' items), from the dataset items' rows found (`stored`)."""
    found: list[CompareRow] = []
    for dataset_item_id, experiment_items in by_dataset_item.items():
        row = stored.get(dataset_item_id)
        key = ids.to_str(dataset_item_id)
        if row is None:  # deleted, or never stored here: Opik's LEFT JOIN gives data {}
            found.append(
                CompareRow(
                    id=key,
                    dataset_item_id=key,
                    source=UNSET,
                    data=Raw(b"{}"),
                    description=UNSET,
                    tags=[],
                    experiment_items=experiment_items,
                    dataset_id=ids.to_str(dataset_id),
                    created_at=UNSET,
                    last_updated_at=UNSET,
                    created_by=UNSET,
                    last_updated_by=UNSET,
                )
            )
            continue
        item = dataset_item(row, truncate)
        found.append(
            CompareRow(
                id=key,
                dataset_item_id=key,
                source=item.source,
                data=item.data,
                description=item.description,
                tags=item.tags,
                experiment_items=experiment_items,
                dataset_id=ids.to_str(dataset_id),
                created_at=item.created_at,
                last_updated_at=item.last_updated_at,
                created_by=item.created_by,
                last_updated_by=item.last_updated_by,
            )
        )
    return found


def commit_of(key: bytes) -> str:
    """Opik's commit of a version: the last 8 hex digits of its id (CommitUtils)."""
    return ids.to_str(key)[-8:]


def prompt_version(row: Sequence[Any]) -> PromptVersion:
    """A prompt version from its row: the version's columns, its prompt's template structure,
    then its creation."""
    key, prompt_id, commit, template, metadata, type_, change, tags, structure = row[:9]
    created_at, created_by = row[9:]
    variables = list(dict.fromkeys(_VARIABLE.findall(template))) if type_ == "mustache" else []
    return PromptVersion(
        id=ids.to_str(key),
        prompt_id=ids.to_str(prompt_id),
        commit=commit,
        template=template,
        metadata=UNSET if metadata is None else Raw(metadata.encode()),
        type=type_,
        change_description=UNSET if change is None else change,
        tags=UNSET if tags is None else _tags.decode(tags),
        variables=variables,
        template_structure=structure,
        created_at=clock.format_instant(created_at),
        created_by=created_by,
    )
