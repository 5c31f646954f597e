"""PostgreSQL through asyncpg: a connection pool, the same numbered migrations, the same transactions.

The same Store, method for method, as sqlite.py, for a database several dailyq processes share.
What differs, and why:

- Each write method is one transaction on one pooled connection. SQLite runs every write
  transaction alone (BEGIN IMMEDIATE); PostgreSQL runs them side by side (READ COMMITTED), so the
  methods whose result depends on rows they read first take a row lock to keep SQLite's outcome:
  answers to one post are written one at a time (`add_attempt`), a chat that moves is locked
  (`move_chat`). Claims need no lock: an INSERT on the unique key, or an UPDATE whose WHERE is the
  compare-and-swap, is atomic in both.
- Instants are timestamptz, written to the second as sqlite.py writes them, so a value read back
  compares equal to the one a compare-and-swap was given.
- While the database is away (restarting, unreachable), a method raises DatabaseUnavailable and
  nothing is half-written: a transaction the server never committed is rolled back by it. A
  pooled connection found dead before anything was sent on it is replaced and the call goes on.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg

from bot.core.model import ChatRef
from bot.core.store.records import (
    AnswerOutcome,
    Attempt,
    ChatRow,
    ClaimOutcome,
    DatabaseUnavailable,
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
)
from bot.core.store.schema import migrations
from bot.core.store.tables import EXPORT_BATCH, ORDER, TABLES, check_row_counts, column_list

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_POOL_SIZE = 10
CONNECT_TIMEOUT = 5.0  # seconds to open one connection: a server that does not answer is down
COMMAND_TIMEOUT = 30.0  # seconds for one statement: past that the server is as good as gone
SERIALIZATION_TRIES = 5  # runs of a serializable transaction that keeps meeting others

# What opening a connection raises when the server is down, restarting or unreachable.
CONNECTION_LOST = (
    OSError,  # refused, no route, unknown host
    TimeoutError,
    asyncpg.PostgresConnectionError,  # 08xxx
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
)


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that skips asyncpg's reset round trip on release (its default resets
    session settings, LISTENs and advisory locks, none of which the store's connections use; an
    open transaction is still rolled back). That round trip would double the cost of each lookup."""

    def get_reset_query(self) -> str:
        return ""


