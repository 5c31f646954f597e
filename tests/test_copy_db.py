"""`dailyq copy-db FROM TO`: SQLite → PostgreSQL → SQLite keeps every row, and /stats and /top
say the same; refusals (a bot on either side, a target holding data, nothing to copy) write nothing."""

from __future__ import annotations

import json
import random
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from bot.config import Settings
from bot.core.bank import Bank
from bot.core.commands import Core
from bot.core.model import ChatRef, Incoming, Question
from bot.core.store import FeedbackClaim, Store, open_store
from bot.core.store.tables import TABLES, Kind, RowCountMismatch
from bot.ops.backup import DatabaseInUse, hold_instance_lock
from bot.ops.copydb import CopyError, copy_db, run_copy_db
from tests.clock import FakeClock

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
GROUP = ChatRef("telegram", "-100")
BANK = Bank(
    [
        Question(id=qid, title=f"Question {qid}", answer="An answer.", summary="A summary.", tags=(f"tag-{qid}",))
        for qid in ("q0", "q1", "q2", "q-daily", "q-next")
    ]
)


async def fill(store: Store) -> None:
    """A little of everything: a subscribed group with settings, a daily post in each state, quizzes,
    answers (one superseded), grades with review cards, open questions and a user who left."""
    await store.save_chat(GROUP, True, {"time": "08:30", "zone": "Asia/Shanghai", "days": "mon-fri"}, NOW, revision=0, subscribed=True)
    sent = await store.claim_daily(GROUP.key, "q-daily", NOW.date(), 0, NOW)
    assert sent is not None
    await store.mark_sent(sent, "m-1", NOW, NOW + timedelta(hours=8))
    await store.claim_daily(GROUP.key, "q-next", NOW.date() + timedelta(days=1), 0, NOW + timedelta(days=1))
    daily = await store.post(sent)
    assert daily is not None
    for n, name in enumerate(["Ann", "Bob", "李雷"]):
        user = f"telegram:{n}"
        await store.add_attempt(daily, user, name, f"answer {n} ||hidden||", True, NOW.date().isoformat(), NOW)
        quiz = await store.add_quiz(ChatRef("telegram", str(n)), False, user, name, f"q{n}", "llm", NOW)
        await store.add_attempt(quiz, user, name, "first", False, NOW.date().isoformat(), NOW)
        await store.add_attempt(quiz, user, name, "second, <b>better</b>", False, NOW.date().isoformat(), NOW)
        attempt, _ = await store.attempt(quiz.id, user)
        await store.grade(attempt, user, "good", None, json.dumps({"card": n}), NOW + timedelta(days=n), NOW, replacing=None)
    await store.open_post(ChatRef("telegram", "0"), False, "telegram:0", "Ann", sent, NOW)
    for user_key, review in (("telegram:0", '{"score": 4}'), ("telegram:1", None)):
        claim = FeedbackClaim(
            sent, user_key, GROUP.key, "q-daily", f"digest-{user_key}", "2026-03-02", NOW, NOW, 3, 5
        )
        assert await store.claim_feedback(claim) == "claimed"
        if review:
            await store.save_feedback(claim, review)
    await store.forget_user("telegram:2")
    await store.mark_revealed(sent, NOW + timedelta(hours=8))


async def everything(store: Store) -> dict[str, list[tuple]]:
    """Every row, JSON parsed (PostgreSQL keeps JSON as jsonb, which may order keys otherwise)."""
    rows: dict[str, list[tuple]] = {table: [] for table in TABLES}
    async for table, batch in store.export_rows(batch_size=2):
        kinds = list(TABLES[table].values())
        rows[table] += [
            tuple(json.loads(v) if kind is Kind.JSON else v for kind, v in zip(kinds, row, strict=True)) for row in batch
        ]
    return rows


async def test_import_rolls_back_when_a_count_does_not_match(store: Store, tmp_path: Path) -> None:
    source = await open_store(tmp_path / "source.sqlite3")
    try:
        await fill(source)
        expected = await source.row_counts()
        wrong = {**expected, "attempts": expected["attempts"] + 1}
        with pytest.raises(RowCountMismatch, match="attempts: 6 rows, expected 7"):
            await store.import_rows(source.export_rows(), wrong, replace=False)
        assert set((await store.row_counts()).values()) == {0}
        await store.import_rows(source.export_rows(), expected, replace=False)
        assert await everything(store) == await everything(source)
    finally:
        await source.close()


async def test_replace_deletes_what_the_target_held_in_the_same_transaction(store: Store, tmp_path: Path) -> None:
    await store.save_chat(ChatRef("discord", "7"), True, {}, NOW, revision=0, subscribed=True)
    source = await open_store(tmp_path / "source.sqlite3")
    try:
        await fill(source)
        await store.import_rows(source.export_rows(), await source.row_counts(), replace=True)
        assert await store.chat("discord:7") is None
        assert await everything(store) == await everything(source)
        # Ids go on after the copied ones.
        quiz = await store.add_quiz(GROUP, True, "telegram:9", "Zoe", "q9", "", NOW)
        assert quiz.id == max(row[0] for row in (await everything(store))["posts"])
    finally:
        await source.close()


