-- Listing artifacts at scale: a flag for "shown in lists" (not a child of an index in the same
-- repository and not an accessory such as a signature or SBOM), kept up to date by the registry
-- when manifests are pushed and deleted, so lists and counts need no anti-join.
ALTER TABLE artifacts ADD COLUMN visible SMALLINT NOT NULL DEFAULT 1;
-- The child index first: the backfill looks children up by digest (CROSS JOIN keeps SQLite from
-- scanning every artifact of the repository per row).
CREATE INDEX artifact_children_child ON artifact_children (child_digest);
UPDATE artifacts SET visible = 0 WHERE subject IS NOT NULL OR EXISTS (
    SELECT 1 FROM artifact_children c CROSS JOIN artifacts p
    WHERE c.child_digest = artifacts.digest AND p.id = c.parent_id AND p.repository_id = artifacts.repository_id);
CREATE INDEX artifacts_list ON artifacts (repository_id, visible, pushed_at, id);
-- The platform (JSON) of each child of an index, for listing references.
ALTER TABLE artifact_children ADD COLUMN platform TEXT NOT NULL DEFAULT '';
CREATE INDEX tags_repo_pushed ON tags (repository_id, pushed_at);
CREATE INDEX repositories_updated ON repositories (project_id, updated_at);
