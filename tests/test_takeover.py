"""The scheduler under a change of leader: a new leader finishes what the dead one left pending
without waiting out the claims' lease, and a deposed leader claims nothing more.

The real Scheduler and Core on a SQLite file, a recording adapter, a fake clock (as in
tests/test_scheduler.py). Processes are Process objects on the same file.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.core.model import ChatRef
from bot.core.ports import TransientError
from bot.core.scheduler import CLAIM_LEASE, TAKEOVER_WAIT
from bot.core.timing import ChatSettings
from tests.clock import FakeClock
from tests.test_scheduler import Process, RecordingAdapter, subscribe_many, utc

NINE = utc(2025, 6, 2, 9)
SECOND = timedelta(seconds=1)
EVERY_DAY_AT_NINE = ChatSettings(time="09:00", zone="UTC")


async def test_a_new_leader_sends_what_the_dead_one_claimed_soon_not_after_the_lease(tmp_path: Path) -> None:
    clock = FakeClock(NINE - timedelta(days=1))
    adapter = RecordingAdapter(clock)
    chats = [ChatRef("tg", str(n)) for n in range(3)]
    db = tmp_path / "dailyq.sqlite3"
    async with Process(db, clock, adapter) as dead:
        await subscribe_many(dead, chats, EVERY_DAY_AT_NINE)
        clock.set(NINE + 20 * SECOND)
        # The old leader dies with its first claim made and its message not yet out.
        await dead.store.claim_daily(chats[0].key, "q0", NINE.date(), 0, clock.now())

    clock.set(NINE + 30 * SECOND)
    async with Process(db, clock, adapter) as successor:
        scheduler = successor.scheduler
        await scheduler.lead()
        await scheduler.shutdown()  # no sweep in the background: the test sweeps by hand
        await scheduler.sweep()
        assert [chat for chat, _, _ in adapter.questions()] == chats[1:], "the claim may still be in flight"

        clock.advance(TAKEOVER_WAIT - SECOND)
        await scheduler.sweep()
        assert len(adapter.questions()) == 2

        clock.advance(2 * SECOND)  # well inside the claim's lease
        assert clock.now() < NINE + 20 * SECOND + CLAIM_LEASE
        await scheduler.sweep()
        assert [chat for chat, _, _ in adapter.questions()] == [*chats[1:], chats[0]]
        assert {status for _, _, status in await successor.daily_posts()} == {"sent"}

        clock.advance(TAKEOVER_WAIT)
        await scheduler.sweep()
        assert len(adapter.questions()) == 3, "each chat once"


async def test_a_deposed_leader_claims_nothing_more_and_lets_its_sends_in_flight_finish(
    tmp_path: Path,
) -> None:
    clock = FakeClock(NINE - timedelta(days=1))
    adapter = RecordingAdapter(clock)
    chats = [ChatRef("tg", str(n)) for n in range(6)]
    async with Process(tmp_path / "dailyq.sqlite3", clock, adapter, concurrency=2) as leader:
        await subscribe_many(leader, chats, EVERY_DAY_AT_NINE)
        clock.set(NINE + 30 * SECOND)
        in_flight: list[ChatRef] = []
        both_in_flight, release = asyncio.Event(), asyncio.Event()

        async def held(chat: ChatRef) -> None:
            in_flight.append(chat)
            if len(in_flight) == 2:
                both_in_flight.set()
            await release.wait()

        adapter.before_send = held
        adapter.failures[chats[1].key] = [TransientError("502 Bad Gateway")]  # would be retried
        await leader.scheduler.lead()  # the first sweep starts at once
        await asyncio.wait_for(both_in_flight.wait(), 10)
        # Two chats' sends are in flight (the concurrency) when the election is lost.
        standing_down = asyncio.create_task(leader.scheduler.stand_down())
        await asyncio.sleep(0)
        release.set()
        await standing_down
        assert not leader.scheduler.running

        assert [chat for chat, _, _ in adapter.questions()] == [chats[0]]
        assert leader.sleep.waits == [], "a deposed leader does not retry: the new one will"
        posts = await leader.daily_posts()
        assert posts == [(chats[0].key, "2025-06-02", "sent"), (chats[1].key, "2025-06-02", "pending")]
