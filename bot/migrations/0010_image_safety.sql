-- The image safety check's verdict on each image of a done job, written with
-- its images (in the same transaction) but kept when the images are pruned
-- after delivery: what the classifier said of a job stays on record.
CREATE TABLE image_verdicts (
    guild_id  INTEGER NOT NULL,
    job_id    INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx       INTEGER NOT NULL,                         -- the image's place in the job, as in job_images
    label     TEXT NOT NULL,                            -- the classifier's yes/no: 'flagged' or 'ok'
    score     REAL NOT NULL CHECK (score BETWEEN 0 AND 1),
    model     TEXT NOT NULL,                            -- which classifier
    PRIMARY KEY (job_id, idx)
);

CREATE INDEX image_verdicts_by_guild ON image_verdicts (guild_id, score);
