"""SQL of the worker (changes with the migrations)."""

# Claim a batch of pending jobs; SKIP LOCKED lets several workers share the queue.
CLAIM_JOBS = """
SELECT id, kind, payload FROM jobs
WHERE status = 'pending'
ORDER BY priority DESC, id
LIMIT %s
FOR UPDATE SKIP LOCKED
"""

INSERT_DOCUMENT = "INSERT INTO documents (job_id, title, body) VALUES (%s, %s, %s) RETURNING id"

# Written for each document when not None (the table comes with a later migration).
INSERT_MEMORY = "INSERT INTO memories (document_id, summary) VALUES (%s, %s)"

MARK_DONE = "UPDATE jobs SET status = 'done', processed_at = now() WHERE id = %s"
