"""GET /v1/private/experiments/groups and /groups/aggregations: the experiments find would
answer, grouped level by level by dataset, project, tag or a metadata key, with each group's
aggregates (opik-reference/experiments.md §9-10)."""

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from app import experiment_checks
from app.body import decode_query
from app.context import acting
from app.errors import JSON, ApiError
from app.experiment_payloads import (
    Duration,
    Experiment,
    FindQuery,
    GroupAggregations,
    GroupsQuery,
    GroupsWithAggregations,
    GroupWithAggregations,
    ScoreAverage,
)
from app.filters import json_steps
from app.payloads import encoder
from app.store import Store

FIELDS = {"metadata": "dictionary", "dataset_id": "string", "tags": "list", "project_id": "string"}
DELETED = "__DELETED"  # Opik's label of a group whose dataset or project is gone
_ALL = 2**31 - 1


def _levels(raw: str) -> list[tuple[str, str]]:
    """The (field, key) of each level; 400 with Opik's messages otherwise."""
    try:
        levels = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError(400, f"Invalid grouping query parameter '{raw}'") from None
    if not isinstance(levels, list) or not all(isinstance(g, dict) for g in levels):
        raise ApiError(400, f"Invalid grouping query parameter '{raw}'")
    if not levels:
        raise ApiError(400, "At least one grouping field must be specified")
    found = []
    for level in levels:
        field, key, kind = level.get("field"), level.get("key"), level.get("type")
        if not isinstance(field, str) or field not in FIELDS:
            raise ApiError(
                400,
                f"Invalid grouping field: {field}. "
                "Supported fields are: [metadata, dataset_id, tags, project_id]",
            )
        if kind is not None and kind != FIELDS[field]:
            raise ApiError(400, f"Invalid field type '{str(kind).upper()}' for field '{field}'")
        if field == "metadata" and not (isinstance(key, str) and key.strip()):
            raise ApiError(400, "Key must be specified for json field 'metadata'")
        found.append((field, key if isinstance(key, str) else ""))
    return found


# Stored metadata is the client's JSON text, which may hold a number past a double's range
# (1e999): read as infinity, as the engines' JSON functions read it, not refused.
_METADATA = msgspec.json.Decoder(float_hook=float)


