-- Login attempts being checked right now, per name: reserved in one statement before the
-- password is verified and settled after, so concurrent attempts cannot exceed the lockout
-- limit (server/src/accounts.rs, `begin_attempt`). Reservations are void once `in_flight_until`
-- has passed, so a replica that died mid-check does not lock a name for ever.
ALTER TABLE login_failures ADD COLUMN in_flight BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN in_flight_until BIGINT NOT NULL DEFAULT 0;
-- The periodic purge of settled rows (`accounts::purge_login_failures`).
CREATE INDEX login_failures_updated_at ON login_failures (updated_at);