class PostgreSQLStore:
    """The database on a PostgreSQL server. Open with `await PostgreSQLStore.open(url)`.

    Each Store method means what sqlite.py says it does; the notes here are what differs.
    """

    backend = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.url = url

    @classmethod
    async def open(cls, url: str, pool_size: int = DEFAULT_POOL_SIZE, *, purpose: str = "bot") -> PostgreSQLStore:
        """Connect, and migrate the schema (in the URL's `search_path`, else the server's default).

        Each connection is named `dailyq <purpose> <schema>` (pg_stat_activity's application_name),
        which tells an operator who is connected and copy-db whether a bot is.
        """

        # Commits as durable as the SQLite store's (WAL, synchronous=NORMAL): a crash of the server
        # or its machine may lose the last fraction of a second of commits, never corrupt the
        # database; a commit does not wait for the disk (2.5 ms a write on this project's
        # machines, more than a whole command). `?synchronous_commit=on` in the URL waits.
        durability = {} if "synchronous_commit" in parse_qs(urlsplit(url).query) else {"synchronous_commit": "off"}

        async def name_it(connection: asyncpg.Connection) -> None:
            await connection.execute(
                "SELECT set_config('application_name', $1 || ' ' || current_schema(), false)", f"dailyq {purpose}"
            )

        try:
            pool = await asyncpg.create_pool(
                url,
                # Connections are opened as needed and kept (no idle timeout): with a floor, asyncpg
                # would reconnect in the background while the server is away, logging a traceback
                # at each try; without one, the next call reconnects, or says the server is away.
                min_size=0,
                max_inactive_connection_lifetime=0,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                connection_class=_PooledConnection,
                init=name_it,
                server_settings=durability,
            )
        except CONNECTION_LOST as error:
            raise DatabaseUnavailable(_describe(error)) from None
        except asyncpg.PostgresError as error:  # a refused password, a missing database
            raise DatabaseUnavailable(_describe(error)) from None
        store = cls(pool, url)
        try:
            await store._migrate()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        await self.pool.close()

    def pool_figures(self) -> PoolFigures:
        return PoolFigures(
            size=self.pool.get_size(), idle=self.pool.get_idle_size(), max_size=self.pool.get_max_size()
        )

    async def schema_version(self) -> int:
        return await self._read("fetchval", "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")

    async def _migrate(self) -> None:
        known = migrations("postgresql")

        async def migrate(db: asyncpg.Connection) -> None:
            # One process migrates at a time; the others wait here and then find nothing to do.
            # The lock is per schema, so dailyq instances in other schemas do not wait.
            await db.execute("SELECT pg_advisory_xact_lock(hashtext('dailyq migrate ' || current_schema()))")
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            version = await db.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            if version > len(known):
                raise RuntimeError(
                    f"the database was written by a newer dailyq (schema {version}, this one knows "
                    f"{len(known)}); upgrade dailyq or restore a backup"
                )
            # DDL is transactional here: the migrations and their rows commit together, or none.
            for number in range(version, len(known)):
                await db.execute(known[number].sql)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number + 1, known[number].name
                )
                log.info("database: applied migration %s", known[number].name)

        await self._transaction(migrate)

    async def bots_connected(self) -> int:
        """How many connections bots (`dailyq run` or console) hold on this database and schema."""
        return await self._read(
            "fetchval",
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'dailyq bot ' || current_schema()",
        )

    async def ping(self) -> bool:
        try:
            return await self._read("fetchval", "SELECT 1") == 1
        except DatabaseUnavailable:
            return False

    # --- the two ways in --------------------------------------------------------------------

    async def _read(self, method: str, sql: str, *params: Any) -> Any:
        """`connection.<method>(sql, *params)`: fetch, fetchrow or fetchval."""
        return await self._statement(method, sql, *params, repeatable=True)

    async def _write(self, sql: str, *params: Any, method: str, repeatable: bool) -> Any:
        """One statement, its own transaction (autocommit): execute, or fetchval for RETURNING."""
        return await self._statement(method, sql, *params, repeatable=repeatable)

    async def _statement(self, method: str, sql: str, *params: Any, repeatable: bool) -> Any:
        """One statement on a pooled connection. One that meets a dead connection (the server
        restarted since it was opened) is tried once more on a new one when it is `repeatable`:
        a read, or a write that leaves the same rows when run twice (an upsert, a compare-and-swap,
        setting a column). One that adds a row raises DatabaseUnavailable instead: the server may
        have committed it just before the connection broke."""
        for attempt in (1, 2):
            async with self._connection() as db:
                try:
                    return await getattr(db, method)(sql, *params)
                except Exception as error:
                    if not _lost(db, error):
                        raise
                    await self._connections_lost(error)
                    if attempt == 2 or not repeatable:
                        raise DatabaseUnavailable(_describe(error)) from error
        raise AssertionError("unreachable")

    async def _transaction(
        self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, serializable: bool = False
    ) -> T:
        """Run `work(connection)` in one transaction: committed whole, or rolled back.

        A connection found dead at BEGIN had nothing sent on it, so another is taken. Once the
        transaction has begun a lost connection is not retried: the server rolls back what it did
        not commit, and the caller learns it failed (DatabaseUnavailable). A `serializable` one
        that the server refuses for meeting another at once is run again from the start.
        """
        lost_at_begin = conflicts = 0
        while True:
            async with self._connection() as db:
                transaction = db.transaction(isolation="serializable" if serializable else None)
                try:
                    await transaction.start()
                except Exception as error:
                    if not _lost(db, error):
                        raise
                    await self._connections_lost(error)
                    lost_at_begin += 1
                    if lost_at_begin == 2:
                        raise DatabaseUnavailable(_describe(error)) from error
                    continue
                try:
                    result = await work(db)
                    await transaction.commit()
                except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                    await transaction.rollback()
                    conflicts += 1
                    if conflicts == SERIALIZATION_TRIES:
                        raise
                    continue
                except BaseException as error:
                    if _lost(db, error):
                        await self._connections_lost(error)
                        raise DatabaseUnavailable(_describe(error)) from error
                    await transaction.rollback()
                    raise
                return result

    async def _connections_lost(self, error: BaseException) -> None:
        """One connection died: the server restarted (or went away), and took the pool's other
        connections with it, so every one is replaced on its next use rather than found dead then."""
        log.info("database: a connection was lost (%s); opening new ones", _describe(error))
        await self.pool.expire_connections()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            connection = await self.pool.acquire()
        except CONNECTION_LOST as error:
            raise DatabaseUnavailable(_describe(error)) from error
        except asyncpg.PostgresError as error:  # 53300 too many connections, 57P03 starting up
            raise DatabaseUnavailable(_describe(error)) from error
        try:
            yield connection
        finally:
            await self.pool.release(connection)

    async def _changed(self, sql: str, *params: Any) -> bool:
        """One repeatable statement (see _statement); whether it changed a row."""
        return _rows_changed(await self._write(sql, *params, method="execute", repeatable=True)) > 0

    # --- reads ----------------------------------------------------------------------------

    async def chat(self, key: str) -> ChatRow | None:
        row = await self._read(
            "fetchrow",
            "SELECT key, is_group, settings, subscribed, schedule_from, platform_lang, revision FROM chats"
            " WHERE key = $1",
            key,
        )
        return ChatRow(**{**row, "settings": json.loads(row["settings"])}) if row else None

    async def post(self, post_id: int) -> Post | None:
        row = await self._read("fetchrow", f"SELECT {_POST_COLUMNS} FROM posts p WHERE id = $1", post_id)
        return _post(row) if row else None

    async def post_by_message(self, chat_keys: tuple[str, ...], message_id: str) -> Post | None:
        row = await self._read(
            "fetchrow",
            f"SELECT {_POST_COLUMNS} FROM posts p WHERE chat_key = ANY($1::text[]) AND message_id = $2 "
            "ORDER BY id DESC LIMIT 1",
            list(chat_keys),
            message_id,
        )
        return _post(row) if row else None

    async def open_question(self, user_key: str, chat_key: str) -> OpenQuestion | None:
        row = await self._read(
            "fetchrow",
            f"SELECT {_POST_COLUMNS}, o.filter FROM open_questions o "
            "JOIN posts p ON p.id = o.post_id WHERE o.user_key = $1 AND o.chat_key = $2",
            user_key,
            chat_key,
        )
        if row is None:
            return None
        return OpenQuestion(_post(row), row["filter"])

    async def current_post(self, user_key: str, chat_key: str, *, any_kind: bool = False) -> Post | None:
        kind = "" if any_kind else "AND p.kind = 'daily'"
        row = await self._read(
            "fetchrow",
            f"SELECT {_POST_COLUMNS}, o.opened_at AS since, 1 AS mine FROM open_questions o"
            " JOIN posts p ON p.id = o.post_id WHERE o.user_key = $1 AND o.chat_key = $2"
            " UNION ALL ("
            f"  SELECT {_POST_COLUMNS}, p.created_at AS since, 0 AS mine FROM posts p"
            f"   WHERE p.chat_key = $2 {kind} AND p.status = 'sent' ORDER BY p.id DESC LIMIT 1"
            ") ORDER BY since DESC, mine DESC LIMIT 1",
            user_key,
            chat_key,
        )
        return _post(row) if row else None

    async def skipped_questions(self, user_key: str, chat_key: str, limit: int) -> list[str]:
        rows = await self._read(
            "fetch",
            "SELECT question_id FROM posts p WHERE p.user_key = $1 AND p.chat_key = $2 AND p.kind = 'quiz'"
            " AND p.id > COALESCE((SELECT MAX(a.post_id) FROM attempts a JOIN posts q ON q.id = a.post_id"
            "  WHERE a.user_key = $1 AND q.chat_key = $2 AND q.kind = 'quiz' AND q.user_key = $1), 0)"
            " ORDER BY p.id DESC LIMIT $3",
            user_key,
            chat_key,
            limit,
        )
        return [row[0] for row in rows]

    async def knows_user(self, user_key: str) -> bool:
        return await self._read("fetchval", "SELECT EXISTS (SELECT 1 FROM users WHERE key = $1)", user_key)

    async def daily_cycle(self, chat_key: str) -> tuple[int, set[str], str | None]:
        last = await self._read(
            "fetchrow",
            "SELECT cycle, question_id FROM posts WHERE chat_key = $1 AND kind = 'daily' ORDER BY id DESC LIMIT 1",
            chat_key,
        )
        if last is None:
            return 0, set(), None
        cycle = last["cycle"]  # cycles only grow, so the latest post is in the current one
        rows = await self._read(
            "fetch",
            "SELECT question_id FROM posts WHERE chat_key = $1 AND kind = 'daily' AND cycle = $2",
            chat_key,
            cycle,
        )
        return cycle, {r[0] for r in rows}, last["question_id"]

    async def seen_questions(self, user_key: str, among: Sequence[str] | None = None) -> set[str]:
        """Questions the user was quizzed on or answered, anywhere (only those `among`, if given)."""
        if among is None:
            rows = await self._read(
                "fetch",
                "SELECT question_id FROM posts WHERE user_key = $1 "
                "UNION SELECT question_id FROM attempts WHERE user_key = $1",
                user_key,
            )
        else:
            rows = await self._read(
                "fetch",
                "SELECT question_id FROM posts WHERE user_key = $1 AND question_id = ANY($2::text[]) "
                "UNION SELECT question_id FROM attempts WHERE user_key = $1 AND question_id = ANY($2::text[])",
                user_key,
                list(among),
            )
        return {r[0] for r in rows}

    async def due_reviews(self, user_key: str, now: datetime, limit: int) -> list[str]:
        rows = await self._read(
            "fetch",
            "SELECT question_id FROM reviews WHERE user_key = $1 AND due_at <= $2 ORDER BY due_at LIMIT $3",
            user_key,
            _second(now),
            limit,
        )
        return [r[0] for r in rows]

    async def answerers(self, post_id: int) -> list[str]:
        rows = await self._read(
            "fetch",
            "SELECT COALESCE(u.name, a.user_key) FROM attempts a LEFT JOIN users u ON u.key = a.user_key "
            "WHERE a.post_id = $1 AND a.current ORDER BY a.id",
            post_id,
        )
        return [r[0] for r in rows]

    async def attempt(self, post_id: int, user_key: str) -> tuple[Attempt, Review | None] | None:
        row = await self._read(
            "fetchrow",
            "SELECT a.id, a.post_id, a.question_id, a.grade, r.card, r.post_id AS reviewed_post, r.previous_card"
            " FROM attempts a LEFT JOIN reviews r ON r.user_key = a.user_key AND r.question_id = a.question_id"
            " WHERE a.post_id = $1 AND a.user_key = $2 AND a.current",
            post_id,
            user_key,
        )
        if row is None:
            return None
        attempt = Attempt(row["id"], row["post_id"], row["question_id"], row["grade"])
        review = Review(row["card"], row["reviewed_post"], row["previous_card"]) if row["card"] else None
        return attempt, review

    async def user_stats(self, user_key: str, now: datetime) -> UserStats:
        """The user's answers, grades, answer days and due reviews, across chats, in one row (the
        ids and days come as arrays, so a user with a thousand answers costs one row)."""
        row = await self._read(
            "fetchrow",
            "SELECT (SELECT array_agg(question_id) FROM attempts WHERE user_key = $1 AND current),"
            " (SELECT COUNT(grade) FROM attempts WHERE user_key = $1 AND current),"
            " (SELECT array_agg(DISTINCT local_date ORDER BY local_date DESC) FROM attempts WHERE user_key = $1),"
            " (SELECT COUNT(*) FROM reviews WHERE user_key = $1 AND due_at <= $2)",
            user_key,
            _second(now),
        )
        answered, graded, days, due = row
        return UserStats(answered=list(answered or ()), graded=graded, days=list(days or ()), due=due)

    async def leaderboard(self, chat_key: str, since: datetime | None, limit: int) -> list[Standing]:
        rows = await self._read(
            "fetch",
            "SELECT s.user_key, COALESCE(u.name, s.user_key), s.answers, s.grades FROM ("
            "  SELECT user_key, COUNT(*) AS answers, COUNT(grade) AS grades FROM attempts"
            "  WHERE chat_key = $1 AND current AND ($2::timestamptz IS NULL OR created_at >= $2)"
            "  GROUP BY user_key ORDER BY answers DESC, grades DESC, user_key LIMIT $3"
            ") s LEFT JOIN users u ON u.key = s.user_key ORDER BY s.answers DESC, s.grades DESC, s.user_key",
            chat_key,
            _second(since) if since else None,
            limit,
        )
        return [Standing(r[0], r[1], r[2], r[3]) for r in rows]

    async def user_data_counts(self, user_key: str) -> tuple[int, int]:
        row = await self._read(
            "fetchrow",
            "SELECT (SELECT COUNT(*) FROM attempts WHERE user_key = $1), "
            "(SELECT COUNT(*) FROM reviews WHERE user_key = $1)",
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
        """One statement: a chat not stored yet is inserted with the settings (at revision 1) when
        `revision` is 0, and with none (at revision 0, as sqlite.py's first step leaves it) when
        not; a stored one is changed only at `revision`."""
        stored = await self._write(
            "INSERT INTO chats (key, platform, chat_id, thread_id, is_group, created_at, settings, subscribed,"
            " schedule_from, platform_lang, revision)"
            " SELECT $1, $2, $3, $4, $5, $6, first.settings, first.subscribed, first.schedule_from,"
            "  first.platform_lang, first.revision FROM (SELECT"
            "  CASE WHEN $11 = 0 THEN $7::jsonb ELSE '{}' END AS settings,"
            "  CASE WHEN $11 = 0 THEN COALESCE($8, false) ELSE false END AS subscribed,"
            "  CASE WHEN $11 = 0 AND $9 THEN $6::timestamptz END AS schedule_from,"
            "  CASE WHEN $11 = 0 THEN $10 END AS platform_lang,"
            "  CASE WHEN $11 = 0 THEN 1 ELSE 0 END AS revision) first"
            " ON CONFLICT (key) DO UPDATE SET settings = $7::jsonb,"
            " subscribed = COALESCE($8, chats.subscribed),"
            " schedule_from = CASE WHEN $9 THEN excluded.created_at ELSE chats.schedule_from END,"
            " platform_lang = COALESCE($10, chats.platform_lang), revision = chats.revision + 1"
            " WHERE chats.revision = $11"
            " RETURNING revision",
            chat.key,
            chat.platform,
            chat.chat_id,
            chat.thread_id,
            is_group,
            _second(now),
            json.dumps(settings, ensure_ascii=False),
            subscribed,
            reschedule,
            platform_lang,
            revision,
            method="fetchval",
            repeatable=False,  # a second run would find its own first and say another change came first
        )
        return bool(stored)  # None: another change came first; 0: inserted bare, as for a stale revision

    async def unsubscribe(self, chat_key: str) -> bool:
        return await self._changed(
            "UPDATE chats SET subscribed = false, revision = revision + 1 WHERE key = $1 AND subscribed", chat_key
        )

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
        post_id = await self._write(
            f"WITH {_ENSURE_CHAT}, {_ENSURE_USER.format(key='$7', name='$8', now='$6')},"
            " post AS (INSERT INTO posts (chat_key, question_id, kind, user_key, status, created_at, sent_at)"
            "  VALUES ($1, $9, $10, $7, $11, $6, $6) RETURNING id),"
            f" {_SET_OPEN.format(post='(SELECT id FROM post)', filter='$12')}"
            " SELECT id FROM post",
            *_chat_and_user(chat, is_group, user_key, user_name, now),
            question_id,
            PostKind.QUIZ,
            PostStatus.SENT,
            quiz_filter,
            method="fetchval",
            repeatable=False,
        )
        return Post(post_id, chat.key, question_id, PostKind.QUIZ, user_key, None, None, 0, _second(now), None, None)

    async def open_post(
        self, chat: ChatRef, is_group: bool, user_key: str, user_name: str, post_id: int, now: datetime
    ) -> None:
        set_open = _SET_OPEN.format(post="$9::bigint", filter="''")
        await self._write(
            f"WITH {_ENSURE_CHAT}, {_ENSURE_USER.format(key='$7', name='$8', now='$6')}, {set_open} SELECT 1",
            *_chat_and_user(chat, is_group, user_key, user_name, now),
            post_id,
            method="execute",
            repeatable=True,
        )

    async def set_message_id(self, post_id: int, message_id: str) -> None:
        await self._changed("UPDATE posts SET message_id = $1 WHERE id = $2", message_id, post_id)

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
        """Locks first, as SQLite's one writer at a time does: the post (a reveal, and another
        answer to it, wait), then the user's answer to it (a grade waits); the statements after
        see whatever committed before the locks."""

        async def add(db: asyncpg.Connection) -> AnswerOutcome:
            revealed = await db.fetchval(
                "SELECT revealed_at IS NOT NULL OR reveal_due_at <= $2 FROM posts WHERE id = $1 FOR NO KEY UPDATE",
                post.id,
                _second(now),
            )
            earlier = await db.fetchrow(
                "SELECT grade FROM attempts WHERE post_id = $1 AND user_key = $2 AND current FOR UPDATE",
                post.id,
                user_key,
            )
            if earlier is not None and earlier["grade"] is not None:
                return "kept_graded"
            if revealed:
                return "kept_revealed" if earlier is not None else "closed"
            await db.execute(
                f"WITH {_ENSURE_USER.format(key='$2', name='$9', now='$8')},"
                " superseded AS ("
                "  UPDATE attempts SET current = false WHERE post_id = $1 AND user_key = $2 AND current)"
                " INSERT INTO attempts (post_id, user_key, chat_key, question_id, text, hidden, local_date,"
                "  created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                post.id,
                user_key,
                post.chat_key,
                post.question_id,
                text,
                hidden,
                date.fromisoformat(local_date),
                _second(now),
                user_name,
            )
            return "added" if earlier is None else "replaced"

        return await self._transaction(add)

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
        # One statement: the card first (inserted, or changed only from `replacing`), then the
        # grade, only if the card was written.
        if replacing is None:
            write_card = (
                "INSERT INTO reviews (card, due_at, updated_at, post_id, previous_card, user_key, question_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_key, question_id) DO NOTHING RETURNING 1"
            )
        else:
            write_card = (
                "UPDATE reviews SET card = $1, due_at = $2, updated_at = $3, post_id = $4, previous_card = $5"
                " WHERE user_key = $6 AND question_id = $7 AND card = $10 RETURNING 1"
            )
        return await self._write(
            f"WITH card AS ({write_card}),"
            " graded AS (UPDATE attempts SET grade = $8, graded_at = $3 WHERE id = $9 AND EXISTS (SELECT 1 FROM card))"
            " SELECT EXISTS (SELECT 1 FROM card)",
            card,
            _second(due),
            _second(now),
            attempt.post_id,
            previous_card,
            user_key,
            attempt.question_id,
            grade,
            attempt.id,
            *([] if replacing is None else [replacing.card]),
            method="fetchval",
            repeatable=False,  # a second run would find the card it wrote and say another grade came first
        )

    async def mark_revealed(self, post_id: int, now: datetime) -> None:
        await self._changed(
            "UPDATE posts SET revealed_at = $1 WHERE id = $2 AND revealed_at IS NULL", _second(now), post_id
        )

    async def secret(self, name: str) -> bytes:
        # Two statements, not one: a statement sees the table as it began, so after another
        # process's insert of the same name won, only a second statement can read that one.
        await self._write(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            name,
            secrets.token_hex(32),
            method="execute",
            repeatable=True,
        )
        return bytes.fromhex(await self._read("fetchval", "SELECT value FROM secrets WHERE name = $1", name))

    async def forget_user(self, user_key: str) -> None:
        await self._changed(
            # One statement: every part sees the rows as they were, so the cached reviews of the
            # user's answers are found through the feedback rows deleted beside them.
            "WITH cached AS (DELETE FROM feedback_cache WHERE (question_id, digest) IN"
            "  (SELECT question_id, digest FROM feedback WHERE user_key = $1)),"
            " reviewed AS (DELETE FROM feedback WHERE user_key = $1),"
            " usage AS (DELETE FROM feedback_usage WHERE scope = 'user:' || $1),"
            " answers AS (DELETE FROM attempts WHERE user_key = $1),"
            " cards AS (DELETE FROM reviews WHERE user_key = $1),"
            " open AS (DELETE FROM open_questions WHERE user_key = $1),"
            " quizzes AS (UPDATE posts SET user_key = NULL WHERE user_key = $1)"
            " DELETE FROM users WHERE key = $1",
            user_key,
        )

    # --- feedback from a model ------------------------------------------------------------

    async def current_answer(self, post_id: int, user_key: str) -> str | None:
        return await self._read(
            "fetchval", "SELECT text FROM attempts WHERE post_id = $1 AND user_key = $2 AND current", post_id, user_key
        )

    async def latest_answered_post(self, user_key: str, revealed_by: datetime) -> Post | None:
        row = await self._read(
            "fetchrow",
            f"SELECT {_POST_COLUMNS} FROM attempts a JOIN posts p ON p.id = a.post_id"
            " WHERE a.user_key = $1 AND a.current"
            " AND (p.kind = $2 OR p.revealed_at IS NOT NULL OR p.reveal_due_at <= $3)"
            " ORDER BY a.id DESC LIMIT 1",
            user_key,
            PostKind.QUIZ,
            _second(revealed_by),
        )
        return _post(row) if row else None

    async def feedback(self, post_id: int, user_key: str) -> FeedbackRecord | None:
        row = await self._read(
            "fetchrow",
            "SELECT state, review, created_at FROM feedback WHERE post_id = $1 AND user_key = $2",
            post_id,
            user_key,
        )
        return FeedbackRecord(**row) if row else None

    async def cached_feedback(self, question_id: str, digest: str) -> str | None:
        return await self._read(
            "fetchval", "SELECT review FROM feedback_cache WHERE question_id = $1 AND digest = $2", question_id, digest
        )

    async def claim_feedback(self, claim: FeedbackClaim) -> ClaimOutcome:
        """Serializable, as every SQLite write is: two presses at once (in two processes) cannot
        both claim, nor two requests at once both fit under a limit that has room for one."""
        scopes = [f"user:{claim.user_key}", f"chat:{claim.chat_key}"]
        day = date.fromisoformat(claim.day)

        async def claim_it(db: asyncpg.Connection) -> ClaimOutcome:
            existing = await db.fetchrow(
                "SELECT state, created_at FROM feedback WHERE post_id = $1 AND user_key = $2",
                claim.post_id,
                claim.user_key,
            )
            if existing is not None and (
                existing["state"] == FeedbackState.DONE or existing["created_at"] > _second(claim.stale_before)
            ):
                return existing["state"]
            used = dict(
                await db.fetch(
                    "SELECT scope, requests FROM feedback_usage WHERE scope = ANY($1::text[]) AND day = $2",
                    scopes,
                    day,
                )
            )
            if used.get(scopes[0], 0) >= claim.user_limit:
                return "user_limit"
            if used.get(scopes[1], 0) >= claim.chat_limit:
                return "chat_limit"
            await db.execute(
                "WITH pending AS ("
                "  INSERT INTO feedback (post_id, user_key, question_id, digest, state, created_at)"
                "  VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (post_id, user_key) DO UPDATE SET"
                "  question_id = excluded.question_id, digest = excluded.digest, state = excluded.state,"
                "  review = NULL, created_at = excluded.created_at),"
                " old_days AS (DELETE FROM feedback_usage WHERE scope = ANY($7::text[]) AND day < $8)"
                " INSERT INTO feedback_usage (scope, day, requests) SELECT unnest($7::text[]), $8, 1"
                " ON CONFLICT (scope, day) DO UPDATE SET requests = feedback_usage.requests + 1",
                claim.post_id,
                claim.user_key,
                claim.question_id,
                claim.digest,
                FeedbackState.PENDING,
                _second(claim.now),
                scopes,
                day,
            )
            return "claimed"

        return await self._transaction(claim_it, serializable=True)

    async def save_feedback(self, claim: FeedbackClaim, review: str) -> None:
        await self._changed(
            "WITH done AS ("
            "  INSERT INTO feedback (post_id, user_key, question_id, digest, state, review, created_at)"
            "  VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (post_id, user_key) DO UPDATE SET"
            "  question_id = excluded.question_id, digest = excluded.digest, state = excluded.state,"
            "  review = excluded.review, created_at = excluded.created_at)"
            " INSERT INTO feedback_cache (question_id, digest, review, created_at) VALUES ($3, $4, $6, $7)"
            " ON CONFLICT (question_id, digest) DO UPDATE SET review = excluded.review, created_at = excluded.created_at",
            claim.post_id,
            claim.user_key,
            claim.question_id,
            claim.digest,
            FeedbackState.DONE,
            review,
            _second(claim.now),
        )

    async def drop_feedback_claim(self, claim: FeedbackClaim, *, refund: bool) -> None:
        await self._write(
            "WITH dropped AS (DELETE FROM feedback WHERE post_id = $1 AND user_key = $2 AND state = $3)"
            " UPDATE feedback_usage SET requests = requests - 1"
            " WHERE $4 AND scope = ANY($5::text[]) AND day = $6",
            claim.post_id,
            claim.user_key,
            FeedbackState.PENDING,
            refund,
            [f"user:{claim.user_key}", f"chat:{claim.chat_key}"],
            date.fromisoformat(claim.day),
            method="execute",
            repeatable=not refund,  # a refund given twice would be one too many
        )

    async def move_chat(self, old_key: str, new_chat: ChatRef) -> None:
        new_key = new_chat.key
        if new_key == old_key:
            return

        async def move(db: asyncpg.Connection) -> None:
            # Both chats locked first: another process's sweep or command waits for the move.
            existing = await db.fetch("SELECT key FROM chats WHERE key = ANY($1::text[]) FOR UPDATE", [old_key, new_key])
            await db.execute("UPDATE attempts SET chat_key = $1 WHERE chat_key = $2", new_key, old_key)
            if new_key not in {row["key"] for row in existing}:
                await db.execute(
                    "UPDATE chats SET key = $1, platform = $2, chat_id = $3, thread_id = $4 WHERE key = $5",
                    new_key,
                    new_chat.platform,
                    new_chat.chat_id,
                    new_chat.thread_id,
                    old_key,
                )
                return
            await db.execute(
                "UPDATE chats SET revision = chats.revision + 1, (settings, subscribed, schedule_from, platform_lang) = "
                "(SELECT settings, subscribed, schedule_from, platform_lang FROM chats WHERE key = $1) "
                "WHERE key = $2",
                old_key,
                new_key,
            )
            # SQLite's UPDATE OR IGNORE: rows that would collide with the new chat's stay behind
            # (and go with the old chat below).
            await db.execute(
                "UPDATE posts SET chat_key = $1 WHERE chat_key = $2 AND (local_date IS NULL OR local_date NOT IN "
                "(SELECT local_date FROM posts WHERE chat_key = $1 AND local_date IS NOT NULL))",
                new_key,
                old_key,
            )
            await db.execute(
                "UPDATE open_questions o SET chat_key = $1 WHERE chat_key = $2 AND NOT EXISTS "
                "(SELECT 1 FROM open_questions n WHERE n.user_key = o.user_key AND n.chat_key = $1)",
                new_key,
                old_key,
            )
            await db.execute("DELETE FROM chats WHERE key = $1", old_key)

        await self._transaction(move)

    # --- the scheduler's bookkeeping: claims, leases and reveals --------------------------

    # Each read below names its columns as the record's fields: the rows become records as they are.

    async def subscribed_chats(self, after: str, limit: int) -> list[SubscribedChat]:
        rows = await self._read(
            "fetch",
            "SELECT c.key, c.settings AS settings_json, COALESCE(c.schedule_from, c.created_at) AS schedule_from,"
            " (SELECT MAX(p.local_date) FROM posts p WHERE p.chat_key = c.key AND p.kind = 'daily') AS last_daily"
            " FROM chats c WHERE c.subscribed AND c.key > $1 ORDER BY c.key LIMIT $2",
            after,
            limit,
        )
        return [SubscribedChat(**row) for row in rows]

    async def stale_claims(self, claimed_before: datetime) -> list[StaleClaim]:
        rows = await self._read(
            "fetch",
            "SELECT p.id AS post_id, p.chat_key, c.settings AS settings_json, p.local_date,"
            " p.created_at AS claimed_at FROM posts p JOIN chats c ON c.key = p.chat_key"
            " WHERE p.kind = 'daily' AND p.status = 'pending' AND p.created_at < $1",
            _second(claimed_before),
        )
        return [StaleClaim(**row) for row in rows]

    async def due_reveals(self, now: datetime, claimed_before: datetime) -> list[DueReveal]:
        rows = await self._read(
            "fetch",
            "SELECT p.id AS post_id, p.chat_key, c.settings AS settings_json, p.reveal_due_at AS due_at,"
            " p.revealed_at AS claimed_at FROM posts p JOIN chats c ON c.key = p.chat_key"
            " WHERE p.kind = 'daily' AND p.status = 'sent' AND p.reveal_due_at <= $1"
            " AND ((p.revealed_at IS NULL AND p.reveal_status IS NULL)"
            "      OR (p.reveal_status = 'pending' AND p.revealed_at < $2))"
            " ORDER BY p.reveal_due_at",
            _second(now),
            _second(claimed_before),
        )
        return [DueReveal(**row) for row in rows]

    async def claim_daily(
        self, chat_key: str, question_id: str, local_date: date, cycle: int, now: datetime
    ) -> int | None:
        """Claim the chat's post for `local_date` (pending); its id, or None if it was claimed already.

        Repeatable: if the connection broke after the server committed the claim, the second try
        finds it taken and says None; the claim is then pending with no sender, and the next sweep
        after its lease sends it (as after a crash).
        """
        return await self._write(
            "INSERT INTO posts (chat_key, question_id, kind, local_date, status, cycle, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chat_key, local_date) DO NOTHING RETURNING id",
            chat_key,
            question_id,
            PostKind.DAILY,
            local_date,
            PostStatus.PENDING,
            cycle,
            _second(now),
            method="fetchval",
            repeatable=True,
        )

    async def take_over_claim(self, post_id: int, claimed_at: datetime, now: datetime) -> bool:
        return await self._changed(
            "UPDATE posts SET created_at = $1 WHERE id = $2 AND status = $3 AND created_at = $4",
            _second(now),
            post_id,
            PostStatus.PENDING,
            claimed_at,
        )

    async def mark_sent(self, post_id: int, message_id: str, sent_at: datetime, reveal_due_at: datetime) -> None:
        await self._changed(
            "UPDATE posts SET status = $1, message_id = $2, sent_at = $3, reveal_due_at = $4 WHERE id = $5",
            PostStatus.SENT,
            message_id,
            _second(sent_at),
            _second(reveal_due_at),
            post_id,
        )

    async def mark_failed(self, post_id: int) -> None:
        await self._changed(
            "UPDATE posts SET status = $1 WHERE id = $2 AND status = $3", PostStatus.FAILED, post_id, PostStatus.PENDING
        )

    async def claim_reveal(self, post_id: int, claimed_at: datetime | None, now: datetime) -> bool:
        return await self._changed(
            "UPDATE posts SET reveal_status = $1, revealed_at = $2"
            " WHERE id = $3 AND revealed_at IS NOT DISTINCT FROM $4 AND (reveal_status IS NULL OR reveal_status = $1)",
            RevealStatus.PENDING,
            _second(now),
            post_id,
            claimed_at,
        )

    async def end_reveal(self, post_id: int, status: RevealStatus) -> None:
        await self._changed("UPDATE posts SET reveal_status = $1 WHERE id = $2", status, post_id)


    # --- moving house: dailyq copy-db -----------------------------------------------------

    async def row_counts(self) -> dict[str, int]:
        return dict(zip(TABLES, await self._read("fetchrow", _COUNT_ROWS), strict=True))

    async def export_rows(self, batch_size: int = EXPORT_BATCH) -> AsyncIterator[tuple[str, list[tuple]]]:
        """Every row of every table, table by table (tables.py's order and kinds), in batches,
        all from one snapshot of the database."""
        async with self._connection() as db, db.transaction(isolation="repeatable_read", readonly=True):
            for table, columns in TABLES.items():
                query = f"SELECT {column_list(columns)} FROM {table} ORDER BY {ORDER[table]}"
                batch: list[tuple] = []
                async for record in db.cursor(query, prefetch=batch_size):
                    batch.append(tuple(record))
                    if len(batch) == batch_size:
                        yield table, batch
                        batch = []
                if batch:
                    yield table, batch

    async def import_rows(
        self, batches: AsyncIterable[tuple[str, list[tuple]]], expected: Mapping[str, int], *, replace: bool
    ) -> None:
        """Add the rows `export_rows` gives (ids kept), in one transaction that commits only if
        every table then holds `expected` rows. `replace` deletes what the tables held first."""

        async def load(db: asyncpg.Connection) -> None:
            if replace:
                await db.execute(f"TRUNCATE {', '.join(TABLES)}")
            async for table, rows in batches:
                await db.copy_records_to_table(table, records=rows, columns=list(TABLES[table]))
            for table in ("posts", "attempts"):  # the next id after the copied ones
                await db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) "
                    f"FROM {table}"
                )
            check_row_counts(dict(zip(TABLES, await db.fetchrow(_COUNT_ROWS), strict=True)), expected)

        await self._transaction(load)
        # The planner's statistics and the visibility map for the new rows at once, rather than
        # when autovacuum comes round: the first queries on a copied database are fast too.
        async with self._connection() as db:
            for table in TABLES:
                await db.execute(f"VACUUM (ANALYZE) {table}")


