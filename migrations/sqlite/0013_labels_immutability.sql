-- Labels (server/src/labels.rs) and tag immutability rules (server/src/immutable.rs).

-- Harbor's labels: scope `g` (global, project_id 0) or `p` (one project's). Names are unique
-- within a scope and project (the API answers 409).
CREATE TABLE labels (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT   NOT NULL,
    description  TEXT   NOT NULL DEFAULT '',
    color        TEXT   NOT NULL DEFAULT '',
    scope        TEXT   NOT NULL,
    project_id   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX labels_scope_name ON labels (scope, project_id, name);

-- Which artifacts carry which labels. Written only by artifacts/write.rs (an artifact's delete
-- removes its rows; a label's delete removes the label's).
CREATE TABLE artifact_labels (
    artifact_id  BIGINT NOT NULL REFERENCES artifacts (id),
    label_id     BIGINT NOT NULL REFERENCES labels (id),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (artifact_id, label_id)
);
CREATE INDEX artifact_labels_label ON artifact_labels (label_id);

-- Harbor's immutable tag rules: one repository selector and one tag selector (doublestar
-- patterns, `repoMatches`/`repoExcludes` and `matches`/`excludes`). A rule is unique per
-- project by its selectors (409). Read inside the write transactions that could break them.
CREATE TABLE immutable_rules (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id       BIGINT NOT NULL REFERENCES projects (id),
    priority         BIGINT NOT NULL DEFAULT 0,
    disabled         BIGINT NOT NULL DEFAULT 0,
    params           TEXT   NOT NULL DEFAULT '{}',
    repo_decoration  TEXT   NOT NULL,
    repo_pattern     TEXT   NOT NULL,
    tag_decoration   TEXT   NOT NULL,
    tag_pattern      TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX immutable_rules_selectors
    ON immutable_rules (project_id, repo_decoration, repo_pattern, tag_decoration, tag_pattern);
