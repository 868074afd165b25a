"""`make bench`: every target measured in one session under the same conditions.

    .venv/bin/python bench/run.py [--quick] [--only ROW,...] [--seconds S] [--warmup S]
        [--connections 1,16,64,256] [--sizes 10000,1000000,10000000] [--write-items N]
        [--batch-records N] [--evaluate-items N] [--evaluate-rounds N]
        [--find-items 1000,10] [--find-seconds S] [--find-rounds N] [--ui-rounds N]
        [--cold-starts N] [--cache-dir DIR] [--out DIR]

Each target is one uvicorn worker (uvloop, httptools, no access log) pinned to core 0; wrk is
pinned to core 1, and so is this script. Targets: the floor (a constant body from a bare
Starlette route), this service (GET hit, GET miss, GET with API keys on), peer A (FastAPI +
pydantic) and peer B (naive Starlette + msgspec). Every peer's answers are checked
byte for byte against the service's before it is measured. Then the writes (POST /items,
trace, span and dataset-item batches, each beside a raw executemany), `opik.evaluate` through
the official SDK, the experiment find page on a big and a small workspace, and the web UI's
experiments and compare pages; and, when named, PostgreSQL beside SQLite (`--only postgres`).

--only         the rows to run, of ROWS and OPTIONAL_ROWS (default: ROWS); the others keep
               their figures from the results file already in --out
--seconds      length of each measured point (default 10)
--warmup       warm-up load before a server's first measured point (default 3)
--connections  the connection counts of the throughput sweep (default 1,16,64,256)
--sizes        database sizes of the scaling check (default 10000,1000000,10000000)
--write-items  items posted in the write benchmark (default 200000)
--batch-records  traces, spans and dataset items each posted in the batch rows (default 30000)
--evaluate-items  dataset items of the opik.evaluate row (default 1000)
--evaluate-rounds  evaluate runs, in turns with nothing, median reported (default 3)
--find-items   items per experiment of the find row's big and small workspace (default 1000,10)
--find-seconds length of each find point (default --seconds); a slow page needs longer
--find-rounds  find points per workspace, in turns (default 3)
--ui-rounds    points per web UI page, in turns (default 3)
--cold-starts  process starts timed per target (default 3)
--quick        a smoke run of about two minutes: 2 s points, 1 s warm-up, no 10M database
--cache-dir    where generated databases are kept (default ~/.cache/experiment-items-bench)
--out          where latest.md, latest.png and latest.json go (default bench/results)
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# `python bench/run.py` puts bench/ first on the path; the modules import as `bench.*`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    batches,
    data,
    evaluate,
    machine,
    report,
    servers,
    stream,
    ui,
    workspace,
    writes,
    wrk,
)
from bench import postgres as bench_postgres
from bench.servers import REPO, Reply, Server, Target
from bench.writes import WriteRate

SERVER_CORE, LOAD_CORE = 0, 1
ITEM_PATH = "/v1/private/experiments/items/"
MAIN_ITEMS = 1_000_000
# The Opik SDK names its workspace in every request.
HEADERS = {"Comet-Workspace": "default"}
API_KEY = "bench-" + "k" * 32
STREAM_EXPERIMENT = "bench-stream"
# Each point waits for a quiet machine first, and one during which other processes still
# kept this much of a core busy is measured again, up to twice. Budgets bound both, so a
# machine that stays busy cannot blow the time limit: its points are then flagged instead.
OTHER_CPU_LIMIT = 0.10
MAX_RETRIES = 2
RETRY_BUDGET = 12
QUIET_WAIT_SECONDS = 30.0
QUIET_BUDGET_SECONDS = 180.0
# The headline points (floor, hit, miss) and the write benchmark are measured in rounds.
HEADLINE_ROUNDS = 3
WRITE_ROUNDS = 5
# The rows `--only` picks from, in the order they run: ROWS by default, OPTIONAL_ROWS only
# when named (`postgres` starts a cluster and copies a million items into it: minutes more).
ROWS = ("throughput", "sizes", "cold", "writes", "evaluate", "find", "ui")
OPTIONAL_ROWS = ("postgres",)
# The find page (issue 12): 1000 experiments, the first page of 100 with every aggregate, at
# 8 connections; requests before the measured ones let a server fill what it derives lazily.
FIND_PATH = "/v1/private/experiments"
FIND_QUERY = f"?page=1&size={workspace.PAGE_SIZE}"
FIND_EXPERIMENTS = 1000
FIND_CONNECTIONS = 8
FIND_WARMUP_REQUESTS = 5
SETTLE_SECONDS = 300.0
FIND_TIMEOUT_SECONDS = 120  # wrk's per request: aggregates read at request time take seconds
# The web UI's pages (issue 14): one person looking, so one connection; the first requests
# fill the experiments' kept summaries, as the find row's do.
UI_CONNECTIONS = 1
UI_WARMUP_REQUESTS = 5


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda text: [int(part) for part in text.split(",")]  # noqa: E731
    names = lambda text: [part.strip() for part in text.split(",") if part.strip()]  # noqa: E731
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", type=names, default=list(ROWS))
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--connections", type=ints, default=[1, 16, 64, 256])
    parser.add_argument("--sizes", type=ints)
    parser.add_argument("--write-items", type=int)
    parser.add_argument("--batch-records", type=int)
    parser.add_argument("--evaluate-items", type=int, default=1000)
    parser.add_argument("--evaluate-rounds", type=int)
    parser.add_argument("--find-items", type=ints, default=[1000, 10])
    parser.add_argument("--find-seconds", type=float)
    parser.add_argument("--find-rounds", type=int, default=3)
    parser.add_argument("--ui-rounds", type=int, default=3)
    parser.add_argument("--cold-starts", type=int)
    parser.add_argument("--cache-dir", type=Path, default=data.cache_dir())
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    options = parser.parse_args(argv)
    quick = options.quick
    defaults = {
        "seconds": 2.0 if quick else 10.0,
        "warmup": 1.0 if quick else 3.0,
        "sizes": [10_000, MAIN_ITEMS] if quick else [10_000, MAIN_ITEMS, 10_000_000],
        "write_items": 20_000 if quick else 200_000,
        "batch_records": 5_000 if quick else 30_000,
        "evaluate_rounds": 1 if quick else 3,
        "cold_starts": 1 if quick else 3,
    }
    for name, value in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, value)
    if MAIN_ITEMS not in options.sizes:
        options.sizes.append(MAIN_ITEMS)
    options.find_seconds = options.find_seconds or options.seconds
    unknown = [row for row in options.only if row not in (*ROWS, *OPTIONAL_ROWS)]
    if unknown:
        every = ", ".join((*ROWS, *OPTIONAL_ROWS))
        parser.error(f"--only: no row {', '.join(unknown)}; the rows are {every}")
    if len(options.find_items) != 2:
        parser.error("--find-items: two counts, the big workspace's and the small one's")
    return options


def prewarm(path: Path) -> None:
    """Reads the file once so every target starts with it in the OS page cache: a warm-up
    of a few seconds touches too few of 100,000 spread ids to do it."""
    with path.open("rb") as f:
        while f.read(16 * 1024 * 1024):
            pass


def service(db: Path | str, label: str = "this service", **extra: str) -> Target:
    env = {"EXPERIMENT_ITEMS_DB": str(db), "EXPERIMENT_ITEMS_ACCESS_LOG": "false", **extra}
    # The protocol `experiment-items serve` runs: httptools with deadlines for slow clients.
    protocol = "app.protocol:HttpProtocol"
    return Target("service", label, "app.main:app_from_env", env, http=protocol)


def peers(db: Path) -> list[Target]:
    env = {"BENCH_DB": str(db)}
    return [
        Target("peer_a", "peer A: FastAPI", "bench.peers.fastapi_peer:create_app", env),
        Target("peer_b", "peer B: naive Starlette", "bench.peers.starlette_peer:create_app", env),
    ]


@dataclass
class Live:
    """A running target and how to load it: which ids, which extra headers, which answers."""

    key: str
    label: str
    server: Server
    port: int
    ids: Path
    hits: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    prefix: str = ITEM_PATH  # what wrk puts before each line of `ids`
    timeout_seconds: int = 10
    seconds: float | None = None  # of each measured point: --seconds when None


class Session:
    """One benchmark run: the options, wrk, and the results as they come in."""

    def __init__(self, options: argparse.Namespace, wrk_path: str, workdir: Path) -> None:
        self.options = options
        self.wrk = wrk_path
        self.workdir = workdir
        self.retries_left = RETRY_BUDGET
        # Servers that must be idle before a point starts (see settle).
        self.settling: list[Server] = []
        self.quiet_budget = QUIET_BUDGET_SECONDS
        self.results: dict[str, Any] = {
            "disturbed_points": 0,
            "targets": {},
            "sizes": {},
            "storage": {},
            "build_seconds": {},
            "cold_start": {},
        }

    def load(self, live: Live, connections: int, seconds: float) -> wrk.Load:
        sent = {**HEADERS, **live.headers}
        lines = tuple(f"{name}: {value}" for name, value in sent.items())
        return wrk.run(
            self.wrk, live.port, live.ids, connections, seconds, lines, live.prefix, LOAD_CORE,
            live.timeout_seconds,
        )  # fmt: skip

    def quiet(self) -> None:
        """Waits for other processes to leave the cores, within the run's waiting budget."""
        if self.quiet_budget <= 0:
            return
        limit = min(QUIET_WAIT_SECONDS, self.quiet_budget)
        waited = machine.wait_for_quiet(limit, OTHER_CPU_LIMIT)
        self.quiet_budget -= waited
        if waited >= 4:  # more than the quiet window itself
            log(f"  waited {waited:.0f} s for other processes to leave the cores")

    def settle(self) -> None:
        """Waits, up to SETTLE_SECONDS, until every server in `settling` stops using CPU.
        wrk drops the requests still in flight when a point ends, but a server cannot stop
        the SQL it runs for them: a page that takes seconds keeps its core busy into the
        next point, which would then measure two servers at once."""
        deadline = time.perf_counter() + SETTLE_SECONDS
        while self.settling and time.perf_counter() < deadline:
            before = sum(server.cpu_seconds() for server in self.settling)
            time.sleep(0.5)
            if sum(server.cpu_seconds() for server in self.settling) - before < 0.05:
                return
        if self.settling:
            log(f"  a server was still busy after {SETTLE_SECONDS} s; measuring anyway")

    def flag(self, other: float) -> None:
        if other > OTHER_CPU_LIMIT:
            self.results["disturbed_points"] += 1

    def measure(self, live: Live, connections: int) -> dict[str, Any]:
        """One point. CPU used by anything but the server and wrk is measured too, and a
        point it disturbed is measured again, keeping the least disturbed attempt: the
        machine may be shared."""
        attempts: list[tuple[float, wrk.Load, float]] = []
        for attempt in range(1 + MAX_RETRIES):
            self.settle()
            self.quiet()
            others, cpu = machine.Others(), live.server.cpu_seconds()
            got = self.load(live, connections, live.seconds or self.options.seconds)
            cpu = live.server.cpu_seconds() - cpu
            share = others.share(got.seconds)
            attempts.append((share, got, cpu))
            if share <= OTHER_CPU_LIMIT or attempt == MAX_RETRIES or not self.retries_left:
                break
            self.retries_left -= 1
            log(f"  {live.label}: other processes used {share:.0%} of a core; measuring again")
        other, load, server = min(attempts, key=lambda a: a[0])
        self.flag(other)
        wrong = load.non_2xx if live.hits else load.requests - load.non_2xx
        if wrong:
            raise SystemExit(
                f"{live.label}: {wrong} of {load.requests} answers had the wrong status"
            )
        if load.socket_errors:
            log(f"  warning: {load.socket_errors} socket errors at {connections} connections")
        log(
            f"  {live.label:<32} {connections:>3} conn {load.rps:>8,.0f} req/s  "
            f"p99 {load.latency_us['p99'] / 1000:5.1f} ms  server {server / load.seconds:.0%}  "
            f"wrk {load.wrk_cpu_share:.0%}  other {other:.0%}"
        )
        return {
            "rps": load.rps,
            "requests": load.requests,
            "seconds": load.seconds,
            "latency_us": load.latency_us,
            "socket_errors": load.socket_errors,
            "server_cpu_share": server / load.seconds,
            "wrk_cpu_share": load.wrk_cpu_share,
            "other_cpu_share": other,
        }

    def start(self, stack: ExitStack, key: str, target: Target, ids: Path, **kw: Any) -> Live:
        port = servers.free_port()
        server = stack.enter_context(Server.uvicorn(target, port, self.workdir, SERVER_CORE))
        return Live(key, target.label, server, port, ids, **kw)

    def throughput(self, main: data.Dataset) -> bytes:
        """Every target on the same database, all started together and measured in turns
        at each connection count, so a slow drift of the machine touches them all alike.
        Returns the body the floor sends: a real item's."""
        samples = main.hit_ids.read_text().split()[:20] + main.miss_ids.read_text().split()[:5]
        paths = [ITEM_PATH + i for i in samples] + [ITEM_PATH + "not-a-uuid"]
        keys = self.workdir / "keys.toml"
        digest = hashlib.sha256(API_KEY.encode()).hexdigest()
        keys.write_text(f'[[keys]]\nworkspace = "default"\nuser = "admin"\nsha256 = "{digest}"\n')
        with ExitStack() as stack:
            this = self.start(stack, "hit", service(main.db, "this service, GET hit"), main.hit_ids)
            this.server.wait_for(this.port, paths[0], HEADERS)
            reference = {p: servers.request(this.port, p, headers=HEADERS) for p in paths}
            body = next(r.body for r in reference.values() if r.status == 200)
            floor = Target("floor", "floor: bare Starlette", "bench.floor:create_app",
                           {"BENCH_FLOOR_BODY": body.decode()})  # fmt: skip
            auth = service(
                main.db, "this service, GET with auth", EXPERIMENT_ITEMS_API_KEYS=str(keys)
            )
            lives = [
                self.start(stack, "floor", floor, main.hit_ids),
                this,
                Live(
                    "miss", "this service, GET miss", this.server, this.port, main.miss_ids, False
                ),
                self.start(stack, "auth", auth, main.hit_ids, headers={"Authorization": API_KEY}),
                *(self.start(stack, p.key, p, main.hit_ids) for p in peers(main.db)),
            ]
            for live in lives:
                sent = {**HEADERS, **live.headers}
                live.server.wait_for(live.port, paths[0], sent)
                if live.key == "floor":
                    check_answers(live.label, live.port, {paths[0]: reference[paths[0]]}, sent)
                elif live.key != "miss":
                    check_answers(live.label, live.port, reference, sent)
            if servers.request(lives[3].port, paths[0], headers=HEADERS).status != 401:
                raise SystemExit("API keys are configured but a request without one passed")
            for live in lives:
                if live.key != "miss":
                    self.load(live, self.options.headline, self.options.warmup)
            points: dict[str, dict[str, Any]] = {live.key: {} for live in lives}
            for turn, connections in enumerate(self.options.connections):
                # Each level starts with another target: none is always first after a pause.
                for live in lives[turn:] + lives[:turn]:
                    points[live.key][str(connections)] = self.measure(live, connections)
            self.headline({live.key: live for live in lives}, points)
            for live in lives:
                self.results["targets"][live.key] = {
                    "label": live.label,
                    "points": points[live.key],
                    "memory": live.server.memory(),
                }
        return body

    def headline(self, lives: dict[str, Live], points: dict[str, dict[str, Any]]) -> None:
        """The floor, hit and miss at the headline count HEADLINE_ROUNDS - 1 more times, in
        turns. The goals' two ratios to the floor are the median of the rounds' (the sweep's
        point is the first round): a dip of the machine in one 10 s point, seen as 0.67 where
        the rounds before and after gave 0.74 and 0.80, then moves one round, not the goal."""
        c = str(self.options.headline)
        keys = ("floor", "hit", "miss")
        rounds = [{k: points[k][c] for k in keys}]
        for _ in range(HEADLINE_ROUNDS - 1):
            rounds.append({k: self.measure(lives[k], self.options.headline) for k in keys})
        self.results["headline"] = {
            "connections": self.options.headline,
            "rounds": [{k: r[k]["rps"] for k in keys} for r in rounds],
            "per_cpu_rounds": [
                {k: r[k]["rps"] / r[k]["server_cpu_share"] for k in keys} for r in rounds
            ],
        }

    def sizes(self, datasets: dict[int, data.Dataset]) -> None:
        """GET hit at the headline connection count on every database size, in turns."""
        with ExitStack() as stack:
            lives = []
            for items, ds in sorted(datasets.items()):
                prewarm(ds.db)
                target = service(ds.db, f"{items:,} items")
                lives.append(self.start(stack, str(items), target, ds.hit_ids))
            for live in lives:
                first = ITEM_PATH + live.ids.read_text(encoding="ascii")[:36]
                live.server.wait_for(live.port, first, HEADERS)
                self.load(live, self.options.headline, self.options.warmup)
            for live, ds in zip(lives, (d for _, d in sorted(datasets.items())), strict=True):
                got = self.measure(live, self.options.headline)
                self.results["sizes"][live.key] = {
                    "rps": got["rps"],
                    "server_cpu_share": got["server_cpu_share"],
                    "p99_us": got["latency_us"]["p99"],
                    "file_bytes": ds.db.stat().st_size,
                }

    def item_body(self, main: data.Dataset) -> bytes:
        """A real item's body, for the floor, when the throughput row did not run."""
        path = ITEM_PATH + main.hit_ids.read_text(encoding="ascii")[:36]
        port = servers.free_port()
        with Server.uvicorn(service(main.db), port, self.workdir, SERVER_CORE) as server:
            server.wait_for(port, path, HEADERS)
            return servers.request(port, path, headers=HEADERS).body

    def cold_starts(self, main: data.Dataset, floor_body: bytes) -> None:
        path = ITEM_PATH + main.hit_ids.read_text(encoding="ascii")[:36]
        floor = Target(
            "floor", "floor", "bench.floor:create_app", {"BENCH_FLOOR_BODY": floor_body.decode()}
        )
        cli = [sys.executable, "-m", "app", "serve", "--db", str(main.db), "--no-access-log"]
        starters: dict[str, tuple[str, Any]] = {
            "floor": ("floor (uvicorn)", floor),
            "service_uvicorn": ("this service (uvicorn)", service(main.db)),
            "service_cli": ("this service (`experiment-items serve`)", cli),
            **{p.key: (f"{p.label} (uvicorn)", p) for p in peers(main.db)},
        }
        for key, (label, how) in starters.items():
            times = []
            for _ in range(self.options.cold_starts):
                port = servers.free_port()
                if isinstance(how, Target):
                    server = Server.uvicorn(how, port, self.workdir, SERVER_CORE)
                else:
                    log_file = self.workdir / f"{key}.log"
                    server = Server([*how, "--port", str(port)], {}, log_file, SERVER_CORE)
                with server:
                    times.append(server.wait_for(port, path, HEADERS))
            times.sort()
            median = times[len(times) // 2]
            self.results["cold_start"][key] = {"label": label, "seconds": times, "median": median}
            log(f"  cold start, {label}: {median:.2f} s")

    def writes(self) -> None:
        """POST /items through the service and as the raw executemany of the same rows, in
        WRITE_ROUNDS alternating rounds, then the stream on what was written; then the
        trace, span and dataset-item batches the same way (batch_writes).

        Both sides wait on fsync, whose speed on a shared disk drifts by half within
        minutes; measured in turns, a drift falls on both, and the ratio is the median of
        the rounds' ratios."""
        db = self.workdir / "writes.db"
        servers.create_database(db, self.workdir)
        port = servers.free_port()
        experiment_id = writes.new_id()
        warm_items = 3 * writes.BATCH_ITEMS
        bodies = writes.make_batches(self.options.write_items + warm_items, experiment_id)
        with Server.uvicorn(service(db), port, self.workdir, SERVER_CORE) as server:
            server.wait_for(port, "/is-alive/ping", HEADERS)
            created = servers.request(
                port,
                "/v1/private/experiments",
                "POST",
                (
                    f'{{"id":"{experiment_id}","name":"{STREAM_EXPERIMENT}",'
                    f'"dataset_name":"bench-dataset"}}'
                ).encode(),
                {**HEADERS, "Content-Type": "application/json"},
            )
            writes.post_batches(port, bodies[:3], HEADERS)
            self.results["writes"] = self.write_rounds(
                "POST /items", port, bodies[3:], bodies[3:], None, ["bench.writes"]
            )
            self.quiet()
            rate = stream.stream_all(port, STREAM_EXPERIMENT, HEADERS, self.options.seconds)
        if not rate.available:
            why = f"POST {stream.STREAM_PATH} answered {rate.status}"
        elif created.status != 201:
            why = f"POST /v1/private/experiments answered {created.status}"
        else:
            why = "" if rate.items else "the stream returned no items"
        self.results["stream"] = {
            "available": rate.available and rate.items > 0,
            "items": rate.items,
            "seconds": rate.seconds,
            "items_per_second": rate.items_per_second,
            "why": why,
        }
        log("  stream: " + (why or f"{rate.items_per_second:,.0f} items/s"))
        self.results["storage"]["api"] = data.storage(db)
        self.batch_writes()

    def batch_writes(self) -> None:
        """The trace, span and dataset-item batches, on a file of their own (the storage
        figures above are the items')."""
        db = self.workdir / "batches.db"
        servers.create_database(db, self.workdir)
        port = servers.free_port()
        with Server.uvicorn(service(db), port, self.workdir, SERVER_CORE) as server:
            server.wait_for(port, "/is-alive/ping", HEADERS)
            self.results["batch_writes"] = {}
            for kind in batches.KINDS.values():
                made = batches.MAKERS[kind.key](self.options.batch_records + batches.BATCH_RECORDS)
                warm, measured = made[0], made[1:]
                gzipped = {**HEADERS, "Content-Encoding": "gzip"}
                writes.post_batches(
                    port,
                    [warm.body],
                    gzipped,
                    path=kind.path,
                    method=kind.method,
                    records=[warm.records],
                )
                self.results["batch_writes"][kind.key] = self.write_rounds(
                    kind.label,
                    port,
                    [b.body for b in measured],
                    [b.text for b in measured],
                    kind,
                    ["bench.batches", kind.key],
                    [b.records for b in measured],
                )

    def write_rounds(
        self,
        label: str,
        port: int,
        sent: list[bytes],
        raw: list[bytes],
        kind: batches.Kind | None,
        raw_module: list[str],
        records: list[int] | None = None,
        raw_db: Path | str | None = None,
    ) -> dict[str, Any]:
        """`sent` through the API and `raw` (the same batches uncompressed) through the raw
        side `raw_module`, in WRITE_ROUNDS rounds in turns, each side adding to its own file
        (or `raw_db`, a PostgreSQL database's URL)."""
        raw_db = raw_db or self.workdir / f"raw-{raw_module[-1]}.db"
        per_round = -(-len(sent) // WRITE_ROUNDS)
        headers = HEADERS if kind is None else {**HEADERS, "Content-Encoding": "gzip"}
        path, method = (writes.ITEMS_PATH, "POST") if kind is None else (kind.path, kind.method)
        results: list[dict[str, float]] = []
        for number, at in enumerate(range(0, len(sent), per_round), 1):
            part = slice(at, at + per_round)
            self.quiet()
            others = machine.Others()
            api = writes.post_batches(
                port,
                sent[part],
                headers,
                path=path,
                method=method,
                records=None if records is None else records[part],
            )
            api_other = others.share(api.seconds)
            self.quiet()
            rate, raw_other = self.raw_executemany(raw_db, raw[part], raw_module)
            other = max(api_other, raw_other)
            self.flag(other)
            results.append(
                {
                    "items": api.items,
                    "api_seconds": api.seconds,
                    "raw_seconds": rate.seconds,
                    "ratio": rate.seconds / api.seconds,
                    "other_cpu_share": other,
                }
            )
            raw_way = "COPY" if raw_module[0] == "bench.postgres" else "executemany"
            log(
                f"  {label}, round {number}: {api.items_per_second:,.0f} records/s, raw "
                f"{raw_way} {rate.items_per_second:,.0f} records/s, ratio "
                f"{rate.seconds / api.seconds:.2f}, other {other:.0%}"
            )
        items = sum(r["items"] for r in results)
        return {
            "label": label,
            "items": items,
            "clients": writes.CLIENTS,
            "rounds": results,
            "api_items_per_second": items / sum(r["api_seconds"] for r in results),
            "raw_items_per_second": items / sum(r["raw_seconds"] for r in results),
            "ratio": statistics.median(r["ratio"] for r in results),
            "other_cpu_share": max(r["other_cpu_share"] for r in results),
        }

    def raw_executemany(
        self, raw_db: Path | str, texts: list[bytes], module: list[str]
    ) -> tuple[WriteRate, float]:
        """The raw side (`python -m MODULE...`) run on the server's core, adding `texts` to
        `raw_db`."""
        batches_file = self.workdir / "batches.jsonl"
        batches_file.write_bytes(b"\n".join(texts))
        others, wall = machine.Others(), time.perf_counter()
        command = ["taskset", "-c", str(SERVER_CORE), sys.executable, "-m", *module]
        done = subprocess.run(
            [*command, str(raw_db), str(batches_file)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        other = others.share(time.perf_counter() - wall)
        raw = json.loads(done.stdout)
        return WriteRate(raw["items"], raw["seconds"]), other

    def evaluate(self) -> None:
        """`opik.evaluate` of --evaluate-items items through the official SDK, pinned to the
        load generator's core, against the service on a new file: the run's wall time and
        both processes' CPU. Each round evaluates a dataset of its own; a round that other
        processes disturbed is run again (once), and the median round is reported."""
        db = self.workdir / "evaluate.db"
        servers.create_database(db, self.workdir)
        port = servers.free_port()
        items = self.options.evaluate_items
        rounds: list[dict[str, Any]] = []
        env = {**os.environ, **evaluate.sdk_env(port)}
        with Server.uvicorn(service(db), port, self.workdir, SERVER_CORE) as server:
            server.wait_for(port, "/is-alive/ping", HEADERS)
            for number in range(1, self.options.evaluate_rounds + 1):
                for attempt in range(2):
                    name = f"{evaluate.EXPERIMENT_PREFIX}-{number}-{attempt}"
                    self.quiet()
                    others, wall = machine.Others(), time.perf_counter()
                    command = [
                        "taskset",
                        "-c",
                        str(LOAD_CORE),
                        sys.executable,
                        "-m",
                        "bench.evaluate",
                        str(port),
                        str(server.pid),
                        str(items),
                        name,
                    ]
                    done = subprocess.run(
                        command, cwd=REPO, env=env, capture_output=True, text=True
                    )
                    other = others.share(time.perf_counter() - wall)
                    if done.returncode != 0:
                        raise SystemExit(f"opik.evaluate failed:\n{done.stderr[-3000:]}")
                    got = json.loads(done.stdout.strip().splitlines()[-1])
                    if got["trace_count"] != items:
                        raise SystemExit(f"opik.evaluate stored {got['trace_count']} of {items}")
                    if other <= OTHER_CPU_LIMIT or attempt or not self.retries_left:
                        break
                    self.retries_left -= 1
                    log(f"  evaluate: other processes used {other:.0%} of a core; again")
                self.flag(other)
                got["other_cpu_share"] = other
                got["server_cpu_share"] = got["server_cpu_seconds"] / got["seconds"]
                got["sdk_cpu_share"] = got["sdk_cpu_seconds"] / got["seconds"]
                rounds.append(got)
                log(
                    f"  opik.evaluate of {items:,} items, round {number}: {got['seconds']:.1f} s, "
                    f"server CPU {got['server_cpu_share']:.0%} of the wall time, SDK "
                    f"{got['sdk_cpu_share']:.0%}, other {other:.0%}"
                )
        middle = sorted(rounds, key=lambda r: r["seconds"])[len(rounds) // 2]
        self.results["evaluate"] = {"items": items, "rounds": rounds, "median": middle}

    def find(self) -> None:
        """GET the first page of 100 experiments, every aggregate, on a workspace of
        FIND_EXPERIMENTS experiments of `big` items each and one of `small`, both served at
        once: FIND_WARMUP_REQUESTS requests first (a server may fill a summary lazily on the
        first reads), the answer checked against the rows, then --find-rounds points in turns
        at FIND_CONNECTIONS connections."""
        big_items, small_items = self.options.find_items
        spaces = {}
        for key, items in (("big", big_items), ("small", small_items)):
            log(f"  workspace of {FIND_EXPERIMENTS:,} experiments x {items:,} items ...")
            spaces[key] = workspace.workspace(FIND_EXPERIMENTS, items, self.options.cache_dir)
            prewarm(spaces[key].db)
        query = self.workdir / "find-query.txt"
        query.write_text(FIND_QUERY + "\n")
        points: dict[str, list[dict[str, Any]]] = {key: [] for key in spaces}
        first_ms: dict[str, list[float]] = {key: [] for key in spaces}
        with ExitStack() as stack:
            lives = {}
            for key, ws in spaces.items():
                # A copy: a server that fills a summary table writes to its file.
                db = self.workdir / f"find-{key}.db"
                db.write_bytes(ws.db.read_bytes())
                label = f"find page, {FIND_EXPERIMENTS:,} x {ws.items:,} items"
                live = self.start(
                    stack,
                    f"find_{key}",
                    service(db, label),
                    query,
                    prefix=FIND_PATH,
                    timeout_seconds=FIND_TIMEOUT_SECONDS,
                    seconds=self.options.find_seconds,
                )
                live.server.wait_for(live.port, "/is-alive/ping", HEADERS)
                for _ in range(FIND_WARMUP_REQUESTS):
                    started = time.perf_counter()
                    reply = servers.request(
                        live.port,
                        FIND_PATH + FIND_QUERY,
                        headers=HEADERS,
                        timeout=FIND_TIMEOUT_SECONDS,
                    )
                    first_ms[key].append((time.perf_counter() - started) * 1000)
                    if reply.status != 200:
                        raise SystemExit(f"{label}: GET answered {reply.status}: {reply.body!r}")
                wrong = workspace.check_page(json.loads(reply.body), ws)
                if wrong:
                    raise SystemExit(f"{label}: the page is wrong:\n  " + "\n  ".join(wrong[:5]))
                log(
                    f"  {label}: first requests "
                    + ", ".join(f"{t:,.0f}" for t in first_ms[key])
                    + " ms; the page matches the rows"
                )
                lives[key] = live
            self.settling = [live.server for live in lives.values()]
            for live in lives.values():
                self.settle()
                self.load(live, FIND_CONNECTIONS, self.options.warmup)
            for turn in range(self.options.find_rounds):
                order = list(lives) if turn % 2 == 0 else list(reversed(lives))
                for key in order:
                    points[key].append(self.measure(lives[key], FIND_CONNECTIONS))
            memory = {key: live.server.memory() for key, live in lives.items()}
            self.settling = []
        # A point in which no request finished has no p99: None, which fails the goals.
        rounds = [
            {
                key: points[key][n]["latency_us"]["p99"] if points[key][n]["requests"] else None
                for key in spaces
            }
            for n in range(self.options.find_rounds)
        ]
        self.results["find"] = {
            "experiments": FIND_EXPERIMENTS,
            "page_size": workspace.PAGE_SIZE,
            "connections": FIND_CONNECTIONS,
            "seconds": self.options.find_seconds,
            "warmup_requests": FIND_WARMUP_REQUESTS,
            "first_requests_ms": first_ms,
            "spaces": {
                key: {
                    "items": ws.items,
                    "file_bytes": ws.db.stat().st_size,
                    "build_seconds": ws.build_seconds,
                    "points": points[key],
                    "memory": memory[key],
                }
                for key, ws in spaces.items()
            },
            "p99_rounds_us": rounds,
        }

    def ui(self) -> None:
        """The web UI's experiments page and compare page (bench/ui.py), each on its own
        server and a copy of its workspace: UI_WARMUP_REQUESTS requests one at a time (they
        fill the kept summaries), the page checked, then --ui-rounds points in turns at one
        connection. wrk's latency at one connection is the server's time plus a loopback
        round trip."""
        points: dict[str, list[dict[str, Any]]] = {key: [] for key in ui.SIZES}
        first_ms: dict[str, list[float]] = {key: [] for key in ui.SIZES}
        with ExitStack() as stack:
            lives = {}
            for key, (experiments, items) in ui.SIZES.items():
                log(f"  {ui.LABELS[key]}: workspace of {experiments:,} x {items:,} items ...")
                ws = workspace.workspace(experiments, items, self.options.cache_dir)
                db = self.workdir / f"ui-{key}.db"
                db.write_bytes(ws.db.read_bytes())
                port = servers.free_port()
                server = stack.enter_context(
                    Server.uvicorn(service(db, ui.LABELS[key]), port, self.workdir, SERVER_CORE)
                )
                server.wait_for(port, "/is-alive/ping", HEADERS)
                shown = ui.page(key, port, ws, HEADERS)
                for _ in range(UI_WARMUP_REQUESTS):
                    started = time.perf_counter()
                    reply = servers.request(port, shown.url, headers=HEADERS)
                    first_ms[key].append((time.perf_counter() - started) * 1000)
                    if reply.status != 200:
                        raise SystemExit(f"{shown.url} answered {reply.status}: {reply.body!r}")
                wrong = ui.check(shown, reply.body)
                if wrong:
                    raise SystemExit(f"{ui.LABELS[key]} is wrong:\n  " + "\n  ".join(wrong))
                log(
                    f"  {ui.LABELS[key]}: first requests "
                    + ", ".join(f"{t:,.0f}" for t in first_ms[key])
                    + " ms; the page matches the rows"
                )
                lives[key] = Live(
                    key, ui.LABELS[key], server, port, ui.write_query(shown, self.workdir),
                    prefix=shown.path,
                )  # fmt: skip
            self.settling = [live.server for live in lives.values()]
            for live in lives.values():
                self.settle()
                self.load(live, UI_CONNECTIONS, self.options.warmup)
            for turn in range(self.options.ui_rounds):
                order = list(lives) if turn % 2 == 0 else list(reversed(lives))
                for key in order:
                    points[key].append(self.measure(lives[key], UI_CONNECTIONS))
            self.settling = []
        self.results["ui"] = {
            "connections": UI_CONNECTIONS,
            "seconds": self.options.seconds,
            "warmup_requests": UI_WARMUP_REQUESTS,
            "pages": {
                key: {
                    "label": ui.LABELS[key],
                    "goal_ms": ui.GOALS_MS[key],
                    "first_requests_ms": first_ms[key],
                    "points": points[key],
                }
                for key in ui.SIZES
            },
        }

    def postgres(self, main: data.Dataset) -> None:
        """This service on PostgreSQL beside SQLite: GET hit and miss on a database holding
        the SQLite file's items (copied with COPY), measured in turns with peer A and the
        service on the file, their answers checked byte for byte against the file's first;
        then POST /items and traces/batch, each beside a raw COPY on PostgreSQL,
        rounds in turns as the writes row's. Skipped, saying why, without PostgreSQL."""
        try:
            cluster = bench_postgres.Cluster.start()
        except bench_postgres.Unavailable as exc:
            log(f"  skipped: {exc}")
            self.results["postgres"] = {"skipped": str(exc)}
            return
        try:
            pinned = bench_postgres.serve_on(cluster, SERVER_CORE)
            log(f"  {len(pinned)} PostgreSQL processes pinned to core {SERVER_CORE}")
            self.results["postgres"] = {"get": self.postgres_get(cluster, main)}
            self.postgres_writes(cluster)
        finally:
            cluster.stop()
            machine.SERVING_PARENTS.clear()

    def postgres_get(self, cluster: bench_postgres.Cluster, main: data.Dataset) -> dict[str, Any]:
        url = cluster.create_database("bench_items")
        log(f"  copying {main.items:,} items into PostgreSQL ...")
        copied, seconds = bench_postgres.copy_from_sqlite(main.db, url)
        log(f"  copied {sum(copied.values()):,} rows in {seconds:.0f} s")
        samples = main.hit_ids.read_text().split()[:20] + main.miss_ids.read_text().split()[:5]
        paths = [ITEM_PATH + i for i in samples] + [ITEM_PATH + "not-a-uuid"]
        keys = ("pg_hit", "pg_miss", "peer_a", "sqlite_hit")
        with ExitStack() as stack:
            lite = self.start(stack, "sqlite_hit", service(main.db, "SQLite, GET hit"),
                              main.hit_ids)  # fmt: skip
            lite.server.wait_for(lite.port, paths[0], HEADERS)
            reference = {p: servers.request(lite.port, p, headers=HEADERS) for p in paths}
            pg = self.start(stack, "pg_hit", service(url, "PostgreSQL, GET hit"), main.hit_ids)
            pg.server.wait_for(pg.port, paths[0], HEADERS)
            check_answers(pg.label, pg.port, reference, HEADERS)
            peer_a = next(p for p in peers(main.db) if p.key == "peer_a")
            lives = {
                "pg_hit": pg,
                "pg_miss": Live("pg_miss", "PostgreSQL, GET miss", pg.server, pg.port,
                                main.miss_ids, False),
                "peer_a": self.start(stack, "peer_a", peer_a, main.hit_ids),
                "sqlite_hit": lite,
            }  # fmt: skip
            lives["peer_a"].server.wait_for(lives["peer_a"].port, paths[0], HEADERS)
            check_answers(peer_a.label, lives["peer_a"].port, reference, HEADERS)
            for live in lives.values():
                self.load(live, self.options.headline, self.options.warmup)
            rounds = []
            for turn in range(HEADLINE_ROUNDS):
                order = list(keys[turn:] + keys[:turn])
                rounds.append({k: self.measure(lives[k], self.options.headline) for k in order})
            memory = pg.server.memory()
        return {
            "connections": self.options.headline,
            "copied_rows": copied,
            "copy_seconds": seconds,
            "rounds": [{k: r[k]["rps"] for k in keys} for r in rounds],
            "points": rounds,
            "memory": memory,
            "hit_to_peer_a": statistics.median(r["pg_hit"]["rps"] / r["peer_a"]["rps"]
                                               for r in rounds),
            "miss_to_peer_a": statistics.median(r["pg_miss"]["rps"] / r["peer_a"]["rps"]
                                                for r in rounds),
            "hit_to_sqlite": statistics.median(r["pg_hit"]["rps"] / r["sqlite_hit"]["rps"]
                                               for r in rounds),
        }  # fmt: skip

    def postgres_writes(self, cluster: bench_postgres.Cluster) -> None:
        """POST /items and traces/batch on PostgreSQL, each beside the raw COPY of
        the same rows into a database of its own, in rounds in turns."""
        url = cluster.create_database("bench_writes")
        port = servers.free_port()
        experiment_id = writes.new_id()
        warm = 3 * writes.BATCH_ITEMS
        bodies = writes.make_batches(self.options.write_items + warm, experiment_id)
        traces = batches.MAKERS["traces"](self.options.batch_records + batches.BATCH_RECORDS)
        gzipped = {**HEADERS, "Content-Encoding": "gzip"}
        found = self.results["postgres"]
        with Server.uvicorn(service(url, "PostgreSQL"), port, self.workdir, SERVER_CORE) as server:
            server.wait_for(port, "/is-alive/ping", HEADERS)
            writes.post_batches(port, bodies[:3], HEADERS)
            found["writes"] = self.write_rounds(
                "POST /items on PostgreSQL", port, bodies[3:], bodies[3:], None,
                ["bench.postgres", "items"], raw_db=cluster.create_database("raw_items"),
            )  # fmt: skip
            kind = batches.TRACES
            writes.post_batches(port, [traces[0].body], gzipped, path=kind.path,
                                method=kind.method, records=[traces[0].records])  # fmt: skip
            found["traces"] = self.write_rounds(
                "POST /traces/batch on PostgreSQL", port, [b.body for b in traces[1:]],
                [b.text for b in traces[1:]], kind, ["bench.postgres", "traces"],
                [b.records for b in traces[1:]], raw_db=cluster.create_database("raw_traces"),
            )  # fmt: skip
            found["memory"] = server.memory()


def check_answers(
    label: str, port: int, reference: dict[str, Reply], headers: dict[str, str]
) -> None:
    """A target that answers differently is not measured: a wrong peer must not look fast."""
    for path, expected in reference.items():
        got = servers.request(port, path, headers=headers)
        if (got.status, got.content_type, got.body) != (
            expected.status,
            expected.content_type,
            expected.body,
        ):
            raise SystemExit(
                f"{label} answers GET {path} differently from the service:\n"
                f"  service: {expected}\n  {label}: {got}"
            )


# Each row's part of the results, for `--only` to keep the others' from the previous file.
ROW_KEYS = {
    "throughput": ("targets", "headline"),
    "sizes": ("sizes", "build_seconds"),
    "cold": ("cold_start",),
    "writes": ("writes", "batch_writes", "stream"),
    "evaluate": ("evaluate",),
    "find": ("find",),
    "ui": ("ui",),
    "postgres": ("postgres",),
}


def merge_previous(results: dict[str, Any], rows: list[str], previous_file: Path) -> None:
    """The rows not run this time, as the results file already there has them, with the run
    each came from."""
    if not previous_file.is_file():
        return
    previous = json.loads(previous_file.read_text())
    meta = previous.get("meta", {})
    earlier = {"started": meta.get("started"), "commit": meta.get("commit"), "disturbed": None}
    for row, keys in ROW_KEYS.items():
        if row in rows:
            continue
        found = {key: previous[key] for key in keys if previous.get(key)}
        # A file that records its rows has those; an older one has every row it holds.
        if not found or ("rows" in previous and row not in previous["rows"]):
            continue
        results.update(found)
        results["rows"][row] = previous.get("rows", {}).get(row, earlier)
    storage = previous.get("storage", {})
    if "writes" not in rows and "api" in storage:
        results["storage"]["api"] = storage["api"]
    if not {"throughput", "sizes", "cold"} & set(rows):
        results["storage"].update({k: v for k, v in storage.items() if k != "api"})
    kept = [r["disturbed"] for row, r in results["rows"].items() if row not in rows]
    if None in kept:  # a file from before rows were recorded: its count is all there is
        results["disturbed_points"] += previous.get("disturbed_points", 0)
    else:
        results["disturbed_points"] += sum(kept)
    results["settings"] = {**previous.get("settings", {}), **results["settings"]}


def main(argv: Sequence[str]) -> int:
    options = parse(argv)
    options.headline = 64 if 64 in options.connections else options.connections[-1]
    started, clock = time.strftime("%Y-%m-%d %H:%M %Z"), time.perf_counter()
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench needs two cores: one for the server, one for wrk")
    os.sched_setaffinity(0, {LOAD_CORE})  # this script stays off the server's core
    wrk_path = wrk.ensure_wrk()
    rows = [row for row in (*ROWS, *OPTIONAL_ROWS) if row in options.only]

    datasets = {}
    if {"throughput", "sizes", "cold", "postgres"} & set(rows):
        for items in sorted(options.sizes if "sizes" in rows else [MAIN_ITEMS]):
            log(f"database of {items:,} items in {options.cache_dir} ...")
            datasets[items] = data.dataset(items, options.cache_dir)
        prewarm(datasets[MAIN_ITEMS].db)
    commit = machine.describe()["commit"]

    with tempfile.TemporaryDirectory(prefix="experiment-items-bench-") as tmp:
        session = Session(options, wrk_path, Path(tmp))
        results = session.results
        results["rows"] = {}
        floor_body = b""
        for row in rows:
            disturbed, row_started = results["disturbed_points"], time.strftime("%Y-%m-%d %H:%M %Z")
            if row == "throughput":
                log("throughput: every target on the same database, in turns")
                floor_body = session.throughput(datasets[MAIN_ITEMS])
            elif row == "sizes":
                log("database sizes")
                results["build_seconds"] = {str(n): d.build_seconds for n, d in datasets.items()}
                session.sizes(datasets)
            elif row == "cold":
                log("cold starts")
                session.cold_starts(
                    datasets[MAIN_ITEMS], floor_body or session.item_body(datasets[MAIN_ITEMS])
                )
            elif row == "writes":
                log("writes: POST /items, trace, span and dataset-item batches; stream")
                session.writes()
            elif row == "evaluate":
                log("opik.evaluate through the official SDK")
                session.evaluate()
            elif row == "find":
                log("experiment find page")
                session.find()
            elif row == "ui":
                log("web UI pages")
                session.ui()
            elif row == "postgres":
                log("PostgreSQL beside SQLite: GET hit and miss, POST /items, traces/batch")
                session.postgres(datasets[MAIN_ITEMS])
            results["rows"][row] = {
                "started": row_started,
                "commit": commit,
                "disturbed": results["disturbed_points"] - disturbed,
            }

    if datasets:
        results["storage"] = {
            str(MAIN_ITEMS): data.storage(datasets[MAIN_ITEMS].db),
            **results["storage"],
        }
    results["settings"] = {
        "seconds": options.seconds,
        "warmup": options.warmup,
        "connections": options.connections,
        "headline_connections": options.headline,
        "hot_ids": min(data.HOT_IDS, MAIN_ITEMS),
        "main_items": MAIN_ITEMS,
        "quick": options.quick,
    }
    if rows != list(ROWS):
        merge_previous(results, rows, options.out / "latest.json")
    results["meta"] = machine.describe() | {"started": started}
    results["meta"]["versions"]["wrk"] = wrk.version(wrk_path)
    results["meta"]["total_seconds"] = time.perf_counter() - clock
    report.write(results, options.out)
    for goal in report.goals(results):
        verdict = {True: "pass", False: "FAIL", None: "-"}[goal.passed]
        print(f"{verdict:>4}  {goal.name}: {goal.shown} (goal {goal.target})")
    print(
        f"results: {options.out / 'latest.md'} (run took {results['meta']['total_seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
