-- The job journal: one row per /dream (or re-roll), the source of truth for
-- what was asked, what ran and what was delivered.
CREATE TABLE jobs (
    id                 INTEGER PRIMARY KEY,          -- submission order
    idempotency_key    TEXT UNIQUE,                  -- Discord interaction id: a retried command maps to the same job
    member_id          INTEGER NOT NULL,
    guild_id           INTEGER,
    channel_id         INTEGER,
    prompt             TEXT NOT NULL,
    negative_prompt    TEXT NOT NULL DEFAULT '',
    params             TEXT NOT NULL,                -- JSON: width, height, steps, guidance, sampler
    seeds              TEXT NOT NULL,                -- JSON array, one seed per image
    cost               INTEGER NOT NULL,             -- GPU cost units: images x steps x pixels / 4096
    state              TEXT NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
    error              TEXT,                         -- member-safe reason for failed / cancelled / interrupted
    attempts           INTEGER NOT NULL DEFAULT 0,   -- times the job was handed to the engine
    created_at         REAL NOT NULL,                -- unix seconds
    started_at         REAL,
    finished_at        REAL,
    generation_seconds REAL,
    result_message_id  INTEGER,                      -- set once the grid is posted: delivered exactly once
    delivered_at       REAL
);

CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_member ON jobs (member_id, created_at);
