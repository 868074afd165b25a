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

-- Dataset names are unique in a workspace across projects, as in Opik (MySQL's
-- UNIQUE (workspace_id, name)). Columns after last_updated_by came with version 2.
CREATE TABLE IF NOT EXISTS datasets (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL,
    project_id BLOB,
    description TEXT,
    tags TEXT,                       -- a JSON array, in the order given, without duplicates
    type TEXT NOT NULL DEFAULT 'dataset',
    visibility TEXT NOT NULL DEFAULT 'private'
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

-- Find pages read a workspace's experiments newest id first (version 5).
CREATE INDEX IF NOT EXISTS experiments_by_workspace ON experiments (workspace, id);

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
    last_updated_by TEXT NOT NULL,
    -- 1 while only a PATCH has arrived for this id (the SDK can send it before the create):
    -- the create, when it comes, fills what the PATCH did not set (version 2).
    partial INTEGER NOT NULL DEFAULT 0 CHECK (partial IN (0, 1))
) STRICT, WITHOUT ROWID;

-- Trace search reads a project's traces newest id first (version 2).
CREATE INDEX IF NOT EXISTS traces_by_project ON traces (workspace, project_id, id);

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
    last_updated_by TEXT NOT NULL,
    partial INTEGER NOT NULL DEFAULT 0 CHECK (partial IN (0, 1))  -- as traces.partial (version 2)
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS spans_by_trace ON spans (workspace, trace_id);

-- The span search and pages read a project's spans newest id first (version 3).
CREATE INDEX IF NOT EXISTS spans_by_project ON spans (workspace, project_id, id);

-- One score per name and author per trace, as in Opik: a second score of a name by the same
-- author replaces the first; reads average the authors' values (version 3).
CREATE TABLE IF NOT EXISTS feedback_scores (
    trace_id BLOB NOT NULL,
    name TEXT NOT NULL,
    author TEXT NOT NULL,            -- the score's `author`, else the user who sent it
    workspace TEXT NOT NULL,
    category_name TEXT,
    value REAL NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL,
    PRIMARY KEY (trace_id, name, author)
) STRICT, WITHOUT ROWID;

-- The same for spans (version 2). No check that the span exists: Opik has none, and the SDK
-- can send a score before the span it names.
CREATE TABLE IF NOT EXISTS span_feedback_scores (
    span_id BLOB NOT NULL,
    name TEXT NOT NULL,
    author TEXT NOT NULL,
    workspace TEXT NOT NULL,
    category_name TEXT,
    value REAL NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL,
    PRIMARY KEY (span_id, name, author)
) STRICT, WITHOUT ROWID;

