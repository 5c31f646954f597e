"""SQLite through aiosqlite: one long-lived connection, numbered migrations, explicit transactions.

Keys are text: chats `platform:chat_id[/thread]` (see ChatRef.key), users `platform:user_id`.
Times are stored as ISO-8601 UTC strings (`...+00:00`), which sort correctly as text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

# Append-only: a migration, once released, is never edited; the next change is a new entry.
# Entry N brings the database from user_version N to N+1, in the same transaction as the bump.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE chats (
        key TEXT PRIMARY KEY,                 -- platform:chat_id[/thread_id]
        platform TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        thread_id TEXT,
        is_group INTEGER NOT NULL DEFAULT 0,
        settings TEXT NOT NULL DEFAULT '{}',  -- JSON: time, zone, days, reveal, tags, answers, lang, role, paused
        subscribed INTEGER NOT NULL DEFAULT 0,
        schedule_from TEXT,                   -- UTC; only instants after it are due (subscribe / settings change)
        cycle INTEGER NOT NULL DEFAULT 0,     -- the chat's current pass through the bank
        created_at TEXT NOT NULL
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
    CREATE INDEX posts_reveal_due ON posts(reveal_due_at) WHERE revealed_at IS NULL;

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

    -- Spaced repetition: one fsrs card per user and question.
    CREATE TABLE reviews (
        user_key TEXT NOT NULL,
        question_id TEXT NOT NULL,
        card TEXT NOT NULL,                   -- fsrs Card as JSON
        due_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_key, question_id)
    );
    CREATE INDEX reviews_due ON reviews(user_key, due_at);
    """,
]


class Store:
    """The database. Open with `await Store.open(path)`; close with `await store.close()`."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, path)
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self.db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction at a time on this connection (BEGIN IMMEDIATE … COMMIT)."""
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0])

    async def _migrate(self) -> None:
        version = await self.schema_version()
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} was written by a newer dailyq (schema {version}, this one knows "
                f"{len(MIGRATIONS)}); upgrade dailyq or restore a backup"
            )
        for number in range(version, len(MIGRATIONS)):
            async with self.transaction() as db:
                # Statement by statement: executescript() would commit the open transaction.
                for statement in _statements(MIGRATIONS[number]):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {number + 1}")


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
