"""The commands' bodies: what each subcommand of app/cli.py does with its parsed arguments.
Each returns its exit code; UsageError (exit 2) and Failed (exit 1) carry a one-line reason."""

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from app import banner, capacity, config, demo, export, ids, importer, migrate, push, stats
from app.auth import KeyFileError, load_keys
from app.config import is_postgres_url
from app.lines import KINDS
from app.progress import Progress
from app.records import NotFound
from app.sqlite import DatabaseError, SchemaError, backup
from app.store import is_new, open_store
from app.store import stats as store_stats

if TYPE_CHECKING:
    import uvicorn


class UsageError(Exception):
    """Called wrongly or configured wrongly: running the same command again cannot help."""


class Failed(Exception):
    """The operation itself failed."""


USAGE_ERRORS = (UsageError, KeyFileError, SchemaError, ValueError, NotFound)


KEEP_ALIVE_SECONDS = 65


# SIGTERM waits for requests in flight at most this long past the body deadline (a body
# that trickles ends there), then closes what is left: a stalled reader cannot hold a
# stopping server, and its port, for ever.
SHUTDOWN_GRACE_SECONDS = 5.0
# Exit code of a server that stopped because it could not serve (as uvicorn's own).
CANNOT_SERVE = 3


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.protocol import HttpProtocol

    names = {name for name, *_ in config.describe()}
    settings = config.from_env(**{k: v for k, v in vars(args).items() if k in names})
    if settings.api_keys is not None:
        load_keys(settings.api_keys)
    _check_port(settings.host, settings.port)
    # Creates or checks the database once, before any worker starts, so a bad file is one
    # clear line here rather than a traceback in every worker.
    # --demo-if-new (make run) loads the demo only into a database it makes now (a new file;
    # a PostgreSQL database without experiment-items' tables): never into one that may hold
    # the user's own data, and not again on the next start.
    shown = config.shown_location(settings.db)
    with _explained(f"cannot open database {shown}", failure=UsageError):
        wanted = args.demo or (args.demo_if_new and is_new(settings.db))
        loaded = asyncio.run(demo.load(settings.db)) if wanted else None
        if loaded is None:
            _open(settings.db)
    # Workers are new processes: they rebuild the settings from the environment, and inherit
    # the limit on open files.
    os.environ.update(config.to_env(settings))
    open_files = capacity.raise_open_files_limit()
    cap = capacity.connection_cap(open_files, settings.readers)
    note = None
    if args.demo_if_new:
        note = banner.NEW_DEMO if loaded is not None else banner.OLD_DATABASE
    print(banner.banner(settings, loaded, open_files, cap, note), file=sys.stderr, flush=True)
    serving = uvicorn.Config(
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
        # Per worker, as the limit on open files is per process. Past it a request is answered
        # 503 and its connection closed, while a descriptor is still free to accept the next:
        # idle keep-alive connections cannot make a silent outage (probe D6).
        limit_concurrency=cap,
        timeout_graceful_shutdown=int(settings.body_timeout_seconds + SHUTDOWN_GRACE_SECONDS),
        # uvicorn's httptools protocol with deadlines for a request's head and body. A class,
        # not an import string: spawned workers unpickle it, and PyInstaller sees the import.
        http=HttpProtocol,
    )
    return _serve(serving)


