"""`make bench`: every target measured in one session under the same conditions.

    .venv/bin/python bench/run.py [--quick] [--seconds S] [--warmup S]
        [--connections 1,16,64,256] [--sizes 10000,1000000,10000000] [--write-items N]
        [--cold-starts N] [--cache-dir DIR] [--out DIR]

Each target is one uvicorn worker (uvloop, httptools, no access log) pinned to core 0; wrk is
pinned to core 1, and so is this script. Targets: the floor (a constant body from a bare
Starlette route), this service (GET hit, GET miss, GET with API keys on), peer A (FastAPI +
pydantic) and peer B (naive Starlette + msgspec). Every peer's answers are checked
byte for byte against the service's before it is measured.

--seconds      length of each measured point (default 10)
--warmup       warm-up load before a server's first measured point (default 3)
--connections  the connection counts of the throughput sweep (default 1,16,64,256)
--sizes        database sizes of the scaling check (default 10000,1000000,10000000)
--write-items  items posted in the write benchmark (default 200000)
--cold-starts  process starts timed per target (default 3)
--quick        a smoke run of about two minutes: 2 s points, 1 s warm-up, no 10M database
--cache-dir    where generated databases are kept (default ~/.cache/experiment-items-bench)
--out          where latest.md, latest.png and latest.json go (default bench/results)
"""

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# `python bench/run.py` puts bench/ first on the path; the modules import as `bench.*`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data, report, servers, stream, writes, wrk
from bench.servers import REPO, Reply, Server, Target

SERVER_CORE, LOAD_CORE = 0, 1
ITEM_PATH = "/v1/private/experiments/items/"
MAIN_ITEMS = 1_000_000
# The Opik SDK names its workspace in every request.
HEADERS = {"Comet-Workspace": "default"}
API_KEY = "bench-" + "k" * 32
STREAM_EXPERIMENT = "bench-stream"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda text: [int(part) for part in text.split(",")]  # noqa: E731
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--connections", type=ints, default=[1, 16, 64, 256])
    parser.add_argument("--sizes", type=ints)
    parser.add_argument("--write-items", type=int)
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
        "cold_starts": 1 if quick else 3,
    }
    for name, value in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, value)
    if MAIN_ITEMS not in options.sizes:
        options.sizes.append(MAIN_ITEMS)
    return options


def prewarm(path: Path) -> None:
    """Reads the file once so every target starts with it in the OS page cache: a warm-up
    of a few seconds touches too few of 100,000 spread ids to do it."""
    with path.open("rb") as f:
        while f.read(16 * 1024 * 1024):
            pass


def service(db: Path, **extra: str) -> Target:
    env = {"EXPERIMENT_ITEMS_DB": str(db), "EXPERIMENT_ITEMS_ACCESS_LOG": "false", **extra}
    return Target("service", "this service", "app.main:app_from_env", env)


def peers(db: Path) -> list[Target]:
    env = {"BENCH_DB": str(db)}
    return [
        Target("peer_a", "peer A: FastAPI", "bench.peers.fastapi_peer:create_app", env),
        Target("peer_b", "peer B: naive Starlette", "bench.peers.starlette_peer:create_app", env),
    ]


def point(load: wrk.Load, expect_hits: bool) -> dict[str, Any]:
    """One measured point as saved; a point with the wrong answers stops the run."""
    wrong = load.non_2xx if expect_hits else load.requests - load.non_2xx
    if wrong:
        raise SystemExit(f"{wrong} of {load.requests} answers had the wrong status")
    if load.socket_errors:
        log(f"  warning: {load.socket_errors} socket errors at {load.connections} connections")
    return {
        "rps": load.rps,
        "requests": load.requests,
        "seconds": load.seconds,
        "latency_us": load.latency_us,
        "socket_errors": load.socket_errors,
        "wrk_cpu_share": load.wrk_cpu_share,
    }


