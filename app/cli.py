"""The command line: arguments and environment become settings and commands; the one place
that starts uvicorn.

Exit codes: 0 done, 1 the operation failed, 2 the command was called wrongly or the
configuration cannot work. Every error is one line on stderr; `--debug` adds the traceback.
"""

import argparse
import asyncio
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn

from app import __version__, config, demo, export, ids, importer, push
from app.auth import DEFAULT_WORKSPACE, KeyFileError, load_keys
from app.lines import KINDS
from app.progress import Progress
from app.records import NotFound
from app.sqlite import DatabaseError, SchemaError, backup, stats
from app.store import open_store

EXIT_CODES = "exit codes: 0 done, 1 the operation failed, 2 usage or configuration error"
ITEMS_PATH = "/api/v1/private/experiments/items"

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
    "Copy the experiments and items of a workspace, or of one experiment, to another server "
    "that speaks this API (another experiment-items, or Opik), as the Opik SDK sends them. "
    "Traces, spans and scores stay here. A checkpoint file records what the target "
    "acknowledged: an interrupted push goes on where it stopped, and the next push sends "
    "only what is new or changed."
)
DEMO_HELP = (
    "Write three experiments' worth of items (workspace `default`) into the database, as "
    "an Opik evaluation would. Loading again updates the same items."
)


class UsageError(Exception):
    """Called wrongly or configured wrongly: running the same command again cannot help."""


class Failed(Exception):
    """The operation itself failed."""


