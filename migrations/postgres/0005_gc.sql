-- Garbage collection and background jobs.
--
-- Every blob row carries a GC status: 'pending' (reserved: its content is being written),
-- 'none' (content stored) or 'deleting' (GC is removing it; never changes back), the last time a
-- reference to it was created, and a generation drawn at random when the row is created. GC
-- marks a blob 'deleting' only in one statement that re-checks "unreferenced and unused since the
-- window". Every operation that creates a reference first marks the row used, and only while it
-- is not 'deleting'; writers of content reserve the row first and confirm it afterwards with
-- the generation they reserved, so a row GC swept (and maybe someone re-created) meanwhile is
-- never confirmed. A push racing GC either keeps its blobs or is refused and retries.
ALTER TABLE blobs ADD COLUMN status TEXT NOT NULL DEFAULT 'none';
ALTER TABLE blobs ADD COLUMN last_used BIGINT NOT NULL DEFAULT 0;
-- 'manifest' for manifests (reported separately by GC), 'blob' for layers and configs.
ALTER TABLE blobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'blob';
ALTER TABLE blobs ADD COLUMN gen BIGINT NOT NULL DEFAULT 0;
UPDATE blobs SET last_used = created_at;
CREATE INDEX artifacts_digest ON artifacts (digest);
UPDATE blobs SET kind = 'manifest' WHERE EXISTS (SELECT 1 FROM artifacts a WHERE a.digest = blobs.digest);
CREATE INDEX blobs_gc ON blobs (status, last_used);

-- The job queue: claimed with row locks (FOR UPDATE SKIP LOCKED on PostgreSQL), kept alive by a
-- heartbeat; a running job whose heartbeat stopped is claimed again by another replica.
CREATE TABLE jobs (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT    NOT NULL,
    -- MANUAL, SCHEDULE or CLI (Harbor's job_kind)
    job_kind        TEXT    NOT NULL,
    parameters      TEXT    NOT NULL DEFAULT '{}',
    -- pending, running, success, error, stopped
    status          TEXT    NOT NULL,
    -- At most one pending or running job per unique_key (one GC at a time, cluster-wide).
    unique_key      TEXT,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    run_at          BIGINT  NOT NULL,
    worker          TEXT    NOT NULL DEFAULT '',
    heartbeat       BIGINT  NOT NULL DEFAULT 0,
    stop_requested  BIGINT  NOT NULL DEFAULT 0,
    progress        TEXT    NOT NULL DEFAULT '{}',
    result          TEXT    NOT NULL DEFAULT '{}',
    error           TEXT    NOT NULL DEFAULT '',
    created_by      TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    started_at      BIGINT  NOT NULL DEFAULT 0,
    finished_at     BIGINT  NOT NULL DEFAULT 0,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX jobs_claim ON jobs (status, run_at, id);
CREATE INDEX jobs_kind ON jobs (kind, id);
CREATE UNIQUE INDEX jobs_active ON jobs (unique_key) WHERE status IN ('pending', 'running');

-- A job's log, in chunks of lines.
CREATE TABLE job_logs (
    job_id  BIGINT  NOT NULL REFERENCES jobs (id),
    seq     BIGINT  NOT NULL,
    text    TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Cron schedules; a replica fires one by moving next_run forward with a compare-and-set, so it
-- fires once cluster-wide.
CREATE TABLE schedules (
    kind        TEXT    PRIMARY KEY,
    cron        TEXT    NOT NULL,
    parameters  TEXT    NOT NULL DEFAULT '{}',
    next_run    BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