def _metadata_value(e: Experiment, key: str) -> str:
    if isinstance(e.metadata, msgspec.UnsetType):
        return ""
    value: Any = _METADATA.decode(bytes(e.metadata))
    for step in json_steps(key):
        value = value.get(step) if isinstance(value, dict) else None
    if value is None or isinstance(value, (dict, list)):
        return "" if value is None else msgspec.json.encode(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _values(e: Experiment, field: str, key: str) -> list[tuple[str, str | None]]:
    """The experiment's groups at one level: (value, label), the label None where it is the
    value itself."""
    if field == "dataset_id":
        return [(e.dataset_id, e.dataset_name if isinstance(e.dataset_name, str) else DELETED)]
    if field == "project_id":
        if isinstance(e.project_id, msgspec.UnsetType):
            return [("", DELETED)]
        return [(e.project_id, e.project_name if isinstance(e.project_name, str) else DELETED)]
    if field == "tags":
        tags = [] if isinstance(e.tags, msgspec.UnsetType) else msgspec.json.decode(bytes(e.tags))
        return [(str(tag), None) for tag in tags] or [("", None)]
    return [(_metadata_value(e, key), None)]


@dataclasses.dataclass
class _Group:
    """A group of one level: its label (None where it is the value), its experiments by id
    (each once, whatever the tags) and its subgroups by value."""

    label: str | None
    members: dict[str, Experiment] = dataclasses.field(default_factory=dict)
    groups: dict[str, "_Group"] = dataclasses.field(default_factory=dict)


async def _grouped(
    request: Request, store: Store, workspace: str
) -> tuple[dict[str, _Group], list[dict[str, str]]]:
    """The groups of the request's experiments, and per level each label's newest id."""
    if not request.query_params.get("groups", "").strip():
        raise ApiError(400, "Required query parameter 'groups' is missing")
    query = decode_query(request, GroupsQuery)
    levels = _levels(query.groups)
    find = FindQuery(
        size=_ALL,
        name=query.name,
        types=query.types,
        project_id=query.project_id,
        project_deleted=query.project_deleted,
        filters=query.filters,
    )
    found, _ = await store.find_experiments(workspace, experiment_checks.find_query(find))
    content: dict[str, _Group] = {}
    # Each level's labels with their newest experiment's id: ids are UUID v7, ordered by time.
    latest: list[dict[str, str]] = [{} for _ in levels]
    for e in found:
        nodes = [content]
        for depth, (field_name, key) in enumerate(levels):
            children = []
            for node in nodes:
                for value, label in _values(e, field_name, key):
                    group = node.setdefault(value, _Group(label))
                    group.members[e.id] = e
                    shown = value if label is None else label
                    if latest[depth].get(shown, "") < e.id:
                        latest[depth][shown] = e.id
                    children.append(group.groups)
            nodes = children
    return content, latest


def _shown(groups: dict[str, _Group]) -> dict[str, Any]:
    return {
        value: ({} if g.label is None else {"label": g.label}) | {"groups": _shown(g.groups)}
        for value, g in groups.items()
    }


async def find_groups(request: Request) -> Response:
    identity, store = acting(request)
    content, latest = await _grouped(request, store, identity.workspace)
    details = []
    for seen in latest:  # newest group first, then by name
        by_name = sorted(seen)
        details.append({"group_sorting": sorted(by_name, key=seen.__getitem__, reverse=True)})
    body = {"content": _shown(content), "details": {"groups_details": details}}
    return Response(encoder.encode(body), media_type=JSON)


def _number(value: float) -> float:
    # The contract's plain JSON numbers: 2 rather than 2.0.
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _means(pairs: Iterable[tuple[str, float]]) -> list[ScoreAverage]:
    """Per name, the mean of its values, by name."""
    values: dict[str, list[float]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return [ScoreAverage(n, _number(math.fsum(v) / len(v))) for n, v in sorted(values.items())]


def _experiment_scores(e: Experiment) -> list[tuple[str, float]]:
    if isinstance(e.experiment_scores, msgspec.UnsetType):
        return []
    scores = msgspec.json.decode(bytes(e.experiment_scores))
    found = []
    for score in scores if isinstance(scores, list) else ():
        name, value = (
            (score.get("name"), score.get("value")) if isinstance(score, dict) else ("", "")
        )
        if (
            isinstance(name, str)
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            found.append((name, float(value)))
    return found


def _value(value: float | msgspec.UnsetType) -> float:
    return 0.0 if isinstance(value, msgspec.UnsetType) else value


def _aggregations(members: list[Experiment], last_level: bool) -> GroupAggregations:
    """Opik's AggregationData over the group's experiments (each once)."""
    cost = math.fsum(_value(e.total_estimated_cost) for e in members)
    cost_avg = math.fsum(_value(e.total_estimated_cost_avg) for e in members) / len(members)
    timed = [e.duration for e in members if isinstance(e.duration, Duration)]
    duration: Duration | msgspec.UnsetType = msgspec.UNSET
    if timed:
        duration = Duration(
            *(
                _number(math.fsum(getattr(d, p) for d in timed) / len(timed))
                for p in ("p50", "p90", "p99")
            )
        )
    scores = _means(
        (s.name, s.value)
        for e in members
        if not isinstance(e.feedback_scores, msgspec.UnsetType)
        for s in e.feedback_scores
    )
    own = _means(pair for e in members for pair in _experiment_scores(e))
    return GroupAggregations(
        experiment_count=len(members),
        trace_count=sum(e.trace_count for e in members),
        total_estimated_cost=_number(cost) if cost > 0 or not last_level else msgspec.UNSET,
        total_estimated_cost_avg=_number(cost_avg) if cost_avg > 0 else msgspec.UNSET,
        duration=duration,
        feedback_scores=scores if scores or not last_level else msgspec.UNSET,
        experiment_scores=own if own or not last_level else msgspec.UNSET,
    )


def _with_aggregations(groups: dict[str, _Group]) -> dict[str, GroupWithAggregations]:
    return {
        value: GroupWithAggregations(
            value if g.label is None else g.label,
            _aggregations(list(g.members.values()), last_level=not g.groups),
            _with_aggregations(g.groups),
        )
        for value, g in groups.items()
    }


async def find_group_aggregations(request: Request) -> Response:
    identity, store = acting(request)
    content, _ = await _grouped(request, store, identity.workspace)
    body = GroupsWithAggregations(_with_aggregations(content))
    return Response(encoder.encode(body), media_type=JSON)
