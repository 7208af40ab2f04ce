-- Foundation schema. Times are Unix milliseconds (BIGINT): sqlx::Any has no timestamp type.
-- Flags are 0/1 integers: sqlx::Any cannot decode SQLite's BOOLEAN.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT    NOT NULL,
    email          TEXT    NOT NULL DEFAULT '',
    realname       TEXT    NOT NULL DEFAULT '',
    comment        TEXT    NOT NULL DEFAULT '',
    password_hash  TEXT    NOT NULL,
    sysadmin       INTEGER NOT NULL DEFAULT 0 CHECK (sysadmin IN (0, 1)),
    password_changed_at BIGINT NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    owner_id    BIGINT  NOT NULL REFERENCES users (id),
    public      INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX projects_name ON projects (name);

-- Secrets every replica shares (token signing key, session key, encryption key).
CREATE TABLE secrets (
    name        TEXT   PRIMARY KEY,
    value       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Portal sessions when no Redis is configured.
CREATE TABLE sessions (
    id          TEXT   PRIMARY KEY,
    data        BLOB   NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Failed-login counter per account name (also for names that do not exist, so probing is
-- throttled the same way).
CREATE TABLE login_failures (
    username      TEXT   PRIMARY KEY,
    failures      BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);