@dataclass(frozen=True)
class PoolFigures:
    size: int  # connections open now
    idle: int  # of those, not in use
    max_size: int  # DAILYQ_DB_POOL_SIZE

    @property
    def in_use(self) -> int:
        return self.size - self.idle


_COUNT_ROWS = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {table})" for table in TABLES)

_POST_COLUMNS = (
    "p.id, p.chat_key, p.question_id, p.kind, p.user_key, p.local_date, p.message_id, p.cycle, "
    "p.created_at, p.reveal_due_at, p.revealed_at"
)


def _post(row: asyncpg.Record) -> Post:
    local_date = row["local_date"]
    return Post(
        id=row["id"],
        chat_key=row["chat_key"],
        question_id=row["question_id"],
        kind=row["kind"],
        user_key=row["user_key"],
        local_date=local_date.isoformat() if local_date else None,
        message_id=row["message_id"],
        cycle=row["cycle"],
        created_at=row["created_at"],
        reveal_due_at=row["reveal_due_at"],
        revealed_at=row["revealed_at"],
    )


def _second(instant: datetime) -> datetime:
    """An instant as stored: UTC, to the second (as sqlite.py's ISO text)."""
    return instant.astimezone(UTC).replace(microsecond=0)


def _rows_changed(status: str) -> int:
    """The row count of a command status such as 'UPDATE 3' or 'INSERT 0 1'."""
    return int(status.rsplit(" ", 1)[-1])


