-- Requests acknowledged with a public "thinking…" placeholder whose job is
-- not admitted yet. A bot that stops in between finds them at its next start
-- and answers each placeholder while its token lives (15 minutes): the job is
-- safe, or the request was never queued and nothing was charged. The token
-- is the interaction's own, valid for that one reply only; rows go as soon as
-- the job is admitted or refused.
CREATE TABLE open_replies (
    guild_id INTEGER NOT NULL,
    interaction_id INTEGER NOT NULL,
    application_id INTEGER NOT NULL,
    token TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (guild_id, interaction_id)
);
