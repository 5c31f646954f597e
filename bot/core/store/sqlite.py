"""The SQLite backend: one long-lived aiosqlite connection for writes and long reads, a query-only
connection for index lookups on the event loop, numbered migrations, explicit transactions.

Times are stored as ISO-8601 UTC strings (`...+00:00`), which sort correctly as text.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiosqlite

from bot.core.model import ChatRef
from bot.core.store.records import (
    AnswerOutcome,
    Attempt,
    ChatRow,
    ClaimOutcome,
    DatabaseBusy,
    DueReveal,
    FeedbackClaim,
    FeedbackRecord,
    FeedbackState,
    OpenQuestion,
    Post,
    PostKind,
    PostStatus,
    RevealStatus,
    Review,
    StaleClaim,
    Standing,
    SubscribedChat,
    UserStats,
    from_iso,
    iso,
)
from bot.core.store.schema import migrations
from bot.core.store.tables import EXPORT_BATCH, ORDER, TABLES, Kind, check_row_counts, column_list

T = TypeVar("T")


class SQLiteStore:
    """The database in a SQLite file. Open with `await SQLiteStore.open(path)`; close with `await store.close()`."""

    backend = "sqlite"

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self._lookups: sqlite3.Connection | None = None  # see _lookup

    @classmethod
    async def open(cls, path: Path | str) -> SQLiteStore:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        store = cls(db, path)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute("PRAGMA foreign_keys=ON")
            await store._migrate()
            store._lookups = _lookup_connection(path)
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        if self._lookups is not None:
            self._lookups.close()
        await self.db.close()

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` in one write transaction (BEGIN IMMEDIATE … COMMIT; ROLLBACK if it
        raises), the whole of it as a single call on the database thread.

        That thread runs one call at a time, so no other statement of this connection can fall
        inside the transaction (no lock needed), and the transaction costs one trip to the thread
        rather than one per statement. A cancelled caller stops waiting, but the call runs to its
        end: the connection is never left inside a half-open transaction. Raises DatabaseBusy when
        another process held the database past busy_timeout.
        """
        try:
            return await run_on_database_thread(self.db, _in_transaction, work)
        except sqlite3.OperationalError as error:
            if "locked" in str(error):
                raise DatabaseBusy(str(error)) from error
            raise

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0])

    async def _migrate(self) -> None:
        known = migrations("sqlite")
        version = await self.schema_version()
        if version > len(known):
            raise RuntimeError(
                f"{self.path} was written by a newer dailyq (schema {version}, this one knows "
                f"{len(known)}); upgrade dailyq or restore a backup"
            )
        if version == len(known):
            return
        # A migration may rebuild a table that others reference (SQLite cannot alter a constraint):
        # with foreign keys on, dropping it would cascade. They are off meanwhile (the pragma has no
        # effect inside a transaction) and checked before each commit.
        await self.db.execute("PRAGMA foreign_keys=OFF")
        try:
            for number in range(version, len(known)):

                def migrate(db: sqlite3.Connection, number: int = number) -> None:
                    # Statement by statement: executescript() would commit the open transaction.
                    for statement in _statements(known[number].sql):
                        db.execute(statement)
                    broken = db.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(
                            f"migration {known[number].name} broke references: {broken[:5]}"
                        )
                    # user_version is transactional: the bump commits with the migration, or neither.
                    db.execute(f"PRAGMA user_version = {number + 1}")

                await self.write(migrate)
        finally:
            await self.db.execute("PRAGMA foreign_keys=ON")

    async def ping(self) -> bool:
        """Whether the database answers a query (for /healthz)."""
        return await self._one("SELECT 1") is not None

    # --- reads ----------------------------------------------------------------------------
    #
    # Two ways, chosen per query:
    # - `_lookup`: an index lookup that returns a few rows, what every update asks (its chat, the
    #   post it answers, the user's answer to it). It runs at once on the event loop, on a
    #   query-only connection of its own: the lookup takes microseconds, where a trip to
    #   aiosqlite's thread and back costs 0.1 ms of CPU alone, and several times that with the
    #   loop busy (bench/updates.py). In WAL mode a reader never waits for a writer.
    # - `_one` / `_all`: a query that may read many rows (stats, leaderboards, the bank cycle)
    #   goes to aiosqlite's thread, and the loop runs on meanwhile. execute_fetchall is one trip
    #   there; execute + fetch + close would be three.

    def _lookup(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        assert self._lookups is not None, "the store is not open"
        return self._lookups.execute(sql, params).fetchall()

    def _lookup_one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        return next(iter(self._lookup(sql, *params)), None)

    async def _one(self, sql: str, *params: Any) -> aiosqlite.Row | None:
        rows = await self.db.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def _all(self, sql: str, *params: Any) -> Iterable[aiosqlite.Row]:
        return await self.db.execute_fetchall(sql, params)

    async def chat(self, key: str) -> ChatRow | None:
        row = self._lookup_one(
            "SELECT key, is_group, settings, subscribed, schedule_from, platform_lang, revision FROM chats"
            " WHERE key = ?",
            key,
        )
        if row is None:
            return None
        return ChatRow(
            key=row["key"],
            is_group=bool(row["is_group"]),
            settings=json.loads(row["settings"]),
            subscribed=bool(row["subscribed"]),
            schedule_from=from_iso(row["schedule_from"]),
            platform_lang=row["platform_lang"],
            revision=row["revision"],
        )

    async def post(self, post_id: int) -> Post | None:
        row = self._lookup_one(f"SELECT {_POST_COLUMNS} FROM posts p WHERE id = ?", post_id)
        return Post.from_row(row) if row else None

    async def post_by_message(self, chat_keys: tuple[str, ...], message_id: str) -> Post | None:
        """The question sent as `message_id` in one of `chat_keys` (a thread and its parent channel)."""
        marks = ",".join("?" * len(chat_keys))
        row = self._lookup_one(
            f"SELECT {_POST_COLUMNS} FROM posts p WHERE chat_key IN ({marks}) AND message_id = ? "
            "ORDER BY id DESC LIMIT 1",
            *chat_keys,
            message_id,
        )
        return Post.from_row(row) if row else None

    async def open_question(self, user_key: str, chat_key: str) -> OpenQuestion | None:
        row = self._lookup_one(
            f"SELECT {_POST_COLUMNS}, o.filter FROM open_questions o "
            "JOIN posts p ON p.id = o.post_id WHERE o.user_key = ? AND o.chat_key = ?",
            user_key,
            chat_key,
        )
        if row is None:
            return None
        return OpenQuestion(Post.from_row(row), row["filter"])

    async def current_post(self, user_key: str, chat_key: str, *, any_kind: bool = False) -> Post | None:
        """The newer of the user's open question in this chat and the chat's latest daily post (with
        `any_kind`, its latest question of any kind: in a group, anyone's /quiz is the group's)."""
        kind = "" if any_kind else "AND p.kind = 'daily'"
        row = self._lookup_one(
            f"SELECT {_POST_COLUMNS}, o.opened_at AS since, 1 AS mine FROM open_questions o"
            " JOIN posts p ON p.id = o.post_id WHERE o.user_key = ?1 AND o.chat_key = ?2"
            " UNION ALL SELECT * FROM ("
            f"  SELECT {_POST_COLUMNS}, p.created_at AS since, 0 AS mine FROM posts p"
            f"   WHERE p.chat_key = ?2 {kind} AND p.status = 'sent' ORDER BY p.id DESC LIMIT 1"
            ") ORDER BY since DESC, mine DESC LIMIT 1",
            user_key,
            chat_key,
        )
        return Post.from_row(row) if row else None

    async def skipped_questions(self, user_key: str, chat_key: str, limit: int) -> list[str]:
        """The questions of the user's last `limit` /quiz posts in this chat since their last answered
        one, newest first: what they were served and moved on from."""
        rows = await self._all(
            "SELECT question_id FROM posts p WHERE p.user_key = ?1 AND p.chat_key = ?2 AND p.kind = 'quiz'"
            " AND p.id > COALESCE((SELECT MAX(a.post_id) FROM attempts a JOIN posts q ON q.id = a.post_id"
            "  WHERE a.user_key = ?1 AND q.chat_key = ?2 AND q.kind = 'quiz' AND q.user_key = ?1), 0)"
            " ORDER BY p.id DESC LIMIT ?3",
            user_key,
            chat_key,
            limit,
        )
        return [row[0] for row in rows]

    async def knows_user(self, user_key: str) -> bool:
        """Whether anything of the user's is kept (their name comes with their first question)."""
        return self._lookup_one("SELECT 1 FROM users WHERE key = ?", user_key) is not None

    async def daily_cycle(self, chat_key: str) -> tuple[int, set[str], str | None]:
        """The chat's current cycle through the bank, the questions posted in it, and the last one posted."""
        last = await self._one(
            "SELECT cycle, question_id FROM posts WHERE chat_key = ? AND kind = 'daily' ORDER BY id DESC LIMIT 1",
            chat_key,
        )
        if last is None:
            return 0, set(), None
        cycle = last["cycle"]  # cycles only grow, so the latest post is in the current one
        rows = await self._all(
            "SELECT question_id FROM posts WHERE chat_key = ? AND kind = 'daily' AND cycle = ?",
            chat_key,
            cycle,
        )
        return cycle, {r[0] for r in rows}, last["question_id"]

    async def seen_questions(self, user_key: str, among: Sequence[str] | None = None) -> set[str]:
        """Questions the user was quizzed on or answered, anywhere (only those `among`, if given:
        a few, so a lookup; all of them may be thousands)."""
        among_clause = f"AND question_id IN ({','.join('?' * len(among))})" if among is not None else ""
        extra = list(among or ())
        sql = (
            f"SELECT question_id FROM posts WHERE user_key = ? {among_clause} "
            f"UNION SELECT question_id FROM attempts WHERE user_key = ? {among_clause}"
        )
        params = (user_key, *extra, user_key, *extra)
        rows = self._lookup(sql, *params) if among is not None else await self._all(sql, *params)
        return {r[0] for r in rows}

    async def due_reviews(self, user_key: str, now: datetime, limit: int) -> list[str]:
        rows = self._lookup(
            "SELECT question_id FROM reviews WHERE user_key = ? AND due_at <= ? ORDER BY due_at LIMIT ?",
            user_key,
            iso(now),
            limit,
        )
        return [r[0] for r in rows]

    async def answerers(self, post_id: int) -> list[str]:
        """Names of the users with an answer to the post, first answer first."""
        rows = self._lookup(
            "SELECT COALESCE(u.name, a.user_key) FROM attempts a LEFT JOIN users u ON u.key = a.user_key "
            "WHERE a.post_id = ? AND a.current = 1 ORDER BY a.id",
            post_id,
        )
        return [r[0] for r in rows]

    async def attempt(self, post_id: int, user_key: str) -> tuple[Attempt, Review | None] | None:
        """The user's current answer to the post, and their review card for its question, if any."""
        row = self._lookup_one(
            "SELECT a.id, a.post_id, a.question_id, a.grade, r.card, r.post_id AS reviewed_post, r.previous_card"
            " FROM attempts a LEFT JOIN reviews r ON r.user_key = a.user_key AND r.question_id = a.question_id"
            " WHERE a.post_id = ? AND a.user_key = ? AND a.current = 1",
            post_id,
            user_key,
        )
        if row is None:
            return None
        attempt = Attempt(row["id"], row["post_id"], row["question_id"], row["grade"])
        review = Review(row["card"], row["reviewed_post"], row["previous_card"]) if row["card"] else None
        return attempt, review

    async def user_stats(self, user_key: str, now: datetime) -> UserStats:
        """The user's answers, grades, answer days and due reviews, across chats, in one row.

        SQLite concatenates the ids and days itself (group_concat), so a user with a thousand
        answers costs one row, not a thousand.
        """
        row = await self._one(
            "SELECT (SELECT group_concat(question_id, char(10)) FROM attempts WHERE user_key = ?1 AND current = 1),"
            " (SELECT COUNT(grade) FROM attempts WHERE user_key = ?1 AND current = 1),"
            " (SELECT group_concat(DISTINCT local_date) FROM attempts WHERE user_key = ?1),"
            " (SELECT COUNT(*) FROM reviews WHERE user_key = ?1 AND due_at <= ?2)",
            user_key,
            iso(now),
        )
        assert row is not None
        answered, graded, days, due = row
        return UserStats(
            answered=answered.split("\n") if answered else [],
            graded=graded,
            days=sorted((date.fromisoformat(day) for day in days.split(",")), reverse=True) if days else [],
            due=due,
        )

    async def leaderboard(self, chat_key: str, since: datetime | None, limit: int) -> list[Standing]:
        """Who answered most in the chat (since `since`), ties broken by grades given."""
        since_clause = "AND created_at >= ?" if since else ""
        params: list[Any] = [chat_key] + ([iso(since)] if since else []) + [limit]
        rows = await self._all(
            "SELECT s.user_key, COALESCE(u.name, s.user_key), s.answers, s.grades FROM ("
            "  SELECT user_key, COUNT(*) AS answers, COUNT(grade) AS grades FROM attempts"
            f"  WHERE chat_key = ? AND current = 1 {since_clause}"
            "  GROUP BY user_key ORDER BY answers DESC, grades DESC, user_key LIMIT ?"
            ") s LEFT JOIN users u ON u.key = s.user_key ORDER BY s.answers DESC, s.grades DESC, s.user_key",
            *params,
        )
        return [Standing(r[0], r[1], r[2], r[3]) for r in rows]

    async def user_data_counts(self, user_key: str) -> tuple[int, int]:
        """(answers including superseded ones, review cards) kept for the user."""
        row = await self._one(
            "SELECT (SELECT COUNT(*) FROM attempts WHERE user_key = ?1), "
            "(SELECT COUNT(*) FROM reviews WHERE user_key = ?1)",
            user_key,
        )
        return row[0], row[1]

    # --- writes: one transaction each ----------------------------------------------------

    async def save_chat(
        self,
        chat: ChatRef,
        is_group: bool,
        settings: dict,
        now: datetime,
        *,
        revision: int,
        subscribed: bool | None = None,
        reschedule: bool = False,
        platform_lang: str | None = None,
    ) -> bool:
        """Store the chat's settings if the chat is still at `revision` (ChatRow.revision as read;
        0 for a chat not stored yet), and bump it; False, with nothing written, when another
        change came first. `reschedule` makes only instants after `now` due."""

        def save(db: sqlite3.Connection) -> bool:
            _ensure_chat(db, chat, is_group, now)
            cursor = db.execute(
                "UPDATE chats SET settings = ?, subscribed = COALESCE(?, subscribed), "
                "schedule_from = CASE WHEN ? THEN ? ELSE schedule_from END, "
                "platform_lang = COALESCE(?, platform_lang), revision = revision + 1 "
                "WHERE key = ? AND revision = ?",
                (
                    json.dumps(settings, ensure_ascii=False),
                    None if subscribed is None else int(subscribed),
                    int(reschedule),
                    iso(now),
                    platform_lang,
                    chat.key,
                    revision,
                ),
            )
            return cursor.rowcount == 1

        return await self.write(save)

    async def unsubscribe(self, chat_key: str) -> bool:
        """Stop the chat's daily posts; False when it was not subscribed."""
        cursor = await self.write(
            lambda db: db.execute(
                "UPDATE chats SET subscribed = 0, revision = revision + 1 WHERE key = ? AND subscribed = 1",
                (chat_key,),
            ),
        )
        return cursor.rowcount > 0

    async def add_quiz(
        self,
        chat: ChatRef,
        is_group: bool,
        user_key: str,
        user_name: str,
        question_id: str,
        quiz_filter: str,
        now: datetime,
    ) -> Post:
        """A /quiz post for the user, which becomes the question they are on in this chat."""

        def add(db: sqlite3.Connection) -> int:
            _ensure_chat(db, chat, is_group, now)
            _ensure_user(db, user_key, user_name, now)
            cursor = db.execute(
                "INSERT INTO posts (chat_key, question_id, kind, user_key, status, created_at, sent_at) "
                "VALUES (?, ?, 'quiz', ?, 'sent', ?, ?)",
                (chat.key, question_id, user_key, iso(now), iso(now)),
            )
            post_id = cursor.lastrowid
            assert post_id is not None
            _set_open(db, user_key, chat.key, post_id, quiz_filter, now)
            return post_id

        post_id = await self.write(add)
        return Post(
            post_id, chat.key, question_id, "quiz", user_key, None, None, 0, from_iso(iso(now)), None, None
        )

    async def open_post(
        self, chat: ChatRef, is_group: bool, user_key: str, user_name: str, post_id: int, now: datetime
    ) -> None:
        """Make `post_id` (a group's question) the one the user answers in this (private) chat."""

        def open_it(db: sqlite3.Connection) -> None:
            _ensure_chat(db, chat, is_group, now)
            _ensure_user(db, user_key, user_name, now)
            _set_open(db, user_key, chat.key, post_id, "", now)

        await self.write(open_it)

    async def set_message_id(self, post_id: int, message_id: str) -> None:
        await self.write(
            lambda db: db.execute("UPDATE posts SET message_id = ? WHERE id = ?", (message_id, post_id))
        )

    async def add_attempt(
        self,
        post: Post,
        user_key: str,
        user_name: str,
        text: str,
        hidden: bool,
        local_date: str,
        now: datetime,
    ) -> AnswerOutcome:
        """Store an answer to the post, over the user's earlier one, unless that one is graded or
        the post's reference answer is out (revealed, or due by `now`): checked in the same
        transaction as the write, so a reveal or a grade at the same moment cannot slip between."""

        def add(db: sqlite3.Connection) -> AnswerOutcome:
            revealed = db.execute(
                "SELECT 1 FROM posts WHERE id = ? AND (revealed_at IS NOT NULL OR reveal_due_at <= ?)",
                (post.id, iso(now)),
            ).fetchone()
            earlier = db.execute(
                "SELECT grade FROM attempts WHERE post_id = ? AND user_key = ? AND current = 1", (post.id, user_key)
            ).fetchone()
            if earlier is not None and earlier[0] is not None:
                return "kept_graded"
            if revealed:
                return "kept_revealed" if earlier is not None else "closed"
            _ensure_user(db, user_key, user_name, now)
            db.execute(
                "UPDATE attempts SET current = 0 WHERE post_id = ? AND user_key = ? AND current = 1",
                (post.id, user_key),
            )
            db.execute(
                "INSERT INTO attempts (post_id, user_key, chat_key, question_id, text, hidden, local_date, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (post.id, user_key, post.chat_key, post.question_id, text, int(hidden), local_date, iso(now)),
            )
            return "added" if earlier is None else "replaced"

        return await self.write(add)

    async def grade(
        self,
        attempt: Attempt,
        user_key: str,
        grade: str,
        previous_card: str | None,
        card: str,
        due: datetime,
        now: datetime,
        *,
        replacing: Review | None,
    ) -> bool:
        """Record the attempt's grade and the review card it produced from `previous_card`, if the
        user's card for the question is still `replacing` (as `attempt` read it; None: no card
        yet); False, with nothing written, when another grade changed the card first."""

        def record(db: sqlite3.Connection) -> bool:
            values = (card, iso(due), iso(now), attempt.post_id, previous_card, user_key, attempt.question_id)
            if replacing is None:
                cursor = db.execute(
                    "INSERT INTO reviews (card, due_at, updated_at, post_id, previous_card, user_key, question_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_key, question_id) DO NOTHING",
                    values,
                )
            else:
                cursor = db.execute(
                    "UPDATE reviews SET card = ?, due_at = ?, updated_at = ?, post_id = ?, previous_card = ?"
                    " WHERE user_key = ? AND question_id = ? AND card = ?",
                    (*values, replacing.card),
                )
            if cursor.rowcount != 1:
                return False
            db.execute(
                "UPDATE attempts SET grade = ?, graded_at = ? WHERE id = ?", (grade, iso(now), attempt.id)
            )
            return True

        return await self.write(record)

    async def mark_revealed(self, post_id: int, now: datetime) -> None:
        await self.write(
            lambda db: db.execute(
                "UPDATE posts SET revealed_at = ? WHERE id = ? AND revealed_at IS NULL", (iso(now), post_id)
            )
        )

    async def secret(self, name: str) -> bytes:
        """A random 32-byte secret kept under `name`, created on first use; every process sharing
        the database gets the same one."""

        def get_or_create(db: sqlite3.Connection) -> str:
            db.execute(
                "INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, secrets.token_hex(32)),
            )
            return db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()[0]

        return bytes.fromhex(await self.write(get_or_create))

    async def forget_user(self, user_key: str) -> None:
        """Delete the user's answers, grades, reviews, feedback and name everywhere; their quizzes become anonymous."""

        def forget(db: sqlite3.Connection) -> None:
            for sql in (
                # The cached reviews of the user's answers go too: they describe those answers.
                "DELETE FROM feedback_cache WHERE (question_id, digest) IN"
                " (SELECT question_id, digest FROM feedback WHERE user_key = ?)",
                "DELETE FROM feedback WHERE user_key = ?",
                "DELETE FROM feedback_usage WHERE scope = 'user:' || ?",
                "DELETE FROM attempts WHERE user_key = ?",
                "DELETE FROM reviews WHERE user_key = ?",
                "DELETE FROM open_questions WHERE user_key = ?",
                "UPDATE posts SET user_key = NULL WHERE user_key = ?",
                "DELETE FROM users WHERE key = ?",
            ):
                db.execute(sql, (user_key,))

        await self.write(forget)

    # --- feedback from a model ------------------------------------------------------------

    async def current_answer(self, post_id: int, user_key: str) -> str | None:
        row = self._lookup_one(
            "SELECT text FROM attempts WHERE post_id = ? AND user_key = ? AND current = 1", post_id, user_key
        )
        return row[0] if row else None

    async def latest_answered_post(self, user_key: str, revealed_by: datetime) -> Post | None:
        """The post of the user's latest answer whose reference answer is out: a quiz (its asker may
        reveal it at any time) or a daily post revealed, or due to be, by `revealed_by`."""
        row = self._lookup_one(
            f"SELECT {_POST_COLUMNS} FROM attempts a JOIN posts p ON p.id = a.post_id"
            " WHERE a.user_key = ? AND a.current = 1"
            " AND (p.kind = ? OR p.revealed_at IS NOT NULL OR p.reveal_due_at <= ?)"
            " ORDER BY a.id DESC LIMIT 1",
            user_key,
            PostKind.QUIZ,
            iso(revealed_by),
        )
        return Post.from_row(row) if row else None

    async def feedback(self, post_id: int, user_key: str) -> FeedbackRecord | None:
        row = self._lookup_one(
            "SELECT state, review, created_at FROM feedback WHERE post_id = ? AND user_key = ?", post_id, user_key
        )
        if row is None:
            return None
        return FeedbackRecord(row["state"], row["review"], datetime.fromisoformat(row["created_at"]))

    async def cached_feedback(self, question_id: str, digest: str) -> str | None:
        row = self._lookup_one(
            "SELECT review FROM feedback_cache WHERE question_id = ? AND digest = ?", question_id, digest
        )
        return row[0] if row else None

    async def claim_feedback(self, claim: FeedbackClaim) -> ClaimOutcome:
        """Claim the member's one review of the post before asking the model, within the day's limits.

        'claimed': a pending claim is recorded and the day's requests of the member and the chat
        counted. Otherwise nothing changes: 'done' (there is a review), 'pending' (a request is
        under way; one older than `claim.stale_before` was abandoned and is claimed anew),
        'user_limit' or 'chat_limit'.
        """
        user_scope, chat_scope = f"user:{claim.user_key}", f"chat:{claim.chat_key}"

        def claim_it(db: sqlite3.Connection) -> ClaimOutcome:
            existing = db.execute(
                "SELECT state, created_at FROM feedback WHERE post_id = ? AND user_key = ?",
                (claim.post_id, claim.user_key),
            ).fetchone()
            if existing is not None and (existing[0] == FeedbackState.DONE or existing[1] > iso(claim.stale_before)):
                return existing[0]
            used = dict(
                db.execute(
                    "SELECT scope, requests FROM feedback_usage WHERE scope IN (?, ?) AND day = ?",
                    (user_scope, chat_scope, claim.day),
                ).fetchall()
            )
            if used.get(user_scope, 0) >= claim.user_limit:
                return "user_limit"
            if used.get(chat_scope, 0) >= claim.chat_limit:
                return "chat_limit"
            db.execute(
                "INSERT OR REPLACE INTO feedback (post_id, user_key, question_id, digest, state, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (claim.post_id, claim.user_key, claim.question_id, claim.digest, FeedbackState.PENDING, iso(claim.now)),
            )
            for scope in (user_scope, chat_scope):
                db.execute("DELETE FROM feedback_usage WHERE scope = ? AND day < ?", (scope, claim.day))
                db.execute(
                    "INSERT INTO feedback_usage (scope, day, requests) VALUES (?, ?, 1)"
                    " ON CONFLICT (scope, day) DO UPDATE SET requests = requests + 1",
                    (scope, claim.day),
                )
            return "claimed"

        return await self.write(claim_it)

    async def save_feedback(self, claim: FeedbackClaim, review: str) -> None:
        """The member's review of the post, and the cache entry for its question and digest."""

        def save(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO feedback (post_id, user_key, question_id, digest, state, review, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (claim.post_id, claim.user_key, claim.question_id, claim.digest, FeedbackState.DONE, review, iso(claim.now)),
            )
            db.execute(
                "INSERT OR REPLACE INTO feedback_cache (question_id, digest, review, created_at) VALUES (?, ?, ?, ?)",
                (claim.question_id, claim.digest, review, iso(claim.now)),
            )

        await self.write(save)

    async def drop_feedback_claim(self, claim: FeedbackClaim, *, refund: bool) -> None:
        """The model gave no review: the member may ask again. `refund` gives back the day's request
        (when none reached the model)."""

        def drop(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM feedback WHERE post_id = ? AND user_key = ? AND state = ?",
                (claim.post_id, claim.user_key, FeedbackState.PENDING),
            )
            if refund:
                db.execute(
                    "UPDATE feedback_usage SET requests = requests - 1 WHERE scope IN (?, ?) AND day = ?",
                    (f"user:{claim.user_key}", f"chat:{claim.chat_key}", claim.day),
                )

        await self.write(drop)

    async def move_chat(self, old_key: str, new_chat: ChatRef) -> None:
        """Give the chat a new key (a Telegram group upgraded to a supergroup), keeping its state.

        When the new key already exists (someone used the bot there first), the old chat's
        schedule wins and its history moves over, except daily posts for days the new one has.
        """
        new_key = new_chat.key
        if new_key == old_key:
            return

        def move(db: sqlite3.Connection) -> None:
            db.execute("UPDATE attempts SET chat_key = ? WHERE chat_key = ?", (new_key, old_key))
            if db.execute("SELECT 1 FROM chats WHERE key = ?", (new_key,)).fetchone() is None:
                db.execute(
                    "UPDATE chats SET key = ?, platform = ?, chat_id = ?, thread_id = ? WHERE key = ?",
                    (new_key, new_chat.platform, new_chat.chat_id, new_chat.thread_id, old_key),
                )
                return
            db.execute(
                "UPDATE chats SET revision = revision + 1, (settings, subscribed, schedule_from, platform_lang) = "
                "(SELECT settings, subscribed, schedule_from, platform_lang FROM chats WHERE key = ?) "
                "WHERE key = ?",
                (old_key, new_key),
            )
            db.execute("UPDATE OR IGNORE posts SET chat_key = ? WHERE chat_key = ?", (new_key, old_key))
            db.execute(
                "UPDATE OR IGNORE open_questions SET chat_key = ? WHERE chat_key = ?", (new_key, old_key)
            )
            db.execute("DELETE FROM chats WHERE key = ?", (old_key,))

        await self.write(move)

    # --- the scheduler's bookkeeping: claims, leases and reveals --------------------------
    #
    # A daily post is claimed before it is sent, on the unique key (chat, local date), so a second
    # claim is impossible across restarts and processes; a claim or reveal still pending after its
    # lease is taken over with a compare-and-swap on the instant it was claimed at.

    async def subscribed_chats(self, after: str, limit: int) -> list[SubscribedChat]:
        """Subscribed chats with keys after `after`, in key order, `limit` at most (a page)."""
        rows = await self._all(
            "SELECT c.key, c.settings, COALESCE(c.schedule_from, c.created_at) AS schedule_from,"
            " (SELECT MAX(p.local_date) FROM posts p WHERE p.chat_key = c.key AND p.kind = 'daily') AS last_daily"
            " FROM chats c WHERE c.subscribed = 1 AND c.key > ? ORDER BY c.key LIMIT ?",
            after,
            limit,
        )
        return [
            SubscribedChat(
                key=row["key"],
                settings_json=row["settings"],
                schedule_from=datetime.fromisoformat(row["schedule_from"]),
                last_daily=date.fromisoformat(row["last_daily"]) if row["last_daily"] else None,
            )
            for row in rows
        ]

    async def stale_claims(self, claimed_before: datetime) -> list[StaleClaim]:
        """Daily posts still pending that were claimed before `claimed_before`."""
        rows = await self._all(
            "SELECT p.id, p.chat_key, p.local_date, p.created_at, c.settings"
            " FROM posts p JOIN chats c ON c.key = p.chat_key"
            " WHERE p.kind = 'daily' AND p.status = 'pending' AND p.created_at < ?",
            iso(claimed_before),
        )
        return [
            StaleClaim(
                post_id=row["id"],
                chat_key=row["chat_key"],
                settings_json=row["settings"],
                local_date=date.fromisoformat(row["local_date"]),
                claimed_at=datetime.fromisoformat(row["created_at"]),
            )
            for row in rows
        ]

    async def due_reveals(self, now: datetime, claimed_before: datetime) -> list[DueReveal]:
        """Sent daily posts whose reveal is due by `now` and neither done nor claimed (or claimed
        before `claimed_before`, by a sweep that died), the earliest due first."""
        rows = await self._all(
            "SELECT p.id, p.chat_key, p.reveal_due_at, p.revealed_at, c.settings"
            " FROM posts p JOIN chats c ON c.key = p.chat_key"
            " WHERE p.kind = 'daily' AND p.status = 'sent' AND p.reveal_due_at <= ?"
            " AND ((p.revealed_at IS NULL AND p.reveal_status IS NULL)"
            "      OR (p.reveal_status = 'pending' AND p.revealed_at < ?))"
            " ORDER BY p.reveal_due_at",
            iso(now),
            iso(claimed_before),
        )
        return [
            DueReveal(
                post_id=row["id"],
                chat_key=row["chat_key"],
                settings_json=row["settings"],
                due_at=datetime.fromisoformat(row["reveal_due_at"]),
                claimed_at=from_iso(row["revealed_at"]),
            )
            for row in rows
        ]

    async def claim_daily(
        self, chat_key: str, question_id: str, local_date: date, cycle: int, now: datetime
    ) -> int | None:
        """Claim the chat's post for `local_date` (pending); its id, or None if it was claimed already."""

        def claim(db: sqlite3.Connection) -> int | None:
            cursor = db.execute(
                "INSERT INTO posts (chat_key, question_id, kind, local_date, status, cycle, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chat_key, local_date) DO NOTHING",
                (
                    chat_key,
                    question_id,
                    PostKind.DAILY,
                    local_date.isoformat(),
                    PostStatus.PENDING,
                    cycle,
                    iso(now),
                ),
            )
            return cursor.lastrowid if cursor.rowcount == 1 else None

        return await self.write(claim)

    async def take_over_claim(self, post_id: int, claimed_at: datetime, now: datetime) -> bool:
        """Make a stale pending claim ours (claimed at `now`); False if another process took it first."""
        return await self._changed(
            "UPDATE posts SET created_at = ? WHERE id = ? AND status = ? AND created_at = ?",
            iso(now),
            post_id,
            PostStatus.PENDING,
            iso(claimed_at),
        )

    async def mark_sent(
        self, post_id: int, message_id: str, sent_at: datetime, reveal_due_at: datetime
    ) -> None:
        """The platform accepted the claimed post as `message_id`; its reveal is due at `reveal_due_at`."""
        await self._changed(
            "UPDATE posts SET status = ?, message_id = ?, sent_at = ?, reveal_due_at = ? WHERE id = ?",
            PostStatus.SENT,
            message_id,
            iso(sent_at),
            iso(reveal_due_at),
            post_id,
        )

    async def mark_failed(self, post_id: int) -> None:
        """A pending claim will never be sent (the chat is gone, or it is past its grace window)."""
        await self._changed(
            "UPDATE posts SET status = ? WHERE id = ? AND status = ?",
            PostStatus.FAILED,
            post_id,
            PostStatus.PENDING,
        )

    async def claim_reveal(self, post_id: int, claimed_at: datetime | None, now: datetime) -> bool:
        """Claim the post's scheduled reveal (pending, started at `now`), if it is still as read:
        unclaimed (`claimed_at` None) or claimed at `claimed_at`. False if another process (or a
        /reveal by hand) got there first."""
        return await self._changed(
            "UPDATE posts SET reveal_status = ?, revealed_at = ?"
            " WHERE id = ? AND revealed_at IS ? AND (reveal_status IS NULL OR reveal_status = ?)",
            RevealStatus.PENDING,
            iso(now),
            post_id,
            iso(claimed_at) if claimed_at is not None else None,
            RevealStatus.PENDING,
        )

    async def end_reveal(self, post_id: int, status: RevealStatus) -> None:
        """The scheduled reveal is over: sent, failed (the chat is gone) or skipped (too late)."""
        await self._changed("UPDATE posts SET reveal_status = ? WHERE id = ?", status, post_id)

    # --- moving house: dailyq copy-db -----------------------------------------------------

    async def row_counts(self) -> dict[str, int]:
        return dict(zip(TABLES, await self._one(_COUNT_ROWS), strict=True))

    async def bots_connected(self) -> int:
        """Always 0: a bot on a SQLite file holds its instance lock, which copy-db takes first."""
        return 0

    async def export_rows(self, batch_size: int = EXPORT_BATCH) -> AsyncIterator[tuple[str, list[tuple]]]:
        """Every row of every table, table by table (tables.py's order, its kinds as neutral
        values), in batches. copy-db holds the file's instance lock, so nothing writes meanwhile."""
        for table, columns in TABLES.items():
            readers = [_FROM_SQLITE[kind] for kind in columns.values()]
            query = f"SELECT {column_list(columns)} FROM {table} ORDER BY {ORDER[table]}"
            async with self.db.execute(query) as cursor:
                while rows := await cursor.fetchmany(batch_size):
                    yield table, [tuple(read(value) for read, value in zip(readers, row, strict=True)) for row in rows]

    async def import_rows(
        self, batches: AsyncIterable[tuple[str, list[tuple]]], expected: Mapping[str, int], *, replace: bool
    ) -> None:
        """Add the rows `export_rows` gives (ids kept), in one transaction that commits only if
        every table then holds `expected` rows. `replace` deletes what the tables held first.

        The one transaction that spans several trips to the database thread (the batches arrive
        from the other database in between): copy-db holds the instance lock, so no other
        statement can fall inside it.
        """
        # A big page cache while the indexes grow (a copy of a large database), then the usual one.
        (cache,) = await self._one("PRAGMA cache_size")
        await self.db.execute(f"PRAGMA cache_size = {IMPORT_CACHE_KIB}")
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            if replace:
                for table in reversed(TABLES):
                    await self.db.execute(f"DELETE FROM {table}")
            async for table, rows in batches:
                columns = TABLES[table]
                writers = [_TO_SQLITE[kind] for kind in columns.values()]
                await self.db.executemany(
                    f"INSERT INTO {table} ({column_list(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [tuple(write(value) for write, value in zip(writers, row, strict=True)) for row in rows],
                )
            check_row_counts(dict(zip(TABLES, await self._one(_COUNT_ROWS), strict=True)), expected)
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise
        finally:
            await self.db.execute(f"PRAGMA cache_size = {cache}")

    async def _changed(self, sql: str, *params: Any) -> bool:
        """One statement in its own transaction; whether it changed a row."""
        cursor = await self.write(lambda db: db.execute(sql, params))
        return cursor.rowcount > 0


IMPORT_CACHE_KIB = -512 * 1024  # negative: KiB, so 512 MB at most, used only as the pages come

_COUNT_ROWS = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {table})" for table in TABLES)

# A column's stored form and the neutral one copy-db moves (see tables.py); None stays None.
_FROM_SQLITE: dict[Kind, Callable[[Any], Any]] = {
    Kind.TEXT: lambda value: value,
    Kind.INTEGER: lambda value: value,
    Kind.JSON: lambda value: value,
    Kind.FLAG: lambda value: None if value is None else bool(value),
    Kind.INSTANT: from_iso,
    Kind.DAY: lambda value: date.fromisoformat(value) if value else None,
}
_TO_SQLITE: dict[Kind, Callable[[Any], Any]] = {
    Kind.TEXT: lambda value: value,
    Kind.INTEGER: lambda value: value,
    Kind.JSON: lambda value: value,
    Kind.FLAG: lambda value: None if value is None else int(value),
    Kind.INSTANT: lambda value: iso(value) if value else None,
    Kind.DAY: lambda value: value.isoformat() if value else None,
}


def _in_transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """On the database thread: `work` between BEGIN IMMEDIATE and COMMIT, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


_POST_COLUMNS = (
    "p.id, p.chat_key, p.question_id, p.kind, p.user_key, p.local_date, p.message_id, p.cycle, "
    "p.created_at, p.reveal_due_at, p.revealed_at"
)


def _ensure_chat(db: sqlite3.Connection, chat: ChatRef, is_group: bool, now: datetime) -> None:
    db.execute(
        "INSERT INTO chats (key, platform, chat_id, thread_id, is_group, created_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO NOTHING",
        (chat.key, chat.platform, chat.chat_id, chat.thread_id, int(is_group), iso(now)),
    )


def _ensure_user(db: sqlite3.Connection, user_key: str, name: str, now: datetime) -> None:
    db.execute(
        "INSERT INTO users (key, name, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET name = excluded.name WHERE name != excluded.name",
        (user_key, name, iso(now)),
    )


def _set_open(
    db: sqlite3.Connection, user_key: str, chat_key: str, post_id: int, quiz_filter: str, now: datetime
) -> None:
    db.execute(
        "INSERT INTO open_questions (user_key, chat_key, post_id, filter, opened_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (user_key, chat_key) DO UPDATE SET post_id = excluded.post_id, "
        "filter = excluded.filter, opened_at = excluded.opened_at",
        (user_key, chat_key, post_id, quiz_filter, iso(now)),
    )


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _lookup_connection(path: Path) -> sqlite3.Connection:
    """The connection `_lookup`s use, on the event loop's thread only; it cannot write."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA query_only=ON")
    # A WAL reader waits only in rare moments (another process recovering the log): briefly.
    connection.execute("PRAGMA busy_timeout=1000")
    return connection


def dailyq_schema_version(path: Path) -> int | None:
    """The schema version of a SQLite file that dailyq wrote, or None for another SQLite file.

    Read only; raises sqlite3.Error for a file that is not SQLite at all.
    """
    with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        has_chats = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chats'"
        ).fetchone()
    return version if version >= 1 and has_chats else None


