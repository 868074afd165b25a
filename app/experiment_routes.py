"""The routes of the experiments resource (issue 12), declared as app/routes.py declares
every route: the searches, which come before /experiments/{id}, and the rest."""

from app import experiment_payloads, experiments, groups, payloads
from app.experiment_payloads import GroupsWithAggregations
from app.openapi import ANY_ID, EXAMPLE_IDS, Answer, Endpoint, Operation

_EXAMPLE_IDS = EXAMPLE_IDS

# Literal paths and searches matched before GET /v1/private/experiments/{id}.
SEARCHES = (
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
            errors={400: "`groups` is missing or not a valid grouping, or `filters` is not valid"},
            query=experiment_payloads.GroupsQuery,
        ),
    ),
    Endpoint(
        "GET",
        "/v1/private/experiments/groups/aggregations",
        groups.find_group_aggregations,
        "findExperimentGroupsAggregations",
        Operation(
            "The experiments' groups, as /groups makes them, each with the aggregates of its "
            "experiments",
            {200: Answer("Each group's label, aggregates and subgroups", GroupsWithAggregations)},
            errors={400: "`groups` is missing or not a valid grouping, or `filters` is not valid"},
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
)

# Stream, finish, execute, PATCH (one and batch).
RESOURCE = (
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
)
