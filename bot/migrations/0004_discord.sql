-- The Discord layer's own state.

-- What was last synced to each command scope ('global' or a guild id), as a
-- digest of the definitions, so a restart syncs only when they changed.
CREATE TABLE command_syncs (
    scope      TEXT PRIMARY KEY,
    digest     TEXT NOT NULL,
    synced_at  REAL NOT NULL
);

-- Admins' live changes to the prompt filter, replayed in order over the
-- config's rules at every start (append-only: it doubles as their audit log).
CREATE TABLE filter_rule_changes (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    actor_id    INTEGER NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('add', 'remove')),
    category    TEXT NOT NULL,
    list        TEXT NOT NULL CHECK (list IN ('keywords', 'regex', 'allow')),
    rule        TEXT NOT NULL
);

CREATE TRIGGER filter_rule_changes_no_update BEFORE UPDATE ON filter_rule_changes
BEGIN
    SELECT RAISE(ABORT, 'filter_rule_changes is append-only');
END;

CREATE TRIGGER filter_rule_changes_no_delete BEFORE DELETE ON filter_rule_changes
BEGIN
    SELECT RAISE(ABORT, 'filter_rule_changes is append-only');
END;

-- Where the moderators were alerted about each review item, so the alert can
-- be updated when the item is resolved from /mod review.
CREATE TABLE review_alerts (
    item_id     INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL,
    message_id  INTEGER NOT NULL
);
