-- Feedback from a model on an answer: one review per member and post, a cache by answer, daily counts.

-- One per member and post: claimed 'pending' before the model is asked (a second press waits for
-- it), 'done' with the review after; a failure deletes the claim, so the member can ask again.
CREATE TABLE feedback (
    post_id bigint NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    user_key text COLLATE "C" NOT NULL,
    question_id text COLLATE "C" NOT NULL,
    digest text NOT NULL,                       -- of the reviewed answer, reference and language
    state text NOT NULL CHECK (state IN ('pending', 'done')),
    review text,                                -- JSON: score, covered, missed, advice (when done)
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, user_key)
);
CREATE INDEX feedback_user ON feedback(user_key);

-- Reviews by question and digest: the same answer to the same question is asked about once.
CREATE TABLE feedback_cache (
    question_id text COLLATE "C" NOT NULL,
    digest text NOT NULL,
    review text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (question_id, digest)
);

-- Requests to the model per UTC day, for the daily limits: scope 'user:<user key>' or 'chat:<chat key>'.
CREATE TABLE feedback_usage (
    scope text COLLATE "C" NOT NULL,
    day date NOT NULL,
    requests integer NOT NULL,
    PRIMARY KEY (scope, day)
);