def _serve(serving: "uvicorn.Config") -> int:
    """Runs the server until it is stopped; CANNOT_SERVE when it stopped because a worker
    could not start (uvicorn's supervisor then stops every worker and returns as if asked)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if serving.workers == 1:
        # uvicorn handles SIGINT and SIGTERM; SIGHUP (a closed terminal, a reload) would kill
        # the process with requests in flight. One worker has nothing to reload: say so.
        signal.signal(signal.SIGHUP, _ignore_hangup)
        server = uvicorn.Server(serving)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        return 0 if server.started else CANNOT_SERVE

    class Supervisor(Multiprocess):
        failed = False

        def keep_subprocess_alive(self) -> None:
            # Signals are handled apart (handle_signals): a stop that starts here is uvicorn
            # giving up on a worker that failed to start.
            stopping = self.should_exit.is_set()
            super().keep_subprocess_alive()
            self.failed = self.failed or (not stopping and self.should_exit.is_set())

    supervisor = Supervisor(serving, sockets=[serving.bind_socket()])
    with contextlib.suppress(KeyboardInterrupt):
        supervisor.run()
    return CANNOT_SERVE if supervisor.failed else 0


def _ignore_hangup(signum: int, frame: object) -> None:
    print("SIGHUP ignored: one worker has nothing to reload (SIGTERM stops it)", file=sys.stderr)


def _check_port(host: str, port: int) -> None:
    """UsageError, before anything is printed or opened, when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT is not taken for busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror}; pass --port or set "
                "EXPERIMENT_ITEMS_PORT (make run PORT=...)"
            ) from None


def _open(location: Path | str) -> None:
    async def open_and_close() -> None:
        store = await open_store(location, readers=1)
        await store.close()

    asyncio.run(open_and_close())


