"""The Structs of prompts and their versions, as far as experiments link to them: what
`opik.Prompt(...)` and `create_experiment(prompts=[...])` send and read; no I/O here."""

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from app.payloads import MAX_TAGS, AnyId, Instant, Json, Name, NotBlank, OutId, V7Id

PromptType = Literal["mustache", "jinja2", "python"]
TemplateStructure = Literal["text", "chat"]
PromptName = Annotated[NotBlank, Meta(min_length=1, max_length=255)]
Tags = Annotated[list[Name], Meta(max_length=MAX_TAGS)]


class PromptVersionWrite(Struct):
    """A version's content; the server gives it its id and commit."""

    template: Annotated[NotBlank, Meta(min_length=1)]
    metadata: Json | UnsetType = UNSET
    type: PromptType = "mustache"
    change_description: str | None = None
    tags: Tags | None = None


class PromptVersionCreate(Struct):
    """A new version of the prompt of that name, which is made when missing."""

    name: PromptName
    version: PromptVersionWrite
    template_structure: TemplateStructure = "text"
    project_name: str | None = None
    project_id: AnyId | None = None


class PromptWrite(Struct):
    """A new prompt with its first version."""

    name: PromptName
    template: Annotated[NotBlank, Meta(min_length=1)]
    id: V7Id | None = None
    description: Annotated[str, Meta(max_length=255)] | None = None
    metadata: Json | UnsetType = UNSET
    change_description: str | None = None
    type: PromptType = "mustache"
    template_structure: TemplateStructure = "text"
    tags: Tags | None = None
    project_name: str | None = None


class PromptVersionQuery(Struct):
    """A prompt's version by name: the one of `commit`, else the latest."""

    name: PromptName
    commit: str | None = None
    project_name: str | None = None
    environment: str | None = None
    version_number: str | None = None


class PromptVersion(Struct):
    """A version as Opik's PromptVersionDetail shows it. `commit` is the first 8 hex digits
    of its id; `variables` are the template's mustache names."""

    id: OutId
    prompt_id: OutId
    commit: str
    template: str
    metadata: Json | UnsetType
    type: PromptType
    change_description: str | UnsetType
    tags: list[str] | UnsetType
    variables: list[str]
    template_structure: TemplateStructure
    created_at: Instant
    created_by: str