-- A dataset's items (version 2). The id is the upsert key, global as every id here; `data`
-- is the client's JSON object as sent. Items outlive their dataset, as in Opik: experiments
-- may still refer to them.
CREATE TABLE IF NOT EXISTS dataset_items (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    dataset_id BLOB NOT NULL,
    source TEXT NOT NULL,
    trace_id BLOB,
    span_id BLOB,
    data TEXT NOT NULL,
    description TEXT,
    tags TEXT,
    evaluators TEXT,
    execution_policy TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Streams and pages read a dataset's items newest id first.
CREATE INDEX IF NOT EXISTS dataset_items_by_dataset ON dataset_items (workspace, dataset_id, id);

-- Prompts and their versions, which experiments link to (version 2). A version's commit is
-- the first 8 hex digits of its id, as in Opik; unique within its prompt.
CREATE TABLE IF NOT EXISTS prompts (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    description TEXT,
    tags TEXT,
    template_structure TEXT NOT NULL DEFAULT 'text',
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX IF NOT EXISTS prompts_by_name ON prompts (workspace, name_key);

CREATE TABLE IF NOT EXISTS prompt_versions (
    id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    prompt_id BLOB NOT NULL,
    commit_hash TEXT NOT NULL,
    template TEXT NOT NULL,
    metadata TEXT,
    type TEXT NOT NULL DEFAULT 'mustache',
    change_description TEXT,
    tags TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at INTEGER NOT NULL,
    last_updated_by TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX IF NOT EXISTS prompt_versions_by_commit
    ON prompt_versions (workspace, prompt_id, commit_hash);

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

-- Each experiment's aggregates as the API shows them (version 4): a cache, filled when an
-- experiment is read and emptied, by the triggers below, in the transaction that changes what
-- they are computed from (its items, their traces, spans and scores). A find page then reads
-- 100 rows rather than every item of 100 experiments. Never exported: it is derived.
CREATE TABLE IF NOT EXISTS experiment_summaries (
    experiment_id BLOB PRIMARY KEY,
    workspace TEXT NOT NULL,
    summary BLOB NOT NULL,           -- app/sqlite/summaries.py: msgpack of the aggregates
    -- What find sorts and filters by, as its live expressions give it (0 for none):
    trace_count INTEGER NOT NULL,
    cost REAL NOT NULL,
    cost_avg REAL NOT NULL,
    p50 REAL NOT NULL,
    p90 REAL NOT NULL,
    p99 REAL NOT NULL,
    scores TEXT NOT NULL,            -- {"<name>": average}
    folded_scores TEXT NOT NULL,     -- {"<name in ASCII lower case>": average of those names}
    -- The least and greatest trace id of the experiment's items (version 5; NULL: no items):
    -- a trace, span or score of a trace in between empties the summary. Trace ids are version
    -- 7, in time order, so a trace written now meets only the experiments running now.
    first_trace BLOB,
    last_trace BLOB
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS experiment_summaries_by_last_trace
    ON experiment_summaries (workspace, last_trace);

CREATE TRIGGER IF NOT EXISTS summary_item_added AFTER INSERT ON experiment_items BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id = NEW.experiment_id;
END;
CREATE TRIGGER IF NOT EXISTS summary_item_changed AFTER UPDATE ON experiment_items BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (OLD.experiment_id, NEW.experiment_id);
END;
CREATE TRIGGER IF NOT EXISTS summary_item_removed AFTER DELETE ON experiment_items BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id = OLD.experiment_id;
END;
CREATE TRIGGER IF NOT EXISTS summary_experiment_removed AFTER DELETE ON experiments BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS summary_trace_added AFTER INSERT ON traces BEGIN
    DELETE FROM experiment_summaries WHERE workspace = NEW.workspace
        AND last_trace >= NEW.id AND first_trace <= NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS summary_trace_changed AFTER UPDATE ON traces BEGIN
    DELETE FROM experiment_summaries WHERE workspace = OLD.workspace
        AND last_trace >= OLD.id AND first_trace <= OLD.id;
    DELETE FROM experiment_summaries WHERE workspace = NEW.workspace
        AND last_trace >= NEW.id AND first_trace <= NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS summary_trace_removed AFTER DELETE ON traces BEGIN
    DELETE FROM experiment_summaries WHERE workspace = OLD.workspace
        AND last_trace >= OLD.id AND first_trace <= OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS summary_span_added AFTER INSERT ON spans BEGIN
    DELETE FROM experiment_summaries WHERE workspace = NEW.workspace
        AND last_trace >= NEW.trace_id AND first_trace <= NEW.trace_id;
END;
CREATE TRIGGER IF NOT EXISTS summary_span_changed AFTER UPDATE ON spans BEGIN
    DELETE FROM experiment_summaries WHERE workspace = OLD.workspace
        AND last_trace >= OLD.trace_id AND first_trace <= OLD.trace_id;
    DELETE FROM experiment_summaries WHERE workspace = NEW.workspace
        AND last_trace >= NEW.trace_id AND first_trace <= NEW.trace_id;
END;
CREATE TRIGGER IF NOT EXISTS summary_span_removed AFTER DELETE ON spans BEGIN
    DELETE FROM experiment_summaries WHERE workspace = OLD.workspace
        AND last_trace >= OLD.trace_id AND first_trace <= OLD.trace_id;
END;
CREATE TRIGGER IF NOT EXISTS summary_score_added AFTER INSERT ON feedback_scores BEGIN
    DELETE FROM experiment_summaries WHERE workspace = NEW.workspace
        AND last_trace >= NEW.trace_id AND first_trace <= NEW.trace_id;
END;
CREATE TRIGGER IF NOT EXISTS summary_score_changed AFTER UPDATE ON feedback_scores BEGIN
    DELETE FROM experiment_summaries WHERE workspace = OLD.workspace
        AND last_trace >= OLD.trace_id AND first_trace <= OLD.trace_id;
    DELETE FROM experiment_summaries WHERE workspace = NEW.workspace
        AND last_trace >= NEW.trace_id AND first_trace <= NEW.trace_id;
END;
CREATE TRIGGER IF NOT EXISTS summary_score_removed AFTER DELETE ON feedback_scores BEGIN
    DELETE FROM experiment_summaries WHERE workspace = OLD.workspace
        AND last_trace >= OLD.trace_id AND first_trace <= OLD.trace_id;
END;

PRAGMA user_version = 5;
