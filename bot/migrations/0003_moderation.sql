-- Moderation: prompts the filter stopped or noted, images members flagged,
-- the flags themselves, and the moderators' append-only audit log.

-- Blocked (and flag-action) prompts, kept for moderators for a retention period.
CREATE TABLE moderation_prompt_log (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL,
    guild_id    INTEGER,
    prompt      TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('block', 'flag')),
    category    TEXT NOT NULL,
    kind        TEXT NOT NULL,                    -- keyword, regex, phone, ssn, email, card, address
    rule        TEXT NOT NULL,
    span_start  INTEGER NOT NULL,                 -- prompt[span_start:span_end] matched
    span_end    INTEGER NOT NULL,
    created_at  REAL NOT NULL                     -- unix seconds
);

CREATE INDEX moderation_prompt_log_by_time ON moderation_prompt_log (created_at);
CREATE INDEX moderation_prompt_log_by_member ON moderation_prompt_log (member_id, created_at);

-- One review item per flagged image (the posted result message).
CREATE TABLE moderation_items (
    id           INTEGER PRIMARY KEY,
    message_id   INTEGER NOT NULL UNIQUE,
    channel_id   INTEGER,
    guild_id     INTEGER,
    job_id       INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    author_id    INTEGER NOT NULL,
    prompt       TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'dismissed', 'actioned')),
    resolution   TEXT CHECK (resolution IN ('removed', 'warned', 'banned')),
    score        REAL NOT NULL DEFAULT 0,         -- sum of the flags' weights
    flag_count   INTEGER NOT NULL DEFAULT 0,
    alerted_at   REAL,                            -- moderators told (set once)
    hidden_at    REAL,                            -- image auto-hidden (set once)
    resolved_by  INTEGER,
    resolved_at  REAL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    CHECK ((state = 'actioned') = (resolution IS NOT NULL)),
    CHECK ((state = 'open') = (resolved_at IS NULL))
);

CREATE INDEX moderation_items_queue ON moderation_items (state, score DESC, id);
CREATE INDEX moderation_items_by_author ON moderation_items (author_id, created_at);

-- One row per member per flagged image: a second flag by the same member is not counted.
CREATE TABLE moderation_flags (
    id          INTEGER PRIMARY KEY,
    item_id     INTEGER NOT NULL REFERENCES moderation_items (id) ON DELETE CASCADE,
    flagger_id  INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    weight      REAL NOT NULL CHECK (weight > 0), -- the flagger's weight when they flagged
    created_at  REAL NOT NULL,
    UNIQUE (flagger_id, item_id)
);

CREATE INDEX moderation_flags_by_item ON moderation_flags (item_id);

-- Every moderator action (and the system's: auto-hide, privacy deletions). No foreign keys:
-- entries outlive the items they name.
CREATE TABLE moderation_audit (
    id            INTEGER PRIMARY KEY,
    at            REAL NOT NULL,
    moderator_id  INTEGER,                        -- NULL: the bot itself
    action        TEXT NOT NULL,
    item_id       INTEGER,
    member_id     INTEGER,                        -- the member acted upon
    detail        TEXT NOT NULL DEFAULT ''
);

CREATE INDEX moderation_audit_by_item ON moderation_audit (item_id, id);

CREATE TRIGGER moderation_audit_no_update BEFORE UPDATE ON moderation_audit
BEGIN
    SELECT RAISE(ABORT, 'moderation_audit is append-only');
END;

CREATE TRIGGER moderation_audit_no_delete BEFORE DELETE ON moderation_audit
BEGIN
    SELECT RAISE(ABORT, 'moderation_audit is append-only');
END;
