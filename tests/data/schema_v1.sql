-- The tables of the experiment-items store: the one place they are defined.
--
-- Ids are 16-byte BLOBs (UUIDs), timestamps INTEGER nanoseconds since the Unix epoch, UTC.
-- Every table is STRICT. Ids are global, as in Opik: an id written in one workspace is a
-- conflict (409) in any other, so an id alone is each primary key and SQLite itself enforces
-- that; the workspace is in every secondary key and in every query's WHERE clause.
-- WITHOUT ROWID makes the primary key the table itself: reading an item by id is one b-tree
-- descent (https://www.sqlite.org/withoutrowid.html).
--
-- app/sqlite/connection.py runs this file on a new database and records user_version; a later
-- release that changes it adds a migration there and bumps SCHEMA_VERSION. Each table is also
-- described in app/sqlite/tables.py (tests/test_tables.py holds the two together).

CREATE TABLE IF NOT EXISTS projects (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,          -- the name case-folded: names match case-insensitively
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX IF NOT EXISTS projects_by_name ON projects (workspace, name_key);

CREATE TABLE IF NOT EXISTS datasets (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX IF NOT EXISTS datasets_by_name ON datasets (workspace, name_key);

-- JSON-valued columns (metadata, tags, ...) hold the client's JSON text as sent.
CREATE TABLE IF NOT EXISTS experiments (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    dataset_id BLOB NOT NULL,
    project_id BLOB,
    metadata TEXT,
    tags TEXT,
    type TEXT NOT NULL,
    evaluation_method TEXT NOT NULL,
    optimization_id BLOB,
    status TEXT,
    experiment_scores TEXT,
    prompt_version TEXT,
    prompt_versions TEXT,
    dataset_version_id BLOB,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- The stream finds every experiment of one name.
CREATE INDEX IF NOT EXISTS experiments_by_name ON experiments (workspace, name);

CREATE TABLE IF NOT EXISTS traces (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    project_id BLOB NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
    name TEXT,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    input TEXT,
    output TEXT,
    metadata TEXT,
    tags TEXT,
    error_info TEXT,
    thread_id TEXT,
    ttft REAL,
    source TEXT,
    environment TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS spans (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    trace_id BLOB NOT NULL,
    project_id BLOB NOT NULL,
    parent_span_id BLOB,
    name TEXT,
    type TEXT,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    input TEXT,
    output TEXT,
    metadata TEXT,
    model TEXT,
    provider TEXT,
    tags TEXT,
    usage TEXT,                      -- a JSON object of integer counts, summed per trace
    error_info TEXT,
    total_estimated_cost REAL,       -- summed per trace
    total_estimated_cost_version TEXT,
    ttft REAL,
    source TEXT,
    environment TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS spans_by_trace ON spans (workspace, trace_id);

-- One score per name per trace, as in Opik: a second score of a name replaces the first.
CREATE TABLE IF NOT EXISTS feedback_scores (
    trace_id BLOB NOT NULL,
    name TEXT NOT NULL,
    workspace TEXT NOT NULL,
    category_name TEXT,
    value REAL NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL,
    PRIMARY KEY (trace_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS experiment_items (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    experiment_id BLOB NOT NULL,
    dataset_item_id BLOB NOT NULL,
    trace_id BLOB NOT NULL,
    project_id BLOB,                 -- NULL: unknown here, the trace's project if it is known
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- The stream reads an experiment's items newest id first.
CREATE INDEX IF NOT EXISTS experiment_items_by_experiment
    ON experiment_items (workspace, experiment_id, id);

PRAGMA user_version = 1;
