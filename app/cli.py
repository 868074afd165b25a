"""The command line: arguments and environment become settings; the one place that starts
uvicorn."""

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__, config
from app.auth import KeyFileError, load_keys
from app.db import Database, SchemaError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="experiment-items",
        description="Opik's experiment-items REST API over one SQLite file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the API", description="Serve the API.")
    kinds = {"db": Path, "api_keys": Path, "port": int, "workers": int, "readers": int}
    for name, env, default, help in config.describe():
        if name == "access_log":
            continue
        serve.add_argument(
            "--" + name.replace("_", "-"),
            type=kinds.get(name, str),
            metavar=name.upper(),
            help=f"{help} (env {env}, default {default})",
        )
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        default=None,
        help="no log line per request (env EXPERIMENT_ITEMS_ACCESS_LOG=false)",
    )
    return parser


async def _prepare(settings: config.Settings) -> None:
    # Creates or checks the database once, before any worker starts, so a bad file is one
    # clear line here rather than a traceback in every worker.
    db = await Database.open(settings.db, readers=1)
    await db.close()


def serve(settings: config.Settings) -> int:
    import uvicorn

    if settings.api_keys is not None:
        load_keys(settings.api_keys)
    asyncio.run(_prepare(settings))
    # Workers are new processes: they rebuild the settings from the environment.
    os.environ.update(config.to_env(settings))
    print(
        f"experiment-items {__version__} serving {settings.db.resolve()} "
        f"at http://{settings.host}:{settings.port}/ "
        f"(Opik SDK: OPIK_URL_OVERRIDE=http://{settings.host}:{settings.port}/api/)",
        file=sys.stderr,
    )
    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=settings.access_log,
        proxy_headers=False,
        server_header=False,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = config.from_env(**overrides)
        return serve(settings)
    except (KeyFileError, SchemaError, OSError, ValueError) as exc:
        print(f"experiment-items: error: {exc}", file=sys.stderr)
        return 2
