"""The results as Markdown (ratios, goals, absolute figures, machine) and as a PNG chart.

`python bench/report.py RESULTS.json` redraws both from a saved run.
"""

import json
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
Results = dict[str, Any]

# The targets of the main table, in the order they are shown.
ORDER = ("floor", "hit", "miss", "auth", "peer_a", "peer_b")


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    measured: float | None
    passed: bool | None
    shown: str
    per_cpu: str = ""  # the same ratio per second of server CPU: see `_per_cpu`


def _rps(results: Results, key: str, connections: int) -> float | None:
    point = results["targets"].get(key, {}).get("points", {}).get(str(connections))
    return None if point is None else float(point["rps"])


def _per_cpu(point: dict[str, Any] | None) -> float | None:
    """Requests per second of the server's CPU time. Where other processes took part of the
    server's core this holds steadier than requests per second; on a quiet machine, with
    the server's core saturated, the two ratios agree."""
    if point is None or not point.get("server_cpu_share"):
        return None
    return float(point["rps"]) / float(point["server_cpu_share"])


def _median_ratio(rounds: list[dict[str, float]] | None, key: str) -> float | None:
    """The median over rounds of `key`'s figure to the floor's in the same round."""
    if not rounds:
        return None
    return statistics.median(r[key] / r["floor"] for r in rounds)


def _point(results: Results, key: str, connections: int) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        results["targets"].get(key, {}).get("points", {}).get(str(connections))
    )
    return found


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _goal(
    name: str,
    target: str,
    value: float | None,
    ok: Callable[[float], bool],
    fmt: str,
    per_cpu: float | None = None,
) -> Goal:
    if value is None:
        return Goal(name, target, None, None, "not measured")
    if math.isinf(value):  # a find point in which no request finished
        return Goal(name, target, value, False, "no request finished")
    check = "" if per_cpu is None else fmt.format(per_cpu)
    return Goal(name, target, value, ok(value), fmt.format(value), check)


