-- The start image of an img2img job (a variation, an upscale, a remix, or
-- /dream with the member's own image): PNG bytes of exactly the job's size,
-- written with the job's row so a queued job survives a restart with its
-- image. Pruned with the job's images once the job has ended and the image
-- retention has passed.
CREATE TABLE job_inputs (
    guild_id  INTEGER NOT NULL,
    job_id    INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    png       BLOB NOT NULL,
    PRIMARY KEY (guild_id, job_id)
);

CREATE INDEX job_inputs_by_job ON job_inputs (job_id);
