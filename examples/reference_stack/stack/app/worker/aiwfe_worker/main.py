"""worker: polls the jobs table, writes a document per job, marks the job done.

GET /health  postgres: "ok" while polls succeed; jobs_processed, last_heartbeat
"""

import datetime
import json
import os
import time

from aiwfe_common import db
from aiwfe_common.service import LOG, Service, env_float, error_text, setup, start_background
from aiwfe_worker import queries

SERVICE = "worker"
BATCH = 20
# /health fails when no poll succeeded for this long.
STALE_AFTER = 15.0


class Worker:

    def __init__(self, interval):
        self.interval = interval
        self.conn = None
        self.processed = 0
        self.last_heartbeat = None
        self._beat = None
        self.last_error = "starting"
        self._logged_error = None
        self._logged_at = 0.0

    def poll_once(self):
        if self.conn is None or self.conn.closed:
            self.conn = db.connect("worker")
        done = 0
        with self.conn, self.conn.cursor() as cur:  # one transaction: commit or roll back
            cur.execute(queries.CLAIM_JOBS, (BATCH,))
            for job_id, kind, payload in cur.fetchall():
                title = "%s #%d" % (kind, job_id)
                body = "processed %s job %d by worker %s: %s" % (kind, job_id, os.uname().nodename, json.dumps(payload, sort_keys=True))
                cur.execute(queries.INSERT_DOCUMENT, (job_id, title, body))
                document_id = cur.fetchone()[0]
                if queries.INSERT_MEMORY:
                    cur.execute(queries.INSERT_MEMORY, (document_id, title))
                cur.execute(queries.MARK_DONE, (job_id,))
                done += 1
        if done:
            LOG.info("processed %d job(s)", done)
        self.processed += done

    def _failed(self, exc):
        self.last_error = error_text(exc)
        now = time.monotonic()
        if self.last_error != self._logged_error or now - self._logged_at > 30:
            LOG.error("poll failed: %s", self.last_error)
            self._logged_error, self._logged_at = self.last_error, now
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                LOG.debug("closing the connection failed", exc_info=True)
            self.conn = None

    def run(self):
        LOG.info("polling jobs every %.1f s", self.interval)
        while True:
            try:
                self.poll_once()
            except Exception as exc:
                self._failed(exc)
            else:
                if self._logged_error is not None:
                    LOG.info("polling works again")
                    self._logged_error = None
                self.last_error = None
                self._beat = time.monotonic()
                self.last_heartbeat = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            time.sleep(self.interval)

    def health(self):
        if self.last_error:
            state = self.last_error
        elif time.monotonic() - self._beat > STALE_AFTER:
            state = "no successful poll for %d s" % (time.monotonic() - self._beat)
        else:
            state = "ok"
        return {"postgres": state}, {"jobs_processed": self.processed, "last_heartbeat": self.last_heartbeat}


def main():
    setup(SERVICE)
    worker = Worker(env_float("WORKER_POLL_INTERVAL", "1"))
    start_background(worker.run, "poller")
    Service(SERVICE, worker.health).serve()
