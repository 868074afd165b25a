"""Traces, spans and projects as every engine answers them, from the rows it reads: a trace with
what its spans and scores sum to, a span with its scores, a project. Each engine's statements
give their rows in the column order named here."""

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from msgspec import UNSET

from app import clock, ids
from app.experiment_answers import id_or_unset, raw_or_unset
from app.payloads import FeedbackScore
from app.records import duration_ms, truncate_images
from app.trace_payloads import Project, Span, Trace

# The columns of a trace row and of a span row, in the order `trace` and `span` unpack them.
_TRACE = (
    "id project_id name start_time end_time input output metadata tags error_info created_at "
    "last_updated_at created_by last_updated_by ttft thread_id hidden source environment"
)
_SPAN = (
    "id project_id trace_id parent_span_id name type start_time end_time input output metadata "
    "model provider tags usage error_info created_at last_updated_at created_by last_updated_by "
    "total_estimated_cost total_estimated_cost_version ttft source environment"
)
TRACE_COLUMNS, SPAN_COLUMNS = tuple(_TRACE.split()), tuple(_SPAN.split())
PROJECT_COLUMNS = "id, name, created_at, created_by, last_updated_at, last_updated_by"
MAX_TRACE_SPANS = 500  # the spans of a trace the web UI shows, at most
# A trace's spans as counted: how many, how many of type llm, whether any is a tool, their
# summed cost (None: none has one).
NO_SPANS = (0, 0, False, None)


def or_unset(value: Any) -> Any:
    return UNSET if value is None else value


def instant_or_unset(ns: int | None) -> str | Any:
    return UNSET if ns is None else clock.format_instant(ns)


def project(row: Sequence[Any]) -> Project:
    """A row of PROJECT_COLUMNS."""
    key, name, created_at, created_by, updated_at, updated_by = row
    return Project(
        ids.to_str(key), name, "private", clock.format_instant(created_at), created_by,
        clock.format_instant(updated_at), updated_by,
    )  # fmt: skip


def usage_totals(rows: Iterable[Sequence[Any]]) -> dict[bytes, dict[str, int]]:
    """Each trace's usage, from rows of (trace id, key, the key's total over its spans) in
    the order the answer lists the keys; a total that is no finite number is left out."""
    usage: dict[bytes, dict[str, int]] = {}
    for trace_id, name, total in rows:
        if math.isfinite(total):
            usage.setdefault(trace_id, {})[name] = int(total)
    return usage


def _shown(text: str | None, truncate: bool) -> str | None:
    return text and truncate_images(text) if truncate else text


def trace(
    row: Sequence[Any],
    counts: Sequence[Any],
    providers: list[str] | None,
    usage: dict[str, int] | None,
    scores: list[FeedbackScore] | None,
    truncate: bool,
) -> Trace:
    """A row of TRACE_COLUMNS with its spans' counts (as NO_SPANS), providers and usage and
    its scores; images truncated in input, output and metadata when `truncate`."""
    (key, project_id, name, start, end, input_, output, metadata, tags, error_info,
     created_at, updated_at, created_by, updated_by, ttft, thread_id, hidden, source,
     environment) = row  # fmt: skip
    span_count, llm_count, has_tool, cost = counts
    return Trace(
        id=ids.to_str(key),
        project_id=ids.to_str(project_id),
        name=or_unset(name),
        start_time=clock.format_instant(start),
        end_time=instant_or_unset(end),
        input=raw_or_unset(_shown(input_, truncate)),
        output=raw_or_unset(_shown(output, truncate)),
        metadata=raw_or_unset(_shown(metadata, truncate)),
        tags=raw_or_unset(tags),
        error_info=raw_or_unset(error_info),
        usage=UNSET if usage is None else usage,
        created_at=clock.format_instant(created_at),
        last_updated_at=clock.format_instant(updated_at),
        created_by=created_by,
        last_updated_by=updated_by,
        feedback_scores=UNSET if scores is None else scores,
        total_estimated_cost=or_unset(cost),
        span_count=span_count,
        duration=duration_ms(start, end),
        ttft=or_unset(ttft),
        thread_id=or_unset(thread_id),
        visibility_mode="hidden" if hidden else "default",
        llm_span_count=int(llm_count),
        has_tool_spans=bool(has_tool),
        providers=UNSET if providers is None else providers,
        source=or_unset(source),
        environment=or_unset(environment),
    )


def traces_in_order(
    keys: Sequence[bytes],
    rows: Sequence[Sequence[Any]],
    span_counts: Iterable[Sequence[Any]],
    span_providers: Iterable[Sequence[Any]],
    span_usage: Iterable[Sequence[Any]],
    scores: dict[bytes, list[FeedbackScore]],
    truncate: bool,
) -> list[Trace]:
    """The traces of `rows`, in the order of `keys`, each with what its spans' rows count,
    name as providers and sum as usage (each by trace id first), and its scores."""
    counts = {row[0]: row[1:] for row in span_counts}
    providers: dict[bytes, list[str]] = {}
    for trace_id, provider in span_providers:
        providers.setdefault(trace_id, []).append(provider)
    usage = usage_totals(span_usage)
    by_id = {
        row[0]: trace(
            row,
            counts.get(row[0], NO_SPANS),
            providers.get(row[0]),
            usage.get(row[0]),
            scores.get(row[0]),
            truncate,
        )
        for row in rows
    }
    return [by_id[key] for key in keys if key in by_id]


def _int_usage(text: str) -> dict[str, int]:
    loaded = json.loads(text)
    return {str(k): int(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def span(row: Sequence[Any], scores: list[FeedbackScore] | None, truncate: bool) -> Span:
    """A row of SPAN_COLUMNS with its scores, images truncated as `trace` truncates them."""
    (key, project_id, trace_id, parent, name, kind, start, end, input_, output, metadata,
     model, provider, tags, usage, error_info, created_at, updated_at, created_by,
     updated_by, cost, cost_version, ttft, source, environment) = row  # fmt: skip
    return Span(
        id=ids.to_str(key),
        project_id=ids.to_str(project_id),
        trace_id=ids.to_str(trace_id),
        parent_span_id=id_or_unset(parent),
        name=or_unset(name),
        type=kind or "general",
        start_time=clock.format_instant(start),
        end_time=instant_or_unset(end),
        input=raw_or_unset(_shown(input_, truncate)),
        output=raw_or_unset(_shown(output, truncate)),
        metadata=raw_or_unset(_shown(metadata, truncate)),
        model=or_unset(model),
        provider=or_unset(provider),
        tags=raw_or_unset(tags),
        usage=UNSET if usage is None else _int_usage(usage),
        error_info=raw_or_unset(error_info),
        created_at=clock.format_instant(created_at),
        last_updated_at=clock.format_instant(updated_at),
        created_by=created_by,
        last_updated_by=updated_by,
        feedback_scores=UNSET if scores is None else scores,
        total_estimated_cost=or_unset(cost),
        total_estimated_cost_version=or_unset(cost_version),
        duration=duration_ms(start, end),
        ttft=or_unset(ttft),
        source=or_unset(source),
        environment=or_unset(environment),
    )
