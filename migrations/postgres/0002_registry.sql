-- Registry metadata. Content lives in the blob store; what exists, where, and what references
-- what lives here (tags are rows, not files).

CREATE TABLE repositories (
    id           BIGSERIAL PRIMARY KEY,
    project_id   BIGINT NOT NULL REFERENCES projects (id),
    name         TEXT   NOT NULL,
    description  TEXT   NOT NULL DEFAULT '',
    pull_count   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX repositories_name ON repositories (name);
CREATE INDEX repositories_project ON repositories (project_id, name);

-- Every blob known to be complete in storage (layers, configs and manifests).
CREATE TABLE blobs (
    digest      TEXT   PRIMARY KEY,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Which repositories may serve a blob (pushed or mounted there). Keyed by repository name so
-- blobs can be uploaded before the first manifest creates the repository row.
CREATE TABLE repository_blobs (
    repository  TEXT   NOT NULL,
    digest      TEXT   NOT NULL REFERENCES blobs (digest),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

CREATE TABLE artifacts (
    id             BIGSERIAL PRIMARY KEY,
    repository_id  BIGINT NOT NULL REFERENCES repositories (id),
    digest         TEXT   NOT NULL,
    media_type     TEXT   NOT NULL,
    artifact_type  TEXT   NOT NULL DEFAULT '',
    manifest_size  BIGINT NOT NULL,
    -- manifest + config + layers (children of an index are counted in their own rows)
    size           BIGINT NOT NULL,
    subject        TEXT,
    annotations    TEXT   NOT NULL DEFAULT '{}',
    pushed_at      BIGINT NOT NULL,
    pulled_at      BIGINT NOT NULL DEFAULT 0,
    pull_count     BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX artifacts_repo_digest ON artifacts (repository_id, digest);
CREATE INDEX artifacts_subject ON artifacts (repository_id, subject);

CREATE TABLE tags (
    id             BIGSERIAL PRIMARY KEY,
    repository_id  BIGINT NOT NULL REFERENCES repositories (id),
    artifact_id    BIGINT NOT NULL REFERENCES artifacts (id),
    name           TEXT   NOT NULL,
    pushed_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX tags_repo_name ON tags (repository_id, name);
CREATE INDEX tags_artifact ON tags (artifact_id);

-- Blobs an artifact needs (config and layers): what GC marks.
CREATE TABLE artifact_blobs (
    artifact_id  BIGINT NOT NULL REFERENCES artifacts (id),
    digest       TEXT   NOT NULL,
    PRIMARY KEY (artifact_id, digest)
);
CREATE INDEX artifact_blobs_digest ON artifact_blobs (digest);

-- Manifests an index lists.
CREATE TABLE artifact_children (
    parent_id     BIGINT NOT NULL REFERENCES artifacts (id),
    child_digest  TEXT   NOT NULL,
    PRIMARY KEY (parent_id, child_digest)
);

-- Uploads in progress: committed length and SHA-256 state, so any replica can continue one.
CREATE TABLE uploads (
    id           TEXT   PRIMARY KEY,
    repository   TEXT   NOT NULL,
    size         BIGINT NOT NULL DEFAULT 0,
    hash_state   BYTEA  NOT NULL,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
