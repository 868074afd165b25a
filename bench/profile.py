"""Where the service's GET time goes: cProfile over the event loop's thread under wrk load.

    .venv/bin/python bench/profile.py [--seconds 10] [--connections 64] [--miss] [--top 30]

Same conditions as run.py (one worker pinned to core 0, wrk on core 1, the cached
1,000,000-item database). Prints the functions with the most time of their own, in
microseconds per request. cProfile slows Python calls and sees only the main thread, so read
the shares, not the totals; for the aiosqlite threads too, sample with py-spy
(`py-spy record --threads --format raw --pid PID`).
"""

import argparse
import io
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data, servers, wrk
from bench.run import HEADERS, ITEM_PATH, LOAD_CORE, MAIN_ITEMS, SERVER_CORE, service


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--miss", action="store_true", help="profile GET miss instead of hit")
    parser.add_argument("--top", type=int, default=30)
    options = parser.parse_args(argv)

    wrk_path = wrk.ensure_wrk()
    ds = data.dataset(MAIN_ITEMS)
    ids = ds.miss_ids if options.miss else ds.hit_ids
    headers = tuple(f"{k}: {v}" for k, v in HEADERS.items())
    with tempfile.TemporaryDirectory(prefix="experiment-items-profile-") as tmp:
        stats_file = Path(tmp) / "get.prof"
        target = service(ds.db)
        port = servers.free_port()
        profiler = [sys.executable, "-m", "cProfile", "-o", str(stats_file)]
        flags = [target.http if f == "httptools" else f for f in servers.UVICORN_FLAGS]
        command = [*profiler, "-m", "uvicorn", target.factory, *flags]
        command += ["--port", str(port)]
        server = servers.Server(command, target.env, Path(tmp) / "server.log", SERVER_CORE)
        with server:
            first = ITEM_PATH + ds.hit_ids.read_text(encoding="ascii")[:36]
            server.wait_for(port, first, HEADERS)
            warm = wrk.run(wrk_path, port, ids, options.connections, 2, headers, core=LOAD_CORE)
            load = wrk.run(
                wrk_path, port, ids, options.connections, options.seconds, headers, core=LOAD_CORE
            )
        out = io.StringIO()
        stats = pstats.Stats(str(stats_file), stream=out)
        stats.sort_stats("tottime").print_stats(options.top)
        total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    requests = warm.requests + load.requests  # the profile covers both runs
    kind = "miss" if options.miss else "hit"
    print(f"GET {kind} under cProfile, {options.connections} connections: {load.rps:,.0f} req/s")
    print(f"profiled main-thread time per request: {total / requests * 1e6:.1f} µs\n")
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
