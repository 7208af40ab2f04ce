-- A claim for one class of jobs (GC's slot, the replication pool, webhook deliveries) seeks each
-- of its kinds' oldest due job (`jobs::claim_of`) instead of walking past every pending job of
-- the other kinds in `jobs_claim` (thousands when deliveries queue up).
CREATE INDEX jobs_kind_claim ON jobs (status, kind, run_at, id);
