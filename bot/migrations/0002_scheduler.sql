-- Scheduler tables: quota state, live admin changes, bans, finished images, the admin audit log.

-- The tier a job was charged under, so a refund after a restart (when the
-- member's roles are unknown) uses the same limits.
ALTER TABLE jobs ADD COLUMN tier TEXT;

-- Quota bookkeeping per member, written in the same transaction as the job
-- that charges, settles or refunds it: the settled GCRA arrival time, the
-- charges that may still be refunded, and today's images.
CREATE TABLE quota_state (
    member_id    INTEGER PRIMARY KEY,
    base_tat_ns  INTEGER NOT NULL,
    charges      TEXT NOT NULL,                    -- JSON: [[job id, charged at (ns), cost (ns), images, settled], ...]
    day          INTEGER NOT NULL,
    day_images   INTEGER NOT NULL CHECK (day_images >= 0)
);

-- Admins' live changes to a tier's limits, on top of config.yaml.
CREATE TABLE tier_limits (
    tier   TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (tier, name)
);

-- Per-member limit overrides (absolute values, not scaled by the multiplier).
CREATE TABLE member_overrides (
    member_id  INTEGER NOT NULL,
    name       TEXT NOT NULL,
    value      REAL NOT NULL,
    PRIMARY KEY (member_id, name)
);

CREATE TABLE bans (
    member_id  INTEGER PRIMARY KEY,
    until      REAL,                               -- unix seconds; NULL: until lifted
    reason     TEXT NOT NULL DEFAULT '',
    banned_by  INTEGER NOT NULL,
    banned_at  REAL NOT NULL
);

-- Scheduler switches that survive restarts: 'paused' ('0'/'1'), 'multiplier'.
CREATE TABLE scheduler_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Images of done jobs, written with the 'done' state so that a job that is
-- done always has its images to post; pruned a while after delivery.
CREATE TABLE job_images (
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx     INTEGER NOT NULL,
    seed    INTEGER NOT NULL,
    png     BLOB NOT NULL,
    PRIMARY KEY (job_id, idx)
);

CREATE INDEX jobs_delivered ON jobs (delivered_at) WHERE delivered_at IS NOT NULL;

-- A start loads the idempotency keys of the last day.
CREATE INDEX jobs_by_created ON jobs (created_at);

-- Every admin change of tiers, overrides, bans, the multiplier and pause.
-- Append-only: the triggers refuse updates and deletes.
CREATE TABLE admin_audit (
    id        INTEGER PRIMARY KEY,
    at        REAL NOT NULL,
    actor_id  INTEGER NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    before    TEXT,                                -- JSON
    after     TEXT                                 -- JSON
);

CREATE TRIGGER admin_audit_no_update BEFORE UPDATE ON admin_audit
BEGIN
    SELECT RAISE(ABORT, 'admin_audit is append-only');
END;

CREATE TRIGGER admin_audit_no_delete BEFORE DELETE ON admin_audit
BEGIN
    SELECT RAISE(ABORT, 'admin_audit is append-only');
END;
