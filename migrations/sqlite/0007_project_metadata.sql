-- Harbor's project metadata other than `public` (which is `projects.public`): `auto_scan`,
-- `prevent_vul`, `severity`, `reuse_sys_cve_allowlist`, `enable_content_trust`,
-- `enable_content_trust_cosign`, `auto_sbom_generation`. Values as Harbor normalises them
-- ("true"/"false", a lower-case severity). Kept and returned; this release enforces none of them.
CREATE TABLE project_metadata (
    project_id  BIGINT NOT NULL REFERENCES projects (id),
    name        TEXT   NOT NULL,
    value       TEXT   NOT NULL,
    PRIMARY KEY (project_id, name)
);
