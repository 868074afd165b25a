"""The routes of datasets, their items and prompt versions (issue 11), declared as
app/routes.py declares every route; routes.ENDPOINTS takes them in this order."""

from app import dataset_payloads, datasets, payloads, prompt_payloads, prompts
from app.openapi import ANY_ID, EXAMPLE_IDS, Answer, Endpoint, Operation

_EXAMPLE_IDS = EXAMPLE_IDS

# Literal paths come before a path parameter of the same method that would match them.
ENDPOINTS = (
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
            example={"name": "golden set", "project_name": "Demo", "description": None},
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
            errors={
                400: "`filters` is not a JSON array of Opik's dataset item filters",
                404: "The id is not a UUID",
            },
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
    # Prompt versions (issue 11). Literal paths before {id}.
    Endpoint(
        "POST",
        "/v1/private/prompts",
        prompts.create_prompt,
        "createPrompt",
        Operation(
            "Create a prompt with its first version",
            {201: Answer("Created", headers={"Location": "The new prompt's URL"})},
            body=prompt_payloads.PromptWrite,
            errors={409: "The id belongs to another workspace"},
            listed_errors={409: "a prompt of that name exists"},
            example={"name": "answer", "template": "Answer {{question}}"},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/prompts/versions",
        prompts.create_prompt_version,
        "createPromptVersion",
        Operation(
            "Add a version to the prompt of that name, which is made when missing",
            {200: Answer("The new version", prompt_payloads.PromptVersion)},
            body=prompt_payloads.PromptVersionCreate,
            example={"name": "answer", "version": {"template": "Answer {{question}}"}},
        ),
    ),
    Endpoint(
        "POST",
        "/v1/private/prompts/versions/retrieve",
        prompts.retrieve_prompt_version,
        "retrievePromptVersion",
        Operation(
            "The version of a commit of the prompt of that name, else its latest",
            {200: Answer("The version", prompt_payloads.PromptVersion)},
            body=prompt_payloads.PromptVersionQuery,
            listed_errors={404: "No such prompt or commit in this workspace"},
            example={"name": "answer", "commit": None},
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/prompts/versions/{id}",
        prompts.get_prompt_version,
        "getPromptVersionById",
        Operation(
            "Read one prompt version",
            {200: Answer("The version", prompt_payloads.PromptVersion)},
            errors={404: "The id is not a UUID"},
            listed_errors={404: "No such version in this workspace"},
            path_parameters={"id": ANY_ID},
        ),
    ),
)
