-- Tag retention (server/src/retention): one policy per project (Harbor's `retention_id` in the
-- project's metadata names it), its rules as Harbor's JSON (validated on write), its schedule
-- in `schedules` (kind `retention/<id>`). A run is an execution with one task per repository;
-- a task's log is the table of every artifact the rules looked at and what became of it.
CREATE TABLE retention_policies (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL REFERENCES projects (id),
    algorithm    TEXT   NOT NULL DEFAULT 'or',
    rules        TEXT   NOT NULL DEFAULT '[]',
    trigger_cron TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX retention_policies_project ON retention_policies (project_id);

-- Status: Pending, Running, Success, Error, Stopped (Harbor 2's job statuses). Trigger: MANUAL or SCHEDULE.
CREATE TABLE retention_executions (
    id          BIGSERIAL PRIMARY KEY,
    policy_id   BIGINT NOT NULL REFERENCES retention_policies (id),
    status      TEXT   NOT NULL DEFAULT 'Pending',
    trigger     TEXT   NOT NULL DEFAULT 'MANUAL',
    dry_run     BIGINT NOT NULL DEFAULT 0,
    job_id      BIGINT NOT NULL DEFAULT 0,
    created_by  TEXT   NOT NULL DEFAULT '',
    start_time  BIGINT NOT NULL,
    end_time    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX retention_executions_policy ON retention_executions (policy_id, id);
CREATE INDEX retention_executions_job ON retention_executions (job_id);

CREATE TABLE retention_tasks (
    id            BIGSERIAL PRIMARY KEY,
    execution_id  BIGINT NOT NULL REFERENCES retention_executions (id),
    repository    TEXT   NOT NULL,
    status        TEXT   NOT NULL DEFAULT 'Pending',
    total         BIGINT NOT NULL DEFAULT 0,
    retained      BIGINT NOT NULL DEFAULT 0,
    deleted       BIGINT NOT NULL DEFAULT 0,
    log           TEXT   NOT NULL DEFAULT '',
    start_time    BIGINT NOT NULL DEFAULT 0,
    end_time      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX retention_tasks_execution ON retention_tasks (execution_id, id);
