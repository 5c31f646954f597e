"""The database: migrations, foreign keys, transactions, state that survives a reopen, and each Store
method, on both backends (the `store` and `database` fixtures of conftest.py); then what only the
SQLite file has (pragmas, its threads and lookups, the in-place upgrade of an old file)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import threading
import tomllib
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from bot.core.model import ChatRef
from bot.core.store import (
    Attempt,
    DatabaseBusy,
    FeedbackClaim,
    Post,
    PostKind,
    PostStatus,
    RevealStatus,
    Review,
    SQLiteStore,
    StaleClaim,
    Store,
    from_iso,
    iso,
    open_store,
)
from bot.core.store.schema import migrations
from bot.core.store.sqlite import run_on_database_thread
from bot.core.store.tables import TABLES
from tests.conftest import INTEGRITY_ERRORS, sql_execute, sql_rows

MIGRATIONS = migrations("sqlite")

NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
GROUP = ChatRef("telegram", "-100")


@pytest.fixture
async def sqlite_store(tmp_path):
    store = await SQLiteStore.open(tmp_path / "data" / "dailyq.sqlite3")
    yield store
    await store.close()


async def scalar(store: Store, sql: str, *params: object) -> object:
    [(value, *_)] = await sql_rows(store, sql, *params)
    return value


async def test_a_new_database_gets_every_migration(store: Store) -> None:
    assert await store.schema_version() == len(migrations(store.backend))
    assert await store.row_counts() == dict.fromkeys(TABLES, 0)


async def test_a_new_file_gets_every_migration_wal_and_foreign_keys(sqlite_store: SQLiteStore, tmp_path) -> None:
    store = sqlite_store
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
    with pytest.raises(INTEGRITY_ERRORS):
        await sql_execute(
            store,
            "INSERT INTO posts (chat_key, question_id, kind, created_at) VALUES ('nowhere:1', 'q', 'quiz', ?)",
            NOW,
        )


async def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    # An answer to a post that is not there: the user is written first, then the answer is
    # refused (its post does not exist), and the whole transaction goes.
    ghost = Post(999, GROUP.key, "q1", PostKind.QUIZ, "telegram:7", None, None, 0, NOW, None, None)
    with pytest.raises(INTEGRITY_ERRORS):
        await store.add_attempt(ghost, "telegram:7", "Ann", "answer", False, "2026-03-02", NOW)
    assert await store.row_counts() == dict.fromkeys(TABLES, 0)
    await store.save_chat(GROUP, True, {"time": "10:00"}, NOW, revision=0, subscribed=True)  # and the store goes on
    assert (await store.chat(GROUP.key)).subscribed


async def test_state_survives_a_reopen_and_migrations_are_not_run_twice(database: Path | str) -> None:
    store = await open_store(database)
    try:
        await store.save_chat(
            GROUP,
            True,
            {"time": "10:00", "zone": "Asia/Shanghai"},
            NOW,
            revision=0,
            subscribed=True,
            reschedule=True,
            platform_lang="zh",
        )
        post_id = (await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q1", "rag", NOW)).id
    finally:
        await store.close()
    store = await open_store(database)
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
        assert await store.schema_version() == len(migrations(store.backend))
    finally:
        await store.close()


async def test_a_database_from_a_newer_version_is_refused(tmp_path) -> None:
    path = tmp_path / "dailyq.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer dailyq"):
        await SQLiteStore.open(path)


async def test_moving_a_chat_onto_one_that_exists_merges_them(store: Store) -> None:
    new = ChatRef("telegram", "-200")
    await store.save_chat(GROUP, True, {"time": "07:00"}, NOW, revision=0, subscribed=True, reschedule=True)
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


async def test_an_answer_is_kept_once_graded_and_none_is_taken_once_the_post_is_revealed(store: Store) -> None:
    post = await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q1", "", NOW)
    day = "2026-03-02"
    assert await store.add_attempt(post, "telegram:7", "Ann", "first", False, day, NOW) == "added"
    assert await store.add_attempt(post, "telegram:7", "Ann", "second", False, day, NOW) == "replaced"
    answered = await store.attempt(post.id, "telegram:7")
    assert answered is not None
    await store.grade(answered[0], "telegram:7", "good", None, "{}", NOW, NOW, replacing=None)
    assert await store.add_attempt(post, "telegram:7", "Ann", "third", False, day, NOW) == "kept_graded"
    assert await store.add_attempt(post, "telegram:8", "Bob", "bob's", False, day, NOW) == "added"
    await store.mark_revealed(post.id, NOW)
    assert await store.add_attempt(post, "telegram:8", "Bob", "bob's again", False, day, NOW) == "kept_revealed"
    assert await store.add_attempt(post, "telegram:9", "Cat", "cat's", False, day, NOW) == "closed"
    assert await sql_rows(store, "SELECT text FROM attempts WHERE current ORDER BY id") == [("second",), ("bob's",)]


def test_instants_are_stored_as_sortable_utc_text() -> None:
    assert iso(NOW) == "2026-03-02T09:30:15+00:00"
    assert from_iso(iso(NOW)) == NOW.replace(microsecond=0)
    assert from_iso(None) is None


async def test_a_chat_change_computed_from_an_older_revision_writes_nothing(store: Store) -> None:
    assert await store.save_chat(GROUP, True, {"time": "10:00"}, NOW, revision=0)  # a new chat is at 0
    assert (await store.chat(GROUP.key)).revision == 1
    assert not await store.save_chat(GROUP, True, {"time": "11:00"}, NOW, revision=0, subscribed=True)
    assert (await store.chat(GROUP.key)).settings == {"time": "10:00"}
    assert await store.save_chat(GROUP, True, {"time": "11:00"}, NOW, revision=1, subscribed=True)
    assert await store.unsubscribe(GROUP.key)  # a change too
    assert (await store.chat(GROUP.key)).revision == 3


async def test_a_grade_over_a_card_another_grade_changed_writes_nothing(store: Store) -> None:
    first = await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q1", "", NOW)
    second = await store.add_quiz(ChatRef("telegram", "7"), False, "telegram:7", "Ann", "q1", "", NOW)
    for post in (first, second):
        await store.add_attempt(post, "telegram:7", "Ann", "answer", False, "2026-03-02", NOW)
    [(attempt, _), (other, _)] = [await store.attempt(p.id, "telegram:7") for p in (first, second)]
    assert await store.grade(attempt, "telegram:7", "good", None, "card 1", NOW, NOW, replacing=None)
    assert not await store.grade(other, "telegram:7", "hard", None, "card 2", NOW, NOW, replacing=None)
    _, review = await store.attempt(second.id, "telegram:7")
    assert review is not None and review.card == "card 1"
    assert await store.grade(other, "telegram:7", "hard", "card 1", "card 2", NOW, NOW, replacing=review)
    assert not await store.grade(other, "telegram:7", "easy", "card 1", "card 3", NOW, NOW, replacing=review)
    assert await store.attempt(second.id, "telegram:7") == (
        Attempt(other.id, second.id, "q1", "hard"),
        Review("card 2", second.id, "card 1"),
    )


async def test_a_secret_is_made_on_first_use_and_kept(database: Path | str) -> None:
    first, second = await open_store(database), await open_store(database)
    try:
        made = await first.secret("post-links")
        assert len(made) == 32 and await second.secret("post-links") == made
        assert await first.secret("another") != made
        # Two processes asking for a new one at the same moment get the same one.
        both = await asyncio.gather(first.secret("at-once"), second.secret("at-once"))
        assert both[0] == both[1]
    finally:
        await first.close()
        await second.close()
    reopened = await open_store(database)
    assert await reopened.secret("post-links") == made
    await reopened.close()


async def test_user_stats_count_answers_grades_days_and_due_reviews(store: Store) -> None:
    post = await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q1", "", NOW)
    assert await store.post(post.id) == post  # what add_quiz hands back is what was stored
    for day in ["2026-02-28", "2026-03-01", "2026-03-01", "2027-01-01"]:
        await store.add_attempt(post, "telegram:7", "Ann", "answer", False, day, NOW)
    answered = await store.attempt(post.id, "telegram:7")
    assert answered is not None and answered[1] is None  # no review card yet
    assert await store.grade(answered[0], "telegram:7", "good", None, "{}", NOW, NOW, replacing=None)
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
    daily_id = await store.claim_daily(GROUP.key, "q2", date(2026, 3, 3), 0, NOW + timedelta(days=1))
    assert daily_id is not None
    await store.mark_sent(daily_id, "m1", NOW + timedelta(days=1), NOW + timedelta(days=1, hours=8))
    daily = await store.current_post("telegram:7", GROUP.key)
    assert daily is not None and daily.id == daily_id
    assert await store.current_post("telegram:8", GROUP.key) == daily  # someone without a quiz here
    later_quiz = await store.add_quiz(GROUP, True, "telegram:7", "Ann", "q3", "", NOW + timedelta(days=2))
    assert await store.current_post("telegram:7", GROUP.key) == later_quiz


async def test_a_write_whose_caller_is_cancelled_completes_and_the_next_write_goes_on(
    tmp_path: Path,
) -> None:
    store = await SQLiteStore.open(tmp_path / "db.sqlite3")
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


async def test_lookups_see_each_committed_write_and_are_not_held_up_by_one_in_progress(
    sqlite_store: SQLiteStore,
) -> None:
    store = sqlite_store
    await store.save_chat(GROUP, True, {"time": "10:00"}, NOW, revision=0)
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


async def test_the_lookup_connection_cannot_write(sqlite_store: SQLiteStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        sqlite_store._lookup("DELETE FROM chats")


def test_aiosqlite_still_has_the_private_names_transactions_run_through() -> None:
    # run_on_database_thread uses them (a transaction is one call on aiosqlite's thread); when an
    # aiosqlite release renames them, this says which release did it.
    missing = [name for name in ("_execute", "_conn") if not hasattr(aiosqlite.Connection, name)]
    assert not missing, (
        f"aiosqlite {aiosqlite.__version__} has no Connection.{', '.join(missing)}: "
        "bot/core/store/sqlite.py run_on_database_thread needs another way onto its thread"
    )


async def test_a_function_run_on_the_database_thread_gets_the_connection_there(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    def where(db: sqlite3.Connection, tag: str) -> tuple[str, bool, str]:
        return threading.current_thread().name, isinstance(db, sqlite3.Connection), tag

    thread, is_connection, tag = await run_on_database_thread(store.db, where, "x")
    assert (thread != threading.current_thread().name, is_connection, tag) == (True, True, "x")


# --- migrations -------------------------------------------------------------------------------------

SCHEMA_1 = Path(__file__).parent / "data" / "dailyq-schema1.sqlite3"
SCHEMA_1_TABLES = ("chats", "users", "posts", "open_questions", "attempts", "reviews")


def test_migrations_are_numbered_files_each_opening_with_a_description_and_ship_in_the_wheel() -> None:
    assert [m.name[:5] for m in MIGRATIONS] == [f"{n:04d}_" for n in range(1, len(MIGRATIONS) + 1)]
    assert all(m.description and m.sql.startswith(f"-- {m.description}") for m in MIGRATIONS)
    # Both backends take the same steps, each in its own dialect.
    assert [(m.name, m.description) for m in migrations("postgresql")] == [
        (m.name, m.description) for m in MIGRATIONS
    ]
    package_data = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-data"]
    assert {"migrations/sqlite/*.sql", "migrations/postgresql/*.sql"} <= set(package_data["bot.core.store"])


def every_row(path: Path) -> dict[str, list[tuple]]:
    """Every row, in the columns schema 1 had (later migrations add columns with defaults)."""
    schema_1_file = f"file:{SCHEMA_1}?immutable=1"  # read as it is: no journal files beside it
    with closing(sqlite3.connect(schema_1_file, uri=True)) as schema_1, closing(sqlite3.connect(path)) as db:
        rows = {}
        for table in SCHEMA_1_TABLES:
            columns = ", ".join(column[1] for column in schema_1.execute(f"PRAGMA table_info({table})"))
            rows[table] = sorted(db.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)
        return rows


async def test_a_database_written_by_schema_1_upgrades_in_place_with_every_row_kept(tmp_path: Path) -> None:
    # Written by the store as of commit 871ec4a (one migration): three chats, daily posts in every
    # state that release wrote (reveal_status included), quizzes, superseded answers, two reviews.
    path = tmp_path / "dailyq.sqlite3"
    shutil.copy(SCHEMA_1, path)
    before = every_row(path)
    assert sum(map(len, before.values())) == 24
    store = await open_store(path)
    try:
        assert await store.schema_version() == len(MIGRATIONS) > 1
        assert await scalar(store, "PRAGMA foreign_keys") == 1
        assert await store.db.execute_fetchall("PRAGMA foreign_key_check") == []
        chat = await store.chat("telegram:-1001")
        assert chat is not None and chat.subscribed and chat.settings["zone"] == "Asia/Shanghai"
        answered = await store.attempt(1, "telegram:7")
        assert answered is not None and answered[1] is not None and answered[1].post_id == 1
        assert await store.answerers(1) == ["Ann", "Bob"]
        assert [c.key for c in await store.subscribed_chats("", 10)] == ["discord:900/901", "telegram:-1001"]
        # Foreign keys still cascade from the rebuilt posts table.
        await store.forget_user("telegram:7")
        await store.write(lambda db: db.execute("DELETE FROM posts WHERE id = 1"))
        assert await scalar(store, "SELECT COUNT(*) FROM attempts WHERE post_id = 1") == 0
    finally:
        await store.close()
    shutil.copy(SCHEMA_1, path)  # again, and nothing but the upgrade
    await (await open_store(path)).close()
    assert every_row(path) == before


async def test_the_schema_refuses_a_post_or_reveal_state_it_does_not_know(store: Store) -> None:
    await store.save_chat(GROUP, True, {}, NOW, revision=0)
    post_id = await store.claim_daily(GROUP.key, "q1", date(2026, 3, 2), 0, NOW)
    for status in RevealStatus:
        await store.end_reveal(post_id, status)
    with pytest.raises(INTEGRITY_ERRORS, match="(?i)check"):
        await sql_execute(store, "UPDATE posts SET reveal_status = 'lost'")
    with pytest.raises(INTEGRITY_ERRORS, match="(?i)check"):
        await sql_execute(store, "UPDATE posts SET status = 'lost'")


# --- the scheduler's bookkeeping ----------------------------------------------------------------------

DAY = date(2026, 3, 2)


async def test_a_day_is_claimed_once_and_a_claim_becomes_sent_with_its_message_and_reveal_time(
    store: Store,
) -> None:
    await store.save_chat(GROUP, True, {}, NOW, revision=0, subscribed=True)
    post_id = await store.claim_daily(GROUP.key, "q1", DAY, 3, NOW)
    assert post_id is not None
    assert await store.claim_daily(GROUP.key, "q2", DAY, 3, NOW) is None  # the day is taken
    assert await store.current_post("telegram:7", GROUP.key) is None  # pending: not shown yet
    assert await store.daily_cycle(GROUP.key) == (3, {"q1"}, "q1")

    await store.mark_sent(post_id, "555", NOW + timedelta(seconds=2), NOW + timedelta(hours=4))
    post = await store.post(post_id)
    assert post is not None
    assert (post.kind, post.local_date, post.message_id, post.reveal_due_at) == (
        PostKind.DAILY,
        "2026-03-02",
        "555",
        (NOW + timedelta(hours=4)).replace(microsecond=0),
    )
    assert await store.current_post("telegram:7", GROUP.key) == post
    assert await scalar(store, "SELECT status FROM posts") == PostStatus.SENT
    await store.mark_failed(post_id)  # only a pending claim can fail
    assert await scalar(store, "SELECT status FROM posts") == PostStatus.SENT


async def test_a_stale_claim_is_listed_taken_over_once_or_failed(store: Store) -> None:
    await store.save_chat(GROUP, True, {"time": "10:00"}, NOW, revision=0, subscribed=True)
    old = await store.claim_daily(GROUP.key, "q1", DAY, 0, NOW)
    young = await store.claim_daily(GROUP.key, "q2", DAY + timedelta(days=1), 0, NOW + timedelta(minutes=10))
    [claim] = await store.stale_claims(NOW + timedelta(minutes=5))
    assert (claim.post_id, claim.chat_key, claim.local_date, claim.claimed_at) == (
        old,
        GROUP.key,
        DAY,
        NOW.replace(microsecond=0),
    )
    assert json.loads(claim.settings_json) == {"time": "10:00"}
    later = NOW + timedelta(minutes=6)
    assert await store.take_over_claim(old, claim.claimed_at, later)
    assert not await store.take_over_claim(old, claim.claimed_at, later)  # another sweep was first
    assert await store.stale_claims(NOW + timedelta(minutes=5)) == []  # claimed anew
    await store.mark_failed(young)
    assert await store.stale_claims(NOW + timedelta(hours=1)) == [
        StaleClaim(old, GROUP.key, '{"time": "10:00"}', DAY, later.replace(microsecond=0))
    ]


async def test_a_due_reveal_is_listed_claimed_once_and_ended(store: Store) -> None:
    await store.save_chat(GROUP, True, {}, NOW, revision=0, subscribed=True)
    first = await store.claim_daily(GROUP.key, "q1", DAY, 0, NOW)
    second = await store.claim_daily(GROUP.key, "q2", DAY + timedelta(days=1), 0, NOW)
    unsent = await store.claim_daily(GROUP.key, "q3", DAY + timedelta(days=2), 0, NOW)
    await store.mark_sent(second, "2", NOW, NOW + timedelta(hours=2))
    await store.mark_sent(first, "1", NOW, NOW + timedelta(hours=1))
    assert unsent is not None
    at = NOW + timedelta(hours=3)
    lease = at - timedelta(minutes=5)
    due = await store.due_reveals(at, lease)
    assert [(r.post_id, r.due_at, r.claimed_at) for r in due] == [
        (first, (NOW + timedelta(hours=1)).replace(microsecond=0), None),
        (second, (NOW + timedelta(hours=2)).replace(microsecond=0), None),
    ]
    assert await store.due_reveals(NOW + timedelta(minutes=30), lease) == []  # not due yet

    assert await store.claim_reveal(first, None, at)
    assert not await store.claim_reveal(first, None, at)  # claimed already
    assert [r.post_id for r in await store.due_reveals(at, lease)] == [second]  # a fresh claim is in flight
    await store.end_reveal(first, RevealStatus.SENT)
    await store.end_reveal(second, RevealStatus.SKIPPED)
    assert await store.due_reveals(at + timedelta(days=1), at + timedelta(days=1)) == []
    await store.mark_revealed(second, at)  # a /reveal by hand does not undo the scheduler's state
    assert await scalar(store, "SELECT reveal_status FROM posts WHERE id = ?", second) == "skipped"


async def test_a_claim_left_by_a_sweep_that_died_is_taken_over_with_its_start(store: Store) -> None:
    await store.save_chat(GROUP, True, {}, NOW, revision=0, subscribed=True)
    post_id = await store.claim_daily(GROUP.key, "q1", DAY, 0, NOW)
    await store.mark_sent(post_id, "1", NOW, NOW)
    assert await store.claim_reveal(post_id, None, NOW)
    [stale] = await store.due_reveals(NOW + timedelta(minutes=10), NOW + timedelta(minutes=5))
    assert stale.claimed_at == NOW.replace(microsecond=0)
    assert not await store.claim_reveal(post_id, NOW - timedelta(seconds=1), NOW + timedelta(minutes=10))
    assert await store.claim_reveal(post_id, stale.claimed_at, NOW + timedelta(minutes=10))


async def test_subscribed_chats_come_a_page_at_a_time_with_their_last_daily_date(store: Store) -> None:
    keys = [ChatRef("telegram", str(n)) for n in range(5)]
    for chat in keys:
        await store.save_chat(chat, False, {"time": "07:00"}, NOW, revision=0, subscribed=True)
    await store.save_chat(keys[1], False, {}, NOW + timedelta(hours=1), revision=1, reschedule=True)
    await store.unsubscribe(keys[4].key)
    await store.claim_daily(keys[0].key, "q1", DAY, 0, NOW)
    await store.claim_daily(keys[0].key, "q2", DAY - timedelta(days=3), 0, NOW)
    first = await store.subscribed_chats("", 2)
    rest = await store.subscribed_chats(first[-1].key, 2)
    assert [c.key for c in first + rest] == [k.key for k in keys[:4]]
    assert await store.subscribed_chats(rest[-1].key, 2) == []
    assert first[0].last_daily == DAY and first[1].last_daily is None
    assert first[0].schedule_from == NOW.replace(microsecond=0)  # never rescheduled: since it was created
    assert first[1].schedule_from == (NOW + timedelta(hours=1)).replace(microsecond=0)
    assert json.loads(first[0].settings_json) == {"time": "07:00"}


async def test_a_write_held_up_past_busy_timeout_says_the_database_is_busy_and_ping_answers(
    sqlite_store: SQLiteStore,
) -> None:
    store = sqlite_store
    assert await store.ping()
    await store.db.execute("PRAGMA busy_timeout = 20")
    with closing(sqlite3.connect(store.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseBusy):
            await store.save_chat(GROUP, True, {}, NOW, revision=0)
        other.execute("COMMIT")
    await store.save_chat(GROUP, True, {}, NOW, revision=0)
    assert await store.ping()


# --- feedback claims, at once ---------------------------------------------------------------------


async def test_two_feedback_claims_at_once_claim_once_and_keep_to_the_limit(store: Store) -> None:
    # Two presses at once (in two processes, on a shared database) must not both ask the model.
    await store.save_chat(GROUP, True, {}, NOW, revision=0, subscribed=True)
    first = await store.claim_daily(GROUP.key, "q1", DAY, 0, NOW)
    second = await store.claim_daily(GROUP.key, "q2", DAY + timedelta(days=1), 0, NOW)
    third = await store.claim_daily(GROUP.key, "q3", DAY + timedelta(days=2), 0, NOW)

    def claim(post_id: int, user_limit: int = 3) -> FeedbackClaim:
        stale_before = NOW - timedelta(minutes=5)
        return FeedbackClaim(post_id, "telegram:7", GROUP.key, "q", "d", "2026-03-02", NOW, stale_before, user_limit, 10)

    outcomes = await asyncio.gather(store.claim_feedback(claim(first)), store.claim_feedback(claim(first)))
    assert sorted(outcomes) == ["claimed", "pending"]
    # One request left today for the member, two posts asking at once: one gets it.
    outcomes = await asyncio.gather(store.claim_feedback(claim(second, 2)), store.claim_feedback(claim(third, 2)))
    assert sorted(outcomes) == ["claimed", "user_limit"]