async def schema_columns(database: Path | str) -> dict[str, list[str]]:
    """Every table of the database (but the migrations' own bookkeeping) and its columns, in order."""
    if isinstance(database, Path):
        with closing(sqlite3.connect(database)) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    connection = await asyncpg.connect(database)
    try:
        rows = await connection.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'"
            " ORDER BY table_name, ordinal_position"
        )
    finally:
        await connection.close()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


async def test_the_copy_list_names_every_table_and_column_of_both_schemas(store: Store, database: Path | str) -> None:
    # A migration that adds a table or a column must add it to tables.py too, or copy-db would drop it.
    assert await schema_columns(database) == {table: list(columns) for table, columns in TABLES.items()}


async def test_sqlite_to_postgresql_to_sqlite_keeps_every_row(
    tmp_path: Path, postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, last = tmp_path / "first.sqlite3", tmp_path / "last.sqlite3"
    store = await open_store(first)
    await fill(store)
    rows, counts = await everything(store), await store.row_counts()
    await store.close()

    assert await run_copy_db(first, postgres_database, replace=False) == 0
    printed = capsys.readouterr().out
    assert f"copied {first} to postgresql://" in printed and "attempts" in printed
    assert await run_copy_db(postgres_database, last, replace=False) == 0

    said = {}
    for database in (first, postgres_database, last):
        copy = await open_store(database)
        try:
            assert await copy.row_counts() == counts
            assert await everything(copy) == rows
            said[database] = await stats_and_top(copy)
        finally:
            await copy.close()
    assert said[first] == said[postgres_database] == said[last]
    assert "Answered: 2 · graded: 1" in said[first][0] and "Ann" in said[first][2] and "Bob" in said[first][2]


async def stats_and_top(store: Store) -> tuple[str, ...]:
    """What /stats says to two users and /top in the group, a week after the history."""
    core = Core(store, BANK, Settings(), FakeClock(NOW + timedelta(days=7)), random.Random(1))

    async def say(chat: ChatRef, user: str, name: str, text: str) -> str:
        replies = await core.handle(Incoming(chat.platform, chat, user, name, text, is_group=chat == GROUP))
        return "\n".join(reply.text for reply in replies)

    return (
        await say(ChatRef("telegram", "0"), "0", "Ann", "/stats"),
        await say(ChatRef("telegram", "1"), "1", "Bob", "/stats"),
        await say(GROUP, "1", "Bob", "/top"),
    )


async def test_refused_while_a_bot_holds_the_source_or_the_target(tmp_path: Path, postgres_database: str) -> None:
    source, target = tmp_path / "bot.sqlite3", tmp_path / "copy.sqlite3"
    store = await open_store(source)
    await fill(store)
    await store.close()
    with hold_instance_lock(source), pytest.raises(DatabaseInUse):
        await copy_db(source, target)
    with hold_instance_lock(target), pytest.raises(DatabaseInUse):
        await copy_db(source, target)
    bot = await open_store(postgres_database)  # a bot's connections on the PostgreSQL side
    try:
        with pytest.raises(CopyError, match="a dailyq is running on postgresql://"):
            await copy_db(source, postgres_database)
    finally:
        await bot.close()
    assert set((await _counts(postgres_database)).values()) == {0}


async def test_refused_into_a_target_holding_data_unless_replace(tmp_path: Path, postgres_database: str) -> None:
    source = tmp_path / "bot.sqlite3"
    store = await open_store(source)
    await fill(store)
    await store.close()
    target = await open_store(postgres_database, purpose="test")
    await target.save_chat(ChatRef("discord", "7"), True, {}, NOW, revision=0, subscribed=True)
    await target.close()
    with pytest.raises(CopyError, match=r"already holds data \(1 chats\); add --replace"):
        await copy_db(source, postgres_database)
    assert await _counts(postgres_database) == {**dict.fromkeys(TABLES, 0), "chats": 1}
    await copy_db(source, postgres_database, replace=True)
    store = await open_store(source)
    expected = await store.row_counts()
    await store.close()
    assert await _counts(postgres_database) == expected


async def test_nothing_to_copy_from_and_no_copy_onto_itself(tmp_path: Path, capsys) -> None:
    assert await run_copy_db(tmp_path / "missing.sqlite3", tmp_path / "x.sqlite3", replace=False) == 1
    assert "no database file at" in capsys.readouterr().err
    assert not (tmp_path / "x.sqlite3").exists()
    path = tmp_path / "same.sqlite3"
    await (await open_store(path)).close()
    with pytest.raises(CopyError, match="the same database"):
        await copy_db(path, tmp_path / "." / "same.sqlite3")


async def _counts(database: Path | str) -> dict[str, int]:
    store = await open_store(database, purpose="test")
    try:
        return await store.row_counts()
    finally:
        await store.close()
