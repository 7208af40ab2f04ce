-- Webhooks (server/src/webhook): a project's policies name the events they want and the HTTP
-- targets to tell. `targets` is Harbor's JSON array with each auth header encrypted
-- (`webhook_policies/<id>/auth_header`). Each event a policy receives is an execution (its
-- payload and idempotency id kept), with one task per target; a task is delivered by a job
-- (kind `webhook`) that retries with backoff. Executions beyond the newest 100 per policy
-- are swept with their tasks and jobs.
CREATE TABLE webhook_policies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    name        TEXT   NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    enabled     BIGINT NOT NULL DEFAULT 1,
    event_types TEXT   NOT NULL DEFAULT '[]',
    targets     TEXT   NOT NULL DEFAULT '[]',
    creator     TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_policies_name ON webhook_policies (project_id, name);

-- Status: Pending, Running, Success, Error, Stopped.
CREATE TABLE webhook_executions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    policy_id      BIGINT NOT NULL REFERENCES webhook_policies (id),
    event_type     TEXT   NOT NULL,
    event_id       TEXT   NOT NULL,
    payload        TEXT   NOT NULL,
    status         TEXT   NOT NULL DEFAULT 'Pending',
    status_message TEXT   NOT NULL DEFAULT '',
    start_time     BIGINT NOT NULL,
    end_time       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_executions_policy ON webhook_executions (policy_id, id);

CREATE TABLE webhook_tasks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id   BIGINT NOT NULL REFERENCES webhook_executions (id),
    target_index   BIGINT NOT NULL,
    address        TEXT   NOT NULL,
    payload_format TEXT   NOT NULL,
    job_id         BIGINT NOT NULL DEFAULT 0,
    status         TEXT   NOT NULL DEFAULT 'Pending',
    status_message TEXT   NOT NULL DEFAULT '',
    run_count      BIGINT NOT NULL DEFAULT 0,
    next_attempt   BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    start_time     BIGINT NOT NULL DEFAULT 0,
    end_time       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_tasks_execution ON webhook_tasks (execution_id, id);
