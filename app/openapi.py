"""The OpenAPI 3.1 document: every served route, described from the payload Structs."""

import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from app import __version__, payloads
from app.logs import REQUEST_ID_HEADER
from app.payloads import Error, ValidationErrors, encoder

Schema = dict[str, Any]

JSON = "application/json"
REF = "#/components/schemas/{name}"

# Path parameters and headers have no Struct: their schemas come from the payloads' types.
ANY_ID: Schema = msgspec.json.schema(payloads.AnyId)
OUT_ID: Schema = msgspec.json.schema(payloads.OutId)


@dataclass(frozen=True, slots=True)
class Answer:
    """What an operation answers with one status of its own."""

    description: str
    body: type | None = None
    media_type: str = JSON
    schema: Schema | None = None  # the body's schema when it is no Struct
    lines: type | None = None  # the Struct of each line of a JSON-lines body
    headers: Mapping[str, str] = field(default_factory=dict)  # name: description


@dataclass(frozen=True, slots=True)
class Operation:
    """What one route does with one method. `identity`: the request acts in a workspace
    (Comet-Workspace, workspace_name, the API key: 401 and 403) and so in the database (503).
    `writes`: it writes there too (507); unless set, a method other than GET writes. `body`:
    the Struct the JSON body decodes into (400, 408, 413, 415, 422). `errors`: its own other
    error statuses."""

    summary: str
    answers: Mapping[int, Answer]
    body: type | None = None
    identity: bool = True
    writes: bool | None = None
    errors: Mapping[int, str] = field(default_factory=dict)
    # Statuses answered in Opik's ErrorMessage shape, {"errors": [...]} (errors.Listed); a
    # status in both maps is either shape.
    listed_errors: Mapping[int, str] = field(default_factory=dict)
    path_parameters: Mapping[str, Schema] = field(default_factory=dict)
    query: type[msgspec.Struct] | None = None  # its query parameters, one per field
    example: Any = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route as app/routes.py declares it: served under each prefix."""

    method: str
    path: str
    endpoint: Callable[..., Any]
    name: str  # Opik's operationId
    operation: Operation


# Ids the examples use: UUID version 7, fixed so that the document is the same every time.
EXAMPLE_IDS = [f"0190f5b4-7c1a-7000-8000-00000000000{digit}" for digit in "abcd"]


class ApiRoute(Route):
    """A route of the API: one method of one path under one prefix, its name Opik's
    operationId, and the Operation that describes it."""

    def __init__(
        self,
        prefix: str,
        path: str,
        method: str,
        endpoint: Callable[..., Any],
        name: str,
        operation: Operation,
    ) -> None:
        super().__init__(prefix + path, endpoint, methods=[method], name=name)
        self.prefix = prefix
        self.operation = operation
        # The path parameters of the literal paths (of other routes) that this route's
        # pattern matches too: `stream` for /experiments/{id}. See `shadow`.
        self.literals: set[tuple[tuple[str, Any], ...]] = set()

    def shadow(self, others: Iterable["ApiRoute"]) -> None:
        """Leave to `others` the literal paths they serve that this route's pattern also
        matches: GET /experiments/stream is then a 405 (only POST serves it), not this GET
        /experiments/{id} answering 404 for an id "stream" (CONTRACT.md, "Experiments
        resource": literal paths first; 405 where the path exists for another method)."""
        for other in others:
            if other is self or other.param_convertors:
                continue
            found = self.path_regex.match(other.path)
            if found:
                self.literals.add(tuple(sorted(found.groupdict().items())))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if self.literals and match is not Match.NONE:
            raw = {k: v for k, v in child["path_params"].items() if k in self.param_convertors}
            if tuple(sorted((k, str(v)) for k, v in raw.items())) in self.literals:
                return Match.NONE, {}
        return match, child


# CONTRACT.md, "Errors and limits" and "Identity".
_ERRORS = {
    400: "The body is not JSON (`Unable to process JSON. ...`), or an id is not a UUID of "
    "the version the field needs",
    401: "API keys are configured and the request has no key or an unknown one",
    403: "The API key is used with another workspace's name",
    408: "The body did not arrive within the server's body deadline (30 s unless set); "
    "the connection closes",
    413: "The body is over 4 MiB, before or after inflating",
    415: "The body's Content-Type is not JSON, or its Content-Encoding is not gzip",
    422: "The body breaks a rule: one `<json path> <rule>` line per broken rule",
    500: "Unexpected; the message names the request id of the server's log line",
    # app/sqlite/failures.py: the storage failures a client or an operator can act on.
    503: "The database is read-only to the server, or another process held its write lock "
    "past the busy timeout (then with Retry-After): nothing was stored",
    507: "The disk that holds the database is full: nothing was stored",
}
# Sent with a 503 of a busy lock (RFC 9110, section 10.2.3).
_RETRY_AFTER: Schema = {
    "description": "Seconds to wait before sending the request again; set when the write "
    "lock was busy",
    "schema": {"type": "integer", "minimum": 0},
}
_BODY_ERRORS = [400, 408, 413, 415, 422]
_IDENTITY_ERRORS = [401, 403]

_WORKSPACE_PARAMETERS = [
    {
        "name": "Comet-Workspace",
        "in": "header",
        "required": False,
        "description": "The workspace; `default` when empty or absent",
        "schema": {"type": "string"},
    },
    {
        "name": "workspace_name",
        "in": "query",
        "required": False,
        "description": "The workspace when the Comet-Workspace header is absent",
        "schema": {"type": "string"},
    },
]


def _structs(kind: object, found: dict[str, type[msgspec.Struct]]) -> None:
    """Every Struct reachable from `kind`, by name, as msgspec names their components."""
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        if kind.__name__ not in found:
            found[kind.__name__] = kind
            for info in msgspec.structs.fields(kind):
                _structs(info.type, found)
        return
    for argument in typing.get_args(kind):
        _structs(argument, found)


def _whole_numbers(node: Any) -> Any:
    """`node` with each pair of branches that payloads.WholeNumber makes, an integer and the
    same number with multipleOf 1, said as the one integer they are together: JSON Schema's
    "integer" takes 1.0 already, and a client generated from the document wants an int."""
    if isinstance(node, list):
        return [_whole_numbers(inner) for inner in node]
    if not isinstance(node, dict):
        return node
    node = {key: _whole_numbers(value) for key, value in node.items()}
    branches = node.get("anyOf")
    if branches is None:
        return node
    kept = [branch for branch in branches if _as_integer(branch) not in branches]
    if len(kept) == len(branches):
        return node
    if len(kept) > 1:
        return {**node, "anyOf": kept}
    return {**kept[0], **{key: value for key, value in node.items() if key != "anyOf"}}


def _as_integer(branch: Schema) -> Schema | None:
    if branch.get("type") != "number" or branch.get("multipleOf") != 1:
        return None
    return {**{k: v for k, v in branch.items() if k != "multipleOf"}, "type": "integer"}


def _components(kinds: Iterable[type[msgspec.Struct]]) -> dict[str, Schema]:
    roots = sorted(set(kinds), key=lambda kind: kind.__name__)
    _, components = msgspec.json.schema_components(roots, ref_template=REF)
    components = {name: _whole_numbers(schema) for name, schema in components.items()}
    structs: dict[str, type[msgspec.Struct]] = {}
    for root in roots:
        _structs(root, structs)
    for name, schema in components.items():
        kind = structs.get(name)
        if kind is None:
            continue
        # A field typed `... | UnsetType` is left out of the JSON when unset, which msgspec's
        # schema does not say: it lists every field without a default as required.
        # Rules across fields, which msgspec's types cannot state (payloads' SCHEMA_RULES).
        schema.update(getattr(kind, "SCHEMA_RULES", {}))
        fields = msgspec.structs.fields(kind)
        unset = {f.encode_name for f in fields if msgspec.UnsetType in typing.get_args(f.type)}
        required = [field for field in schema.get("required", ()) if field not in unset]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
    return components


def _ref(kind: type) -> Schema:
    return {"$ref": REF.format(name=kind.__name__)}


def _response(description: str, schema: Schema | None, media_type: str = JSON) -> Schema:
    response: Schema = {
        "description": description,
        "headers": {REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"}},
    }
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    return response


def _query_schema(schema: Schema) -> Schema:
    """A query parameter's `schema`; or, for one whose value is JSON text (a string schema
    with `contentSchema`), OpenAPI's `content` with the JSON's own schema."""
    for branch in [schema, *schema.get("anyOf", ())]:
        if "contentSchema" in branch:
            return {"content": {JSON: {"schema": branch["contentSchema"]}}}
    return {"schema": schema}


def _describe(name: str, method: str, operation: Operation) -> Schema:
    parameters = [
        {"name": parameter, "in": "path", "required": True, "schema": schema}
        for parameter, schema in operation.path_parameters.items()
    ]
    if operation.query is not None:
        parameters += [
            {
                "name": f.encode_name,
                "in": "query",
                "required": f.required,
                **_query_schema(_whole_numbers(msgspec.json.schema(f.type))),
            }
            for f in msgspec.structs.fields(operation.query)
        ]
    shared = [500]
    if operation.query is not None:
        shared.append(422)
    if operation.identity:
        parameters += _WORKSPACE_PARAMETERS
        shared += _IDENTITY_ERRORS
        shared.append(503)
        writes = operation.writes if operation.writes is not None else method != "GET"
        if writes:
            shared.append(507)
    if operation.body is not None:
        shared += _BODY_ERRORS

    responses: Schema = {}
    for status, answer in operation.answers.items():
        schema = _ref(answer.body) if answer.body is not None else answer.schema
        response = _response(answer.description, schema, answer.media_type)
        if answer.lines is not None:
            # OpenAPI 3.1 cannot describe JSON lines (3.2's itemSchema can): an extension.
            response["content"][answer.media_type]["x-line-schema"] = _ref(answer.lines)
        for header, text in answer.headers.items():
            response["headers"][header] = {"description": text, "schema": {"type": "string"}}
        responses[str(status)] = response
    for status in shared:  # unless the operation answers that status its own way
        responses.setdefault(str(status), {"$ref": f"#/components/responses/{status}"})
    for status, description in operation.errors.items():
        responses[str(status)] = _response(description, _ref(Error))
    for status, description in operation.listed_errors.items():
        schema = _ref(ValidationErrors)
        if status in operation.errors:
            schema = {"oneOf": [_ref(Error), schema]}
            description = f"{operation.errors[status]}; or {description}"
        responses[str(status)] = _response(description, schema)
    responses = dict(sorted(responses.items()))

    described: Schema = {"operationId": name, "summary": operation.summary}
    if parameters:
        described["parameters"] = parameters
    if operation.body is not None:
        content: Schema = {"schema": _ref(operation.body)}
        if operation.example is not None:
            content["example"] = operation.example
        described["requestBody"] = {"required": True, "content": {JSON: content}}
    described["responses"] = responses
    # Keys are optional: the server checks them only when it is started with --api-keys.
    described["security"] = [{}, {"apiKey": []}] if operation.identity else []
    return described


def _error_responses() -> Schema:
    responses = {
        str(status): _response(text, _ref(ValidationErrors if status == 422 else Error))
        for status, text in _ERRORS.items()
    }
    responses["503"]["headers"]["Retry-After"] = _RETRY_AFTER
    return responses


def _operation_id(route: ApiRoute) -> str:
    # Opik's operationId, after the prefix the route is served under, if any: an operationId
    # is unique in a document.
    prefix = route.prefix.strip("/").replace("/", "_")
    return f"{prefix}_{route.name}" if prefix else route.name


def document(routes: Iterable[BaseRoute]) -> Schema:
    """The OpenAPI document of the API's routes among `routes`, each described by its own
    Operation; a route that has none is left out."""
    paths: dict[str, Schema] = {}
    kinds: set[type[msgspec.Struct]] = {Error, ValidationErrors}
    for route in routes:
        if not isinstance(route, ApiRoute) or route.methods is None:
            continue
        operation = route.operation
        name = _operation_id(route)
        for method in sorted(route.methods - {"HEAD"}):
            paths.setdefault(route.path, {})[method.lower()] = _describe(name, method, operation)
            kinds.update(
                kind
                for kind in [
                    operation.body,
                    *(a.body for a in operation.answers.values()),
                    *(a.lines for a in operation.answers.values()),
                ]
                if isinstance(kind, type) and issubclass(kind, msgspec.Struct)
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "experiment-items",
            "version": __version__,
            "description": (
                "The experiment-items part of Opik's REST API over one SQLite file. Every "
                "route is served under /v1/private/... and /api/v1/private/...; an unknown "
                "route answers 404 and a wrong method 405, both with the Error body."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": _components(kinds),
            "responses": _error_responses(),
            "headers": {
                "RequestId": {
                    "description": "The request's id, as in the server's log line",
                    "required": True,
                    "schema": OUT_ID,
                }
            },
            "securitySchemes": {
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The raw key, as the Opik SDK sends it, or `Bearer <key>`",
                }
            },
        },
    }


async def get_openapi(request: Request) -> Response:
    """The document of the routes this app serves, made on the first request."""
    state = request.app.state
    body = getattr(state, "openapi", None)
    if body is None:
        body = state.openapi = encoder.encode(document(request.app.routes))
    return Response(body, media_type=JSON)
