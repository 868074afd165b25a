"""The pages that compare: two or more experiments joined on the dataset item against a
baseline, and one dataset item across experiments with its traces' spans."""

from msgspec import UnsetType
from starlette.requests import Request
from starlette.responses import Response

from app import ids
from app.auth import Identity
from app.store import Store
from app.ui import reading
from app.ui.render import BadQuery, error_page, page
from app.ui.session import signed_in

ROWS_PER_PAGE = 50  # the page issue 14's goal names (<= 100 ms for 2 x 1,000 items)


def _baseline(request: Request, experiment_ids: list[str]) -> int:
    given = request.query_params.get("baseline") or None
    if given is None:
        return 0
    chosen = ids.parse(given)
    text = ids.to_str(chosen) if chosen is not None else None
    if text not in experiment_ids:
        raise BadQuery("baseline: the id of one of the experiments compared.")
    return experiment_ids.index(text)


@signed_in
async def compare(request: Request, identity: Identity, store: Store) -> Response:
    keys = reading.experiment_keys(request)
    if len(keys) < 2:
        return error_page(request, 400, "Choose two or more experiments to compare.")
    experiments = await reading.experiments_of(store, identity.workspace, keys)
    if len(experiments) < len(keys):
        return error_page(request, 404, "No such experiment in this workspace.")
    baseline = _baseline(request, [e.id for e in experiments])
    datasets = {e.dataset_id: e.dataset_name for e in experiments}
    dataset_id = ids.parse(experiments[baseline].dataset_id) or b""
    number = reading.page_number(request)
    size = reading.page_size(request, ROWS_PER_PAGE)
    text = reading.text_param(request, "q")
    differences = reading.switch(request, "diff")
    rows, total = await reading.rows_page(
        store, identity.workspace, dataset_id, keys, text, differences, number, size
    )
    averages = [reading.averages(e) for e in experiments]
    score_names = sorted({name for a in averages for name in a})
    context = {
        "experiments": experiments,
        "baseline": baseline,
        "averages": averages,
        "score_names": score_names,
        "datasets": datasets,
        "rows": [(row, reading.cells(row, experiments, baseline)) for row in rows],
        "total": total,
        "page": number,
        "pages": max(1, -(-total // size)),
        "text": text or "",
        "differences": differences,
        "metrics": await reading.histograms(store, identity.workspace, experiments),
    }
    return page(request, "compare.html", context)


@signed_in
async def dataset_item(request: Request, identity: Identity, store: Store) -> Response:
    key = reading.path_key(request)
    keys = reading.experiment_keys(request)
    if key is None:
        return error_page(request, 404, "No such dataset item in this workspace.")
    if not keys:
        return error_page(request, 400, "Name the experiments to show this item for.")
    experiments = await reading.experiments_of(store, identity.workspace, keys)
    if not experiments:
        return error_page(request, 404, "No such experiment in this workspace.")
    dataset_id = ids.parse(experiments[0].dataset_id) or b""
    found = [ids.parse(e.id) or b"" for e in experiments]
    rows = await store.compare_rows(identity.workspace, dataset_id, found, [key], False)
    if not rows or not rows[0].experiment_items:
        return error_page(request, 404, "No such dataset item in these experiments.")
    row = rows[0]
    cells = reading.cells(row, experiments, 0)
    traces = {}
    spans = {}
    for cell in cells:
        for item in cell.items:
            trace_key = ids.parse(item.trace_id) or b""
            traces[item.id] = await store.get_trace(identity.workspace, trace_key)
            spans[item.id] = await store.trace_spans(identity.workspace, trace_key)
    first = row.experiment_items[0]
    context = {
        "row": row,
        "experiments": experiments,
        "cells": cells,
        "traces": traces,
        "spans": spans,
        "trace_input": None if isinstance(first.input, UnsetType) else first.input,
        "experiment_ids": [e.id for e in experiments],
    }
    return page(request, "item.html", context)
