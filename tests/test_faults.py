"""Faults during the daily fan-out and around the database: nothing lost, nothing sent twice.

The real Scheduler, Core and TelegramAdapter (python-telegram-bot with its production rate
limiter) run against the fake Bot API on 127.0.0.1 and a real SQLite file; the schedule's time
and the scheduler's backoff run on a FakeClock.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.telegram import RequestTimeouts, TelegramAdapter
from bot.config import Settings
from bot.core.bank import Bank
from bot.core.commands import Core
from bot.core.model import ChatRef, Incoming, Question, Reply
from bot.core.scheduler import Scheduler
from bot.core.store import SQLiteStore, Store
from bot.ops.backup import BackupError, backup
from tests.clock import FakeClock
from tests.fakes.telegram_api import (
    BAD_GATEWAY,
    HANG,
    MALFORMED_JSON,
    Call,
    FakeTelegram,
    Fault,
    retry_after,
)

BANK = Bank(
    [
        Question(f"q{n}", f"Question number {n}?", f"Answer {n}.", summary=f"Summary {n}.", tags=("llm",))
        for n in range(40)
    ]
)
MONDAY_8AM = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NINE_AM = MONDAY_8AM + timedelta(hours=1, seconds=30)
# Short enough that a hung request fails fast, long enough that a loaded machine answers in time.
FAST = RequestTimeouts(connect=2.0, read=0.5, write=2.0, media_write=2.0, pool=2.0)
GROUPS = [-4000 - n for n in range(12)]
PRIVATE = [4000 + n for n in range(12)]
INTERNAL_ERROR = Fault.error(500, "Internal Server Error")


async def _yes() -> bool:
    return True


def incoming(chat_id: int, text: str, user: int = 77) -> Incoming:
    """A command from an admin (in a group) or the chat's own user (in private)."""
    group = chat_id < 0
    return Incoming(
        "telegram", ChatRef("telegram", str(chat_id)), str(user), "Ada", text, is_group=group, is_admin=_yes
    )


@dataclass
class World:
    tg: FakeTelegram
    store: Store
    core: Core
    clock: FakeClock
    scheduler: Scheduler
    slept: list[float] = field(default_factory=list)
    on_backoff: list[Callable[[], None]] = field(default_factory=list)  # run as the scheduler backs off

    async def rows(self, sql: str, *params: object) -> list[tuple]:
        return [tuple(row) for row in await self.store.db.execute_fetchall(sql, params)]

    async def subscribe(self, chat_ids: list[int]) -> None:
        for chat_id in chat_ids:
            [reply] = await self.core.handle(incoming(chat_id, "/subscribe 09:00 UTC"))
            assert reply.text.startswith("Subscribed"), reply.text

    def delivered(self) -> Counter[int | None]:
        return Counter(c.chat_id for c in self.tg.calls_to("sendMessage") if c.result is not None)


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The bot running (polling the fake) with a scheduler whose backoff advances the fake clock."""
    async with FakeTelegram() as tg:
        store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
        clock = FakeClock(MONDAY_8AM)
        settings = Settings(db=store.path, timezone="UTC", post_time="09:00", lang="en")
        core = Core(store, BANK, settings, clock, random.Random(3), fuzz=False)
        adapter = TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST)
        slept: list[float] = []
        on_backoff: list[Callable[[], None]] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            for hook in on_backoff:
                hook()
            clock.advance(timedelta(seconds=seconds))

        scheduler = Scheduler(store, core, {"telegram": adapter}, clock, sleep=sleep)
        running = asyncio.create_task(adapter.run(core))
        try:
            await tg.wait_until(lambda: bool(tg.calls_to("getUpdates")))
            yield World(tg, store, core, clock, scheduler, slept, on_backoff)
        finally:
            running.cancel()
            with suppress(asyncio.CancelledError):
                await running
            await store.close()


# ---- the platform misbehaves during a fan-out ---------------------------------------------------


async def test_every_chat_gets_exactly_one_post_through_bursts_of_failures(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        chats = GROUPS + PRIVATE
        await w.subscribe(chats)
        bursts = [
            (BAD_GATEWAY, 4),
            (INTERNAL_ERROR, 3),
            (HANG, 2),
            (MALFORMED_JSON, 3),
            (retry_after(0.01), 5),  # past python-telegram-bot's 3 retries: the scheduler's turn
            (INTERNAL_ERROR, 2),
        ]
        for fault, times in bursts:
            w.tg.fail("sendMessage", fault, times=times)
        w.clock.set(NINE_AM)
        await w.scheduler.sweep()
        # A chat that met failures on all its attempts keeps its claim; the sweep after the
        # claim's lease sends it. Sweeps in between must not.
        for _ in range(3):
            w.clock.advance(timedelta(minutes=3))
            await w.scheduler.sweep()

        failed = [c for c in w.tg.calls_to("sendMessage") if c.fault is not None]
        assert len(failed) == sum(times for _, times in bursts), "every fault was met"
        assert w.slept, "the scheduler backed off and retried"
        assert w.delivered() == Counter(chats), "exactly one post per chat"
        posts = await w.rows("SELECT chat_key, status, message_id FROM posts WHERE kind = 'daily'")
        accepted = {
            (f"telegram:{c.chat_id}", "sent", str(c.result["message_id"]))
            for c in w.tg.calls_to("sendMessage")
            if c.result is not None
        }
        assert set(posts) == accepted and len(posts) == len(chats)


async def test_a_chat_whose_sends_keep_failing_is_posted_by_a_later_sweep(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.subscribe(GROUPS[:3])
        unlucky = GROUPS[0]
        w.tg.fail("sendMessage", BAD_GATEWAY, chat_id=unlucky, times=w.scheduler.max_attempts)
        w.clock.set(NINE_AM)
        await w.scheduler.sweep()
        assert w.delivered() == Counter(GROUPS[1:3])
        assert await w.rows("SELECT status FROM posts WHERE chat_key = ?", f"telegram:{unlucky}") == [
            ("pending",)
        ]

        w.clock.advance(timedelta(minutes=6))  # past the claim's lease: a crashed or given-up claim
        await w.scheduler.sweep()
        assert w.delivered() == Counter(GROUPS[:3])
        assert await w.rows("SELECT DISTINCT status FROM posts") == [("sent",)]


# ---- the database is busy -----------------------------------------------------------------------


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection (another process, say a backup or a second bot) holding the write lock."""
    with closing(sqlite3.connect(path, isolation_level=None, check_same_thread=False)) as other:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO users (key, name, created_at) VALUES ('telegram:999', 'Other', '')")
        try:
            yield other
        finally:
            if other.in_transaction:
                other.execute("COMMIT")


