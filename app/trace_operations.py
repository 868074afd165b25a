"""The OpenAPI Operations of the trace, span, feedback-score, project and auth routes, with
their examples; app/routes.py declares the routes themselves, in its table."""

import msgspec

from app import payloads, trace_payloads, trace_queries
from app.openapi import ANY_ID, Answer, Operation

# Traces, spans and their scores: ids of their own, so that the examples touch no item's.
TRACE_IDS = [f"0190f5b4-7c1a-7000-8000-0000000001{n:02d}" for n in range(6)]
V7_ID = msgspec.json.schema(payloads.V7Id)
_START = "2024-01-15T09:30:00Z"
_TRACE = {
    "id": TRACE_IDS[0],
    "project_name": "Demo",
    "name": "answer",
    "start_time": _START,
    "input": {"question": "2+2?"},
    "last_updated_at": _START,
}
_SPAN = {
    "id": TRACE_IDS[1],
    "trace_id": TRACE_IDS[0],
    "project_name": "Demo",
    "name": "llm",
    "type": "llm",
    "start_time": _START,
    "usage": {"prompt_tokens": 12},
}
_SCORE = {"id": TRACE_IDS[0], "name": "accuracy", "value": 1, "source": "sdk"}


CREATE_TRACES = Operation(
    "Create or replace 1 to 1000 traces, all or none: the newest last_updated_at wins",
    {204: Answer("Stored, durably")},
    body=trace_payloads.TraceBatch,
    errors={409: "An id belongs to another workspace: nothing is stored"},
    example={"traces": [_TRACE]},
)


SEARCH_TRACES = Operation(
    "A project's traces, newest id first, one JSON object a line",
    {
        200: Answer(
            "One Trace JSON object per line, each line ending with CR LF",
            media_type="application/octet-stream",
            schema={"type": "string"},
            lines=trace_payloads.Trace,
        )
    },
    body=trace_queries.TraceSearch,
    errors={
        400: "Neither `project_name` nor `project_id`; `from_time` not before `to_time`, or "
        "either no instant; `exclude` names an unknown field",
        404: "No project of that name or id in this workspace",
    },
    example={"project_name": "Demo", "limit": 100},
)


_PAGE_400 = (
    "Neither `project_name` nor `project_id`; `filters`, `sorting` or `exclude` not their JSON, "
    "or naming a field that is not sortable or not known; `from_time` not before `to_time`, or "
    "either no instant"
)


GET_TRACES_BY_PROJECT = Operation(
    "A page of a project's traces, newest id first or sorted; an unknown project's page is empty",
    {200: Answer("The page", trace_payloads.TracePage)},
    errors={400: _PAGE_400},
    query=trace_queries.TracesQuery,
)


SEARCH_SPANS = Operation(
    "A project's spans (of one trace and type when given), newest id first, one JSON object a line",
    {
        200: Answer(
            "One Span JSON object per line, each line ending with CR LF",
            media_type="application/octet-stream",
            schema={"type": "string"},
            lines=trace_payloads.Span,
        )
    },
    body=trace_queries.SpanSearch,
    errors={
        400: "Neither `project_name` nor `project_id`; `from_time` not before `to_time`, or "
        "either no instant; `exclude` names an unknown field",
        404: "No project of that name or id in this workspace",
    },
    example={"project_name": "Demo", "trace_id": TRACE_IDS[0], "limit": 100},
)


GET_SPANS_BY_PROJECT = Operation(
    "A page of a project's spans (of one trace and type when given), newest id first or sorted; "
    "an unknown project's page is empty",
    {200: Answer("The page", trace_payloads.SpanPage)},
    errors={400: _PAGE_400},
    query=trace_queries.SpansQuery,
)


SCORE_BATCH_OF_TRACES = Operation(
    "Score 1 to 1000 traces, stored or not yet; a score of a name replaces its author's last",
    {204: Answer("Stored, durably")},
    body=trace_payloads.ScoreBatch,
    errors={409: "An id belongs to another workspace: nothing is stored"},
    example={"scores": [_SCORE]},
)


DELETE_TRACES = Operation(
    "Delete 1 to 1000 traces (of `project_id` only, when given) with their spans and both's "
    "feedback scores; unknown ids are ignored",
    {204: Answer("Deleted, durably")},
    body=trace_payloads.TraceDelete,
    example={"ids": [TRACE_IDS[0], TRACE_IDS[4]]},
)


DELETE_TRACE_BY_ID = Operation(
    "Delete one trace with its spans and both's feedback scores; an unknown id is no error",
    {204: Answer("Deleted, durably")},
    errors={404: "The id is not a UUID"},
    path_parameters={"id": ANY_ID},
)


