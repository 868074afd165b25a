"""The tables of schema.sql as PostgreSQL DDL, at schema.sql's version, with its triggers as
PL/pgSQL trigger functions; and the table that records the version.

A translation, column for column and index for index: schema.sql says what each column
holds. BLOB is bytea (16-byte ids compare bytewise, as SQLite's BLOBs do), INTEGER bigint
(nanoseconds overflow 32 bits), REAL double precision. Every text column has the "C"
collation, so that comparing and ordering text are SQLite's BINARY (byte order), whatever
locale the cluster was made with (https://www.postgresql.org/docs/15/collation.html).
Ids are global, as in SQLite: the id alone is each primary key.
"""

VERSION_TABLE = "schema_version"

# One row: the schema's version. Made with the schema, in the transaction that makes it.
_VERSION_DDL = f"""
CREATE TABLE {VERSION_TABLE} (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version integer NOT NULL
);
"""

_TABLES = """
CREATE TABLE projects (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL
);
CREATE UNIQUE INDEX projects_by_name ON projects (workspace, name_key);

CREATE TABLE datasets (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL,
    project_id bytea,
    description TEXT,
    tags TEXT,
    type TEXT NOT NULL DEFAULT 'dataset',
    visibility TEXT NOT NULL DEFAULT 'private'
);
CREATE UNIQUE INDEX datasets_by_name ON datasets (workspace, name_key);

CREATE TABLE experiments (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    dataset_id bytea NOT NULL,
    project_id bytea,
    metadata TEXT,
    tags TEXT,
    type TEXT NOT NULL,
    evaluation_method TEXT NOT NULL,
    optimization_id bytea,
    status TEXT,
    experiment_scores TEXT,
    prompt_version TEXT,
    prompt_versions TEXT,
    dataset_version_id bytea,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL
);
CREATE INDEX experiments_by_name ON experiments (workspace, name);
CREATE INDEX experiments_by_workspace ON experiments (workspace, id);

CREATE TABLE traces (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    project_id bytea NOT NULL,
    hidden integer NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
    name TEXT,
    start_time bigint NOT NULL,
    end_time bigint,
    input TEXT,
    output TEXT,
    metadata TEXT,
    tags TEXT,
    error_info TEXT,
    thread_id TEXT,
    ttft double precision,
    source TEXT,
    environment TEXT,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL,
    partial integer NOT NULL DEFAULT 0 CHECK (partial IN (0, 1))
);
CREATE INDEX traces_by_project ON traces (workspace, project_id, id);

CREATE TABLE spans (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    trace_id bytea NOT NULL,
    project_id bytea NOT NULL,
    parent_span_id bytea,
    name TEXT,
    type TEXT,
    start_time bigint NOT NULL,
    end_time bigint,
    input TEXT,
    output TEXT,
    metadata TEXT,
    model TEXT,
    provider TEXT,
    tags TEXT,
    usage TEXT,
    error_info TEXT,
    total_estimated_cost double precision,
    total_estimated_cost_version TEXT,
    ttft double precision,
    source TEXT,
    environment TEXT,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL,
    partial integer NOT NULL DEFAULT 0 CHECK (partial IN (0, 1))
);
CREATE INDEX spans_by_trace ON spans (workspace, trace_id);
CREATE INDEX spans_by_project ON spans (workspace, project_id, id);

CREATE TABLE feedback_scores (
    trace_id bytea NOT NULL,
    name TEXT NOT NULL,
    author TEXT NOT NULL,
    workspace TEXT NOT NULL,
    category_name TEXT,
    value double precision NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL,
    PRIMARY KEY (trace_id, name, author)
);

CREATE TABLE span_feedback_scores (
    span_id bytea NOT NULL,
    name TEXT NOT NULL,
    author TEXT NOT NULL,
    workspace TEXT NOT NULL,
    category_name TEXT,
    value double precision NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL,
    PRIMARY KEY (span_id, name, author)
);

CREATE TABLE dataset_items (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    dataset_id bytea NOT NULL,
    source TEXT NOT NULL,
    trace_id bytea,
    span_id bytea,
    data TEXT NOT NULL,
    description TEXT,
    tags TEXT,
    evaluators TEXT,
    execution_policy TEXT,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL
);
CREATE INDEX dataset_items_by_dataset ON dataset_items (workspace, dataset_id, id);

CREATE TABLE prompts (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    description TEXT,
    tags TEXT,
    template_structure TEXT NOT NULL DEFAULT 'text',
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL
);
CREATE UNIQUE INDEX prompts_by_name ON prompts (workspace, name_key);

CREATE TABLE prompt_versions (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    prompt_id bytea NOT NULL,
    commit_hash TEXT NOT NULL,
    template TEXT NOT NULL,
    metadata TEXT,
    type TEXT NOT NULL DEFAULT 'mustache',
    change_description TEXT,
    tags TEXT,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL
);
CREATE UNIQUE INDEX prompt_versions_by_commit
    ON prompt_versions (workspace, prompt_id, commit_hash);

CREATE TABLE experiment_items (
    id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    experiment_id bytea NOT NULL,
    dataset_item_id bytea NOT NULL,
    trace_id bytea NOT NULL,
    project_id bytea,
    created_at bigint NOT NULL,
    created_by TEXT NOT NULL,
    last_updated_at bigint NOT NULL,
    last_updated_by TEXT NOT NULL
);
CREATE INDEX experiment_items_by_experiment ON experiment_items (workspace, experiment_id, id);

CREATE TABLE experiment_summaries (
    experiment_id bytea PRIMARY KEY,
    workspace TEXT NOT NULL,
    summary bytea NOT NULL,
    trace_count bigint NOT NULL,
    cost double precision NOT NULL,
    cost_avg double precision NOT NULL,
    p50 double precision NOT NULL,
    p90 double precision NOT NULL,
    p99 double precision NOT NULL,
    scores TEXT NOT NULL,
    folded_scores TEXT NOT NULL,
    first_trace bytea,
    last_trace bytea
);
CREATE INDEX experiment_summaries_by_last_trace ON experiment_summaries (workspace, last_trace);
""".replace(" TEXT", ' text COLLATE "C"')

