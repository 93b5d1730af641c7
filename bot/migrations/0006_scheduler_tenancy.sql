-- Every record belongs to one server (Discord guild). Rows written before this
-- migration that have no server are given guild id 0, "from before servers
-- were kept apart": no real server has id 0, so no server's admins see them,
-- and the operator can still read or purge them.
-- Tables whose primary key must include the server are rebuilt; the others
-- gain a guild_id column, backfilled, and triggers that refuse a row without one
-- (SQLite cannot add NOT NULL to an existing column without a rebuild, and
-- rebuilding `jobs` would cascade-delete its images).

-- Jobs: a per-server number, the one members see (#1, #2, ... in each server).
UPDATE jobs SET guild_id = 0 WHERE guild_id IS NULL;
ALTER TABLE jobs ADD COLUMN number INTEGER;
UPDATE jobs SET number = ranked.n
FROM (SELECT id, row_number() OVER (PARTITION BY guild_id ORDER BY id) AS n FROM jobs) AS ranked
WHERE ranked.id = jobs.id;
CREATE UNIQUE INDEX jobs_by_number ON jobs (guild_id, number);
DROP INDEX jobs_by_member;
CREATE INDEX jobs_by_member ON jobs (guild_id, member_id, created_at);

CREATE TRIGGER jobs_need_guild BEFORE INSERT ON jobs WHEN NEW.guild_id IS NULL OR NEW.number IS NULL
BEGIN
    SELECT RAISE(ABORT, 'jobs.guild_id and jobs.number are required');
END;

CREATE TRIGGER jobs_keep_guild BEFORE UPDATE OF guild_id, number ON jobs
WHEN NEW.guild_id IS NOT OLD.guild_id OR NEW.number IS NOT OLD.number
BEGIN
    SELECT RAISE(ABORT, 'a job never changes server or number');
END;

-- Quota bookkeeping, limit changes, overrides and bans: per member per server.
CREATE TABLE quota_state_new (
    guild_id     INTEGER NOT NULL,
    member_id    INTEGER NOT NULL,
    base_tat_ns  INTEGER NOT NULL,
    charges      TEXT NOT NULL,
    day          INTEGER NOT NULL,
    day_images   INTEGER NOT NULL CHECK (day_images >= 0),
    PRIMARY KEY (guild_id, member_id)
);
INSERT INTO quota_state_new SELECT 0, member_id, base_tat_ns, charges, day, day_images FROM quota_state;
DROP TABLE quota_state;
ALTER TABLE quota_state_new RENAME TO quota_state;

CREATE TABLE tier_limits_new (
    guild_id  INTEGER NOT NULL,
    tier      TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     REAL NOT NULL,
    PRIMARY KEY (guild_id, tier, name)
);
INSERT INTO tier_limits_new SELECT 0, tier, name, value FROM tier_limits;
DROP TABLE tier_limits;
ALTER TABLE tier_limits_new RENAME TO tier_limits;

CREATE TABLE member_overrides_new (
    guild_id   INTEGER NOT NULL,
    member_id  INTEGER NOT NULL,
    name       TEXT NOT NULL,
    value      REAL NOT NULL,
    PRIMARY KEY (guild_id, member_id, name)
);
INSERT INTO member_overrides_new SELECT 0, member_id, name, value FROM member_overrides;
DROP TABLE member_overrides;
ALTER TABLE member_overrides_new RENAME TO member_overrides;

CREATE TABLE bans_new (
    guild_id   INTEGER NOT NULL,
    member_id  INTEGER NOT NULL,
    until      REAL,
    reason     TEXT NOT NULL DEFAULT '',
    banned_by  INTEGER NOT NULL,
    banned_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, member_id)
);
INSERT INTO bans_new SELECT 0, member_id, until, reason, banned_by, banned_at FROM bans;
DROP TABLE bans;
ALTER TABLE bans_new RENAME TO bans;

-- The operator's weight for each server: its share of the GPU (default 1).
CREATE TABLE server_weights (
    guild_id  INTEGER PRIMARY KEY,
    weight    REAL NOT NULL CHECK (weight > 0)
);

-- The admin audit log gains its server; guild 0 marks the operator's actions on
-- what all servers share (pause, multiplier, server weights). Its triggers are
-- dropped for the backfill and made again.
DROP TRIGGER admin_audit_no_update;
DROP TRIGGER admin_audit_no_delete;
ALTER TABLE admin_audit ADD COLUMN guild_id INTEGER;
UPDATE admin_audit SET guild_id = 0;
CREATE TRIGGER admin_audit_need_guild BEFORE INSERT ON admin_audit WHEN NEW.guild_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'admin_audit.guild_id is required');
END;
CREATE INDEX admin_audit_by_guild ON admin_audit (guild_id, id);
CREATE TRIGGER admin_audit_no_update BEFORE UPDATE ON admin_audit
BEGIN
    SELECT RAISE(ABORT, 'admin_audit is append-only');
END;
CREATE TRIGGER admin_audit_no_delete BEFORE DELETE ON admin_audit
BEGIN
    SELECT RAISE(ABORT, 'admin_audit is append-only');
END;

