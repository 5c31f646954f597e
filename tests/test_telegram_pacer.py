"""The Telegram adapter's pacer (SteadyPacer) on an injected clock: no sleeping for real."""

from __future__ import annotations

import asyncio

import pytest
from telegram.error import RetryAfter

from bot.adapters.telegram import SteadyPacer


class Timeline:
    """A clock that a sleep moves forward, each wake-up `late` seconds after it was due."""

    def __init__(self, late: float = 0.0) -> None:
        self.now = 0.0
        self.late = late
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.late


def pacer(timeline: Timeline, per_second: float = 10, per_group: float = 3, retries: int = 0) -> SteadyPacer:
    return SteadyPacer(per_second, per_group, max_retries=retries, clock=timeline.clock, sleep=timeline.sleep)


async def test_late_wake_ups_do_not_push_the_later_slots_back() -> None:
    timeline = Timeline(late=0.03)
    steady = pacer(timeline)
    handed = []
    for _ in range(4):
        await steady.turn(None)
        handed.append(round(timeline.now, 3))
    # Slots at 0, 0.1, 0.2, 0.3; each wake-up is 30 ms late, and the next slot is still on time
    # (a pacer that counts from the late hand-over would give 0.13, 0.26, 0.39).
    assert handed == [0.0, 0.13, 0.23, 0.33]


async def test_no_burst_after_an_idle_spell() -> None:
    timeline = Timeline()
    steady = pacer(timeline)
    await steady.turn(None)
    timeline.now = 5.0  # nothing sent for five seconds
    await steady.turn(None)
    await steady.turn(None)
    assert timeline.sleeps == [pytest.approx(0.1)]  # the third waits its spacing: no saved-up burst


async def test_a_stall_never_hands_over_more_than_the_rate_in_one_second() -> None:
    timeline = Timeline()
    stall_over = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if stall_over.is_set():
            await timeline.sleep(seconds)
        else:  # the loop stalls: every message waiting for its slot wakes when the stall ends
            await stall_over.wait()

    steady = SteadyPacer(10, 3, clock=timeline.clock, sleep=sleep)
    handed: list[float] = []

    async def one_message() -> None:
        await steady.turn(None)
        handed.append(timeline.now)

    messages = [asyncio.ensure_future(one_message()) for _ in range(12)]
    await asyncio.sleep(0)  # all twelve have their slots, 0.1 s apart from 0
    timeline.now = 1.5  # their slots long past
    stall_over.set()
    await asyncio.gather(*messages)
    assert max(sum(1 for t in handed if start <= t < start + 1.0) for start in handed) == 10


async def test_a_group_gets_at_most_its_count_in_any_sixty_seconds() -> None:
    timeline = Timeline()
    steady = pacer(timeline, per_second=100, per_group=3)
    handed = []
    for _ in range(5):
        await steady.turn(-100)
        handed.append(timeline.now)
    assert handed[3] >= handed[0] + 60 and handed[4] >= handed[1] + 60
    await steady.turn(42)  # a private chat is not held back by the group
    assert timeline.now < handed[4] + 1


async def test_a_429_holds_back_only_its_own_message() -> None:
    timeline = Timeline()
    retry_wait_over = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if seconds >= 1:  # the refused message's retry_after: it ends when the test says so
            await retry_wait_over.wait()
        await timeline.sleep(seconds)

    steady = SteadyPacer(10, 3, max_retries=1, clock=timeline.clock, sleep=sleep)
    calls = []

    async def refused_once() -> dict:
        calls.append("first")
        if calls.count("first") == 1:
            raise RetryAfter(2)
        return {}

    async def other() -> dict:
        calls.append("other")
        return {}

    def send(callback) -> asyncio.Future:
        return asyncio.ensure_future(
            steady.process_request(callback, (), {}, "sendMessage", {"chat_id": 1}, None)
        )

    retried = send(refused_once)
    await asyncio.sleep(0)  # the first is refused and waits its retry_after
    await asyncio.wait_for(send(other), 1)  # meanwhile the next message goes out
    assert calls == ["first", "other"]
    retry_wait_over.set()
    assert await retried == {}
    assert calls == ["first", "other", "first"]