def copy_database(
    source: Path, target: Path, connect_target: Callable[[str], sqlite3.Connection] = sqlite3.connect
) -> list[str]:
    """Copy the database file `source` into `target` with SQLite's online backup (a consistent
    snapshot while a bot keeps writing) and check the copy; the integrity check's findings,
    `["ok"]` for a sound copy. Raises sqlite3.Error; never creates `source`.

    The copy is one self-contained file (no -wal beside it to lose on a rename or a copy).
    `connect_target` opens the copy (a test's can limit its size, to stand for a full disk).
    """
    with (
        closing(sqlite3.connect(f"file:{quote(str(source))}?mode=rw", uri=True, timeout=30)) as src,
        closing(connect_target(str(target))) as copy,
    ):
        src.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        return [row[0] for row in copy.execute("PRAGMA integrity_check")]


def run_on_database_thread(db: aiosqlite.Connection, function: Callable[..., T], *args: Any) -> Awaitable[T]:
    """`function(connection, *args)` on aiosqlite's thread, as one call.

    aiosqlite has no public way to run a function on its thread; `_execute` and `_conn` are what
    its own methods use. The public alternative costs a trip to the thread per statement (BEGIN and
    COMMIT included) and a lock around the transaction: measured with bench/updates.py in the
    issue-14 commit. tests/test_store.py fails, naming the installed aiosqlite, if either goes.
    """
    return db._execute(function, db._conn, *args)
