"""Changes made at the same moment are all kept: two processes on one database (settings: SQLite and
PostgreSQL; grades: a SQLite file, where a third connection interleaves them exactly)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core import srs
from bot.core.bank import Bank
from bot.core.messages import t
from bot.core.model import Question
from bot.core.store import SQLiteStore, Store, open_store
from tests.clock import FakeClock
from tests.conftest import sql_rows
from tests.test_quiz import MONDAY_8AM, make_core
from tests.transcript import Transcript, text


class SlowAdmin(Transcript):
    """An admin whose platform answers "is this an admin?" only when the test says so."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.asked = asyncio.Event()
        self.platform_answers = asyncio.Event()

    async def _is_admin(self) -> bool:
        self.asked.set()
        await self.platform_answers.wait()
        return True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_8AM)


@pytest.fixture
async def two_processes(database: Path | str) -> AsyncIterator[tuple[Store, Store]]:
    first = await open_store(database)
    second = await open_store(database)
    yield first, second
    await second.close()
    await first.close()


@pytest.fixture
async def two_sqlite_processes(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteStore]]:
    path = tmp_path / "dailyq.sqlite3"
    first = await SQLiteStore.open(path)
    second = await SQLiteStore.open(path)
    yield first, second
    await second.close()
    await first.close()


async def test_two_admins_changing_settings_at_once_both_changes_are_kept(
    two_processes: tuple[Store, Store], clock: FakeClock
) -> None:
    first, second = two_processes
    ada = SlowAdmin(make_core(first, clock), user="ada", group=True, chat="group")
    bob = SlowAdmin(make_core(second, clock), user="bob", group=True, chat="group")
    ada.platform_answers.set()
    await ada.say("/subscribe 09:00 UTC")
    ada.platform_answers.clear()

    changes = [
        asyncio.create_task(ada.say("/settings time 18:00")),
        asyncio.create_task(bob.say("/settings reveal 2h")),
    ]
    await asyncio.wait_for(asyncio.gather(ada.asked.wait(), bob.asked.wait()), timeout=10)
    ada.platform_answers.set()  # both getChatMember round trips end together
    bob.platform_answers.set()
    saved = [text(replies).splitlines()[0] for replies in await asyncio.gather(*changes)]

    assert saved == [
        t("en", "setting_saved", key="time", value="18:00"),
        t("en", "setting_saved", key="reveal", value="2h"),
    ]
    shown = text(await ada.say("/settings"))
    assert "time: 18:00" in shown and "reveal: 2h" in shown


async def test_grades_of_two_posts_of_one_question_at_once_are_both_reviews(
    two_sqlite_processes: tuple[SQLiteStore, SQLiteStore], clock: FakeClock, tmp_path: Path
) -> None:
    first, second = two_sqlite_processes
    bank = Bank([Question(id="only", title="The only question", answer="An answer.")])
    in_group = Transcript(make_core(first, clock, bank), user="ann", chat="group", group=True)
    in_private = Transcript(make_core(second, clock, bank), user="ann", chat="ann-private")
    for chat, answer in ((in_group, "||one||"), (in_private, "two")):
        await chat.say("/quiz")
        await chat.say(f"/answer {answer}")

    # A third connection holds the write lock until both processes are inside their grade's write,
    # each having read the card as it was before either grade.
    blocker = sqlite3.connect(tmp_path / "dailyq.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    writing = [asyncio.Event(), asyncio.Event()]
    for store, started in zip((first, second), writing, strict=True):

        def on_statement(sql: str, started: asyncio.Event = started) -> None:  # on the database thread
            if sql == "BEGIN IMMEDIATE":
                loop.call_soon_threadsafe(started.set)

        await store.db.set_trace_callback(on_statement)
    grades = [
        asyncio.create_task(in_group.say("/grade good")),
        asyncio.create_task(in_private.say("/grade hard")),
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in writing)), timeout=10)
    blocker.execute("ROLLBACK")
    blocker.close()
    replies = await asyncio.gather(*grades)

    assert all(text(reply).startswith("Graded") for reply in replies)
    scheduler = srs.make_scheduler(fuzz=False)
    good_then_hard, _ = srs.review(
        srs.review(None, "good", clock.now(), scheduler)[0], "hard", clock.now(), scheduler
    )
    hard_then_good, _ = srs.review(
        srs.review(None, "hard", clock.now(), scheduler)[0], "good", clock.now(), scheduler
    )
    [(card,)] = await sql_rows(first, "SELECT card FROM reviews")
    assert card in (good_then_hard, hard_then_good)  # both reviews applied, one after the other
    assert sorted(await sql_rows(first, "SELECT grade FROM attempts")) == [("good",), ("hard",)]