class Session:
    """One benchmark run: the options, wrk, and the results as they come in."""

    def __init__(self, options: argparse.Namespace, wrk_path: str, workdir: Path) -> None:
        self.options = options
        self.wrk = wrk_path
        self.workdir = workdir
        self.results: dict[str, Any] = {
            "targets": {},
            "sizes": {},
            "storage": {},
            "build_seconds": {},
            "cold_start": {},
        }

    def load(
        self,
        port: int,
        ids: Path,
        connections: int,
        seconds: float,
        headers: dict[str, str] | None = None,
    ) -> wrk.Load:
        sent = {**HEADERS, **(headers or {})}
        lines = tuple(f"{name}: {value}" for name, value in sent.items())
        return wrk.run(self.wrk, port, ids, connections, seconds, lines, core=LOAD_CORE)

    def sweep(
        self,
        key: str,
        label: str,
        port: int,
        ids: Path,
        hits: bool,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        points = {}
        for connections in self.options.connections:
            load = self.load(port, ids, connections, self.options.seconds, headers)
            points[str(connections)] = point(load, hits)
            log(
                f"  {label}: {connections:>3} connections {load.rps:>8,.0f} req/s, "
                f"p99 {load.latency_us['p99'] / 1000:.1f} ms, wrk busy {load.wrk_cpu_share:.0%}"
            )
        entry = {"label": label, "points": points}
        self.results["targets"][key] = entry
        return entry

    def measure_service(self, main: data.Dataset) -> dict[str, Reply]:
        """GET hit and miss sweeps; returns the reference answers for the other targets."""
        port = servers.free_port()
        samples = main.hit_ids.read_text().split()[:20] + main.miss_ids.read_text().split()[:5]
        paths = [ITEM_PATH + i for i in samples] + [ITEM_PATH + "not-a-uuid"]
        with Server.uvicorn(service(main.db), port, self.workdir, SERVER_CORE) as server:
            server.wait_for(port, paths[0], HEADERS)
            reference = {p: servers.request(port, p, headers=HEADERS) for p in paths}
            self.load(port, main.hit_ids, 64, self.options.warmup)
            cpu = server.cpu_seconds()
            hit = self.sweep("hit", "this service, GET hit", port, main.hit_ids, True)
            miss = self.sweep("miss", "this service, GET miss", port, main.miss_ids, False)
            hit["memory"] = miss["memory"] = server.memory()
            hit["cpu_seconds"] = server.cpu_seconds() - cpu
        return reference

    def measure_target(
        self,
        key: str,
        target: Target,
        ids: Path,
        reference: dict[str, Reply],
        headers: dict[str, str] | None = None,
    ) -> None:
        port = servers.free_port()
        sent = {**HEADERS, **(headers or {})}
        with Server.uvicorn(target, port, self.workdir, SERVER_CORE) as server:
            server.wait_for(port, next(iter(reference)), sent)
            check_answers(target.label, port, reference, sent)
            self.load(port, ids, 64, self.options.warmup, headers)
            entry = self.sweep(key, target.label, port, ids, True, headers)
            entry["memory"] = server.memory()

    def measure_auth(self, main: data.Dataset, reference: dict[str, Reply]) -> None:
        keys = self.workdir / "keys.toml"
        digest = hashlib.sha256(API_KEY.encode()).hexdigest()
        keys.write_text(f'[[keys]]\nworkspace = "default"\nuser = "admin"\nsha256 = "{digest}"\n')
        target = service(main.db, EXPERIMENT_ITEMS_API_KEYS=str(keys))
        port = servers.free_port()
        with Server.uvicorn(target, port, self.workdir, SERVER_CORE) as server:
            first = next(iter(reference))
            auth = {**HEADERS, "Authorization": API_KEY}
            server.wait_for(port, first, auth)
            if servers.request(port, first, headers=HEADERS).status != 401:
                raise SystemExit("API keys are configured but a request without one passed")
        self.measure_target(
            "auth",
            Target("auth", "this service, GET with auth", target.factory, target.env),
            main.hit_ids,
            reference,
            {"Authorization": API_KEY},
        )

    def measure_sizes(self, datasets: dict[int, data.Dataset]) -> None:
        connections = self.options.headline
        for items, ds in sorted(datasets.items()):
            prewarm(ds.db)
            port = servers.free_port()
            with Server.uvicorn(service(ds.db), port, self.workdir, SERVER_CORE) as server:
                first = ITEM_PATH + ds.hit_ids.read_text(encoding="ascii")[:36]
                server.wait_for(port, first, HEADERS)
                self.load(port, ds.hit_ids, connections, self.options.warmup)
                load = self.load(port, ds.hit_ids, connections, self.options.seconds)
            point(load, True)
            self.results["sizes"][str(items)] = {
                "rps": load.rps,
                "p99_us": load.latency_us["p99"],
                "file_bytes": ds.db.stat().st_size,
            }
            log(
                f"  {items:>10,} items: {load.rps:,.0f} req/s, "
                f"p99 {load.latency_us['p99'] / 1000:.1f} ms"
            )

    def measure_cold_starts(self, main: data.Dataset, floor_body: bytes) -> None:
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

    def measure_writes(self) -> None:
        """POST /items through the service, the stream on what it wrote, then the raw
        executemany of the same rows."""
        db = self.workdir / "writes.db"
        port = servers.free_port()
        experiment_id = writes.new_id()
        warm_items = 3 * writes.BATCH_ITEMS
        batches = writes.make_batches(self.options.write_items + warm_items, experiment_id)
        warm, measured = batches[:3], batches[3:]
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
            writes.post_batches(port, warm, HEADERS)
            api = writes.post_batches(port, measured, HEADERS)
            log(f"  POST /items: {api.items_per_second:,.0f} items/s")
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
        self.results["storage"]["api"] = storage(db)
        batches_file = self.workdir / "batches.jsonl"
        batches_file.write_bytes(b"\n".join(measured))
        raw_db = self.workdir / "raw.db"
        done = subprocess.run(
            [
                "taskset",
                "-c",
                str(SERVER_CORE),
                sys.executable,
                "-m",
                "bench.writes",
                str(raw_db),
                str(batches_file),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        raw = json.loads(done.stdout)
        raw_rate = raw["items"] / raw["seconds"]
        log(f"  raw executemany: {raw_rate:,.0f} items/s")
        self.results["writes"] = {
            "items": api.items,
            "clients": writes.CLIENTS,
            "api_items_per_second": api.items_per_second,
            "raw_items_per_second": raw_rate,
        }


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


def storage(db: Path) -> dict[str, float]:
    """Bytes per item of the whole file, and of the items table and its indexes alone."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        items = conn.execute("SELECT count(*) FROM experiment_items").fetchone()[0]
        indexes = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?",
                ("experiment_items",),
            )
        }
        sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
    finally:
        conn.close()
    total = db.stat().st_size
    return {
        "items": items,
        "bytes": total,
        "bytes_per_item": total / items,
        "table_per_item": sizes.get("experiment_items", 0) / items,
        "index_per_item": sum(sizes.get(name, 0) for name in indexes) / items,
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    packages = (
        "starlette",
        "uvicorn",
        "msgspec",
        "aiosqlite",
        "uvloop",
        "httptools",
        "fastapi",
        "pydantic",
    )
    versions = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version}
    versions |= {name: importlib.metadata.version(name) for name in packages}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    # What is measured is the working tree: say so when it differs from the commit.
    if git("status", "--porcelain", "--", "app", "schema.sql").strip():
        commit += " plus uncommitted changes to app/"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "versions": versions,
        "commit": commit,
    }


def main(argv: Sequence[str]) -> int:
    options = parse(argv)
    options.headline = 64 if 64 in options.connections else options.connections[-1]
    started, clock = time.strftime("%Y-%m-%d %H:%M %Z"), time.perf_counter()
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench needs two cores: one for the server, one for wrk")
    os.sched_setaffinity(0, {LOAD_CORE})  # this script stays off the server's core
    wrk_path = wrk.ensure_wrk()

    datasets = {}
    for items in sorted(options.sizes):
        log(f"database of {items:,} items in {options.cache_dir} ...")
        datasets[items] = data.dataset(items, options.cache_dir)
    main_ds = datasets[MAIN_ITEMS]
    prewarm(main_ds.db)

    with tempfile.TemporaryDirectory(prefix="experiment-items-bench-") as tmp:
        session = Session(options, wrk_path, Path(tmp))
        results = session.results
        results["build_seconds"] = {str(n): d.build_seconds for n, d in datasets.items()}
        log("this service, GET hit and miss")
        reference = session.measure_service(main_ds)
        floor_body = next(r.body for r in reference.values() if r.status == 200)
        log("this service with API keys")
        session.measure_auth(main_ds, reference)
        log("floor")
        floor = Target(
            "floor",
            "floor: bare Starlette",
            "bench.floor:create_app",
            {"BENCH_FLOOR_BODY": floor_body.decode()},
        )
        hits_only = {p: r for p, r in reference.items() if r.status == 200}
        session.measure_target("floor", floor, main_ds.hit_ids, dict(list(hits_only.items())[:1]))
        for peer in peers(main_ds.db):
            log(peer.label)
            session.measure_target(peer.key, peer, main_ds.hit_ids, reference)
        log("database sizes")
        session.measure_sizes(datasets)
        log("cold starts")
        session.measure_cold_starts(main_ds, floor_body)
        log("writes and stream")
        session.measure_writes()

    results["storage"] = {str(MAIN_ITEMS): storage(main_ds.db), **results["storage"]}
    results["settings"] = {
        "seconds": options.seconds,
        "warmup": options.warmup,
        "connections": options.connections,
        "headline_connections": options.headline,
        "hot_ids": min(data.HOT_IDS, MAIN_ITEMS),
        "main_items": MAIN_ITEMS,
        "quick": options.quick,
    }
    results["meta"] = machine() | {"started": started}
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