DELETE_TRACE_FEEDBACK_SCORE = Operation(
    "Delete a trace's feedback score of a name: `author`'s only when given, else every author's",
    {204: Answer("Deleted, durably")},
    body=trace_payloads.ScoreDelete,
    errors={404: "The id is not a UUID"},
    path_parameters={"id": ANY_ID},
    example={"name": "accuracy"},
)


DELETE_SPAN_FEEDBACK_SCORE = Operation(
    "Delete a span's feedback score of a name: `author`'s only when given, else every author's",
    {204: Answer("Deleted, durably")},
    body=trace_payloads.ScoreDelete,
    errors={404: "The id is not a UUID"},
    path_parameters={"id": ANY_ID},
    example={"name": "accuracy"},
)


CREATE_TRACE = Operation(
    "Create or replace one trace",
    {201: Answer("Stored", headers={"Location": "The trace's URL"})},
    body=trace_payloads.TraceCreate,
    errors={409: "The id belongs to another workspace"},
    example={**_TRACE, "id": TRACE_IDS[2]},
)


GET_TRACE_BY_ID = Operation(
    "Read one trace, with its span counts, usage, cost and feedback scores",
    {200: Answer("The trace", trace_payloads.Trace)},
    errors={404: "No such trace in this workspace (or only its PATCH so far)"},
    path_parameters={"id": ANY_ID},
)


UPDATE_TRACE = Operation(
    "Replace fields of a trace; one not created yet is completed by its create",
    {204: Answer("Stored, durably")},
    body=trace_payloads.TraceUpdate,
    errors={
        404: "The id is not a UUID",
        409: "The id belongs to another workspace",
    },
    path_parameters={"id": V7_ID},
    example={"project_name": "Demo", "end_time": _START, "output": {"answer": "4"}},
)


CREATE_SPANS = Operation(
    "Create or replace 1 to 1000 spans, all or none: the newest last_updated_at wins",
    {204: Answer("Stored, durably")},
    body=trace_payloads.SpanBatch,
    errors={409: "An id belongs to another workspace: nothing is stored"},
    example={"spans": [_SPAN]},
)


SCORE_BATCH_OF_SPANS = Operation(
    "Score 1 to 1000 spans, stored or not yet; a score of a name replaces its author's last",
    {204: Answer("Stored, durably")},
    body=trace_payloads.ScoreBatch,
    errors={409: "An id belongs to another workspace: nothing is stored"},
    example={"scores": [{**_SCORE, "id": TRACE_IDS[1]}]},
)


CREATE_SPAN = Operation(
    "Create or replace one span",
    {201: Answer("Stored", headers={"Location": "The span's URL"})},
    body=trace_payloads.SpanCreate,
    errors={409: "The id belongs to another workspace"},
    example={**_SPAN, "id": TRACE_IDS[3]},
)


GET_SPAN_BY_ID = Operation(
    "Read one span",
    {200: Answer("The span", trace_payloads.Span)},
    errors={404: "No such span in this workspace (or only its PATCH so far)"},
    path_parameters={"id": ANY_ID},
)


UPDATE_SPAN = Operation(
    "Replace fields of a span; one not created yet is completed by its create",
    {204: Answer("Stored, durably")},
    body=trace_payloads.SpanUpdate,
    errors={
        404: "The id is not a UUID",
        409: "The id belongs to another workspace",
    },
    path_parameters={"id": V7_ID},
    example={"trace_id": TRACE_IDS[0], "end_time": _START, "output": {"text": "4"}},
)


RETRIEVE_PROJECT = Operation(
    "Find a project by name, case-insensitively",
    {
        200: Answer("The project", trace_payloads.Project),
        404: Answer("`Project not found`", payloads.ValidationErrors),
    },
    body=trace_payloads.ProjectRetrieve,
    example={"name": "Demo"},
)


GET_PROJECT_BY_ID = Operation(
    "Read one project",
    {
        200: Answer("The project", trace_payloads.Project),
        404: Answer(
            "`Project not found`; a bare 404 when the id is not a UUID",
            schema={
                "anyOf": [
                    {"$ref": "#/components/schemas/ValidationErrors"},
                    {"$ref": "#/components/schemas/Error"},
                ]
            },
        ),
    },
    path_parameters={"id": ANY_ID},
)


CHECK_ACCESS = Operation(
    "Whether the request's key and workspace are accepted", {204: Answer("Yes")}
)


GET_WORKSPACE_NAME = Operation(
    "The request's workspace",
    {200: Answer("Its name", trace_payloads.WorkspaceName)},
)
