-- Storage used per project, cached (computing it reads every artifact of the project).
-- `gen` is bumped, as the last statement, by every transaction that adds or removes artifacts of
-- the project; `bytes` is the usage computed at generation `computed_gen`, which took
-- `compute_ms`. A reader recomputes when `gen` and `computed_gen` differ (see server/src/usage.rs).
CREATE TABLE project_usage (
    project_id    BIGINT PRIMARY KEY REFERENCES projects (id),
    gen           BIGINT NOT NULL DEFAULT 1,
    computed_gen  BIGINT NOT NULL DEFAULT 0,
    bytes         BIGINT NOT NULL DEFAULT 0,
    compute_ms    BIGINT NOT NULL DEFAULT 0
);
