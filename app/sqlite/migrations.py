"""The schema's history: the SQL that brings a file of each older version up to the next.

MIGRATIONS[n] takes a database of version FIRST_VERSION + n to the next one, in one
transaction (connection.upgrade). Each step is frozen once released: schema.sql is what a new
file gets, and tests/test_migrations.py holds a migrated file equal to a new one, table by
table and index by index.
"""

FIRST_VERSION = 1

# Version 2: the evaluation loop (datasets with their items, trace and span updates that
# arrive before their create, span feedback scores, prompts and their versions).
TO_2 = """
ALTER TABLE datasets ADD COLUMN project_id BLOB;
ALTER TABLE datasets ADD COLUMN description TEXT;
ALTER TABLE datasets ADD COLUMN tags TEXT;
ALTER TABLE datasets ADD COLUMN type TEXT NOT NULL DEFAULT 'dataset';
ALTER TABLE datasets ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private';
ALTER TABLE traces ADD COLUMN partial INTEGER NOT NULL DEFAULT 0 CHECK (partial IN (0, 1));
ALTER TABLE spans ADD COLUMN partial INTEGER NOT NULL DEFAULT 0 CHECK (partial IN (0, 1));

CREATE INDEX IF NOT EXISTS traces_by_project ON traces (workspace, project_id, id);

CREATE TABLE IF NOT EXISTS span_feedback_scores (
    span_id BLOB NOT NULL,
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
    PRIMARY KEY (span_id, name)
) STRICT, WITHOUT ROWID;

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

CREATE INDEX IF NOT EXISTS dataset_items_by_dataset ON dataset_items (workspace, dataset_id, id);

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
"""

# Version 3: feedback scores per (entity, name, author), as Opik keeps them: a score of a name
# replaces only its own author's, and reads average the authors (datasets-traces.md §3.8);
# and the index of the span search and pages.
# SQLite cannot change a primary key in place, so each table is rebuilt: the old one renamed,
# the new one made with the schema's name, the rows copied (the author of a stored score is the
# user who wrote its value last), the old one dropped.
TO_3_SCORE_AUTHORS = """
ALTER TABLE feedback_scores RENAME TO feedback_scores_v2;

CREATE TABLE feedback_scores (
    trace_id BLOB NOT NULL,
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
    PRIMARY KEY (trace_id, name, author)
) STRICT, WITHOUT ROWID;

INSERT INTO feedback_scores
SELECT trace_id, name, last_updated_by, workspace, category_name, value, reason, source,
       created_at, created_by, last_updated_at, last_updated_by
FROM feedback_scores_v2;

DROP TABLE feedback_scores_v2;

ALTER TABLE span_feedback_scores RENAME TO span_feedback_scores_v2;

CREATE TABLE span_feedback_scores (
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

INSERT INTO span_feedback_scores
SELECT span_id, name, last_updated_by, workspace, category_name, value, reason, source,
       created_at, created_by, last_updated_at, last_updated_by
FROM span_feedback_scores_v2;

DROP TABLE span_feedback_scores_v2;

-- The span search and pages read a project's spans newest id first.
CREATE INDEX IF NOT EXISTS spans_by_project ON spans (workspace, project_id, id);
"""

# Version 4: a cache of each experiment's aggregates, emptied by triggers when what they are
# computed from changes, and the index those triggers look traces up by.
TO_4 = """
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
    folded_scores TEXT NOT NULL      -- {"<name in ASCII lower case>": average of those names}
) STRICT, WITHOUT ROWID;

-- Which experiments a trace is in, for the triggers.
CREATE INDEX IF NOT EXISTS experiment_items_by_trace ON experiment_items (trace_id, experiment_id);

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
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id = NEW.id);
END;
CREATE TRIGGER IF NOT EXISTS summary_trace_changed AFTER UPDATE ON traces BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id IN (OLD.id, NEW.id));
END;
CREATE TRIGGER IF NOT EXISTS summary_trace_removed AFTER DELETE ON traces BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id = OLD.id);
END;
CREATE TRIGGER IF NOT EXISTS summary_span_added AFTER INSERT ON spans BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id = NEW.trace_id);
END;
CREATE TRIGGER IF NOT EXISTS summary_span_changed AFTER UPDATE ON spans BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id IN (OLD.trace_id, NEW.trace_id));
END;
CREATE TRIGGER IF NOT EXISTS summary_span_removed AFTER DELETE ON spans BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id = OLD.trace_id);
END;
CREATE TRIGGER IF NOT EXISTS summary_score_added AFTER INSERT ON feedback_scores BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id = NEW.trace_id);
END;
CREATE TRIGGER IF NOT EXISTS summary_score_changed AFTER UPDATE ON feedback_scores BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id IN (OLD.trace_id, NEW.trace_id));
END;
CREATE TRIGGER IF NOT EXISTS summary_score_removed AFTER DELETE ON feedback_scores BEGIN
    DELETE FROM experiment_summaries WHERE experiment_id IN (
        SELECT experiment_id FROM experiment_items WHERE trace_id = OLD.trace_id);
END;
"""

# Version 5's summaries table and the triggers of the trace side (TO_5, and schema.sql).
SUMMARIES_5 = """
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
"""


# Version 5: the triggers find the summaries a trace, span or score feeds by the range of trace
# ids each summary covers, rather than by an index of every item's trace, which cost 63 bytes
# an item (bench/results: 263 bytes an item against the goal of 200); and find pages read a
# workspace's experiments in id order from an index rather than sorting them all.
TO_5 = (
    """
DROP INDEX IF EXISTS experiment_items_by_trace;
DROP TRIGGER IF EXISTS summary_trace_added;
DROP TRIGGER IF EXISTS summary_trace_changed;
DROP TRIGGER IF EXISTS summary_trace_removed;
DROP TRIGGER IF EXISTS summary_span_added;
DROP TRIGGER IF EXISTS summary_span_changed;
DROP TRIGGER IF EXISTS summary_span_removed;
DROP TRIGGER IF EXISTS summary_score_added;
DROP TRIGGER IF EXISTS summary_score_changed;
DROP TRIGGER IF EXISTS summary_score_removed;
-- A cache: dropped and made again with its new columns, then refilled as experiments are read.
DROP TABLE experiment_summaries;

-- Find pages read a workspace's experiments newest id first (version 5).
CREATE INDEX IF NOT EXISTS experiments_by_workspace ON experiments (workspace, id);
"""
    + SUMMARIES_5
)

MIGRATIONS: tuple[str, ...] = (TO_2, TO_3_SCORE_AUTHORS, TO_4, TO_5)
