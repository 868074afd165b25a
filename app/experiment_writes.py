"""What every engine writes alike for an experiment: its prompt-version links completed from
the stored versions, and the columns an update changes."""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import msgspec

from app import ids
from app.payloads import MAX_TAGS
from app.records import ExperimentChange, TooManyTags

# A stored version's (commit, prompt id, prompt name) by version id, in the write's workspace.
Versions = Callable[[bytes], Awaitable[Iterable[Sequence[Any]]]]


async def linked(text: str | None, versions: Versions) -> str | None:
    """The prompt-version links of `text` (one object or a list), each with its version's
    commit, prompt id and prompt name when the version is stored (Opik's PromptVersionLink,
    read back)."""
    if text is None:
        return None
    value = msgspec.json.decode(text)
    for link in value if isinstance(value, list) else [value]:
        key = ids.parse(str(link.get("id"))) if isinstance(link, dict) else None
        if key is None:
            continue
        for commit, prompt_id, name in await versions(key):
            link.update(commit=commit, prompt_id=ids.to_str(prompt_id), prompt_name=name)
    return msgspec.json.encode(value).decode()


def changed_columns(change: ExperimentChange, now: int, user: str) -> dict[str, Any]:
    """The columns an update sets in every experiment it names, by name."""
    columns: dict[str, Any] = {"last_updated_at": now, "last_updated_by": user}
    for column in ("name", "metadata", "type", "status"):
        if getattr(change, column) is not None:
            columns[column] = getattr(change, column)
    if change.scores_given:
        columns["experiment_scores"] = change.experiment_scores
    return columns


def changed_tags(change: ExperimentChange, stored: str | None) -> dict[str, Any]:
    """The tags column of one experiment after the change (`stored`: its tags now), or
    nothing when the change leaves them; TooManyTags past MAX_TAGS."""
    tags = change.tags_of(msgspec.json.decode(stored) if stored else [])
    if tags is None:
        return {}
    if len(tags) > MAX_TAGS:
        raise TooManyTags(TooManyTags.MESSAGE)
    return {"tags": msgspec.json.encode(tags).decode() if tags else None}
