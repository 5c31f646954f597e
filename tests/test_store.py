"""The database: migrations, pragmas, foreign keys, transactions, and state that survives a reopen."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.model import ChatRef
from bot.core.store import MIGRATIONS, Store, from_iso, iso

NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
GROUP = ChatRef("telegram", "-100")


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(tmp_path / "data" / "dailyq.sqlite3")
    yield store
    await store.close()


async def scalar(store: Store, sql: str, *params: object) -> object:
    async with store.db.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return row[0]


async def test_a_new_file_gets_every_migration_wal_and_foreign_keys(store: Store, tmp_path) -> None:
    assert (tmp_path / "data" / "dailyq.sqlite3").exists()  # the directory is created
    assert await store.schema_version() == len(MIGRATIONS)
    assert await scalar(store, "PRAGMA journal_mode") == "wal"
    assert await scalar(store, "PRAGMA foreign_keys") == 1
    assert await scalar(store, "PRAGMA busy_timeout") == 5000
    tables = {
        r[0] for r in await store.db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert {"chats", "users", "posts", "attempts", "reviews", "open_questions"} <= tables


async def test_a_post_for_an_unknown_chat_is_refused(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await _insert_orphan_post(store)


async def _insert_orphan_post(store: Store) -> None:
    await store.write(
        lambda db: db.execute(
            "INSERT INTO posts (chat_key, question_id, kind, created_at) VALUES ('nowhere:1', 'q', 'quiz', ?)",
            (iso(NOW),),
        )
    )


async def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    def chat_then_orphan(db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO chats (key, platform, chat_id, created_at) VALUES ('t:1', 't', '1', ?)", (iso(NOW),)
        )
        db.execute(
            "INSERT INTO posts (chat_key, question_id, kind, created_at) VALUES ('t:2', 'q', 'quiz', ?)",
            (iso(NOW),),
        )

    with pytest.raises(sqlite3.IntegrityError):
        await store.write(chat_then_orphan)
    assert await scalar(store, "SELECT COUNT(*) FROM chats") == 0
    await store.save_chat(GROUP, True, {"time": "10:00"}, NOW, subscribed=True)  # and the store goes on
    assert (await store.chat(GROUP.key)).subscribed


async def test_state_survives_a_reopen_and_migrations_are_not_run_twice(tmp_path) -> None:
    path = tmp_path / "dailyq.sqlite3"
    store = await Store.open(path)
    try:
        await store.save_chat(
            GROUP,
            True,
            {"time": "10:00", "zone": "Asia/Shanghai"},
            NOW,
            subscribed=True,
            reschedule=True,
            platform_lang="zh",
        )
        post_id = (await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q1", "rag", NOW)).id
    finally:
        await store.close()
    store = await Store.open(path)
    try:
        chat = await store.chat(GROUP.key)
        assert chat is not None
        assert (chat.settings, chat.subscribed, chat.schedule_from, chat.platform_lang) == (
            {"time": "10:00", "zone": "Asia/Shanghai"},
            True,
            NOW.replace(microsecond=0),
            "zh",
        )
        opened = await store.open_question("telegram:7", GROUP.key)
        assert opened is not None and (opened.post.id, opened.filter) == (post_id, "rag")
        assert await store.schema_version() == len(MIGRATIONS)
    finally:
        await store.close()


async def test_a_database_from_a_newer_version_is_refused(tmp_path) -> None:
    path = tmp_path / "dailyq.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer dailyq"):
        await Store.open(path)


async def test_moving_a_chat_onto_one_that_exists_merges_them(store: Store) -> None:
    new = ChatRef("telegram", "-200")
    await store.save_chat(GROUP, True, {"time": "07:00"}, NOW, subscribed=True, reschedule=True)
    post = await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q1", "", NOW)
    await store.add_quiz(new, True, "telegram:8", "Bob", "q2", "", NOW)  # someone used the new id first
    await store.add_attempt(post, "telegram:7", "Ann", "answer", False, "2026-03-02", NOW)

    await store.move_chat(GROUP.key, new)
    assert await store.chat(GROUP.key) is None
    moved = await store.chat(new.key)
    assert moved is not None and moved.settings == {"time": "07:00"} and moved.subscribed
    assert await scalar(store, "SELECT COUNT(*) FROM posts WHERE chat_key = ?", new.key) == 2
    assert await scalar(store, "SELECT chat_key FROM attempts") == new.key
    assert (await store.open_question("telegram:7", new.key)) is not None


def test_instants_are_stored_as_sortable_utc_text() -> None:
    assert iso(NOW) == "2026-03-02T09:30:15+00:00"
    assert from_iso(iso(NOW)) == NOW.replace(microsecond=0)
    assert from_iso(None) is None


async def test_user_stats_count_answers_grades_days_and_due_reviews(store: Store) -> None:
    post = await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q1", "", NOW)
    assert await store.post(post.id) == post  # what add_quiz hands back is what was stored
    for day in ["2026-02-28", "2026-03-01", "2026-03-01", "2027-01-01"]:
        await store.add_attempt(post, "telegram:7", "Ann", "answer", False, day, NOW)
    answered = await store.attempt(post.id, "telegram:7")
    assert answered is not None and answered[1] is None  # no review card yet
    await store.grade(answered[0], "telegram:7", "good", None, "{}", NOW, NOW)
    answered = await store.attempt(post.id, "telegram:7")
    assert answered is not None and answered[1] is not None and answered[1].post_id == post.id

    stats = await store.user_stats("telegram:7", NOW)
    assert stats.answered == ["q1"]  # the superseded answers don't count
    assert stats.graded == 1 and stats.due == 1
    assert stats.days == [date(2027, 1, 1), date(2026, 3, 1), date(2026, 2, 28)]
    nobody = await store.user_stats("telegram:8", NOW)
    assert (nobody.answered, nobody.graded, nobody.days, nobody.due) == ([], 0, [], 0)


async def test_the_current_post_is_the_newer_of_the_users_quiz_and_the_chats_daily(store: Store) -> None:
    first_quiz = await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q1", "", NOW)
    assert await store.current_post("telegram:7", GROUP.key) == first_quiz
    cursor = await store.write(
        lambda db: db.execute(
            "INSERT INTO posts (chat_key, question_id, kind, local_date, status, created_at)"
            " VALUES (?, 'q2', 'daily', '2026-03-03', 'sent', ?)",
            (GROUP.key, iso(NOW + timedelta(days=1))),
        )
    )
    daily = await store.current_post("telegram:7", GROUP.key)
    assert daily is not None and daily.id == cursor.lastrowid
    assert await store.current_post("telegram:8", GROUP.key) == daily  # someone without a quiz here
    later_quiz = await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q3", "", NOW + timedelta(days=2))
    assert await store.current_post("telegram:7", GROUP.key) == later_quiz


async def test_a_write_whose_caller_is_cancelled_completes_and_the_next_write_goes_on(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        inside, release = threading.Event(), threading.Event()

        def slow_insert(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO users (key, name, created_at) VALUES ('t:1', 'a', 'x')")
            inside.set()
            release.wait()  # the database thread holds the transaction open until released

        writer = asyncio.create_task(store.write(slow_insert))
        await asyncio.to_thread(inside.wait)
        # Another coroutine's statement meanwhile cannot fall inside the open transaction: it waits.
        reader = asyncio.create_task(store.db.execute_fetchall("SELECT COUNT(*) FROM users"))
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        release.set()
        assert list((await reader)[0]) == [1]  # it ran after the COMMIT
        assert not store.db.in_transaction
        await store.write(
            lambda db: db.execute("INSERT INTO users (key, name, created_at) VALUES ('t:2', 'b', 'x')")
        )
        rows = await store.db.execute_fetchall("SELECT key FROM users ORDER BY key")
        assert [r[0] for r in rows] == ["t:1", "t:2"]
    finally:
        await store.close()


# --- lookups on the event loop ----------------------------------------------------------------------


async def test_lookups_see_each_committed_write_and_are_not_held_up_by_one_in_progress(store: Store) -> None:
    await store.save_chat(GROUP, True, {"time": "10:00"}, NOW)
    assert (await store.chat(GROUP.key)).settings == {"time": "10:00"}
    inside, release = threading.Event(), threading.Event()

    def slow_change(db: sqlite3.Connection) -> None:
        db.execute('UPDATE chats SET settings = \'{"time": "11:00"}\' WHERE key = ?', (GROUP.key,))
        inside.set()
        release.wait()  # the database thread holds its write transaction open

    writer = asyncio.create_task(store.write(slow_change))
    try:
        await asyncio.to_thread(inside.wait)
        # Answered at once, from the last committed state, though the database thread is busy.
        during = await asyncio.wait_for(store.chat(GROUP.key), timeout=5)
        assert during.settings == {"time": "10:00"}
    finally:
        release.set()
        await writer
    assert (await store.chat(GROUP.key)).settings == {"time": "11:00"}
    await store.unsubscribe(GROUP.key)
    assert not (await store.chat(GROUP.key)).subscribed


async def test_the_lookup_connection_cannot_write(store: Store) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store._lookup("DELETE FROM chats")
