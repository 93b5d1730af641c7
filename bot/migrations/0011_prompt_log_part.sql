-- Which text of a request a logged verdict is about: the prompt or the
-- negative prompt. Entries logged before this was recorded are the prompt's
-- (only the prompt was filtered then, or the negative was logged like one).
ALTER TABLE moderation_prompt_log
    ADD COLUMN part TEXT NOT NULL DEFAULT 'prompt' CHECK (part IN ('prompt', 'negative'));
