-- The job a warning was given for (an image withheld by the safety check),
-- so one job never warns twice: a restart that delivers a withheld job again
-- (it stopped after the warning, before the job was marked undeliverable)
-- finds the warning it gave instead of adding another. A deleted job's
-- warnings stay, no longer keyed, so a job number used again starts afresh.
ALTER TABLE moderation_warnings ADD COLUMN job_id INTEGER REFERENCES jobs (id) ON DELETE SET NULL;

CREATE UNIQUE INDEX moderation_warnings_per_job ON moderation_warnings (guild_id, source, job_id)
    WHERE job_id IS NOT NULL;
