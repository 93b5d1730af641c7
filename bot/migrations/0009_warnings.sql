-- Warnings: each one a member earned in one server (a blocked prompt, a
-- withheld image, an actioned flag). Enough of them within a server's window
-- bring an automatic timed ban; the warning that reached the count records
-- until when, and only warnings after it count toward the next ban. A
-- moderator may clear a warning: it stays, marked, and no longer counts.
CREATE TABLE moderation_warnings (
    id            INTEGER PRIMARY KEY,
    guild_id      INTEGER NOT NULL,
    member_id     INTEGER NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('prompt', 'image', 'flag')),
    reason        TEXT NOT NULL,
    given_by      INTEGER,                        -- NULL: the bot itself
    created_at    REAL NOT NULL,                  -- unix seconds
    banned_until  REAL,                           -- the automatic ban this warning brought
    cleared_by    INTEGER,
    cleared_at    REAL,
    CHECK ((cleared_by IS NULL) = (cleared_at IS NULL))
);

CREATE INDEX moderation_warnings_by_member ON moderation_warnings (guild_id, member_id, id);
