-- Project members, robot accounts, the audit log and settings changed at run time.

-- Deleted users keep their row (audit rows and project owners still name them) under the name
-- "<name>#<id>", so the name can be taken again.
ALTER TABLE users ADD COLUMN deleted SMALLINT NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1));

-- Roles as Harbor numbers them: 1 project admin, 2 developer, 3 guest, 4 maintainer,
-- 5 limited guest.
CREATE TABLE project_members (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT  NOT NULL REFERENCES projects (id),
    user_id     BIGINT  NOT NULL REFERENCES users (id),
    role        SMALLINT NOT NULL CHECK (role BETWEEN 1 AND 5),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX project_members_project_user ON project_members (project_id, user_id);
CREATE INDEX project_members_user ON project_members (user_id);

-- Robot accounts: project robots ("robot$<project>+<name>", project_id set) and system robots
-- ("robot$<name>", project_id NULL). The secret is random (high entropy), so a SHA-256 of it
-- is stored rather than a slow password hash.
CREATE TABLE robots (
    id                 BIGSERIAL PRIMARY KEY,
    name               TEXT    NOT NULL,
    description        TEXT    NOT NULL DEFAULT '',
    project_id         BIGINT  REFERENCES projects (id),
    secret_hash        TEXT    NOT NULL,
    secret_changed_at  BIGINT  NOT NULL,
    disabled           SMALLINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- days; -1 = never expires
    duration           BIGINT  NOT NULL,
    -- Unix ms; -1 = never
    expires_at         BIGINT  NOT NULL,
    creator            TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);
CREATE UNIQUE INDEX robots_name ON robots (lower(name));
CREATE INDEX robots_project ON robots (project_id);

-- What a robot may do: per project (project_id) or in every project (project_id NULL).
CREATE TABLE robot_permissions (
    robot_id    BIGINT NOT NULL REFERENCES robots (id),
    project_id  BIGINT REFERENCES projects (id),
    resource    TEXT   NOT NULL,
    action      TEXT   NOT NULL
);
CREATE INDEX robot_permissions_robot ON robot_permissions (robot_id);
CREATE INDEX robot_permissions_project ON robot_permissions (project_id);

-- Who did what. Names are copied, not referenced, so rows outlive users, robots and projects.
CREATE TABLE audit_log (
    id             BIGSERIAL PRIMARY KEY,
    op_time        BIGINT  NOT NULL,
    username       TEXT    NOT NULL,
    resource_type  TEXT    NOT NULL,
    resource       TEXT    NOT NULL,
    operation      TEXT    NOT NULL,
    success        SMALLINT NOT NULL CHECK (success IN (0, 1)),
    client_ip      TEXT    NOT NULL DEFAULT '',
    project_id     BIGINT,
    detail         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_time ON audit_log (op_time, id);
CREATE INDEX audit_log_project ON audit_log (project_id, op_time, id);
CREATE INDEX audit_log_username ON audit_log (username, op_time, id);
CREATE INDEX audit_log_operation ON audit_log (operation, op_time, id);

-- Settings an admin changes at run time (GET/PUT /api/v2.0/configurations); absent keys take
-- their defaults from the code.
CREATE TABLE settings (
    name        TEXT   PRIMARY KEY,
    value       TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);
