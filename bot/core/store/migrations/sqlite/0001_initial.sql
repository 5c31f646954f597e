-- The first schema: chats, users, posts (daily claims and quizzes), open questions, answers, reviews.

CREATE TABLE chats (
    key TEXT PRIMARY KEY,                 -- platform:chat_id[/thread_id]
    platform TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    thread_id TEXT,
    is_group INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL DEFAULT '{}',  -- JSON: time, zone, days, reveal, tags, answers, lang, role, paused
    subscribed INTEGER NOT NULL DEFAULT 0,
    schedule_from TEXT,                   -- UTC; only instants after it are due (subscribe / settings change)
    created_at TEXT NOT NULL,
    platform_lang TEXT                    -- language the platform reported for whoever set it up
);
CREATE INDEX chats_subscribed ON chats(subscribed) WHERE subscribed = 1;

CREATE TABLE users (
    key TEXT PRIMARY KEY,                 -- platform:user_id
    name TEXT NOT NULL DEFAULT '',
    lang TEXT,
    created_at TEXT NOT NULL
);

-- Every question the bot sent: daily posts (kind 'daily', one per chat and local date,
-- claimed as 'pending' before the send and marked 'sent' after) and on-demand quizzes.
CREATE TABLE posts (
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
    reveal_status TEXT,                   -- NULL, 'pending', 'sent' (the scheduled reveal's claim)
    UNIQUE (chat_key, local_date)
);
CREATE INDEX posts_chat ON posts(chat_key, id);
CREATE INDEX posts_message ON posts(chat_key, message_id);
CREATE INDEX posts_reveal_due ON posts(reveal_due_at) WHERE revealed_at IS NULL AND kind = 'daily';
CREATE INDEX posts_user ON posts(user_key, question_id) WHERE user_key IS NOT NULL;
CREATE INDEX posts_daily ON posts(chat_key, id) WHERE kind = 'daily';
CREATE INDEX posts_cycle ON posts(chat_key, cycle, question_id) WHERE kind = 'daily';

-- The question each user is on in each chat: their last /quiz there, or a group's question
-- they chose to answer privately. Answers without a reply-to go here (or to the daily post).
CREATE TABLE open_questions (
    user_key TEXT NOT NULL,
    chat_key TEXT NOT NULL REFERENCES chats(key) ON UPDATE CASCADE ON DELETE CASCADE,
    post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    filter TEXT NOT NULL DEFAULT '',      -- the /quiz filter, reused by /skip
    opened_at TEXT NOT NULL,
    PRIMARY KEY (user_key, chat_key)
);
CREATE INDEX open_questions_post ON open_questions(post_id);

-- Answers, kept in full. A newer answer to the same post supersedes the older (history kept).
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    user_key TEXT NOT NULL,
    chat_key TEXT NOT NULL,
    question_id TEXT NOT NULL,
    text TEXT NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0,
    current INTEGER NOT NULL DEFAULT 1,
    local_date TEXT NOT NULL,             -- in the chat's zone, for streaks
    created_at TEXT NOT NULL,
    grade TEXT,
    graded_at TEXT
);
CREATE INDEX attempts_user ON attempts(user_key, local_date);
CREATE INDEX attempts_post ON attempts(post_id, user_key);
CREATE INDEX attempts_chat ON attempts(chat_key, created_at);
-- Covering indexes for /stats, /quiz (what a user has seen) and /top (all time).
CREATE INDEX attempts_user_question ON attempts(user_key, question_id, current, grade);
CREATE INDEX attempts_chat_user ON attempts(chat_key, current, user_key, grade);

-- Spaced repetition: one fsrs card per user and question.
CREATE TABLE reviews (
    user_key TEXT NOT NULL,
    question_id TEXT NOT NULL,
    card TEXT NOT NULL,                   -- fsrs Card as JSON
    due_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    post_id INTEGER,                      -- the post whose grade produced `card`
    previous_card TEXT,                   -- `card` before that grade: a re-grade starts again from it
    PRIMARY KEY (user_key, question_id)
);
CREATE INDEX reviews_due ON reviews(user_key, due_at);
