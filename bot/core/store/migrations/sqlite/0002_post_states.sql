-- Every state a post and its reveal can be in is checked by the schema (reveal_status gains 'failed' and 'skipped').

-- SQLite cannot add a CHECK to a column: the table is rebuilt (the runner turns foreign keys off
-- around it, so the answers and open questions that point at posts are kept, and checks them after).
CREATE TABLE posts_new (
    id INTEGER PRIMARY KEY,
    chat_key TEXT NOT NULL REFERENCES chats(key) ON UPDATE CASCADE ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('daily', 'quiz')),
    user_key TEXT,                        -- quiz: who asked
    local_date TEXT,                      -- daily: the chat's local date it belongs to
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    message_id TEXT,                      -- the platform's id once sent
    cycle INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    reveal_due_at TEXT,                   -- UTC; daily posts only
    revealed_at TEXT,
    -- The scheduled reveal's claim: NULL (not claimed), then 'pending', then 'sent', 'failed' (the
    -- chat is gone) or 'skipped' (past the grace window).
    reveal_status TEXT CHECK (reveal_status IN ('pending', 'sent', 'failed', 'skipped')),
    UNIQUE (chat_key, local_date)
);
INSERT INTO posts_new (id, chat_key, question_id, kind, user_key, local_date, status, message_id, cycle,
                       created_at, sent_at, reveal_due_at, revealed_at, reveal_status)
    SELECT id, chat_key, question_id, kind, user_key, local_date, status, message_id, cycle,
           created_at, sent_at, reveal_due_at, revealed_at, reveal_status FROM posts;
DROP TABLE posts;
ALTER TABLE posts_new RENAME TO posts;
CREATE INDEX posts_chat ON posts(chat_key, id);
CREATE INDEX posts_message ON posts(chat_key, message_id);
CREATE INDEX posts_reveal_due ON posts(reveal_due_at) WHERE revealed_at IS NULL AND kind = 'daily';
CREATE INDEX posts_user ON posts(user_key, question_id) WHERE user_key IS NOT NULL;
CREATE INDEX posts_daily ON posts(chat_key, id) WHERE kind = 'daily';
CREATE INDEX posts_cycle ON posts(chat_key, cycle, question_id) WHERE kind = 'daily';
