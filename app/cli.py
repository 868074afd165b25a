"""The command line: arguments and environment become settings and commands (their bodies
are in app/commands.py, the one place that starts uvicorn).

Exit codes: 0 done, 1 the operation failed, 2 the command was called wrongly or the
configuration cannot work. Every error is one line on stderr; `--debug` adds the traceback.
"""

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from app import __version__, config, importer
from app.auth import DEFAULT_WORKSPACE
from app.commands import (
    USAGE_ERRORS,
    run_backup,
    run_demo,
    run_export,
    run_import,
    run_migrate,
    run_push,
    run_restore,
    run_serve,
    run_stats,
)

EXIT_CODES = "exit codes: 0 done, 1 the operation failed, 2 usage or configuration error"

SERVE_HELP = "Serve the API. Every flag has an environment variable; a flag wins over it."
BACKUP_HELP = (
    "Copy the database to PATH: one consistent snapshot, taken while the server keeps "
    "serving and writing. PATH appears only once complete and integrity-checked."
)
RESTORE_HELP = (
    "Replace the database with a copy of BACKUP, after checking the copy's integrity and "
    "schema version, in one atomic rename. Stop the server first: a database that a "
    "running server holds open is refused."
)
STATS_HELP = (
    "Rows per workspace and table, the experiments with the most items, size and schema "
    "version, from one snapshot; safe while the server runs."
)
EXPORT_HELP = (
    "Write a workspace, or one experiment with what it refers to, as JSON Lines that "
    "`import` reads back unchanged: projects, datasets, experiments, traces, spans, feedback "
    "scores and items, one record a line, from one snapshot; safe while the server runs."
)
IMPORT_HELP = (
    "Load JSON Lines into a workspace: what `export` writes, or items as POST "
    "/v1/private/experiments/items takes them. Records are upserted by id, keeping the "
    "file's values; bad lines are reported by number and skipped. Exit code 1 when any "
    "line was rejected."
)
PUSH_HELP = (
    "Copy the datasets, experiments, traces, spans, feedback scores and items of a workspace, "
    "or of one experiment, to another server that speaks this API (another experiment-items, "
    "or Opik), as the Opik SDK sends them. A checkpoint file records what the target "
    "acknowledged: an interrupted push goes on where it stopped, and the next push sends "
    "only what is new or changed."
)
MIGRATE_HELP = (
    "Copy a whole SQLite database, every workspace of it, into an empty PostgreSQL database: "
    "every row of every table as SQLite holds it, in one transaction (all or nothing), from "
    "one snapshot of the file; safe while a server serves the file. The file is upgraded to "
    "this release's schema first, as `serve` would. Then serve the copy with "
    "`serve --db postgresql://...`."
)
DEMO_HELP = (
    "Write three experiments' worth of items (workspace `default`) into the database, as "
    "an Opik evaluation would. Loading again updates the same items."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other error here; the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="experiment-items",
        description="Opik's experiment-items REST API over one SQLite file, or PostgreSQL.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    debug = _Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", help="on error, show the traceback too")
    with_db = _Parser(add_help=False, parents=[debug])
    with_db.add_argument(
        "--db",
        type=config.db_location,
        metavar="DB",
        help="SQLite database file, or a postgresql:// URL (env EXPERIMENT_ITEMS_DB, default "
        f"{config.Settings().db})",
    )

    def command(name: str, help: str, description: str, *, db: bool = True) -> _Parser:
        sub: _Parser = commands.add_parser(
            name,
            help=help,
            description=description,
            epilog=EXIT_CODES,
            parents=[with_db if db else debug],
        )
        return sub

    _serve_arguments(command("serve", "serve the API", SERVE_HELP, db=False))
    sub = command("backup", "copy the database, even while it is served", BACKUP_HELP)
    sub.add_argument("path", type=Path, metavar="PATH", help="the backup file to write")
    sub.add_argument("--force", action="store_true", help="replace PATH if it exists")
    sub.set_defaults(run=run_backup)
    sub = command("restore", "put a backup in place of the database", RESTORE_HELP)
    sub.add_argument("backup", type=Path, metavar="BACKUP", help="a file `backup` wrote")
    sub.set_defaults(run=run_restore)
    sub = command("stats", "what the database holds", STATS_HELP)
    sub.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    sub.add_argument(
        "--top", type=int, default=10, metavar="N", help="the N largest experiments (default 10)"
    )
    sub.set_defaults(run=run_stats)
    sub = command("demo", "load a small demo data set", DEMO_HELP)
    sub.set_defaults(run=run_demo)
    sub = command("migrate", "copy a SQLite file into PostgreSQL", MIGRATE_HELP, db=False)
    sub.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        metavar="FILE",
        help="the SQLite database file to copy",
    )
    sub.add_argument(
        "--to", dest="target", required=True, metavar="URL",
        help="the PostgreSQL database to copy into: postgresql://user@host:5432/dbname (its "
        "password in it, else PGPASSWORD or ~/.pgpass); it must hold no rows yet",
    )  # fmt: skip
    sub.set_defaults(run=run_migrate)
    _transfer_commands(command)
    return parser


