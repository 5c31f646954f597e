-- Every state a post and its reveal can be in is checked by the schema (reveal_status gains 'failed' and 'skipped').

-- The scheduled reveal's claim: NULL (not claimed), then 'pending', then 'sent', 'failed' (the
-- chat is gone) or 'skipped' (past the grace window). PostgreSQL adds the check in place, where
-- SQLite rebuilds the table.
ALTER TABLE posts ADD CONSTRAINT posts_reveal_status_check
    CHECK (reveal_status IN ('pending', 'sent', 'failed', 'skipped'));