def goals(results: Results) -> list[Goal]:
    c = results["settings"]["headline_connections"]
    hit = _rps(results, "hit", c)
    floor = _rps(results, "floor", c)
    hit_point = results["targets"].get("hit", {}).get("points", {}).get(str(c))
    p99 = None if hit_point is None else hit_point["latency_us"]["p99"] / 1000
    sizes = results.get("sizes", {})
    small, big = sizes.get("10000"), sizes.get("10000000")
    writes = results.get("writes", {})
    # The median of rounds measured in turns; a results file from before them has totals.
    api, raw = writes.get("api_items_per_second"), writes.get("raw_items_per_second")
    write_ratio = writes.get("ratio", _ratio(api, raw))
    per_item = [s["bytes_per_item"] for s in results.get("storage", {}).values()]
    rss = results["targets"].get("hit", {}).get("memory", {}).get("rss")
    cold = results.get("cold_start", {}).get("service_cli")
    batch_writes = results.get("batch_writes", {})
    find_big, find_ratio = _find_p99(results)
    find = results.get("find", {})
    find_names = [
        f"{find.get('experiments', 1000):,} experiments x {space.get('items', items):,} items"
        for space, items in ((find.get("spaces", {}).get(k, {}), n) for k, n in FIND_SPACES)
    ]
    find_connections = find.get("connections", 8)

    def cpu(key: str) -> float | None:
        return _per_cpu(_point(results, key, c))

    # Medians of rounds in turns (run.py's headline); a results file from before has points.
    rounds = results.get("headline", {})
    hit_floor = _median_ratio(rounds.get("rounds"), "hit") or _ratio(hit, floor)
    miss_floor = _median_ratio(rounds.get("rounds"), "miss") or _ratio(
        _rps(results, "miss", c), floor
    )
    hit_cpu = _median_ratio(rounds.get("per_cpu_rounds"), "hit") or _ratio(cpu("hit"), cpu("floor"))
    miss_cpu = _median_ratio(rounds.get("per_cpu_rounds"), "miss") or _ratio(
        cpu("miss"), cpu("floor")
    )
    median = f", median of {len(rounds['rounds'])} rounds" if rounds else ""
    return [
        _goal(
            f"GET hit / floor, req/s at {c} connections{median}",
            ">= 0.75",
            hit_floor,
            lambda v: v >= 0.75,
            "{:.2f}",
            hit_cpu,
        ),
        _goal(
            f"GET miss / floor, req/s at {c} connections{median}",
            ">= 0.85",
            miss_floor,
            lambda v: v >= 0.85,
            "{:.2f}",
            miss_cpu,
        ),
        _goal(f"GET hit p99 at {c} connections", "<= 10 ms", p99, lambda v: v <= 10, "{:.1f} ms"),
        _goal(
            "GET hit / peer A (FastAPI)",
            ">= 3.0",
            _ratio(hit, _rps(results, "peer_a", c)),
            lambda v: v >= 3.0,
            "{:.2f}",
            _ratio(cpu("hit"), cpu("peer_a")),
        ),
        _goal(
            "GET hit / peer B (naive Starlette)",
            ">= 1.5",
            _ratio(hit, _rps(results, "peer_b", c)),
            lambda v: v >= 1.5,
            "{:.2f}",
            _ratio(cpu("hit"), cpu("peer_b")),
        ),
        _goal(
            "GET hit, 10,000,000 items / 10,000 items",
            ">= 0.90",
            _ratio(big and big["rps"], small and small["rps"]),
            lambda v: v >= 0.9,
            "{:.2f}",
            _ratio(_per_cpu(big), _per_cpu(small)),
        ),
        _goal(
            "POST /items / raw executemany, items/s (median of rounds)",
            ">= 0.5",
            write_ratio,
            lambda v: v >= 0.5,
            "{:.2f}",
        ),
        *(
            _goal(
                f"{label} / raw executemany, records/s (median of rounds)",
                ">= 0.5",
                batch_writes.get(key, {}).get("ratio"),
                lambda v: v >= 0.5,
                "{:.2f}",
            )
            for key, label in BATCH_LABELS.items()
        ),
        _goal(
            f"find page p99, {find_names[0]}, {find_connections} connections (median of rounds)",
            "<= 25 ms",
            find_big,
            lambda v: v <= 25,
            "{:.1f} ms",
        ),
        _goal(
            f"find page p99, {find_names[0]} / {find_names[1]} (median of rounds)",
            "<= 2",
            find_ratio,
            lambda v: v <= 2,
            "{:.2f}",
        ),
        *(
            _goal(
                f"web UI {label}, p50 at 1 connection (median of rounds)",
                f"<= {goal:.0f} ms",
                p50,
                lambda v, goal=goal: v <= goal,
                "{:.1f} ms",
            )
            for label, goal, p50 in _ui_p50(results)
        ),
        _goal(
            "bytes per item on disk, indexes included (worst file)",
            "<= 200",
            max(per_item) if per_item else None,
            lambda v: v <= 200,
            "{:.1f}",
        ),
        _goal(
            "server RSS after the run",
            "<= 80 MiB",
            rss and rss / MIB,
            lambda v: v <= 80,
            "{:.1f} MiB",
        ),
        _goal(
            "cold start, process start to first 200",
            "<= 1 s",
            cold and cold["median"],
            lambda v: v <= 1,
            "{:.2f} s",
        ),
        *_postgres_goals(results),
    ]


def _postgres_goals(results: Results) -> list[Goal]:
    """The PostgreSQL row's bars (issue 13), when it ran: none while it was never run."""
    pg = results.get("postgres")
    if not pg:
        return []
    if "skipped" in pg:
        return [Goal("PostgreSQL rows", "run", None, None, "skipped: " + pg["skipped"])]
    get = pg.get("get", {})
    at = get.get("connections", results["settings"]["headline_connections"])
    ratio = lambda v: v >= 0.5  # noqa: E731
    return [
        _goal(
            f"PostgreSQL GET hit / peer A (FastAPI, SQLite) at {at} connections (median)",
            ">= 1.0",
            get.get("hit_to_peer_a"),
            lambda v: v >= 1.0,
            "{:.2f}",
        ),
        _goal(
            "PostgreSQL POST /items / raw COPY on PostgreSQL (median of rounds)",
            ">= 0.5",
            pg.get("writes", {}).get("ratio"),
            ratio,
            "{:.2f}",
        ),
        _goal(
            "PostgreSQL POST /traces/batch / raw COPY on PostgreSQL (median of rounds)",
            ">= 0.5",
            pg.get("traces", {}).get("ratio"),
            ratio,
            "{:.2f}",
        ),
    ]


