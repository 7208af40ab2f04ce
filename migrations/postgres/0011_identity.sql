-- Identity: users from LDAP or OIDC, user groups, groups as project members, OIDC users' CLI
-- secrets (server/src/identity/).

-- Where a user's credentials live: 'db' (a local password), 'ldap' (the directory checks the
-- password; password_hash is '!', which never verifies) or 'oidc' (the provider; the token
-- service takes the user's CLI secret instead).
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'db' CHECK (source IN ('db', 'ldap', 'oidc'));

-- Harbor's user groups: 1 LDAP (found by its DN), 2 HTTP, 3 OIDC (found by name).
-- `group_key` is what finds the group: lower(DN) for LDAP groups, the name otherwise, unique
-- per type (one portable unique index instead of two partial ones).
CREATE TABLE user_groups (
    id             BIGSERIAL PRIMARY KEY,
    group_name     TEXT     NOT NULL,
    group_type     SMALLINT NOT NULL CHECK (group_type IN (1, 2, 3)),
    ldap_group_dn  TEXT     NOT NULL DEFAULT '',
    group_key      TEXT     NOT NULL,
    created_at     BIGINT   NOT NULL,
    updated_at     BIGINT   NOT NULL
);
CREATE UNIQUE INDEX user_groups_key ON user_groups (group_type, group_key);
CREATE INDEX user_groups_name ON user_groups (group_name);

-- A project member is a user (entity_type 'u', user_id set) or a group ('g', group_id set).
ALTER TABLE project_members ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE project_members ADD COLUMN entity_type TEXT NOT NULL DEFAULT 'u' CHECK (entity_type IN ('u', 'g'));
ALTER TABLE project_members ADD COLUMN group_id BIGINT REFERENCES user_groups (id);
ALTER TABLE project_members ADD CONSTRAINT project_members_entity CHECK (
    (entity_type = 'u' AND user_id IS NOT NULL AND group_id IS NULL)
    OR (entity_type = 'g' AND group_id IS NOT NULL AND user_id IS NULL));
CREATE UNIQUE INDEX project_members_project_group ON project_members (project_id, group_id);
CREATE INDEX project_members_group ON project_members (group_id);

-- Users onboarded through OIDC: the provider's subject and issuer (`subiss` = sub + iss), the
-- CLI secret the token service accepts instead of a password, and the provider's tokens (the
-- refresh token keeps the CLI secret working). Both secrets are encrypted with the cluster key
-- (`v1:`, server/src/crypto.rs).
CREATE TABLE oidc_users (
    user_id           BIGINT PRIMARY KEY REFERENCES users (id),
    subiss            TEXT   NOT NULL,
    secret            TEXT   NOT NULL,
    token             TEXT   NOT NULL DEFAULT '',
    token_expires_at  BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX oidc_users_subiss ON oidc_users (subiss);
