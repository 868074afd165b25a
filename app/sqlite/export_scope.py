"""What an export of one experiment reads: the keys of the experiment and of everything it
refers to, gathered into temp tables in the snapshot's read transaction."""

# The keys of one experiment and of what it refers to: its items, their traces, the traces'
# spans and scores, the spans' scores, the dataset items its items name, its dataset and
# theirs, and every project any of them names.
SCOPE_ONE_EXPERIMENT = (
    "CREATE TEMP TABLE export_experiments (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT INTO temp.export_experiments
       SELECT id FROM experiments WHERE workspace = :workspace AND id = :experiment""",
    "CREATE TEMP TABLE export_experiment_items (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT INTO temp.export_experiment_items SELECT id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment""",
    "CREATE TEMP TABLE export_traces (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT OR IGNORE INTO temp.export_traces SELECT trace_id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment""",
    "CREATE TEMP TABLE export_spans (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT INTO temp.export_spans SELECT s.id FROM temp.export_traces AS x
       JOIN spans AS s ON s.workspace = :workspace AND s.trace_id = x.id""",
    """CREATE TEMP TABLE export_feedback_scores (trace_id BLOB, name TEXT, author TEXT,
       PRIMARY KEY (trace_id, name, author)) WITHOUT ROWID""",
    """INSERT INTO temp.export_feedback_scores SELECT f.trace_id, f.name, f.author
       FROM temp.export_traces AS x JOIN feedback_scores AS f ON f.trace_id = x.id
       WHERE f.workspace = :workspace""",
    """CREATE TEMP TABLE export_span_feedback_scores (span_id BLOB, name TEXT, author TEXT,
       PRIMARY KEY (span_id, name, author)) WITHOUT ROWID""",
    """INSERT INTO temp.export_span_feedback_scores SELECT f.span_id, f.name, f.author
       FROM temp.export_spans AS x JOIN span_feedback_scores AS f ON f.span_id = x.id
       WHERE f.workspace = :workspace""",
    "CREATE TEMP TABLE export_dataset_items (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT OR IGNORE INTO temp.export_dataset_items SELECT d.id FROM experiment_items AS i
       JOIN dataset_items AS d ON d.id = i.dataset_item_id AND d.workspace = :workspace
       WHERE i.workspace = :workspace AND i.experiment_id = :experiment""",
    "CREATE TEMP TABLE export_datasets (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT INTO temp.export_datasets SELECT dataset_id FROM experiments
       WHERE workspace = :workspace AND id = :experiment""",
    """INSERT OR IGNORE INTO temp.export_datasets SELECT d.dataset_id
       FROM temp.export_dataset_items AS x JOIN dataset_items AS d ON d.id = x.id""",
    "CREATE TEMP TABLE export_projects (id BLOB PRIMARY KEY) WITHOUT ROWID",
    """INSERT OR IGNORE INTO temp.export_projects SELECT project_id FROM experiments
       WHERE workspace = :workspace AND id = :experiment AND project_id IS NOT NULL""",
    """INSERT OR IGNORE INTO temp.export_projects SELECT project_id FROM experiment_items
       WHERE workspace = :workspace AND experiment_id = :experiment AND project_id IS NOT NULL""",
    """INSERT OR IGNORE INTO temp.export_projects SELECT t.project_id FROM temp.export_traces
       AS x JOIN traces AS t ON t.id = x.id WHERE t.workspace = :workspace""",
    """INSERT OR IGNORE INTO temp.export_projects SELECT s.project_id FROM temp.export_spans
       AS x JOIN spans AS s ON s.id = x.id""",
    """INSERT OR IGNORE INTO temp.export_projects SELECT d.project_id FROM temp.export_datasets
       AS x JOIN datasets AS d ON d.id = x.id
       WHERE d.workspace = :workspace AND d.project_id IS NOT NULL""",
)