def _transfer_commands(command: Callable[..., _Parser]) -> None:
    sub = command("export", "write a workspace or an experiment as JSON Lines", EXPORT_HELP)
    _scope_arguments(sub)
    sub.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="the file to write, which appears once complete (default: stdout)",
    )
    sub.set_defaults(run=run_export)
    sub = command("import", "load JSON Lines into a workspace", IMPORT_HELP)
    sub.add_argument("file", metavar="FILE", help="the JSON Lines to read; - for stdin")
    _workspace_argument(sub)
    sub.add_argument(
        "--batch",
        type=int,
        default=importer.DEFAULT_BATCH_LINES,
        metavar="N",
        help=f"lines per transaction (default {importer.DEFAULT_BATCH_LINES})",
    )
    sub.set_defaults(run=run_import)
    sub = command("push", "copy a workspace or an experiment to another server", PUSH_HELP)
    sub.add_argument(
        "url",
        metavar="URL",
        help="the target's API base, as OPIK_URL_OVERRIDE names it: http://host:5173/api",
    )
    _scope_arguments(sub)
    sub.add_argument(
        "--api-key",
        metavar="KEY",
        help="sent raw in Authorization, as the Opik SDK does (env OPIK_API_KEY)",
    )
    sub.add_argument(
        "--target-workspace",
        metavar="NAME",
        help="the target's workspace, sent in Comet-Workspace (default: none sent, which "
        "means the key's workspace, or the target's default)",
    )
    sub.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="what was pushed to this target (default: beside the database, one per target)",
    )
    sub.set_defaults(run=run_push)


def _workspace_argument(sub: _Parser) -> None:
    sub.add_argument(
        "--workspace",
        default=DEFAULT_WORKSPACE,
        metavar="NAME",
        help=f"the workspace (default {DEFAULT_WORKSPACE})",
    )


def _scope_arguments(sub: _Parser) -> None:
    _workspace_argument(sub)
    sub.add_argument(
        "--experiment",
        metavar="ID",
        help="only this experiment of the workspace, with its items and what they refer to",
    )


def _serve_arguments(serve: _Parser) -> None:
    kinds: dict[str, Callable[[str], object]] = {
        "db": config.db_location,
        "api_keys": Path,
        "port": int,
        "workers": int,
        "readers": int,
        "head_timeout_seconds": float,
        "body_timeout_seconds": float,
        "send_timeout_seconds": float,
    }
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
    demo = serve.add_mutually_exclusive_group()
    demo.add_argument("--demo", action="store_true", help="load the demo data set first")
    demo.add_argument(
        "--demo-if-new",
        action="store_true",
        help="load the demo data set first only when the database file does not exist yet, "
        "so that a database with anything in it is served as it is (what `make run` does)",
    )
    serve.set_defaults(run=run_serve)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("experiment-items: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(f"experiment-items: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, USAGE_ERRORS) else 1
    return code


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
