-- A done job whose result could not be posted (its channel was deleted, or the
-- bot may no longer post there): why, so it is not retried after every restart
-- and moderators can see what became of it.
ALTER TABLE jobs ADD COLUMN undeliverable TEXT;

-- Their images are pruned a while after they finished.
CREATE INDEX jobs_undeliverable ON jobs (finished_at) WHERE undeliverable IS NOT NULL;
