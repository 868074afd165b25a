"""GET /v1/private/experiments/groups: the experiments find would answer, grouped level by
level by dataset, project, tag or a metadata key (opik-reference/experiments.md §9)."""

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from app import checks
from app.body import decode_query
from app.context import acting
from app.errors import JSON, ApiError
from app.experiment_payloads import Experiment, FindQuery, GroupsQuery
from app.filters import json_path
from app.payloads import encoder

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


def _metadata_value(e: Experiment, key: str) -> str:
    if isinstance(e.metadata, msgspec.UnsetType):
        return ""
    value: Any = msgspec.json.decode(bytes(e.metadata))
    for step in json_path(key)[2:].strip('"').split('"."'):
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


async def find_groups(request: Request) -> Response:
    identity, store = acting(request)
    if not request.query_params.get("groups", "").strip():
        raise ApiError(400, "Required query parameter 'groups' is missing")
    query = decode_query(request, GroupsQuery)
    levels = _levels(query.groups)
    find = FindQuery(size=_ALL, name=query.name, types=query.types, project_id=query.project_id)
    found, _ = await store.find_experiments(identity.workspace, checks.find_query(find))
    content: dict[str, Any] = {}
    # Each level's labels with their newest experiment's id: ids are UUID v7, ordered by time.
    latest: list[dict[str, str]] = [{} for _ in levels]
    for e in found:
        nodes = [content]
        for depth, (field, key) in enumerate(levels):
            children = []
            for node in nodes:
                for value, label in _values(e, field, key):
                    child = node.setdefault(value, {"groups": {}} if label is None else {})
                    if label is not None:
                        child.setdefault("label", label)
                        child.setdefault("groups", {})
                    shown = value if label is None else label
                    if latest[depth].get(shown, "") < e.id:
                        latest[depth][shown] = e.id
                    children.append(child["groups"])
            nodes = children
    details = []
    for seen in latest:  # newest group first, then by name
        by_name = sorted(seen)
        details.append({"group_sorting": sorted(by_name, key=seen.__getitem__, reverse=True)})
    body = {"content": content, "details": {"groups_details": details}}
    return Response(encoder.encode(body), media_type=JSON)
