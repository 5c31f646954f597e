-- Chats count their changes (so a change is written only over the one it was computed from), and the bot keeps secrets.

-- Bumped by every change of a chat's settings or subscription: save_chat writes only over the
-- revision its caller read (compare-and-set), so two changes made at once are both kept.
ALTER TABLE chats ADD COLUMN revision integer NOT NULL DEFAULT 0;

-- Random secrets, created on first use (hex text): `post-links` signs the tokens that let a post
-- be acted on from outside its chat.
CREATE TABLE secrets (
    name text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
