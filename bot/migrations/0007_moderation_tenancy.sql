-- Every record belongs to one server (Discord guild). Rows written before this
-- migration that have no server are given guild id 0, "from before servers
-- were kept apart": no real server has id 0, so no server's admins see them,
-- and the operator can still read or purge them.
-- Here: the moderation records, which each gain a guild_id column, backfilled, and triggers that refuse a row without one
-- (SQLite cannot add NOT NULL to an existing column without a rebuild).

-- The servers the bot has been in, and when it left one: that server's data is
-- deleted a retention period later. The append-only logs allow deleting the rows
-- of such a server, and only those.
CREATE TABLE guilds (
    guild_id   INTEGER PRIMARY KEY,
    joined_at  REAL,
    left_at    REAL
);

-- (admin_audit, the scheduler's log, gets its guild_id and the same rule in 0006_scheduler_tenancy.)

-- A server's admins' overrides of the config's per-server defaults (JSON values).
CREATE TABLE guild_settings (
    guild_id  INTEGER NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    set_by    INTEGER NOT NULL,
    set_at    REAL NOT NULL,
    PRIMARY KEY (guild_id, key)
);

DROP TRIGGER moderation_audit_no_update;
DROP TRIGGER moderation_audit_no_delete;
ALTER TABLE moderation_audit ADD COLUMN guild_id INTEGER;
UPDATE moderation_audit SET guild_id = COALESCE(
    (SELECT guild_id FROM moderation_items WHERE moderation_items.id = moderation_audit.item_id), 0);
CREATE TRIGGER moderation_audit_need_guild BEFORE INSERT ON moderation_audit WHEN NEW.guild_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'moderation_audit.guild_id is required');
END;
CREATE INDEX moderation_audit_by_guild ON moderation_audit (guild_id, id);
CREATE TRIGGER moderation_audit_no_update BEFORE UPDATE ON moderation_audit
BEGIN
    SELECT RAISE(ABORT, 'moderation_audit is append-only');
END;
CREATE TRIGGER moderation_audit_no_delete BEFORE DELETE ON moderation_audit
WHEN NOT EXISTS (SELECT 1 FROM guilds WHERE guild_id = OLD.guild_id AND left_at IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'moderation_audit is append-only');
END;

DROP TRIGGER filter_rule_changes_no_update;
DROP TRIGGER filter_rule_changes_no_delete;
ALTER TABLE filter_rule_changes ADD COLUMN guild_id INTEGER;
UPDATE filter_rule_changes SET guild_id = 0;
CREATE TRIGGER filter_rule_changes_need_guild BEFORE INSERT ON filter_rule_changes WHEN NEW.guild_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'filter_rule_changes.guild_id is required');
END;
CREATE INDEX filter_rule_changes_by_guild ON filter_rule_changes (guild_id, id);
CREATE TRIGGER filter_rule_changes_no_update BEFORE UPDATE ON filter_rule_changes
BEGIN
    SELECT RAISE(ABORT, 'filter_rule_changes is append-only');
END;
CREATE TRIGGER filter_rule_changes_no_delete BEFORE DELETE ON filter_rule_changes
WHEN NOT EXISTS (SELECT 1 FROM guilds WHERE guild_id = OLD.guild_id AND left_at IS NOT NULL)
BEGIN
    SELECT RAISE(ABORT, 'filter_rule_changes is append-only');
END;

-- Moderation records that had an optional server now require one.
UPDATE moderation_prompt_log SET guild_id = 0 WHERE guild_id IS NULL;
CREATE INDEX moderation_prompt_log_by_guild ON moderation_prompt_log (guild_id, member_id, created_at);
CREATE TRIGGER moderation_prompt_log_need_guild BEFORE INSERT ON moderation_prompt_log WHEN NEW.guild_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'moderation_prompt_log.guild_id is required');
END;

UPDATE moderation_items SET guild_id = 0 WHERE guild_id IS NULL;
CREATE INDEX moderation_items_by_guild ON moderation_items (guild_id, state, score DESC, id);
CREATE TRIGGER moderation_items_need_guild BEFORE INSERT ON moderation_items WHEN NEW.guild_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'moderation_items.guild_id is required');
END;

ALTER TABLE moderation_flags ADD COLUMN guild_id INTEGER;
UPDATE moderation_flags SET guild_id = 0;
CREATE TRIGGER moderation_flags_need_guild BEFORE INSERT ON moderation_flags WHEN NEW.guild_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'moderation_flags.guild_id is required');
END;
UPDATE moderation_flags SET guild_id = (SELECT guild_id FROM moderation_items WHERE moderation_items.id = moderation_flags.item_id);
CREATE INDEX moderation_flags_by_flagger ON moderation_flags (guild_id, flagger_id);

ALTER TABLE review_alerts ADD COLUMN guild_id INTEGER;
UPDATE review_alerts SET guild_id = 0;
CREATE TRIGGER review_alerts_need_guild BEFORE INSERT ON review_alerts WHEN NEW.guild_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'review_alerts.guild_id is required');
END;
UPDATE review_alerts SET guild_id = COALESCE(
    (SELECT guild_id FROM moderation_items WHERE moderation_items.id = review_alerts.item_id), 0);