# schema.sql's thirteen triggers, row by row as SQLite's are, each with SQLite's name; their
# bodies are four functions, by what identifies the experiments whose summaries go: a trace,
# span or score those whose range of trace ids holds its trace (schema version 5).
_TRIGGERS = """
CREATE FUNCTION summary_drop_of_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM experiment_summaries WHERE experiment_id = OLD.experiment_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        DELETE FROM experiment_summaries WHERE experiment_id = NEW.experiment_id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION summary_drop_of_experiment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id = OLD.id;
    RETURN NULL;
END $$;

CREATE FUNCTION summary_drop_of_trace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM experiment_summaries WHERE workspace = OLD.workspace
            AND last_trace >= OLD.id AND first_trace <= OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        DELETE FROM experiment_summaries WHERE workspace = NEW.workspace
            AND last_trace >= NEW.id AND first_trace <= NEW.id;
    END IF;
    RETURN NULL;
END $$;

-- Spans and feedback scores name their trace in trace_id.
CREATE FUNCTION summary_drop_of_trace_part() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM experiment_summaries WHERE workspace = OLD.workspace
            AND last_trace >= OLD.trace_id AND first_trace <= OLD.trace_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        DELETE FROM experiment_summaries WHERE workspace = NEW.workspace
            AND last_trace >= NEW.trace_id AND first_trace <= NEW.trace_id;
    END IF;
    RETURN NULL;
END $$;
"""

# (trigger, event, table, function): schema.sql's, in its order.
TRIGGERS = (
    ("summary_item_added", "INSERT", "experiment_items", "summary_drop_of_item"),
    ("summary_item_changed", "UPDATE", "experiment_items", "summary_drop_of_item"),
    ("summary_item_removed", "DELETE", "experiment_items", "summary_drop_of_item"),
    ("summary_experiment_removed", "DELETE", "experiments", "summary_drop_of_experiment"),
    ("summary_trace_added", "INSERT", "traces", "summary_drop_of_trace"),
    ("summary_trace_changed", "UPDATE", "traces", "summary_drop_of_trace"),
    ("summary_trace_removed", "DELETE", "traces", "summary_drop_of_trace"),
    ("summary_span_added", "INSERT", "spans", "summary_drop_of_trace_part"),
    ("summary_span_changed", "UPDATE", "spans", "summary_drop_of_trace_part"),
    ("summary_span_removed", "DELETE", "spans", "summary_drop_of_trace_part"),
    ("summary_score_added", "INSERT", "feedback_scores", "summary_drop_of_trace_part"),
    ("summary_score_changed", "UPDATE", "feedback_scores", "summary_drop_of_trace_part"),
    ("summary_score_removed", "DELETE", "feedback_scores", "summary_drop_of_trace_part"),
)


def schema(version: int) -> str:
    """The whole schema of a new database, recording `version` (this release's)."""
    triggers = "".join(
        f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW EXECUTE FUNCTION "
        f"{function}();\n"
        for name, event, table, function in TRIGGERS
    )
    record = f"INSERT INTO {VERSION_TABLE} (version) VALUES ({int(version)});\n"
    return _VERSION_DDL + _TABLES + _TRIGGERS + triggers + record
