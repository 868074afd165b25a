"""Every route of the API, declared once: its method, its path (served under each prefix),
its endpoint, Opik's operationId and the Operation the OpenAPI document describes it with."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app import experiment_payloads, experiments, groups, health, items, openapi, payloads
from app.openapi import ANY_ID, Answer, ApiRoute, Operation

# Opik's backend serves /v1/private/...; the SDK calls the same paths under /api/
# (its local default base URL is http://localhost:5173/api/). CONTRACT.md, "Addresses".
PREFIXES = ("", "/api")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    endpoint: Callable[..., Any]
    name: str  # Opik's operationId
    operation: Operation


_EXAMPLE_IDS = [f"0190f5b4-7c1a-7000-8000-00000000000{digit}" for digit in "abcd"]

# The router tries routes in order, so the item read, the hot path, comes first; it is a bare
# ASGI object, not a function (items.ReadItem). A literal path must come before a path
# parameter of the same method that would match it.
ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/private/experiments/items/{id}",
        items.get_item,
        "getExperimentItemById",
        Operation(
            "Read one experiment item",
            {200: Answer("The item", payloads.Item)},
            errors={404: "No such item in this workspace, or the id is not a UUID"},
            path_parameters={"id": ANY_ID},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/experiments/items",
        items.create_items,
        "createExperimentItems",
        Operation(
            "Create or update 1 to 1000 experiment items, all or none",
            {204: Answer("Stored, durably")},
            body=payloads.ItemBatch,
            errors={409: "An id belongs to another workspace: nothing is stored"},
            example={
                "experiment_items": [
                    {
                        "id": _EXAMPLE_IDS[0],
                        "experiment_id": _EXAMPLE_IDS[1],
                        "dataset_item_id": _EXAMPLE_IDS[2],
                        "trace_id": _EXAMPLE_IDS[3],
                        "project_name": "Demo",
                    }
                ]
            },
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/experiments/items/delete",
        items.delete_items,
        "deleteExperimentItems",
        Operation(
            "Delete 1 to 1000 experiment items by id; unknown ids are ignored",
            {204: Answer("Deleted")},
            body=payloads.IdList,
            example={"ids": _EXAMPLE_IDS[:1]},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/experiments/items/stream",
        items.stream_items,
        "streamExperimentItems",
        Operation(
            "The items of every experiment of a name, newest id first, one JSON object a line",
            {
                200: Answer(
                    "One FullItem JSON object per line, each line ending with CR LF; empty when "
                    "no experiment has the name",
                    media_type="application/octet-stream",
                    schema={"type": "string"},
                    lines=payloads.FullItem,
                )
            },
            body=payloads.StreamRequest,
            example={"experiment_name": "nightly", "limit": 100},
        ),
    ),
    Endpoint(
        "PUT",
        "/v1/private/experiments/items/bulk",
        items.record_bulk,
        "experimentItemsBulk",
        Operation(
            "Record an evaluation run: the experiment, 1 to 1000 items with their traces, spans "
            "and feedback scores, all or none",
            {204: Answer("Stored, durably")},
            body=payloads.BulkUpload,
            errors={
                409: "`experiment_id` names an experiment of another dataset (`Experiment dataset "
                "mismatch`), or an id belongs to another workspace: nothing is stored"
            },
            example={
                "experiment_name": "nightly",
                "dataset_name": "questions",
                "items": [
                    {
                        "dataset_item_id": _EXAMPLE_IDS[2],
                        "evaluate_task_result": {"answer": "42"},
                        "feedback_scores": [{"name": "accuracy", "value": 1, "source": "sdk"}],
                    }
                ],
            },
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/experiments",
        experiments.create_experiment,
        "createExperiment",
        Operation(
            "Create an experiment; its dataset and project are found by name or created",
            {201: Answer("Created", headers={"Location": "The new experiment's URL"})},
            body=payloads.ExperimentWrite,
            errors={409: "The id exists already"},
            example={"dataset_name": "questions", "name": "nightly", "project_name": "Demo"},
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/experiments",
        experiments.find_experiments,
        "findExperiments",
        Operation(
            "Find experiments, newest first, a page at a time, with their aggregates",
            {200: Answer("The page", experiment_payloads.ExperimentPage)},
            errors={
                400: "`types`, `experiment_ids` or `sorting` is not the JSON it must be",
            },
            query=experiment_payloads.FindQuery,
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/experiments/groups",
        groups.find_groups,
        "findExperimentGroups",
        Operation(
            "The experiments' groups, level by level: by dataset, project, tag or metadata key",
            {
                200: Answer(
                    "Each level's values (with the dataset's or project's name as `label`) and "
                    "their order",
                    schema={"type": "object"},
                )
            },
            errors={400: "`groups` is missing or not a valid grouping"},
            query=experiment_payloads.GroupsQuery,
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/experiments/feedback-scores/names",
        experiments.find_score_names,
        "findFeedbackScoreNames",
        Operation(
            "The names of the trace scores of the workspace, or of some experiments with their "
            "own scores",
            {200: Answer("The names", experiment_payloads.ScoreNames)},
            errors={400: "`experiment_ids` is not a JSON array of UUIDs"},
            query=experiment_payloads.ScoreNamesQuery,
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/experiments/{id}",
        experiments.get_experiment,
        "getExperimentById",
        Operation(
            "Read one experiment",
            {200: Answer("The experiment", experiment_payloads.Experiment)},
            errors={404: "No such experiment in this workspace, or the id is not a UUID"},
            path_parameters={"id": ANY_ID},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/experiments/delete",
        experiments.delete_experiments,
        "deleteExperimentsById",
        Operation(
            "Delete experiments by id, with their items; unknown ids are ignored",
            {204: Answer("Deleted")},
            body=payloads.IdList,
            example={"ids": _EXAMPLE_IDS[1:2]},
        ),
    ),
    # Experiments resource (issue 12)
    Endpoint(
        "POST",
        "/v1/private/experiments/stream",
        experiments.stream_experiments,
        "streamExperiments",
        Operation(
            "The experiments whose name holds a text (case-insensitive), newest id first, one "
            "JSON object a line, with their aggregates",
            {
                200: Answer(
                    "One Experiment JSON object per line, each line ending with CR LF; empty "
                    "when none matches",
                    media_type="application/octet-stream",
                    schema={"type": "string"},
                    lines=experiment_payloads.Experiment,
                )
            },
            body=experiment_payloads.ExperimentStreamRequest,
            example={"name": "nightly", "limit": 100},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/experiments/finish",
        experiments.finish_experiments,
        "finishExperiments",
        Operation(
            "Mark experiments finished: the running ones become completed; unknown ids are ignored",
            {204: Answer("Finished")},
            body=payloads.IdList,
            example={"ids": _EXAMPLE_IDS[1:2]},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/experiments/execute",
        experiments.execute_experiment,
        "executeExperiment",
        Operation(
            "Run an experiment on the server: not offered, it needs an LLM provider",
            {
                501: Answer(
                    "Not offered; record experiments with the SDK's evaluate()", payloads.Error
                )
            },
        ),
    ),
    Endpoint(
        "PATCH",
        "/v1/private/experiments/batch",
        experiments.update_experiments,
        "batchUpdateExperiments",
        Operation(
            "Apply one update to 1 to 1000 experiments; ids this workspace does not hold are "
            "skipped",
            {204: Answer("Updated")},
            body=experiment_payloads.ExperimentBatchUpdate,
            example={"ids": _EXAMPLE_IDS[1:2], "update": {"tags_to_add": ["reviewed"]}},
        ),
    ),
    Endpoint(
        "PATCH",
        "/v1/private/experiments/{id}",
        experiments.update_experiment,
        "updateExperiment",
        Operation(
            "Update an experiment: name, metadata, tags, type, status, experiment scores",
            {204: Answer("Updated")},
            body=experiment_payloads.ExperimentUpdate,
            errors={404: "No such experiment in this workspace, or the id is not a UUID"},
            path_parameters={"id": ANY_ID},
            example={"name": "nightly-2", "metadata": {"model": "gpt-4o"}},
        ),
    ),
    Endpoint(
        "GET",
        "/is-alive/ping",
        health.ping,
        "isAlive",
        Operation(
            "Whether this worker can read its database",
            {
                200: Answer("Healthy", payloads.Health),
                500: Answer("The database cannot be read", payloads.Health),
            },
            identity=False,
        ),
    ),
    Endpoint(
        "GET",
        "/is-alive/ver",
        health.version,
        "version",
        Operation(
            "The running release",
            {200: Answer("The version", payloads.Version)},
            identity=False,
        ),
    ),
    Endpoint(
        "GET",
        "/openapi.json",
        openapi.get_openapi,
        "getOpenApiDocument",
        Operation(
            "This document",
            {
                200: Answer(
                    "The OpenAPI 3.1 document of every served route", schema={"type": "object"}
                )
            },
            identity=False,
        ),
    ),
)


def routes() -> list[ApiRoute]:
    # Flat routes rather than two Mounts: one regex match per route tried, no nesting.
    return [
        ApiRoute(prefix, e.path, e.method, e.endpoint, e.name, e.operation)
        for prefix in PREFIXES
        for e in ENDPOINTS
    ]


# Each operation by its path (without a prefix) and method.
OPERATIONS = {(e.path, e.method): e.operation for e in ENDPOINTS}
