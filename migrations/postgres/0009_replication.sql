-- Registry endpoints, replication policies, executions and tasks, proxy-cache projects
-- (server/src/replication). Credentials are stored encrypted with the cluster's encryption key
-- (`secrets.encryption_key`): `access_secret` holds `v1:` + base64(nonce || AES-256-GCM ciphertext),
-- never the secret itself, and the API never returns it.
CREATE TABLE registries (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT     NOT NULL,
    type              TEXT     NOT NULL,
    url               TEXT     NOT NULL,
    description       TEXT     NOT NULL DEFAULT '',
    credential_type   TEXT     NOT NULL DEFAULT '',
    access_key        TEXT     NOT NULL DEFAULT '',
    access_secret     TEXT     NOT NULL DEFAULT '',
    insecure          SMALLINT NOT NULL DEFAULT 0 CHECK (insecure IN (0, 1)),
    ca_certificate    TEXT     NOT NULL DEFAULT '',
    status            TEXT     NOT NULL DEFAULT 'unknown',
    status_checked_at BIGINT   NOT NULL DEFAULT 0,
    created_at        BIGINT   NOT NULL,
    updated_at        BIGINT   NOT NULL
);
CREATE UNIQUE INDEX registries_name ON registries (name);

-- One row per rule. Exactly one of src_registry_id / dest_registry_id is set: a pull-based
-- policy has a source registry (remote → local), a push-based one a destination (local → remote).
-- `filters` is Harbor's filter array as JSON text. `speed_kib` 0 = unlimited.
CREATE TABLE replication_policies (
    id                            BIGSERIAL PRIMARY KEY,
    name                          TEXT     NOT NULL,
    description                   TEXT     NOT NULL DEFAULT '',
    src_registry_id               BIGINT   REFERENCES registries (id),
    dest_registry_id              BIGINT   REFERENCES registries (id),
    dest_namespace                TEXT     NOT NULL DEFAULT '',
    dest_namespace_replace_count  INTEGER  NOT NULL DEFAULT -1,
    trigger_type                  TEXT     NOT NULL DEFAULT 'manual',
    trigger_cron                  TEXT     NOT NULL DEFAULT '',
    filters                       TEXT     NOT NULL DEFAULT '[]',
    replicate_deletion            SMALLINT NOT NULL DEFAULT 0 CHECK (replicate_deletion IN (0, 1)),
    override                      SMALLINT NOT NULL DEFAULT 1 CHECK (override IN (0, 1)),
    enabled                       SMALLINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    speed_kib                     BIGINT   NOT NULL DEFAULT 0,
    copy_by_chunk                 SMALLINT NOT NULL DEFAULT 0 CHECK (copy_by_chunk IN (0, 1)),
    single_active_replication     SMALLINT NOT NULL DEFAULT 1 CHECK (single_active_replication IN (0, 1)),
    created_by                    TEXT     NOT NULL DEFAULT '',
    created_at                    BIGINT   NOT NULL,
    updated_at                    BIGINT   NOT NULL
);
CREATE UNIQUE INDEX replication_policies_name ON replication_policies (name);

-- One run of a policy. `job_id` is the job (jobs table) that lists the resources and creates
-- the tasks. Status: Pending, InProgress, Succeed, Failed, Stopped (Harbor's spelling).
CREATE TABLE replication_executions (
    id              BIGSERIAL PRIMARY KEY,
    policy_id       BIGINT   NOT NULL REFERENCES replication_policies (id),
    status          TEXT     NOT NULL DEFAULT 'Pending',
    status_text     TEXT     NOT NULL DEFAULT '',
    trigger         TEXT     NOT NULL DEFAULT 'manual',
    job_id          BIGINT   NOT NULL DEFAULT 0,
    stop_requested  SMALLINT NOT NULL DEFAULT 0 CHECK (stop_requested IN (0, 1)),
    start_time      BIGINT   NOT NULL,
    end_time        BIGINT   NOT NULL DEFAULT 0
);
CREATE INDEX replication_executions_policy ON replication_executions (policy_id, id);

-- One task per artifact (operation copy or deletion), run as one job of the job queue so any
-- replica may run it and a dead replica's task is retried elsewhere. Its log is the job's log.
CREATE TABLE replication_tasks (
    id              BIGSERIAL PRIMARY KEY,
    execution_id    BIGINT   NOT NULL REFERENCES replication_executions (id),
    job_id          BIGINT   NOT NULL DEFAULT 0,
    status          TEXT     NOT NULL DEFAULT 'Pending',
    operation       TEXT     NOT NULL DEFAULT 'copy',
    resource_type   TEXT     NOT NULL DEFAULT 'artifact',
    src_resource    TEXT     NOT NULL,
    dst_resource    TEXT     NOT NULL,
    digest          TEXT     NOT NULL DEFAULT '',
    bytes           BIGINT   NOT NULL DEFAULT 0,
    start_time      BIGINT   NOT NULL DEFAULT 0,
    end_time        BIGINT   NOT NULL DEFAULT 0
);
CREATE INDEX replication_tasks_execution ON replication_tasks (execution_id, status);

-- A proxy-cache project names its upstream registry (Harbor's project `registry_id`).
ALTER TABLE projects ADD COLUMN registry_id BIGINT REFERENCES registries (id);
