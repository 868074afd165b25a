"""`migrate`'s target (app/migrate.py): a whole SQLite file's tables written into an empty
PostgreSQL database in one transaction, each table by COPY, every value as SQLite holds it."""

from app.migrate import CACHES, Incomplete, Source
from app.postgres.connection import SCHEMA_VERSION, Database
from app.progress import Progress
from app.records import SchemaError

# The tables' columns here, to hold a file's against: `migrate` copies every column or none.
COLUMNS = """
SELECT table_name::text, array_agg(column_name::text ORDER BY ordinal_position)
FROM information_schema.columns WHERE table_schema = current_schema() GROUP BY table_name
"""


class NotEmpty(ValueError):
    """The target holds experiment-items data already: migrate copies into an empty one."""


async def load(url: str, dump: Source, progress: Progress) -> dict[str, int]:
    """Copies every table of `dump` into the database at `url` (its schema made when missing),
    all or nothing; how many rows each table received."""
    if dump.schema_version != SCHEMA_VERSION:
        raise SchemaError(
            f"the file has schema version {dump.schema_version}, the PostgreSQL engine's is "
            f"{SCHEMA_VERSION}"
        )
    db = await Database.open(url, connections=1)
    try:
        async with db.transaction() as conn:
            ours = {name: tuple(columns) for name, columns in await conn.fetch(COLUMNS)}
            for table in dump.tables:
                if sorted(ours.get(table.name, ())) != sorted(table.columns):
                    raise SchemaError(f"table {table.name} differs between the two engines")
            names = ", ".join(t.name for t in dump.tables)
            # Servers that write meanwhile wait for the copy (readers do not): the check that
            # the target is empty holds until it commits.
            await conn.execute(f"LOCK TABLE {names}, {', '.join(CACHES)} IN EXCLUSIVE MODE")
            for table in dump.tables:
                if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {table.name})"):
                    raise NotEmpty(
                        f"its table {table.name} holds rows already: migrate copies into an "
                        "empty database (createdb a new one, or drop this one's tables)"
                    )
            copied = {}
            for table in dump.tables:
                progress.show(f"copying {table.name} ({table.rows:,} rows)")
                status = await conn.copy_records_to_table(
                    table.name, records=dump.rows(table), columns=list(table.columns)
                )
                copied[table.name] = int(status.split()[-1])
                if copied[table.name] != table.rows:
                    raise Incomplete(
                        f"{table.name}: {copied[table.name]:,} rows copied of {table.rows:,}"
                    )
    finally:
        await db.close()
        progress.done()
    return copied
