"""Every route of the API, declared once: its method, its path (served under each prefix),
its endpoint, Opik's operationId and the Operation the OpenAPI document describes it with."""

from app import (
    dataset_routes,
    experiment_payloads,
    experiment_routes,
    experiments,
    health,
    items,
    openapi,
    payloads,
    projects,
    traces,
)
from app import trace_operations as ops
from app.openapi import ANY_ID, EXAMPLE_IDS, Answer, ApiRoute, Endpoint, Operation

# Opik's backend serves /v1/private/...; the SDK calls the same paths under /api/
# (its local default base URL is http://localhost:5173/api/). CONTRACT.md, "Addresses".
PREFIXES = ("", "/api")


_EXAMPLE_IDS = EXAMPLE_IDS

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
            writes=False,
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
    *experiment_routes.SEARCHES,
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
    *experiment_routes.RESOURCE,
    *dataset_routes.ENDPOINTS,
    # Traces, spans, feedback scores, projects, auth (issue 11)
    Endpoint(
        "POST", "/v1/private/traces/batch", traces.create_traces, "createTraces", ops.CREATE_TRACES
    ),
    Endpoint(
        "POST", "/v1/private/traces/search", traces.search_traces, "searchTraces", ops.SEARCH_TRACES
    ),
    Endpoint(
        "GET",
        "/v1/private/traces",
        traces.get_traces,
        "getTracesByProject",
        ops.GET_TRACES_BY_PROJECT,
    ),
    Endpoint(
        "PUT",
        "/v1/private/traces/feedback-scores",
        traces.score_traces,
        "scoreBatchOfTraces",
        ops.SCORE_BATCH_OF_TRACES,
    ),
    Endpoint(
        "POST", "/v1/private/traces/delete", traces.delete_traces, "deleteTraces", ops.DELETE_TRACES
    ),
    Endpoint(
        "POST",
        "/v1/private/traces/{id}/feedback-scores/delete",
        traces.delete_trace_score,
        "deleteTraceFeedbackScore",
        ops.DELETE_TRACE_FEEDBACK_SCORE,
    ),
    Endpoint("POST", "/v1/private/traces", traces.create_trace, "createTrace", ops.CREATE_TRACE),
    Endpoint(
        "GET", "/v1/private/traces/{id}", traces.get_trace, "getTraceById", ops.GET_TRACE_BY_ID
    ),
    Endpoint(
        "PATCH", "/v1/private/traces/{id}", traces.update_trace, "updateTrace", ops.UPDATE_TRACE
    ),
    Endpoint(
        "DELETE",
        "/v1/private/traces/{id}",
        traces.delete_trace,
        "deleteTraceById",
        ops.DELETE_TRACE_BY_ID,
    ),
    Endpoint(
        "POST", "/v1/private/spans/batch", traces.create_spans, "createSpans", ops.CREATE_SPANS
    ),
    Endpoint(
        "POST", "/v1/private/spans/search", traces.search_spans, "searchSpans", ops.SEARCH_SPANS
    ),
    Endpoint(
        "GET", "/v1/private/spans", traces.get_spans, "getSpansByProject", ops.GET_SPANS_BY_PROJECT
    ),
    Endpoint(
        "PUT",
        "/v1/private/spans/feedback-scores",
        traces.score_spans,
        "scoreBatchOfSpans",
        ops.SCORE_BATCH_OF_SPANS,
    ),
    Endpoint(
        "POST",
        "/v1/private/spans/{id}/feedback-scores/delete",
        traces.delete_span_score,
        "deleteSpanFeedbackScore",
        ops.DELETE_SPAN_FEEDBACK_SCORE,
    ),
    Endpoint("POST", "/v1/private/spans", traces.create_span, "createSpan", ops.CREATE_SPAN),
    Endpoint("GET", "/v1/private/spans/{id}", traces.get_span, "getSpanById", ops.GET_SPAN_BY_ID),
    Endpoint("PATCH", "/v1/private/spans/{id}", traces.update_span, "updateSpan", ops.UPDATE_SPAN),
    Endpoint(
        "POST",
        "/v1/private/projects/retrieve",
        projects.retrieve_project,
        "retrieveProject",
        ops.RETRIEVE_PROJECT,
    ),
    Endpoint(
        "GET",
        "/v1/private/projects/{id}",
        projects.get_project,
        "getProjectById",
        ops.GET_PROJECT_BY_ID,
    ),
    Endpoint("POST", "/v1/private/auth", projects.check_access, "checkAccess", ops.CHECK_ACCESS),
    Endpoint(
        "GET",
        "/v1/private/auth/workspace",
        projects.get_workspace_name,
        "getWorkspaceName",
        ops.GET_WORKSPACE_NAME,
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
    served = [
        ApiRoute(prefix, e.path, e.method, e.endpoint, e.name, e.operation)
        for prefix in PREFIXES
        for e in ENDPOINTS
    ]
    for route in served:
        if route.param_convertors:
            route.shadow(served)
    return served


# Each operation by its path (without a prefix) and method.
OPERATIONS = {(e.path, e.method): e.operation for e in ENDPOINTS}
