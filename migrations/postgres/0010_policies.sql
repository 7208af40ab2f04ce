-- Replication runs (server/src/replication/execution.rs).
-- At most one active run per policy with single_active_replication: `active_policy` holds the
-- policy's id while such a run is Pending or InProgress and NULL otherwise (several NULLs are
-- allowed by a unique index on both databases), so a second start fails on the index
-- atomically and is recorded as a skipped run instead.
ALTER TABLE replication_executions ADD COLUMN active_policy BIGINT;
CREATE UNIQUE INDEX replication_executions_active ON replication_executions (active_policy);
-- A task's job finds its task; the task's last error (also in its log).
CREATE INDEX replication_tasks_job ON replication_tasks (job_id);
ALTER TABLE replication_tasks ADD COLUMN status_text TEXT NOT NULL DEFAULT '';