def _postgres(results: Results) -> list[str]:
    pg = results.get("postgres")
    if not pg:
        return []
    out = ["", "## PostgreSQL beside SQLite", ""]
    if "skipped" in pg:
        return [*out, f"Not run: {pg['skipped']}."]
    get = pg["get"]
    labels = {
        "pg_hit": "PostgreSQL, GET hit",
        "pg_miss": "PostgreSQL, GET miss",
        "peer_a": "peer A (FastAPI, SQLite)",
        "sqlite_hit": "SQLite, GET hit",
    }
    out += [
        f"One throwaway cluster (tests/postgres.py's, fsync on) holding the SQLite file's "
        f"{sum(get['copied_rows'].values()):,} rows, copied with COPY in "
        f"{get['copy_seconds']:.0f} s. GETs at {get['connections']} connections, "
        f"{len(get['rounds'])} rounds in turns; the answers were checked byte for byte "
        "against the service's on the file first.",
        "",
        "| round | " + " | ".join(labels.values()) + " |",
        "| --- |" + " ---: |" * len(labels),
    ]
    for n, r in enumerate(get["rounds"], 1):
        out.append(f"| {n} | " + " | ".join(_fmt(r[k]) for k in labels) + " |")
    out += [
        "",
        f"Medians of the rounds' ratios: PostgreSQL hit / peer A {get['hit_to_peer_a']:.2f}, "
        f"miss / peer A {get['miss_to_peer_a']:.2f}, PostgreSQL hit / SQLite hit "
        f"{get['hit_to_sqlite']:.2f}.",
    ]
    for key in ("writes", "traces"):
        w = pg.get(key)
        if w:
            out.append(
                f"- {w['label']}: {w['api_items_per_second']:,.0f} records/s; raw COPY of "
                f"the same rows on PostgreSQL, one transaction per batch: "
                f"{w['raw_items_per_second']:,.0f} records/s; "
                "ratio per round "
                + ", ".join(f"{r['ratio']:.2f}" for r in w["rounds"])
                + f", median {w['ratio']:.2f}."
            )
    return out


BATCH_LABELS = {
    "traces": "POST /traces/batch",
    "spans": "POST /spans/batch",
    "dataset_items": "PUT /datasets/items",
}


FIND_SPACES = (("big", 1000), ("small", 10))


def _find_p99(results: Results) -> tuple[float | None, float | None]:
    """The big workspace's median p99 in ms, and the median over rounds of big / small."""
    rounds = results.get("find", {}).get("p99_rounds_us")
    if not rounds:
        return None, None
    # A round in which no request finished (None) counts as infinitely slow.
    big = [math.inf if r["big"] is None else r["big"] / 1000 for r in rounds]
    small = [math.inf if r["small"] is None else r["small"] / 1000 for r in rounds]
    ratios = [
        b / s if s and math.isfinite(s) else math.inf for b, s in zip(big, small, strict=True)
    ]
    return statistics.median(big), statistics.median(ratios)


# The UI row's pages, for a results file that lacks them: their goals still show, unmeasured.
UI_PAGES = {
    "experiments": ("experiments page, a dataset of 1,000 experiments", 50.0),
    "compare": ("compare page, 2 experiments x 1,000 items, first 50 rows", 100.0),
}


