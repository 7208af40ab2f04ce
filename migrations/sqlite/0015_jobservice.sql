-- The job service dashboard (server/src/jobservice.rs): each replica's job runner ("worker
-- pool") writes its heartbeat here every pass; a paused job type is a row of
-- job_queues_paused ('*': every type), and claims skip paused types.
CREATE TABLE job_pools (
    worker        TEXT   NOT NULL PRIMARY KEY,
    pid           BIGINT NOT NULL,
    host          TEXT   NOT NULL,
    concurrency   BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);
CREATE TABLE job_queues_paused (
    kind       TEXT   NOT NULL PRIMARY KEY,
    paused_at  BIGINT NOT NULL,
    paused_by  TEXT   NOT NULL DEFAULT ''
);
