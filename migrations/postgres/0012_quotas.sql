-- Project storage quotas (server/src/quota.rs). Harbor counts each blob once per project: a
-- blob is *charged* to a project the first time it is linked to one of the project's
-- repositories (upload, mount, manifest push, copy, replication, proxy cache) and *released*
-- by GC once no artifact of the project references it any more.
--
-- `quotas`: one per project; `hard` is the storage limit in bytes, -1 = unlimited.
CREATE TABLE quotas (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    hard        BIGINT NOT NULL DEFAULT -1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX quotas_project ON quotas (project_id);

-- The blobs charged to a project, each once, with the size charged. `last_used` is bumped by
-- every push that uses the blob (GC releases only rows unused within its window).
CREATE TABLE project_blobs (
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    digest      TEXT   NOT NULL,
    size        BIGINT NOT NULL,
    last_used   BIGINT NOT NULL,
    PRIMARY KEY (project_id, digest)
);
CREATE INDEX project_blobs_digest ON project_blobs (digest);

-- The used bytes of a project, sharded: a charge adds to one of N rows chosen at random, a
-- check reads their sum, so concurrent pushes into one project do not queue on one row.
-- SUM(bytes) over a project = SUM(size) of its project_blobs (the repair job restores it).
CREATE TABLE quota_usage (
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    shard       BIGINT NOT NULL,
    bytes       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, shard)
);

-- Existing projects: unlimited, charged with the blobs linked to their repositories.
INSERT INTO quotas (project_id, hard, created_at, updated_at) SELECT id, -1, created_at, created_at FROM projects;
INSERT INTO project_blobs (project_id, digest, size, last_used)
    SELECT p.id, b.digest, MAX(b.size), MAX(rb.created_at) FROM projects p
    JOIN repository_blobs rb ON substr(rb.repository, 1, length(p.name) + 1) = p.name || '/'
    JOIN blobs b ON b.digest = rb.digest
    GROUP BY p.id, b.digest;
INSERT INTO quota_usage (project_id, shard, bytes)
    SELECT project_id, 0, SUM(size) FROM project_blobs GROUP BY project_id;

-- Replaced by quota_usage (the usage cache recomputed from the artifacts, 0006).
DROP TABLE project_usage;
