"""The pages that list: the workspace's datasets, a dataset's experiments (sortable,
filtered by name, paged) and one experiment's items (searchable, paged), with histograms."""

from msgspec import UnsetType
from starlette.requests import Request
from starlette.responses import Response

from app import ids
from app.auth import Identity
from app.records import ExperimentQuery
from app.store import Store
from app.ui import reading
from app.ui.render import BadQuery, error_page, page
from app.ui.session import signed_in, workspaces

EXPERIMENTS_PER_PAGE = 25
ROWS_PER_PAGE = 20
# The columns find can order by (app/sqlite/experiments.py SORT_KEYS); scores by name too.
SORTABLE = ("name", "created_at", "trace_count", "total_estimated_cost", "duration.p50")
SCORE_SORT = "feedback_scores."


@signed_in
async def home(request: Request, identity: Identity, store: Store) -> Response:
    datasets = await store.list_datasets(identity.workspace)
    names = await workspaces(request, identity, store)
    return page(request, "home.html", {"datasets": datasets, "workspaces": names})


def _sort(request: Request) -> tuple[str | None, bool]:
    sort = request.query_params.get("sort") or None
    direction = request.query_params.get("dir") or "desc"
    score = sort is not None and sort.startswith(SCORE_SORT)
    if sort is not None and sort not in SORTABLE and not score:
        raise BadQuery(f"sort: one of {', '.join(SORTABLE)} or {SCORE_SORT}NAME.")
    if score and not 0 < len(sort or "") - len(SCORE_SORT) <= reading.MAX_TEXT_CHARS:
        raise BadQuery(f"sort: {SCORE_SORT}NAME, the name of a feedback score.")
    if direction not in ("asc", "desc"):
        raise BadQuery("dir: asc or desc.")
    return sort, direction == "desc"


@signed_in
async def dataset_experiments(request: Request, identity: Identity, store: Store) -> Response:
    key = reading.path_key(request)
    dataset = None if key is None else await store.get_dataset(identity.workspace, key)
    if key is None or dataset is None:
        return error_page(request, 404, "No such dataset in this workspace.")
    number = reading.page_number(request)
    size = reading.page_size(request, EXPERIMENTS_PER_PAGE)
    name = reading.text_param(request, "q")
    sort, descending = _sort(request)
    query = ExperimentQuery(
        limit=size,
        offset=(number - 1) * size,
        name=name,
        dataset_id=key,
        sort=sort,
        descending=descending,
    )
    experiments, total = await store.find_experiments(identity.workspace, query, count=True)
    score_names = sorted({name for e in experiments for name in reading.averages(e)})
    context = {
        "dataset": dataset,
        "experiments": experiments,
        "averages": {e.id: reading.averages(e) for e in experiments},
        "score_names": score_names,
        "total": total,
        "page": number,
        "pages": max(1, -(-total // size)),
        "name": name or "",
        "sort": sort,
        "descending": descending,
    }
    return page(request, "dataset.html", context)


@signed_in
async def experiment_items(request: Request, identity: Identity, store: Store) -> Response:
    key = reading.path_key(request)
    experiment = None if key is None else await store.get_experiment(identity.workspace, key)
    if key is None or experiment is None:
        return error_page(request, 404, "No such experiment in this workspace.")
    dataset_id = ids.parse(experiment.dataset_id) or b""
    number = reading.page_number(request)
    size = reading.page_size(request, ROWS_PER_PAGE)
    text = reading.text_param(request, "q")
    rows, total = await reading.rows_page(
        store, identity.workspace, dataset_id, [key], text, False, number, size
    )
    items = [(row, item) for row in rows for item in row.experiment_items]
    context = {
        "experiment": experiment,
        "items": items,
        "scores": {item.id: reading.scores_of(item) for _, item in items},
        "total": total,
        "page": number,
        "pages": max(1, -(-total // size)),
        "text": text or "",
        "metrics": await reading.histograms(store, identity.workspace, [experiment]),
        "has_duration": not isinstance(experiment.duration, UnsetType),
    }
    return page(request, "experiment.html", context)