USAGE_ERRORS = (UsageError, KeyFileError, SchemaError, ValueError, NotFound)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other error here; the usage is one --help away.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="experiment-items",
        description="Opik's experiment-items REST API over one SQLite file.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    debug = _Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", help="on error, show the traceback too")
    with_db = _Parser(add_help=False, parents=[debug])
    with_db.add_argument(
        "--db",
        type=Path,
        metavar="DB",
        help=f"SQLite database file (env EXPERIMENT_ITEMS_DB, default {config.Settings().db})",
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
    sub = command("push", "copy experiments and items to another server", PUSH_HELP)
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
    kinds = {
        "db": Path,
        "api_keys": Path,
        "port": int,
        "workers": int,
        "readers": int,
        "head_timeout_seconds": float,
        "body_timeout_seconds": float,
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
    serve.add_argument("--demo", action="store_true", help="load the demo data set first")
    serve.set_defaults(run=run_serve)


KEEP_ALIVE_SECONDS = 65


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.protocol import HttpProtocol

    names = {name for name, *_ in config.describe()}
    settings = config.from_env(**{k: v for k, v in vars(args).items() if k in names})
    if settings.api_keys is not None:
        load_keys(settings.api_keys)
    # Creates or checks the database once, before any worker starts, so a bad file is one
    # clear line here rather than a traceback in every worker.
    with _explained(f"cannot open database {settings.db}", failure=UsageError):
        loaded = asyncio.run(demo.load(settings.db)) if args.demo else None
        if loaded is None:
            _open(settings.db)
    # Workers are new processes: they rebuild the settings from the environment.
    os.environ.update(config.to_env(settings))
    print(_banner(settings, loaded), file=sys.stderr, flush=True)
    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # The app's own middleware writes the access log (app/logs.py), with request ids.
        access_log=False,
        proxy_headers=False,
        server_header=False,
        # httpx (the Opik SDK's client) reuses an idle connection for up to 5 s, uvicorn's own
        # keep-alive: at equal timers a request can meet a connection the server just closed.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # uvicorn's httptools protocol with deadlines for a request's head and body. A class,
        # not an import string: spawned workers unpickle it, and PyInstaller sees the import.
        http=HttpProtocol,
    )
    return 0


def _open(path: Path) -> None:
    async def open_and_close() -> None:
        store = await open_store(path, readers=1)
        await store.close()

    asyncio.run(open_and_close())


def _banner(settings: config.Settings, loaded: demo.Loaded | None) -> str:
    """What `serve` prints on start: where it listens and stores, and a first request."""
    base = _local_url(settings)
    auth = "" if settings.api_keys is None else " -H 'Authorization: <your key>'"
    lines = [
        f"experiment-items {__version__}",
        f"  database   {settings.db.resolve()}",
        f"  listening  {base}/  (Opik SDK: OPIK_URL_OVERRIDE={base}/api/)",
    ]
    if loaded is not None:
        lines.append(f"  demo       {loaded.items} items in workspace {loaded.workspace}")
        item_id = ids.to_str(loaded.first_item)
    else:
        item_id = ids.to_str(ids.uuid7())
        lines.append(f"  write one  {_curl_write(base, item_id)}{auth}")
    lines.append(f"  read it    curl {base}{ITEMS_PATH}/{item_id}{auth}")
    return "\n".join(lines)


def _local_url(settings: config.Settings) -> str:
    """The address a client on this machine uses: a wildcard address is not one to call."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _curl_write(base: str, item_id: str) -> str:
    item = {
        "id": item_id,
        "experiment_id": ids.to_str(ids.uuid7()),
        "dataset_item_id": ids.to_str(ids.uuid7()),
        "trace_id": ids.to_str(ids.uuid7()),
        "project_name": "Demo",
    }
    body = json.dumps({"experiment_items": [item]}, separators=(",", ":"))
    return f"curl -i {base}{ITEMS_PATH} -H 'Content-Type: application/json' -d '{body}'"


def run_backup(args: argparse.Namespace) -> int:
    database = _existing_database(args)
    target: Path = args.path
    if target.exists() and not args.force:
        raise UsageError(f"{target} exists: pass --force to replace it")
    if target.exists() and target.samefile(database):
        raise UsageError(f"{target} is the database itself")
    with _explained(f"cannot back up {database} to {target}"):
        target.parent.mkdir(parents=True, exist_ok=True)
        copied = backup.backup(database, target)
    print(f"backed up {database} to {_copied(copied)}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    database = config.from_env(db=args.db).db
    source: Path = args.backup
    if not source.is_file():
        raise UsageError(f"no backup at {source}")
    if database.exists() and source.samefile(database):
        raise UsageError(f"{source} is the database itself")
    with _explained(f"cannot restore {source}"):
        copied = backup.restore(source, database)
    print(f"restored {source} to {_copied(copied)}")
    return 0


def _copied(copied: backup.Copied) -> str:
    return (
        f"{copied.path} ({copied.size_bytes / 2**20:.1f} MiB, schema version "
        f"{copied.schema_version}, integrity ok) in {copied.seconds:.2f} s"
    )


def run_stats(args: argparse.Namespace) -> int:
    database = _existing_database(args)
    if args.top < 0:
        raise UsageError("--top must be 0 or more")
    with _explained(f"cannot read {database}"):
        found = stats.collect(database, top=args.top)
    if args.json:
        sys.stdout.buffer.write(stats.to_json(found) + b"\n")
    else:
        sys.stdout.write(stats.to_text(found))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    settings = config.from_env(db=args.db)
    with _explained(f"cannot load the demo into {settings.db}"):
        loaded = asyncio.run(demo.load(settings.db))
    print(f"loaded {loaded.items} items into {settings.db.resolve()}, workspace {loaded.workspace}")
    for name, experiment_id in loaded.experiments.items():
        print(f"  experiment {ids.to_str(experiment_id)}  {name}")
    item = f"{_local_url(settings)}{ITEMS_PATH}/{ids.to_str(loaded.first_item)}"
    print(f"with `experiment-items serve` running: curl {item}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    database = _existing_database(args)
    experiment = _experiment_key(args.experiment)
    with _explained(f"cannot export {database}"):
        if args.output is None:
            exported = _export_to_stdout(database, args.workspace, experiment)
        else:
            with export.output_file(args.output) as out:
                exported = export.export(database, args.workspace, experiment, out, Progress())
    what = f"experiment {args.experiment}" if experiment else f"workspace {args.workspace}"
    counts = ", ".join(f"{kind} {exported.lines[kind]:,}" for kind in KINDS)
    total = sum(exported.lines.values())
    print(
        f"exported {what} of {database}: {total:,} lines ({counts}) "
        f"to {args.output or 'stdout'} in {exported.seconds:.2f} s",
        file=sys.stderr,
    )
    return 0


def _export_to_stdout(database: Path, workspace: str, experiment: bytes | None) -> export.Exported:
    try:
        return export.export(database, workspace, experiment, sys.stdout.buffer, Progress())
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be written, not even at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Failed("the output was closed before the export ended") from None


def run_import(args: argparse.Namespace) -> int:
    database = config.from_env(db=args.db).db
    if args.batch < 1:
        raise UsageError("--batch must be 1 or more")
    name = "stdin" if args.file == "-" else args.file
    if args.file != "-" and not Path(args.file).is_file():
        raise UsageError(f"no file at {args.file}")
    with _explained(f"cannot import {name} into {database}"), _source(args.file) as source:
        report = asyncio.run(
            importer.import_lines(database, source, args.workspace, args.batch, Progress())
        )
    print(
        f"imported {name} into workspace {args.workspace} of {database}: {report.read:,} "
        f"lines read, {report.stored:,} stored, {report.rejected:,} rejected"
    )
    for line, reason in report.first_rejected():
        print(f"  line {line}: {reason}")
    if report.rejected > importer.MAX_LISTED:
        print(f"  and {_count(report.rejected - importer.MAX_LISTED, 'more rejected line')}")
    return 1 if report.rejected else 0


def run_push(args: argparse.Namespace) -> int:
    database = _existing_database(args)
    experiment = _experiment_key(args.experiment)
    if not args.url.startswith(("http://", "https://")):
        raise UsageError(f"URL must start with http:// or https://, not {args.url!r}")
    api_key = args.api_key or os.environ.get("OPIK_API_KEY") or None
    target = push.Target(args.url.rstrip("/"), api_key, args.target_workspace)
    checkpoint = args.checkpoint or push.default_checkpoint(database, target, args.workspace)
    with _explained(f"cannot push {database}"):
        pushed = push.push(database, args.workspace, experiment, target, checkpoint, Progress())
    what = f"experiment {args.experiment}" if experiment else f"workspace {args.workspace}"
    rate = pushed.items / pushed.seconds if pushed.seconds else 0
    print(
        f"pushed {what} of {database} to {target}: {_count(pushed.experiments, 'experiment')} "
        f"created and {pushed.existing:,} there already, {_count(pushed.items, 'item')}, "
        f"{_count(pushed.requests, 'request')}, in {pushed.seconds:.2f} s ({rate:,.0f} items/s); "
        f"checkpoint {checkpoint}"
    )
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


@contextmanager
def _source(name: str) -> Iterator[BinaryIO]:
    if name == "-":
        yield sys.stdin.buffer
    else:
        with open(name, "rb") as file:
            yield file


def _experiment_key(text: str | None) -> bytes | None:
    """The key of `--experiment`, when it is given."""
    key = None if text is None else ids.parse(text)
    if text is not None and key is None:
        raise UsageError(f"--experiment must be a UUID, not {text!r}")
    return key


def _existing_database(args: argparse.Namespace) -> Path:
    database = config.from_env(db=args.db).db
    if not database.is_file():
        raise UsageError(f"no database at {database}")
    return database


@contextmanager
def _explained(action: str, failure: type[Exception] = Failed) -> Iterator[None]:
    """Says what was being done in front of whatever went wrong doing it."""
    try:
        yield
    except USAGE_ERRORS as exc:
        raise UsageError(f"{action}: {exc}") from exc
    except (OSError, DatabaseError, backup.BackupError) as exc:
        raise failure(f"{action}: {exc}") from exc


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
