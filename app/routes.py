"""Every route of the API, declared once: its method, its path (served under each prefix),
its endpoint, Opik's operationId and the Operation the OpenAPI document describes it with."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app import dataset_payloads, datasets, experiments, health, items, openapi, payloads
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
        "/v1/private/experiments/{id}",
        experiments.get_experiment,
        "getExperimentById",
        Operation(
            "Read one experiment",
            {200: Answer("The experiment", payloads.Experiment)},
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
    # Datasets and their items (issue 11). Literal paths before {id}.
    Endpoint(
        "POST",
        "/v1/private/datasets",
        datasets.create_dataset,
        "createDataset",
        Operation(
            "Create a dataset; its name is unique in the workspace, its project found or made",
            {201: Answer("Created", headers={"Location": "The new dataset's URL"})},
            body=dataset_payloads.DatasetWrite,
            errors={409: "The id belongs to another workspace"},
            listed_errors={409: "a dataset of that name exists"},
            example={"name": "questions", "project_name": "Demo", "description": None},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/datasets/retrieve",
        datasets.retrieve_dataset,
        "getDatasetByIdentifier",
        Operation(
            "Find a dataset by name, with its counts",
            {200: Answer("The dataset", dataset_payloads.Dataset)},
            body=dataset_payloads.DatasetIdentifier,
            listed_errors={404: "No dataset of that name in this workspace"},
            example={"dataset_name": "questions", "project_name": None},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/datasets/delete",
        datasets.delete_dataset_by_name,
        "deleteDatasetByName",
        Operation(
            "Delete a dataset by name; its items stay, as in Opik",
            {204: Answer("Deleted")},
            body=dataset_payloads.DatasetIdentifier,
            listed_errors={404: "No dataset of that name in this workspace"},
            example={"dataset_name": "questions"},
        ),
    ),
    Endpoint(
        "PUT",
        "/v1/private/datasets/items",
        datasets.upsert_dataset_items,
        "createOrUpdateDatasetItems",
        Operation(
            "Create 1 to 1000 dataset items or replace those whose id exists, all or none; the "
            "dataset named is made when missing",
            {204: Answer("Stored, durably")},
            body=dataset_payloads.DatasetItemBatch,
            errors={409: "An id belongs to another workspace: nothing is stored"},
            listed_errors={404: "`dataset_id` names no dataset of this workspace"},
            example={
                "dataset_name": "questions",
                "items": [{"id": _EXAMPLE_IDS[2], "source": "sdk", "data": {"input": "2+2"}}],
            },
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/datasets/items/stream",
        datasets.stream_dataset_items,
        "streamDatasetItems",
        Operation(
            "A dataset's items, newest id first, one JSON object a line",
            {
                200: Answer(
                    "One DatasetItem JSON object per line, each line ending with CR LF; empty "
                    "when there is no dataset of that name",
                    media_type="application/octet-stream",
                    schema={"type": "string"},
                    lines=dataset_payloads.DatasetItem,
                )
            },
            body=dataset_payloads.DatasetItemStreamRequest,
            example={"dataset_name": "questions", "steam_limit": 100},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/datasets/items/delete",
        datasets.delete_dataset_items,
        "deleteDatasetItems",
        Operation(
            "Delete dataset items by id, or every item of a dataset; unknown ids are ignored",
            {204: Answer("Deleted")},
            body=dataset_payloads.DatasetItemsDelete,
            example={"item_ids": _EXAMPLE_IDS[2:3]},
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/datasets/{id}",
        datasets.get_dataset,
        "getDatasetById",
        Operation(
            "Read one dataset, with its counts",
            {200: Answer("The dataset", dataset_payloads.Dataset)},
            errors={404: "The id is not a UUID"},
            listed_errors={404: "No such dataset in this workspace"},
            path_parameters={"id": ANY_ID},
        ),
    ),
    Endpoint(
        "DELETE",
        "/v1/private/datasets/{id}",
        datasets.delete_dataset,
        "deleteDataset",
        Operation(
            "Delete a dataset by id; its items stay; an unknown id is no error",
            {204: Answer("Deleted")},
            errors={404: "The id is not a UUID"},
            path_parameters={"id": ANY_ID},
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/datasets/{id}/versions",
        datasets.list_dataset_versions,
        "listDatasetVersions",
        Operation(
            "Dataset versions: versioning is off here, answered as Opik answers with it off",
            {403: Answer("Dataset versioning is not enabled", payloads.Error)},
            errors={404: "The id is not a UUID"},
            path_parameters={"id": ANY_ID},
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/datasets/{id}/items",
        datasets.get_dataset_items,
        "getDatasetItems",
        Operation(
            "A page of a dataset's items, newest id first",
            {200: Answer("The page", dataset_payloads.DatasetItemPage)},
            errors={404: "The id is not a UUID"},
            path_parameters={"id": ANY_ID},
            query=dataset_payloads.DatasetItemsQuery,
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/datasets/{id}/items/experiments/items",
        datasets.compare_dataset_items,
        "findDatasetItemsWithExperimentItems",
        Operation(
            "The compare view: a page of the dataset items the experiments have items for, "
            "each with those items, their traces' input and output and their scores",
            {200: Answer("The page", dataset_payloads.ComparePage)},
            errors={
                400: "`experiment_ids` is not a JSON array of UUIDs, or it is empty",
                404: "The id is not a UUID",
            },
            path_parameters={"id": ANY_ID},
            query=dataset_payloads.CompareQuery,
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
