-- The message that shows a job (its command's reply), once it has one. A
-- restart goes on editing it (queue position, progress, then a link to the
-- result posted in the channel) instead of leaving it showing how the job
-- stood when the last bot stopped.
ALTER TABLE jobs ADD COLUMN status_message_id INTEGER;
