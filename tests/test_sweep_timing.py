"""When sweeps run: at second 0 of every minute, and still after the wall clock steps back.

The Scheduler's real APScheduler runs here; only time is fake. APScheduler reads the wall clock
with `datetime.now`, so the test hands it the FakeClock the sweeps read; the watchdog reads an
injected monotonic clock. The test moves both, five seconds at a time, and wakes APScheduler as
its own timer would: nothing sleeps.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers import base as apscheduler_base

from bot.app import Running, app_health
from bot.core.model import ChatRef
from bot.ops.health import Metrics, serve
from tests.clock import FakeClock
from tests.test_scheduler import Process, RecordingAdapter, utc

STEP = timedelta(seconds=5)


class FakeMonotonic:
    """A monotonic clock that moves only when told; `sleep` returns once it has moved far enough."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, woken))
        await woken

    def advance(self, seconds: float) -> None:
        self._now += seconds
        for deadline, woken in list(self._sleepers):
            if deadline <= self._now:
                self._sleepers.remove((deadline, woken))
                if not woken.done():
                    woken.set_result(None)


class World:
    """One process whose APScheduler reads the fake wall clock; the test moves time."""

    def __init__(self, process: Process, clock: FakeClock, monotonic: FakeMonotonic) -> None:
        self.process, self.clock, self.monotonic = process, clock, monotonic
        self.runs: list[tuple[datetime, datetime]] = []  # (scheduled run time, wall time submitted)
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self.process.scheduler.start()
        apscheduler = self.process.scheduler._apscheduler  # the real one, to watch what it runs
        assert apscheduler is not None
        apscheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        apscheduler.add_listener(self._finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _submitted(self, event: JobEvent) -> None:
        self.runs += [(run, self.clock.now()) for run in event.scheduled_run_times]
        self._running += 1
        self._idle.clear()

    def _finished(self, event: JobEvent) -> None:
        self._running -= 1
        if self._running == 0:
            self._idle.set()

    async def settle(self) -> None:
        """Let APScheduler, the watchdog and every sweep they started run to the end."""
        for _ in range(3):
            for _ in range(10):
                await asyncio.sleep(0)
            await asyncio.wait_for(self._idle.wait(), timeout=10)

    async def tick(self) -> None:
        """Both clocks move a step; APScheduler wakes, as its own timer would, and so may the watchdog."""
        self.clock.advance(STEP)
        self.monotonic.advance(STEP.total_seconds())
        apscheduler = self.process.scheduler._apscheduler
        assert apscheduler is not None
        apscheduler.wakeup()
        for _ in range(10):
            await asyncio.sleep(0)

    async def run_until(self, instant: datetime) -> None:
        """Tick until `instant`, each sweep run to its end before the next step."""
        while self.clock.now() < instant:
            await self.tick()
            await self.settle()

    def step_wall_clock(self, delta: timedelta) -> None:
        """The wall clock jumps (an NTP correction); the monotonic clock does not."""
        self.clock.advance(delta)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock(utc(2025, 6, 2, 8, 17, 50))

    class WallClock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return clock.now().astimezone(tz)

    monkeypatch.setattr(apscheduler_base, "datetime", WallClock)
    return clock


async def test_a_process_started_at_second_50_sweeps_at_once_then_at_second_0_of_every_minute(
    tmp_path: Path, wall: FakeClock
) -> None:
    adapter = RecordingAdapter(wall)
    chat = ChatRef("tg", "1")
    monotonic = FakeMonotonic()
    async with Process(tmp_path / "db.sqlite3", wall, adapter, monotonic=monotonic) as process:
        await process.say(chat, "/subscribe 08:19 UTC")
        world = World(process, wall, monotonic)
        world.start()
        await world.settle()
        await world.run_until(utc(2025, 6, 2, 8, 21, 10))
        await process.scheduler.shutdown()
    assert [run for run, _ in world.runs] == [
        utc(2025, 6, 2, 8, 17, 50),  # the start-up sweep
        utc(2025, 6, 2, 8, 18),
        utc(2025, 6, 2, 8, 19),
        utc(2025, 6, 2, 8, 20),
        utc(2025, 6, 2, 8, 21),
    ]
    assert all(submitted - run < STEP for run, submitted in world.runs)
    assert [at for *_, at in adapter.questions()] == [utc(2025, 6, 2, 8, 19)]


async def test_after_the_wall_clock_steps_back_an_hour_sweeps_go_on(tmp_path: Path, wall: FakeClock) -> None:
    adapter = RecordingAdapter(wall)
    monotonic = FakeMonotonic()
    wall.set(utc(2025, 6, 2, 9, 0, 20))
    async with Process(tmp_path / "db.sqlite3", wall, adapter, monotonic=monotonic) as process:
        world = World(process, wall, monotonic)
        world.start()
        await world.run_until(utc(2025, 6, 2, 9, 1, 30))
        world.step_wall_clock(-timedelta(hours=1))  # 08:01:30: the clock was an hour fast
        await process.say(ChatRef("tg", "2"), "/subscribe 08:05 UTC")
        await world.run_until(utc(2025, 6, 2, 8, 8, 30))
        await process.scheduler.shutdown()
    before_the_step = [run for run, _ in world.runs if run >= utc(2025, 6, 2, 9)]
    after_the_step = [run for run, _ in world.runs if run < utc(2025, 6, 2, 9)]
    assert before_the_step == [utc(2025, 6, 2, 9, 0, 20), utc(2025, 6, 2, 9, 1)]
    # The watchdog sees no sweep for more than a minute and a half, and restarts the minute job.
    assert after_the_step[-4:] == [utc(2025, 6, 2, 8, minute) for minute in (5, 6, 7, 8)]
    assert [at for *_, at in adapter.questions()] == [utc(2025, 6, 2, 8, 5)]


async def test_healthz_fails_when_no_sweep_has_made_progress_for_three_minutes(
    tmp_path: Path, wall: FakeClock
) -> None:
    adapter = RecordingAdapter(wall)
    monotonic = FakeMonotonic()
    platform_answers = asyncio.Event()

    async def hanging_platform(chat: ChatRef) -> None:
        await platform_answers.wait()

    wall.set(utc(2025, 6, 2, 8, 59, 30))
    async with Process(tmp_path / "db.sqlite3", wall, adapter, monotonic=monotonic) as process:
        await process.say(ChatRef("tg", "3"), "/subscribe 09:00 UTC")
        world = World(process, wall, monotonic)
        world.start()
        await world.settle()
        health = app_health(Running(process.store, process.core, process.scheduler), {})
        runner = await serve(health, Metrics(), "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{runner.addresses[0][1]}") as http:

                async def scheduler_health() -> tuple[int, str]:
                    async with http.get("/healthz") as response:
                        return response.status, (await response.json())["checks"]["scheduler"]

                assert await scheduler_health() == (200, "ok")
                adapter.before_send = hanging_platform
                for _ in range(6 + 24):  # the 09:00 sweep starts and hangs for two minutes
                    await world.tick()
                assert await scheduler_health() == (200, "ok")
                for _ in range(12):  # a third minute: no sweep has got anywhere since the start-up one
                    await world.tick()
                assert await scheduler_health() == (503, "failing")
                platform_answers.set()
                await world.settle()
                assert await scheduler_health() == (200, "ok")
        finally:
            await runner.cleanup()
            await process.scheduler.shutdown()
    assert len(adapter.questions()) == 1