def run_backup(args: argparse.Namespace) -> int:
    database = _sqlite_file(_existing_database(args), POSTGRES_BACKUP)
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
    database = _sqlite_file(config.from_env(db=args.db).db, POSTGRES_RESTORE)
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
    with _explained(f"cannot read {_shown(database)}"):
        found = store_stats(database, top=args.top)
    if args.json:
        sys.stdout.buffer.write(stats.to_json(found) + b"\n")
    else:
        sys.stdout.write(stats.to_text(found))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    settings = config.from_env(db=args.db)
    database = settings.db
    with _explained(f"cannot load the demo into {_shown(database)}"):
        loaded = asyncio.run(demo.load(database))
    where = database.resolve() if isinstance(database, Path) else _shown(database)
    print(f"loaded {loaded.items} items into {where}, workspace {loaded.workspace}")
    for name, experiment_id in loaded.experiments.items():
        print(f"  experiment {ids.to_str(experiment_id)}  {name}  (dataset {demo.DATASET})")
    item = f"{banner.local_url(settings)}{banner.ITEMS_PATH}/{ids.to_str(loaded.first_item)}"
    print(f"with `experiment-items serve` running: curl {item}")
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    source: Path = args.source
    if is_postgres_url(str(source)) or not is_postgres_url(args.target):
        raise UsageError(
            "migrate copies a SQLite file (--from FILE) into a postgresql:// URL (--to)"
        )
    if not source.is_file():
        raise UsageError(f"no database at {source}")
    target = _shown(args.target)
    with _explained(f"cannot migrate {source} to {target}"):
        migrated = migrate.migrate(source, args.target, Progress())
    counts = ", ".join(f"{table} {rows:,}" for table, rows in migrated.rows.items())
    print(
        f"migrated {source} to {target}: {sum(migrated.rows.values()):,} rows ({counts}) in "
        f"{migrated.seconds:.2f} s; serve it with: experiment-items serve --db {target}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    database = _existing_database(args)
    experiment = _experiment_key(args.experiment)
    with _explained(f"cannot export {_shown(database)}"):
        if args.output is None:
            exported = _export_to_stdout(database, args.workspace, experiment)
        else:
            with export.output_file(args.output) as out:
                exported = export.export(database, args.workspace, experiment, out, Progress())
    what = f"experiment {args.experiment}" if experiment else f"workspace {args.workspace}"
    counts = ", ".join(f"{kind} {exported.lines[kind]:,}" for kind in KINDS)
    total = sum(exported.lines.values())
    print(
        f"exported {what} of {_shown(database)}: {total:,} lines ({counts}) "
        f"to {args.output or 'stdout'} in {exported.seconds:.2f} s",
        file=sys.stderr,
    )
    return 0


def _export_to_stdout(
    database: Path | str, workspace: str, experiment: bytes | None
) -> export.Exported:
    try:
        return export.export(database, workspace, experiment, sys.stdout.buffer, Progress())
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be written, not even at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Failed("the output was closed before the export ended") from None


def run_import(args: argparse.Namespace) -> int:
    database = config.from_env(db=args.db).db
    if not 1 <= args.batch <= importer.MAX_BATCH_LINES:
        # A longer transaction would hold every other writer past the busy timeout.
        raise UsageError(f"--batch must be between 1 and {importer.MAX_BATCH_LINES:,}")
    name = "stdin" if args.file == "-" else args.file
    if args.file != "-" and not Path(args.file).is_file():
        raise UsageError(f"no file at {args.file}")
    shown = _shown(database)
    with _explained(f"cannot import {name} into {shown}"), _source(args.file) as source:
        report = asyncio.run(
            importer.import_lines(database, source, args.workspace, args.batch, Progress())
        )
    print(
        f"imported {name} into workspace {args.workspace} of {shown}: {report.read:,} "
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
    shown = _shown(database)
    with _explained(f"cannot push {shown}"):
        pushed = push.push(database, args.workspace, experiment, target, checkpoint, Progress())
    what = f"experiment {args.experiment}" if experiment else f"workspace {args.workspace}"
    rate = pushed.items / pushed.seconds if pushed.seconds else 0
    print(
        f"pushed {what} of {shown} to {target}: {_count(pushed.experiments, 'experiment')} "
        f"created and {pushed.existing:,} there already, {_count(pushed.items, 'item')}, "
        f"{_count(pushed.datasets, 'dataset')} created and {pushed.existing_datasets:,} there "
        f"already, {_count(pushed.dataset_items, 'dataset item')}, "
        f"{_count(pushed.traces, 'trace')}, {_count(pushed.spans, 'span')}, "
        f"{_count(pushed.trace_scores, 'trace feedback score')}, "
        f"{_count(pushed.span_scores, 'span feedback score')}, "
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


POSTGRES_BACKUP = (
    "backup copies a SQLite file; back up a PostgreSQL database with its own tools: "
    "pg_dump --format=custom --file=FILE URL (or pg_basebackup for the whole cluster)"
)
POSTGRES_RESTORE = (
    "restore replaces a SQLite file; restore a PostgreSQL database with its own tools: "
    "pg_restore --clean --dbname=URL FILE (of pg_dump --format=custom)"
)


def _sqlite_file(location: Path | str, refusal: str) -> Path:
    """The SQLite file that a command works on; a PostgreSQL URL is refused with `refusal`."""
    if isinstance(location, Path):
        return location
    raise UsageError(refusal)


def _existing_database(args: argparse.Namespace) -> Path | str:
    """The database a command reads: a file that exists, or a PostgreSQL URL (whose database
    the command then finds, or says it cannot)."""
    database = config.from_env(db=args.db).db
    if isinstance(database, Path) and not database.is_file():
        raise UsageError(f"no database at {database}")
    return database


def _shown(database: Path | str) -> str:
    return config.shown_location(database)


def _database_errors() -> tuple[type[Exception], ...]:
    """What a failing database raises, of the engines this process has loaded: a PostgreSQL
    error can come only from asyncpg, once something imported it."""
    found: tuple[type[Exception], ...] = (OSError, DatabaseError, backup.BackupError,
                                          migrate.Incomplete)  # fmt: skip
    if "asyncpg" in sys.modules:
        from app.postgres import failures

        found += failures.ERRORS
    return found


@contextmanager
def _explained(action: str, failure: type[Exception] = Failed) -> Iterator[None]:
    """Says what was being done in front of whatever went wrong doing it."""
    try:
        yield
    except USAGE_ERRORS as exc:
        raise UsageError(f"{action}: {exc}") from exc
    except Exception as exc:
        if not isinstance(exc, _database_errors()):
            raise
        raise failure(f"{action}: {exc}") from exc
