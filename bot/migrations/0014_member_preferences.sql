-- A member's own defaults for /dream in one server (a JSON object of the
-- options they set; the options they did not set take the config's).
CREATE TABLE member_preferences (
    guild_id    INTEGER NOT NULL,
    member_id   INTEGER NOT NULL,
    preferences TEXT NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, member_id)
);

-- A server's own styles (named prompt templates), besides the config's.
CREATE TABLE server_styles (
    guild_id   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    prompt     TEXT NOT NULL,
    negative   TEXT NOT NULL DEFAULT '',
    created_by INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (guild_id, name)
);

-- How a job was asked for: its mode (fast is charged to the quota; relax is
-- free, queued at a low weight) and the style applied to its prompt. A
-- restart re-queues a relax job as relax.
ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'fast';
ALTER TABLE jobs ADD COLUMN style TEXT NOT NULL DEFAULT '';