def _lost(db: asyncpg.Connection, error: BaseException) -> bool:
    """Whether `error` means the connection is gone. Which exception asyncpg raises then depends on
    when the server hung up (ConnectionDoesNotExistError, AdminShutdownError, and while a statement
    was being set up even InternalClientError), so the connection's own state decides."""
    if isinstance(error, CONNECTION_LOST) and not isinstance(error, TimeoutError):
        return True
    try:
        return db.is_closed()
    except asyncpg.InterfaceError:  # the pool has already taken back the connection that died
        return True


def _describe(error: BaseException) -> str:
    """One line about a connection problem (asyncpg's messages never quote the password)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _chat_and_user(chat: ChatRef, is_group: bool, user_key: str, user_name: str, now: datetime) -> tuple:
    """Parameters $1-$8 of _ENSURE_CHAT and of _ENSURE_USER as add_quiz and open_post number them."""
    return chat.key, chat.platform, chat.chat_id, chat.thread_id, is_group, _second(now), user_key, user_name


# Parts of one statement (a WITH clause each), so that a command's write is one trip to the server.
_ENSURE_CHAT = (
    "chat AS (INSERT INTO chats (key, platform, chat_id, thread_id, is_group, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING)"
)
_ENSURE_USER = (
    "usr AS (INSERT INTO users (key, name, created_at) VALUES ({key}, {name}, {now})"
    " ON CONFLICT (key) DO UPDATE SET name = excluded.name WHERE users.name <> excluded.name)"
)
_SET_OPEN = (
    "open AS (INSERT INTO open_questions (user_key, chat_key, post_id, filter, opened_at)"
    " VALUES ($7, $1, {post}, {filter}, $6) ON CONFLICT (user_key, chat_key) DO UPDATE SET"
    " post_id = excluded.post_id, filter = excluded.filter, opened_at = excluded.opened_at)"
)