def _ui_p50(results: Results) -> list[tuple[str, float, float | None]]:
    """Each UI page's label, goal in ms and median over rounds of its p50 in ms (None when
    not measured; infinite when a round finished no request)."""
    pages = results.get("ui", {}).get("pages", {})
    found = []
    for key, (label, goal) in UI_PAGES.items():
        page = pages.get(key)
        if not page:
            found.append((label, goal, None))
            continue
        p50s = [p["latency_us"]["p50"] / 1000 if p["requests"] else math.inf
                for p in page["points"]]  # fmt: skip
        found.append((page["label"], page["goal_ms"], statistics.median(p50s)))
    return found


def _fmt(value: float | None, pattern: str = "{:,.0f}") -> str:
    return "-" if value is None else pattern.format(value)


def markdown(results: Results) -> str:
    meta, settings = results["meta"], results["settings"]
    levels = settings["connections"]
    c = settings["headline_connections"]
    labels = {key: t["label"] for key, t in results["targets"].items()}
    out = [
        "# Benchmark results",
        "",
        f"`make bench` run of {meta['started']} on commit {meta['commit']}; "
        f"the whole run took {meta['total_seconds'] / 60:.1f} min.",
        "",
        *_earlier_rows(results),
        f"Each server: one uvicorn worker (uvloop, httptools, no access log) pinned to core 0; "
        f"wrk ({meta['versions']['wrk']}, one thread) pinned to core 1. {settings['warmup']} s "
        f"warm-up per server, then {settings['seconds']} s per measured point. GETs rotate "
        f"through {settings['hot_ids']:,} ids spread uniformly over a "
        f"{settings['main_items']:,}-item database; misses are random version 7 ids.",
        "",
        *_disturbed(results),
        "## Goals",
        "",
        "| goal | target | measured | | per server CPU-second |",
        "| --- | --- | --- | --- | --- |",
    ]
    for g in goals(results):
        mark = {True: "pass", False: "**FAIL**", None: "-"}[g.passed]
        out.append(f"| {g.name} | {g.target} | {g.shown} | {mark} | {g.per_cpu} |")
    out += [
        "",
        "*Per server CPU-second*: the same ratio of requests per second of the server's own "
        "CPU time, a cross-check that holds steadier when other processes took part of the "
        "server's core; on a quiet machine the two agree.",
    ]
    out += _headline_rounds(results)
    out += [
        "",
        "## Ratios of requests per second (same run)",
        "",
        "| connections | hit / floor | miss / floor | auth / floor | hit / peer A | hit / peer B |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for level in levels:
        hit, floor = _rps(results, "hit", level), _rps(results, "floor", level)
        cells = [
            _ratio(hit, floor),
            _ratio(_rps(results, "miss", level), floor),
            _ratio(_rps(results, "auth", level), floor),
            _ratio(hit, _rps(results, "peer_a", level)),
            _ratio(hit, _rps(results, "peer_b", level)),
        ]
        out.append(f"| {level} | " + " | ".join(_fmt(v, "{:.2f}") for v in cells) + " |")
    out += [
        "",
        "## Requests per second, latency, memory",
        "",
        "| target | "
        + " | ".join(f"req/s @{n}" for n in levels)
        + f" | p50 @{c} | p99 @{c} | RSS after | server CPU @{c} | wrk CPU | others' CPU |",
        "| --- | "
        + " | ".join("---:" for _ in levels)
        + " | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key in ORDER:
        target = results["targets"].get(key)
        if target is None:
            continue
        points = target["points"]
        head = points.get(str(c), {}).get("latency_us", {})
        busy = max(p["wrk_cpu_share"] for p in points.values())
        others = max(p["other_cpu_share"] for p in points.values())
        server = points.get(str(c), {}).get("server_cpu_share")
        rss = target.get("memory", {}).get("rss")
        out.append(
            f"| {labels[key]} | "
            + " | ".join(_fmt(_rps(results, key, n)) for n in levels)
            + f" | {_fmt(head.get('p50'), '{:,.0f} µs')} | {_fmt(head.get('p99'), '{:,.0f} µs')}"
            + f" | {_fmt(rss and rss / MIB, '{:.1f} MiB')} | {_fmt(server, '{:.0%}')}"
            + f" | {busy:.0%} | {others:.0%} |"
        )
    out += [
        "",
        "CPU columns are shares of one core during a point. *wrk CPU*, the most wrk used in "
        "any point of the row: well under 100 % means the load generator was not the limit. "
        "*others' CPU*, the most that any other process on the machine used (points above "
        "10 % are measured again): the machine may be shared.",
        "",
        f"## Database size: GET hit at {c} connections",
        "",
        "| items | req/s | p99 | ratio to 10,000 | file | built in |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    sizes = results.get("sizes", {})
    base = sizes.get("10000", {}).get("rps")
    for items, size in sorted(sizes.items(), key=lambda kv: int(kv[0])):
        built = results["build_seconds"].get(items)
        out.append(
            f"| {int(items):,} | {size['rps']:,.0f} | {size['p99_us'] / 1000:.1f} ms | "
            f"{_fmt(_ratio(size['rps'], base), '{:.2f}')} | "
            f"{size['file_bytes'] / MIB:,.1f} MiB | "
            + ("cached" if built is None else f"{built:.0f} s")
            + " |"
        )
    out += [
        "",
        "## Storage",
        "",
        "| database | items | bytes/item | of which the table | of which indexes |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, s in results.get("storage", {}).items():
        label = "written through POST /items" if name == "api" else "generated"
        out.append(
            f"| {label} | {s['items']:,} | {s['bytes_per_item']:.0f} | "
            f"{s['table_per_item']:.0f} | {s['index_per_item']:.0f} |"
        )
    out += _writes_and_more(results)
    out += _batch_writes(results)
    out += _evaluate(results)
    out += _find(results)
    out += _ui(results)
    out += _postgres(results)
    out += [
        "",
        "## Machine and versions",
        "",
        f"- CPU: {meta['cpu']} ({meta['cores']} cores), Linux {meta['kernel']}",
    ]
    out += [f"- {name} {version}" for name, version in meta["versions"].items()]
    out += ["", "![throughput and p99 per target](latest.png)", ""]
    return "\n".join(out)


def _earlier_rows(results: Results) -> list[str]:
    """Rows `run.py --only` kept from an earlier run, with when and on which commit."""
    started = results["meta"]["started"]
    earlier = [
        f"{row} ({r.get('started')}, commit {r.get('commit')})"
        for row, r in results.get("rows", {}).items()
        if r.get("started") != started and r.get("started") is not None
    ]
    if not earlier:
        return []
    return [f"Rows from earlier runs (`run.py --only` ran the rest): {', '.join(earlier)}.", ""]


def _disturbed(results: Results) -> list[str]:
    count = results.get("disturbed_points", 0)
    if not count:
        return []
    return [
        f"**Warning: {count} point{'s were' if count > 1 else ' was'} measured while other "
        "processes kept the machine "
        "busy (see *others' CPU* below); their figures understate every target, and ratios "
        "between targets measured in different conditions are unreliable. Run again on a "
        "quiet machine.**",
        "",
    ]


def _headline_rounds(results: Results) -> list[str]:
    rounds = results.get("headline", {}).get("rounds")
    if not rounds:
        return []
    shown = "; ".join(
        f"floor {r['floor']:,.0f}, hit {r['hit']:,.0f} ({r['hit'] / r['floor']:.2f}), "
        f"miss {r['miss']:,.0f} ({r['miss'] / r['floor']:.2f})"
        for r in rounds
    )
    return [
        "",
        f"The two ratios to the floor are medians of {len(rounds)} rounds in turns at "
        f"{results['headline']['connections']} connections (the sweep's point, then more), "
        f"req/s: {shown}.",
    ]


def _writes_and_more(results: Results) -> list[str]:
    writes = results.get("writes", {})
    stream = results.get("stream", {})
    cold = results.get("cold_start", {})
    out = ["", "## Writes, stream, cold start", ""]
    if writes:
        out.append(
            f"- `POST /items`, batches of 1000, {writes['clients']} clients: "
            f"{writes['api_items_per_second']:,.0f} items/s; raw `executemany` of the same "
            f"{writes['items']:,} rows, same pragmas, one transaction per batch: "
            f"{writes['raw_items_per_second']:,.0f} items/s; "
            f"{len(writes['rounds'])} rounds in turns, ratio per round "
            + ", ".join(f"{r['ratio']:.2f}" for r in writes["rounds"])
            + f", median {writes['ratio']:.2f}. "
            f"Others' CPU meanwhile: at most {writes['other_cpu_share']:.0%} of a core."
        )
    if stream.get("available"):
        out.append(
            f"- Stream: {stream['items_per_second']:,.0f} items/s "
            f"({stream['items']:,} items in pages of 2000)."
        )
    elif stream:
        out.append(f"- Stream: not available ({stream['why']}).")
    for c in cold.values():
        out.append(
            f"- Cold start, {c['label']}: median {c['median']:.2f} s "
            f"(of {len(c['seconds'])}: " + ", ".join(f"{s:.2f}" for s in c["seconds"]) + ")."
        )
    return out


def _batch_writes(results: Results) -> list[str]:
    found = results.get("batch_writes")
    if not found:
        return []
    out = [
        "",
        "## Trace, span and dataset-item batches",
        "",
        "1000 records a request, gzipped as the SDK sends them, 4 clients, beside a raw "
        "`executemany` of the same rows (same pragmas, schema.sql, one transaction per batch, "
        "pinned to the server's core); rounds in turns, ratio = raw seconds / API seconds.",
        "",
        "| route | records | API records/s | raw records/s | ratio per round | median "
        "| others' CPU |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for w in found.values():
        ratios = ", ".join(f"{r['ratio']:.2f}" for r in w["rounds"])
        out.append(
            f"| `{w['label']}` | {w['items']:,} | {w['api_items_per_second']:,.0f} | "
            f"{w['raw_items_per_second']:,.0f} | {ratios} | {w['ratio']:.2f} | "
            f"{w['other_cpu_share']:.0%} |"
        )
    return out


def _evaluate(results: Results) -> list[str]:
    found = results.get("evaluate")
    if not found:
        return []
    out = [
        "",
        f"## `opik.evaluate` of {found['items']:,} items through the official SDK",
        "",
        "A trivial task and `Equals` (no LLM); the SDK pinned to core 1, the server to core 0. "
        "Wall time from the call until the SDK has flushed; CPU seconds of each process over "
        "the same span, and as a share of the wall time.",
        "",
        "| round | wall | items/s | server CPU | server share | SDK CPU | SDK share | "
        "dataset insert | others' CPU |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, r in enumerate(found["rounds"], 1):
        out.append(
            f"| {n} | {r['seconds']:.1f} s | {r['items'] / r['seconds']:,.0f} | "
            f"{r['server_cpu_seconds']:.1f} s | {r['server_cpu_share']:.0%} | "
            f"{r['sdk_cpu_seconds']:.1f} s | {r['sdk_cpu_share']:.0%} | "
            f"{r['insert_seconds']:.2f} s | {r['other_cpu_share']:.0%} |"
        )
    m = found["median"]
    out += [
        "",
        f"Median round: {m['seconds']:.1f} s, the server busy {m['server_cpu_share']:.0%} of it "
        f"and the SDK {m['sdk_cpu_share']:.0%}.",
    ]
    return out


def _find(results: Results) -> list[str]:
    found = results.get("find")
    if not found:
        return []
    out = [
        "",
        f"## Experiment find page: `GET /v1/private/experiments?page=1&size={found['page_size']}`",
        "",
        f"{found['experiments']:,} experiments; every item has a trace, 2 spans with usage and "
        f"cost and 2 feedback scores. {found['warmup_requests']} requests one at a time first "
        f"(shown: their times), the page checked against the rows, then wrk at "
        f"{found['connections']} connections, {found.get('seconds', 10):g} s points, rounds "
        "in turns.",
        "",
        "| workspace | req/s per round | p50 per round | p99 per round | first requests | file |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    for key, space in found["spaces"].items():
        points = space["points"]
        first = ", ".join(f"{t:,.0f}" for t in found["first_requests_ms"][key])
        out.append(
            f"| {found['experiments']:,} x {space['items']:,} items | "
            + ", ".join(f"{p['rps']:,.1f}" for p in points)
            + " | "
            + ", ".join(_latency(p, "p50") for p in points)
            + " | "
            + ", ".join(_latency(p, "p99") for p in points)
            + f" | {first} ms | {space['file_bytes'] / MIB:,.0f} MiB |"
        )
    errors = sum(p["socket_errors"] for s in found["spaces"].values() for p in s["points"])
    if errors:
        out += ["", f"**{errors} requests timed out or failed** (wrk's socket errors)."]
    return out


def _ui(results: Results) -> list[str]:
    found = results.get("ui")
    if not found:
        return []
    out = [
        "",
        "## Web UI pages (issue 14)",
        "",
        f"Each page on its own server and workspace; {found['warmup_requests']} requests one "
        f"at a time first (shown: their times; they fill the kept summaries), the page checked "
        f"against the rows, then wrk at {found['connections']} connection, "
        f"{found['seconds']:g} s points, rounds in turns. At one connection wrk's latency is "
        "the server's time and a loopback round trip.",
        "",
        "| page | goal | p50 per round | p99 per round | req/s per round | first requests "
        "| others' CPU |",
        "| --- | ---: | --- | --- | --- | --- | ---: |",
    ]
    for page in found["pages"].values():
        points = page["points"]
        first = ", ".join(f"{t:,.0f}" for t in page["first_requests_ms"])
        out.append(
            f"| {page['label']} | {page['goal_ms']:.0f} ms | "
            + ", ".join(_latency(p, "p50") for p in points)
            + " | "
            + ", ".join(_latency(p, "p99") for p in points)
            + " | "
            + ", ".join(f"{p['rps']:,.1f}" for p in points)
            + f" | {first} ms | {max(p['other_cpu_share'] for p in points):.0%} |"
        )
    return out


def _latency(point: dict[str, Any], percentile: str) -> str:
    """A percentile of a point in ms; "none finished" when no request ended within it."""
    if not point["requests"]:
        return "none finished"
    return f"{point['latency_us'][percentile] / 1000:,.1f} ms"


def chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to the file
    import matplotlib.pyplot as plt

    settings = results["settings"]
    levels, c = settings["connections"], settings["headline_connections"]
    keys = [k for k in ORDER if k in results["targets"]]
    labels = [results["targets"][k]["label"] for k in keys]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=(3, 2))
    width = 0.8 / len(levels)
    for n, level in enumerate(levels):
        values = [_rps(results, k, level) or 0 for k in keys]
        positions = [i + (n - (len(levels) - 1) / 2) * width for i in range(len(keys))]
        left.bar(positions, values, width, label=f"{level} connections")
    left.set_xticks(range(len(keys)), labels, rotation=20, ha="right")
    left.set_ylabel("requests / s")
    left.set_title("Throughput, one worker on one core")
    left.legend(fontsize=8)
    p99 = [results["targets"][k]["points"][str(c)]["latency_us"]["p99"] / 1000 for k in keys]
    p50 = [results["targets"][k]["points"][str(c)]["latency_us"]["p50"] / 1000 for k in keys]
    right.bar(range(len(keys)), p99, 0.6, label="p99", color="tab:red")
    right.bar(range(len(keys)), p50, 0.6, label="p50", color="tab:blue")
    right.axhline(10, color="black", linestyle="--", linewidth=1, label="goal: p99 <= 10 ms")
    right.set_xticks(range(len(keys)), labels, rotation=20, ha="right")
    right.set_ylabel("ms")
    right.set_title(f"Latency at {c} connections")
    right.legend(fontsize=8)
    fig.suptitle(f"experiment-items GET by id, {results['meta']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(results: Results, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    (directory / "latest.md").write_text(markdown(results))
    if results["targets"]:  # a run of other rows only keeps the chart it had
        chart(results, directory / "latest.png")


if __name__ == "__main__":
    source = Path(sys.argv[1])
    write(json.loads(source.read_text()), source.parent)
