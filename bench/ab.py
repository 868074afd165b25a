"""Before and after: GET throughput of two revisions of the service, measured in turns.

    .venv/bin/python bench/ab.py BEFORE [AFTER] [--rounds 5] [--seconds 5] [--connections 64]
        [--miss] [--items 1000000]

BEFORE and AFTER are git revisions (AFTER defaults to the working tree). Each is checked out
into a temporary worktree and served as run.py serves the service (one uvicorn worker pinned
to core 0, wrk pinned to core 1, the cached 1,000,000-item database, built from each
revision's own schema.sql, so that revisions on either side of a migration compare on the
same rows). The two take turns,
round after round, so a neighbour's burst of load falls on both rather than on one; the
report gives each round's figures and the median ratio AFTER / BEFORE. It is the quick check
for a change to the hot path; `make bench` remains the full measurement.
"""

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import data, servers, wrk
from bench.run import HEADERS, ITEM_PATH, LOAD_CORE, MAIN_ITEMS, SERVER_CORE, service
from bench.servers import REPO


@contextmanager
def checkout(revision: str | None, scratch: Path) -> Iterator[Path]:
    """A tree holding `revision`, or the working tree itself when it is None."""
    if revision is None:
        yield REPO
        return
    tree = scratch / revision.replace("/", "_")
    git = ["git", "-C", str(REPO)]
    subprocess.run([*git, "worktree", "add", "--detach", str(tree), revision], check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield tree
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(tree)], capture_output=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--miss", action="store_true", help="GET random absent ids")
    parser.add_argument("--items", type=int, default=MAIN_ITEMS, help="database size (cached)")
    options = parser.parse_args(argv)

    wrk_path = wrk.ensure_wrk()
    ds = data.dataset(options.items)
    ids = ds.miss_ids if options.miss else ds.hit_ids
    headers = tuple(f"{k}: {v}" for k, v in HEADERS.items())
    first = ITEM_PATH + ds.hit_ids.read_text(encoding="ascii")[:36]
    labels = [options.before, options.after or "working tree"]
    rps: dict[str, list[float]] = {label: [] for label in labels}
    # Requests per second of the server's own CPU time: steadier than req/s when other
    # processes take turns on the server's core.
    per_cpu: dict[str, list[float]] = {label: [] for label in labels}
    p99: dict[str, list[float]] = {label: [] for label in labels}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ab-")))
        trees = [
            stack.enter_context(checkout(options.before, scratch)),
            stack.enter_context(checkout(options.after, scratch)),
        ]
        live: list[tuple[str, int, servers.Server]] = []
        for label, tree in zip(labels, trees, strict=True):
            port = servers.free_port()
            # The same generated rows in each revision's own schema (an older server refuses
            # a newer file); the ids, from the same seeds, are the same for both.
            base = service(data.dataset(options.items, schema=tree / "schema.sql").db)
            target = dataclasses.replace(base, key=f"ab-{len(live)}", label=label)
            server = servers.Server.uvicorn(target, port, scratch, SERVER_CORE, cwd=tree)
            stack.enter_context(server)
            server.wait_for(port, first, HEADERS)
            wrk.run(wrk_path, port, ids, options.connections, 2, headers, core=LOAD_CORE)
            live.append((label, port, server))
        for round_ in range(1, options.rounds + 1):
            figures = []
            for label, port, server in live:
                cpu = server.cpu_seconds()
                load = wrk.run(
                    wrk_path, port, ids, options.connections, options.seconds, headers,
                    core=LOAD_CORE,
                )  # fmt: skip
                if (load.non_2xx and not options.miss) or load.socket_errors:
                    raise RuntimeError(
                        f"{label}: {load.non_2xx} non-2xx, {load.socket_errors} errors"
                    )
                rps[label].append(load.rps)
                p99[label].append(load.latency_us["p99"] / 1e3)
                per_cpu[label].append(load.requests / (server.cpu_seconds() - cpu))
                figures.append(
                    f"{label} {load.rps:,.0f} req/s p99 {load.latency_us['p99'] / 1e3:.1f} ms"
                )
            print(f"round {round_}: " + "; ".join(figures), flush=True)
    kind = "miss" if options.miss else "hit"
    print(
        "median p99: "
        + ", ".join(f"{label} {statistics.median(p99[label]):.1f} ms" for label in labels)
    )
    for unit, measured in (("req/s", rps), ("req per server CPU-second", per_cpu)):
        ratios = [b / a for a, b in zip(measured[labels[0]], measured[labels[1]], strict=True)]
        print(
            f"GET {kind} at {options.connections} connections, median {unit}: "
            + ", ".join(f"{label} {statistics.median(measured[label]):,.0f}" for label in labels)
            + f"; {labels[1]} / {labels[0]}: median {statistics.median(ratios):.3f}"
            + f" (rounds {min(ratios):.3f} to {max(ratios):.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
