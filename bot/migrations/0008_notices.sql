-- A job that ended without images (failed, cancelled, interrupted) now records
-- when its member was told, in delivered_at, as a done job records its posted
-- grid: a notice whose bot died before sending it is sent after the restart.
-- Jobs that ended before this migration count as told.
UPDATE jobs SET delivered_at = COALESCE(finished_at, created_at)
WHERE state IN ('failed', 'cancelled', 'interrupted') AND delivered_at IS NULL;

CREATE INDEX jobs_untold ON jobs (id) WHERE delivered_at IS NULL AND state IN ('failed', 'cancelled', 'interrupted');