async def test_a_command_waits_for_another_writer_and_nothing_is_lost(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        began = threading.Event()

        def traced(statement: str) -> None:  # runs on the database thread, as each statement starts
            if statement.startswith("BEGIN IMMEDIATE"):
                began.set()

        await w.store.db.set_trace_callback(traced)
        with write_lock(w.store.path) as other:

            def release_soon() -> None:
                # The bot's write has started and now waits inside SQLite's busy handler.
                began.wait(10)
                time.sleep(0.05)
                other.execute("COMMIT")

            releaser = threading.Thread(target=release_soon)
            releaser.start()
            try:
                [subscribed] = await w.core.handle(incoming(GROUPS[0], "/subscribe 09:00 UTC"))
            finally:
                releaser.join()
        await w.store.db.set_trace_callback(None)

        assert subscribed.text.startswith("Subscribed")
        assert await w.rows("SELECT key, subscribed FROM chats") == [(f"telegram:{GROUPS[0]}", 1)]
        assert await w.rows("SELECT name FROM users WHERE key = 'telegram:999'") == [("Other",)]


async def test_a_post_is_recorded_as_sent_once_a_lock_held_past_busy_timeout_is_gone(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.subscribe(GROUPS[:1])
        # The lock outlasts busy_timeout (5 s in production; 20 ms here, so nobody waits for it).
        await w.store.db.execute("PRAGMA busy_timeout = 20")
        with closing(sqlite3.connect(w.store.path, isolation_level=None, check_same_thread=False)) as other:

            def lock_once_telegram_has_the_post(call: Call) -> None:
                # The platform has the message; the scheduler's next write records it.
                if call.method == "sendMessage" and call.result is not None and not other.in_transaction:
                    other.execute("BEGIN IMMEDIATE")

            w.tg.watch(lock_once_telegram_has_the_post)

            def release() -> None:
                if other.in_transaction:
                    other.execute("COMMIT")

            w.on_backoff.append(release)
            w.clock.set(NINE_AM)
            await w.scheduler.sweep()

        [post] = [c for c in w.tg.calls_to("sendMessage") if c.result is not None]
        assert w.slept, "the locked write was retried after a backoff"
        assert await w.rows("SELECT status, message_id FROM posts") == [
            ("sent", str(post.result["message_id"]))
        ]
        w.clock.advance(timedelta(minutes=10))
        await w.scheduler.sweep()
        assert w.delivered() == Counter(GROUPS[:1]), "recorded, so never sent again"


# ---- the disk fills up during a backup ------------------------------------------------------------


def dump(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return "\n".join(db.iterdump())


async def test_a_backup_that_fills_the_disk_fails_clearly_and_the_running_bot_goes_on(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.subscribe(GROUPS + PRIVATE)
        for chat_id in PRIVATE:
            await w.core.handle(incoming(chat_id, "/quiz", user=chat_id))
        live = w.store.path
        before = dump(live)
        [(pages,)] = await w.rows("PRAGMA page_count")

        def half_the_space_needed(path: str) -> sqlite3.Connection:
            target = sqlite3.connect(path)
            target.execute(f"PRAGMA max_page_count = {pages // 2}")
            return target

        backups = tmp_path / "backups"
        backups.mkdir()
        with pytest.raises(BackupError, match=r"not enough free space in .*backups.*nothing was written"):
            await backup(live, backups / "nightly.sqlite3", connect_target=half_the_space_needed)

        assert dump(live) == before, "the live database is untouched"
        assert list(backups.iterdir()) == [], "no partial copy left behind"
        [question] = await w.core.handle(incoming(PRIVATE[0], "/quiz", user=PRIVATE[0]))
        assert isinstance(question, Reply) and question.post_id is not None, "the bot still writes"
        with closing(sqlite3.connect(await backup(live, backups / "nightly.sqlite3"))) as copy:
            [(copied,)] = copy.execute("SELECT COUNT(*) FROM posts WHERE id = ?", (question.post_id,))
        assert copied == 1, "a backup with room to spare has everything"
