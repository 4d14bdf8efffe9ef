"""What this release of the api expects from the database (changes with the migrations)."""

# Shown by GET /: what this release can do.
FEATURES = ["jobs", "documents", "memories", "priority"]

# Tables counted by GET /stats.
STATS_TABLES = ["jobs", "documents", "memories"]

# Columns the code reads or writes; GET /health checks that they exist ("schema" check).
JOB_COLUMNS = ["id", "kind", "payload", "status", "priority", "created_at", "processed_at"]
DOCUMENT_COLUMNS = ["id", "job_id", "title", "content", "created_at"]
MEMORY_COLUMNS = ["id", "document_id", "summary", "created_at"]
REQUIRED_COLUMNS = {"jobs": JOB_COLUMNS, "documents": DOCUMENT_COLUMNS, "memories": MEMORY_COLUMNS}

# Optional fields of POST /jobs besides "kind" and "payload": name -> converter.
EXTRA_JOB_FIELDS = {"priority": int}
