"""The running scheduler against the real Core and a real database, driven by a fake clock: each
test on a SQLite file and on PostgreSQL (conftest's `database`), but for the one that traces
SQLite's statements.

The platform side is a recording adapter (the Adapter protocol is the platform boundary; the real
error mapping is tested with the Telegram and Discord adapters). "Restarts" close the Store and
build a new Store, Core and Scheduler on the same database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time as perf
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.core import scheduler as scheduler_module
from bot.core.bank import Bank
from bot.core.commands import Core
from bot.core.model import ChatRef, Incoming, Question, Reply, SentRef
from bot.core.ports import ChatGone, ChatMoved, TransientError
from bot.core.scheduler import CLAIM_LEASE, Scheduler
from bot.core.store import open_store
from bot.core.timing import ChatSettings, post_instant
from tests.clock import FakeClock
from tests.conftest import sql_execute, sql_execute_many, sql_rows

BANK = Bank(
    [
        Question(
            id=f"q{n}", title=f"Question {n}", answer=f"Answer {n}.", summary=f"Summary {n}", tags=("t",)
        )
        for n in range(40)
    ]
)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


class RecordingAdapter:
    """Records every message; can be told to fail for given chats, or to run a hook on each send."""

    platform = "tg"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[ChatRef, Reply, datetime]] = []
        self.failures: dict[str, list[Exception]] = {}  # chat key → errors raised by its next sends
        self.before_send: Callable[[ChatRef], Awaitable[None]] | None = None
        self.after_send: Callable[[ChatRef, Reply], object] | None = None

    async def run(self, core: object) -> None:
        raise NotImplementedError("the scheduler only sends")

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        await asyncio.sleep(0)  # a network call yields to the loop
        if self.before_send is not None:
            await self.before_send(chat)
        queued = self.failures.get(chat.key)
        if queued:
            raise queued.pop(0)
        self.sent.append((chat, reply, self.clock.now()))
        if self.after_send is not None:
            self.after_send(chat, reply)
        return SentRef(chat, f"m{len(self.sent)}")

    def questions(self) -> list[tuple[ChatRef, Reply, datetime]]:
        return [entry for entry in self.sent if entry[1].kind == "question"]

    def reveals(self) -> list[tuple[ChatRef, Reply, datetime]]:
        return [entry for entry in self.sent if entry[1].kind == "reveal"]


class FakeSleep:
    """Backoff waits advance the fake clock instead of the wall clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))


class Process:
    """One run of the bot: a Store, a Core and a Scheduler over the database."""

    def __init__(self, db: Path | str, clock: FakeClock, adapter: RecordingAdapter, **options: object) -> None:
        self.db, self.clock, self.adapter, self.options = db, clock, adapter, options
        self.sleep = FakeSleep(clock)

    async def __aenter__(self) -> Process:
        self.store = await open_store(self.db)
        self.core = Core(self.store, BANK, Settings(), self.clock)
        self.scheduler = Scheduler(
            self.store, self.core, {"tg": self.adapter}, self.clock, sleep=self.sleep, **self.options
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()

    async def say(self, chat: ChatRef, text: str, user: str = "u1") -> list[Reply]:
        incoming = Incoming(platform="tg", chat=chat, user_id=user, user_name=f"User {user}", text=text)
        return await self.core.handle(incoming)

    async def daily_posts(self) -> list[tuple[str, str, str]]:
        return await sql_rows(
            self.store,
            "SELECT chat_key, local_date, status FROM posts WHERE kind = 'daily' ORDER BY chat_key, local_date",
        )


async def subscribe_many(process: Process, chats: list[ChatRef], settings: ChatSettings) -> None:
    """What /subscribe stores, for many chats in one transaction (a thousand commands would be slow)."""
    now = process.clock.now()
    await sql_execute_many(
        process.store,
        "INSERT INTO chats (key, platform, chat_id, settings, subscribed, schedule_from, created_at)"
        " VALUES (?, ?, ?, ?, true, ?, ?)",
        [(c.key, c.platform, c.chat_id, json.dumps(settings.to_json()), now, now) for c in chats],
    )


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "dailyq.sqlite3"


# --- days around the clock changes, with restarts ----------------------------------------------

DST_CASES = [  # zone, post time, a day of interest, and the post's UTC instant on that day
    ("Europe/Berlin", "02:30", utc(2025, 3, 30, 1, 0)),  # 02:30 does not exist: 03:00 CEST
    ("Europe/Berlin", "02:30", utc(2025, 10, 26, 0, 30)),  # 02:30 happens twice: the first, CEST
    ("America/New_York", "02:30", utc(2025, 3, 9, 7, 0)),  # 03:00 EDT
    ("America/New_York", "01:30", utc(2025, 11, 2, 5, 30)),  # the first 01:30, EDT
    ("Asia/Kolkata", "09:00", utc(2025, 6, 1, 3, 30)),
    ("Asia/Kathmandu", "23:45", utc(2025, 6, 1, 18, 0)),
]


@pytest.mark.parametrize(("zone_name", "at", "on_the_day"), DST_CASES)
async def test_posts_once_per_day_around_clock_changes_and_restarts(
    database: Path | str, zone_name: str, at: str, on_the_day: datetime
) -> None:
    zone = ZoneInfo(zone_name)
    chat = ChatRef("tg", "100")
    the_day = on_the_day.astimezone(zone).date()
    days = [the_day + timedelta(days=n) for n in range(-2, 3)]
    # The days around it have an ordinary wall time: the aware datetime is unambiguous there.
    expected = {day: datetime.combine(day, time.fromisoformat(at), zone).astimezone(UTC) for day in days}
    expected[the_day] = on_the_day
    clock = FakeClock(expected[days[0]] - timedelta(days=1))
    adapter = RecordingAdapter(clock)
    async with Process(database, clock, adapter) as process:
        await process.say(chat, f"/subscribe {at} {zone_name}")
        subscription = await process.store.chat(chat.key)
        assert subscription is not None and subscription.subscribed

    for instant in expected.values():
        # Each probe is a separate run of the bot: a restart at every interesting instant.
        for probe in (
            instant - timedelta(minutes=1),
            instant,
            instant + timedelta(seconds=30),
            instant + timedelta(hours=1),
        ):
            clock.set(probe)
            async with Process(database, clock, adapter) as process:
                await process.scheduler.sweep()
                await process.scheduler.sweep()

    assert [at_ for *_, at_ in adapter.questions()] == list(expected.values())


# --- kills in the middle of a fan-out -------------------------------------------------------

FANOUT = 1000
CONCURRENCY = 32  # the Scheduler's default


async def test_killed_twice_in_a_fan_out_to_1000_chats_every_chat_gets_exactly_its_post(
    sqlite_path: Path,
) -> None:
    db_path = sqlite_path
    """Run 1 dies while sends are in flight (nothing doubles); run 2 dies right after a platform reply,
    the one window where a message can go out twice (counted, and timed per message); run 3 finishes."""
    clock = FakeClock(utc(2025, 6, 2, 8))
    adapter = RecordingAdapter(clock)

    # Run 1: after 300 messages the platform stops answering; the process dies with every slot waiting.
    held, all_slots_held, never = 0, asyncio.Event(), asyncio.Event()

    async def platform_stops_answering(chat: ChatRef) -> None:
        nonlocal held
        if len(adapter.sent) >= 300:
            held += 1
            if held == CONCURRENCY:
                all_slots_held.set()
            await never.wait()

    adapter.before_send = platform_stops_answering
    async with Process(db_path, clock, adapter) as process:
        chats = [ChatRef("tg", str(n)) for n in range(FANOUT)]
        await subscribe_many(process, chats, ChatSettings(time="09:00", zone="UTC"))
        clock.set(utc(2025, 6, 2, 9))
        sweep = asyncio.create_task(process.scheduler.sweep())
        await asyncio.wait_for(all_slots_held.wait(), timeout=20)
        sweep.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweep
        assert await pending_claims(process) == CONCURRENCY
    assert len(adapter.questions()) == 300
    adapter.before_send = None

    # Run 2: a restart that dies right after the 600th platform reply. A trace of the database's
    # statements times each message's window (platform reply → its 'sent' row committed).
    replied: dict[int, float] = {}
    committed: dict[int, float] = {}
    written: list[int] = []

    def on_statement(sql: str) -> None:  # runs on the database thread, in statement order
        if sql.startswith("UPDATE posts SET status = 'sent'"):
            written.append(int(sql.rsplit("=", 1)[1]))
        elif sql == "COMMIT" and written:
            committed[written.pop()] = perf.perf_counter()

    def platform_replied(chat: ChatRef, reply: Reply) -> None:
        assert reply.post_id is not None
        replied[reply.post_id] = perf.perf_counter()
        if len(adapter.sent) == 600:
            # The process dies here: this message's 'sent' write is never made. (The writes other
            # sends already handed to the database thread still commit, as in a graceful stop.)
            sweep.cancel()
            raise asyncio.CancelledError

    clock.advance(timedelta(minutes=1))
    async with Process(db_path, clock, adapter) as process:
        await process.store.db.set_trace_callback(on_statement)
        adapter.after_send = platform_replied
        sweep = asyncio.create_task(process.scheduler.sweep())
        with pytest.raises(asyncio.CancelledError):
            await sweep
        await process.store.db.set_trace_callback(None)
    adapter.after_send = None

    # Run 3: sends the rest; the dead runs' claims are left alone while they could still be in
    # flight in another process, and taken over once their lease is over.
    clock.advance(timedelta(minutes=1))
    async with Process(db_path, clock, adapter) as process:
        await process.scheduler.sweep()
        left_pending = await pending_claims(process)
        assert left_pending >= CONCURRENCY
        clock.advance(CLAIM_LEASE)
        await process.scheduler.sweep()
        posts = await process.daily_posts()
    assert len(posts) == FANOUT and {status for *_, status in posts} == {"sent"}
    per_chat = Counter(chat.key for chat, _, _ in adapter.questions())
    assert set(per_chat) == {chat.key for chat in chats}  # none missing
    doubled = sorted(key for key, count in per_chat.items() if count > 1)
    unrecorded = [post for post in replied if post not in committed]
    assert len(doubled) == len(unrecorded)  # exactly the replies whose 'sent' write had not committed
    assert max(per_chat.values()) == 2 and len(doubled) <= CONCURRENCY  # at most one per send slot
    windows = sorted((committed[post] - replied[post]) * 1000 for post in replied if post in committed)
    print(
        f"\n{FANOUT} chats, concurrency {CONCURRENCY}: killed while sending → 0 doubled; killed right after "
        f"a platform reply → {len(doubled)} doubled; window (platform reply → 'sent' committed) over "
        f"{len(windows)} messages: median {statistics.median(windows):.2f} ms, max {windows[-1]:.2f} ms"
    )
    assert statistics.median(windows) < 250


async def pending_claims(process: Process) -> int:
    return sum(1 for *_, status in await process.daily_posts() if status == "pending")


# --- downtime ------------------------------------------------------------------------------


async def test_down_for_three_hours_inside_grace_posts_late_once(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "7")
    async with Process(database, clock, adapter, grace=timedelta(hours=4)) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 8, 30))
        await process.scheduler.sweep()  # then the process stops, before 09:00
    assert adapter.questions() == []
    clock.set(utc(2025, 6, 2, 11, 30))  # back 3 hours later, inside the 4-hour grace
    for _ in range(3):
        async with Process(database, clock, adapter, grace=timedelta(hours=4)) as process:
            await process.scheduler.sweep()
        clock.advance(timedelta(minutes=20))
    assert [(chat_.key, at) for chat_, _, at in adapter.questions()] == [("tg:7", utc(2025, 6, 2, 11, 30))]


async def test_down_past_the_grace_window_skips_and_logs(
    database: Path | str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "7")
    async with Process(database, clock, adapter, grace=timedelta(hours=2)) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 12))  # 3 hours late, grace is 2
        await process.scheduler.sweep()
        assert adapter.questions() == []
        clock.set(utc(2025, 6, 3, 9))
        with caplog.at_level(logging.WARNING, logger="bot.core.scheduler"):
            await process.scheduler.sweep()
    assert len(adapter.questions()) == 1
    assert "tg:7: 1 scheduled post(s) from 2025-06-02 to 2025-06-02" in caplog.text


async def test_down_for_two_days_posts_once_today_and_none_for_the_missed_days(
    database: Path | str, caplog: pytest.LogCaptureFixture
) -> None:
    zone = ZoneInfo("America/New_York")
    clock = FakeClock(utc(2025, 3, 7, 20))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "8")
    async with Process(database, clock, adapter) as process:
        await process.say(chat, "/subscribe 07:00 America/New_York")
        clock.set(post_instant(date(2025, 3, 8), time(7), zone))
        await process.scheduler.sweep()
    # Down from Saturday morning (across the DST change) until Monday afternoon.
    clock.set(post_instant(date(2025, 3, 10), time(15), zone))
    with caplog.at_level(logging.WARNING, logger="bot.core.scheduler"):
        async with Process(database, clock, adapter) as process:
            await process.scheduler.sweep()
            clock.advance(timedelta(hours=2))
            await process.scheduler.sweep()
            assert [(day, status) for _, day, status in await process.daily_posts()] == [
                ("2025-03-08", "sent"),
                ("2025-03-10", "sent"),
            ]
    assert [at.astimezone(zone).date() for *_, at in adapter.questions()] == [
        date(2025, 3, 8),
        date(2025, 3, 10),
    ]
    assert "1 scheduled post(s) from 2025-03-09 to 2025-03-09" in caplog.text


# --- subscription and settings -------------------------------------------------------------


async def test_subscribing_after_todays_time_starts_tomorrow(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 2, 10))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "9")
    async with Process(database, clock, adapter) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        for instant in (utc(2025, 6, 2, 10, 1), utc(2025, 6, 2, 23, 59), utc(2025, 6, 3, 8, 59)):
            clock.set(instant)
            await process.scheduler.sweep()
        assert adapter.questions() == []
        clock.set(utc(2025, 6, 3, 9))
        await process.scheduler.sweep()
    assert [at for *_, at in adapter.questions()] == [utc(2025, 6, 3, 9)]


async def test_changing_the_time_after_todays_post_does_not_post_again(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "10")
    async with Process(database, clock, adapter) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()
        clock.set(utc(2025, 6, 2, 10))
        await process.say(chat, "/settings time 15:00")
        for instant in (utc(2025, 6, 2, 15), utc(2025, 6, 2, 16), utc(2025, 6, 3, 9), utc(2025, 6, 3, 15)):
            clock.set(instant)
            await process.scheduler.sweep()
    assert [at for *_, at in adapter.questions()] == [utc(2025, 6, 2, 9), utc(2025, 6, 3, 15)]


async def test_paused_and_unscheduled_days_get_no_post(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))  # a Sunday
    adapter = RecordingAdapter(clock)
    weekdays, paused = ChatRef("tg", "11"), ChatRef("tg", "12")
    async with Process(database, clock, adapter) as process:
        await process.say(weekdays, "/subscribe 09:00 UTC")
        await process.say(weekdays, "/settings days mon-fri")
        await process.say(paused, "/subscribe 09:00 UTC")
        await process.say(paused, "/settings paused on")
        for day in range(1, 9):
            clock.set(utc(2025, 6, day, 9))
            await process.scheduler.sweep()
    assert sorted(at.day for chat, _, at in adapter.questions() if chat == weekdays) == [2, 3, 4, 5, 6]
    assert [chat for chat, _, _ in adapter.questions() if chat == paused] == []


# --- reveals -------------------------------------------------------------------------------


async def test_reveal_is_sent_once_at_its_time_across_a_restart(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "13")
    async with Process(database, clock, adapter) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        await process.say(chat, "/settings reveal 4h")
        clock.set(utc(2025, 6, 2, 9, 0, 20))
        await process.scheduler.sweep()
        clock.set(utc(2025, 6, 2, 12, 59))
        await process.scheduler.sweep()
    assert adapter.reveals() == []
    for instant in (utc(2025, 6, 2, 13), utc(2025, 6, 2, 13, 1), utc(2025, 6, 2, 20)):
        clock.set(instant)
        async with Process(database, clock, adapter) as process:
            await process.scheduler.sweep()
    [(reveal_chat, reveal, at)] = adapter.reveals()
    [(_, question, _)] = adapter.questions()
    assert (reveal_chat, reveal.post_id, at) == (chat, question.post_id, utc(2025, 6, 2, 13))


async def test_reveal_missed_past_grace_is_skipped_and_logged(
    database: Path | str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "14")
    async with Process(database, clock, adapter) as process:
        await process.say(chat, "/subscribe 09:00 Asia/Kolkata")
        await process.say(chat, "/settings reveal 18:00")
        clock.set(utc(2025, 6, 2, 3, 30))  # 09:00 in Kolkata
        await process.scheduler.sweep()
        clock.set(utc(2025, 6, 2, 18, 30))  # midnight in Kolkata: the reveal's day is over
        with caplog.at_level(logging.WARNING, logger="bot.core.scheduler"):
            await process.scheduler.sweep()
        clock.set(utc(2025, 6, 2, 19))
        await process.scheduler.sweep()
    assert len(adapter.questions()) == 1
    assert adapter.reveals() == []
    assert "tg:14: the reveal of post" in caplog.text and "skipped" in caplog.text


# --- platform errors -----------------------------------------------------------------------


async def test_gone_chat_is_unsubscribed_and_the_others_still_get_their_post(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chats = [ChatRef("tg", str(n)) for n in range(20, 25)]
    adapter.failures["tg:22"] = [ChatGone("bot was kicked")]
    async with Process(database, clock, adapter) as process:
        for chat in chats:
            await process.say(chat, "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()
        clock.set(utc(2025, 6, 3, 9))
        await process.scheduler.sweep()
        row = await process.store.chat("tg:22")
        statuses = {(key, day): status for key, day, status in await process.daily_posts()}
    assert row is not None and not row.subscribed
    assert statuses[("tg:22", "2025-06-02")] == "failed"
    assert ("tg:22", "2025-06-03") not in statuses
    assert Counter(chat.key for chat, _, _ in adapter.questions()) == {
        c.key: 2 for c in chats if c.key != "tg:22"
    }


async def test_transient_errors_are_retried_with_backoff_and_delivered(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "30")
    adapter.failures[chat.key] = [
        TransientError("502"),
        TransientError("429", retry_after=7),
        TransientError("timeout"),
    ]
    async with Process(database, clock, adapter) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()
        assert process.sleep.waits == [1.0, 7.0, 4.0]  # 1, 2 → retry_after 7, 4
        assert await process.daily_posts() == [("tg:30", "2025-06-02", "sent")]
    assert [at for *_, at in adapter.questions()] == [utc(2025, 6, 2, 9, 0, 12)]


async def test_transient_errors_past_the_attempts_leave_the_claim_for_a_later_sweep(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "31")
    adapter.failures[chat.key] = [TransientError("down")] * 3
    async with Process(database, clock, adapter, max_attempts=3) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()
        assert await process.daily_posts() == [("tg:31", "2025-06-02", "pending")]
        clock.advance(timedelta(minutes=1))
        await process.scheduler.sweep()  # still leased to the sweep that claimed it
        assert adapter.questions() == []
        clock.advance(CLAIM_LEASE)
        await process.scheduler.sweep()
        assert await process.daily_posts() == [("tg:31", "2025-06-02", "sent")]
    assert len(adapter.questions()) == 1


async def test_a_reveal_that_ran_out_of_attempts_is_sent_once_after_its_lease(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chat = ChatRef("tg", "32")
    async with Process(database, clock, adapter, max_attempts=2) as process:
        await process.say(chat, "/subscribe 09:00 UTC")
        await process.say(chat, "/settings reveal 1h")
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()
        adapter.failures[chat.key] = [TransientError("502")] * 2
        clock.set(utc(2025, 6, 2, 10))
        await process.scheduler.sweep()
        clock.advance(timedelta(minutes=1))
        await process.scheduler.sweep()  # the reveal is still leased to the sweep that claimed it
        assert adapter.reveals() == []
        clock.advance(CLAIM_LEASE)
        await process.scheduler.sweep()
        await process.scheduler.sweep()
    assert [at for *_, at in adapter.reveals()] == [utc(2025, 6, 2, 10, 6, 1)]


async def test_migrated_chat_continues_under_its_new_id_with_its_progress(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    old, new = ChatRef("tg", "-40"), ChatRef("tg", "-100040")
    async with Process(database, clock, adapter) as process:
        await process.say(old, "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()
        await process.say(old, "/answer ||a hash map||")
        adapter.failures[old.key] = [ChatMoved(new)]
        clock.set(utc(2025, 6, 3, 9))
        await process.scheduler.sweep()
        clock.set(utc(2025, 6, 4, 9))
        await process.scheduler.sweep()
        assert await process.store.chat(old.key) is None
        assert [(key, day) for key, day, _ in await process.daily_posts()] == [
            ("tg:-100040", "2025-06-02"),
            ("tg:-100040", "2025-06-03"),
            ("tg:-100040", "2025-06-04"),
        ]
        assert await sql_rows(process.store, "SELECT chat_key FROM attempts") == [(new.key,)]
    assert [chat for chat, _, _ in adapter.questions()] == [old, new, new]
    assert len({reply.question.id for _, reply, _ in adapter.questions() if reply.question}) == 3


async def test_one_failing_chat_is_logged_and_the_others_are_served(
    database: Path | str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chats = [ChatRef("tg", str(n)) for n in range(50, 55)]
    adapter.failures["tg:52"] = [RuntimeError("unexpected")]
    async with Process(database, clock, adapter) as process:
        for chat in chats:
            await process.say(chat, "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 9))
        with caplog.at_level(logging.ERROR, logger="bot.core.scheduler"):
            await process.scheduler.sweep()
    assert {chat.key for chat, _, _ in adapter.questions()} == {c.key for c in chats} - {"tg:52"}
    assert "chat tg:52:" in caplog.text and "RuntimeError: unexpected" in caplog.text


async def test_a_chat_with_an_unreadable_row_is_logged_and_the_others_are_served(
    database: Path | str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chats = [ChatRef("tg", str(n)) for n in range(56, 59)]
    async with Process(database, clock, adapter) as process:
        await subscribe_many(process, chats, ChatSettings(time="09:00", zone="UTC"))
        # Text that is not JSON where SQLite keeps it; JSON that is not settings where PostgreSQL's
        # jsonb would refuse the text.
        unreadable = "{not json" if process.store.backend == "sqlite" else '["not", "settings"]'
        await sql_execute(process.store, "UPDATE chats SET settings = ? WHERE key = 'tg:57'", unreadable)
        clock.set(utc(2025, 6, 2, 9))
        with caplog.at_level(logging.ERROR, logger="bot.core.scheduler"):
            await process.scheduler.sweep()
    assert {chat.key for chat, _, _ in adapter.questions()} == {"tg:56", "tg:58"}
    assert "chat tg:57:" in caplog.text


# --- fan-out and processes -----------------------------------------------------------------


async def test_fan_out_is_concurrent_within_the_bound_and_a_stuck_chat_delays_no_one(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chats = [ChatRef("tg", str(n)) for n in range(60, 80)]
    in_flight, bound_reached, gate, stuck = 0, asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_platform(chat: ChatRef) -> None:
        nonlocal in_flight
        in_flight += 1
        if in_flight == 4:
            bound_reached.set()
        await gate.wait()
        if chat.key == "tg:60":
            await stuck.wait()
        in_flight -= 1

    adapter.before_send = slow_platform
    async with Process(database, clock, adapter, concurrency=4) as process:
        await subscribe_many(process, chats, ChatSettings(time="09:00", zone="UTC"))
        clock.set(utc(2025, 6, 2, 9))
        sweep = asyncio.create_task(process.scheduler.sweep())
        await asyncio.wait_for(bound_reached.wait(), timeout=10)
        for _ in range(20):  # let every other chat get as far as it can
            await pending_claims(process)
        assert (in_flight, await pending_claims(process)) == (4, 4)  # the rest wait for a slot

        gate.set()  # the platform answers, except for tg:60 which hangs
        while len(adapter.sent) < len(chats) - 1:
            await pending_claims(process)
        assert not sweep.done()
        stuck.set()
        await sweep
    assert [chat.key for chat, _, _ in adapter.questions()][-1] == "tg:60"
    assert len(adapter.questions()) == len(chats)


async def test_two_processes_sweeping_one_database_post_once(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chats = [ChatRef("tg", str(n)) for n in range(50)]
    async with Process(database, clock, adapter) as first, Process(database, clock, adapter) as second:
        await subscribe_many(first, chats, ChatSettings(time="09:00", zone="UTC", reveal="1h"))
        for instant in (utc(2025, 6, 2, 9), utc(2025, 6, 2, 10), utc(2025, 6, 2, 10, 10)):
            clock.set(instant)
            await asyncio.gather(first.scheduler.sweep(), second.scheduler.sweep())
    assert Counter(chat.key for chat, _, _ in adapter.questions()) == {c.key: 1 for c in chats}
    assert Counter(chat.key for chat, _, _ in adapter.reveals()) == {c.key: 1 for c in chats}


async def test_start_sweeps_at_once_and_shutdown_waits_for_the_sweep_in_flight(database: Path | str) -> None:
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    sending, platform_answers = asyncio.Event(), asyncio.Event()

    async def slow_platform(chat: ChatRef) -> None:
        sending.set()
        await platform_answers.wait()

    adapter.before_send = slow_platform
    async with Process(database, clock, adapter) as process:
        await process.say(ChatRef("tg", "90"), "/subscribe 09:00 UTC")
        clock.set(utc(2025, 6, 2, 9, 5))
        process.scheduler.start()  # no sweep() call: the start-up sweep sends the post
        await asyncio.wait_for(sending.wait(), timeout=10)
        stopping = asyncio.create_task(process.scheduler.shutdown())
        for _ in range(10):
            await asyncio.sleep(0)
        assert not stopping.done()
        platform_answers.set()
        await stopping
        assert await process.daily_posts() == [("tg:90", "2025-06-02", "sent")]
        await process.scheduler.shutdown()  # a second call is harmless
    assert len(adapter.questions()) == 1


async def test_chats_are_read_in_pages_and_every_page_is_served(
    database: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module, "CHAT_PAGE", 3)
    clock = FakeClock(utc(2025, 6, 1, 12))
    adapter = RecordingAdapter(clock)
    chats = [ChatRef("tg", str(n)) for n in range(100, 111)]  # 11 chats: three full pages and a partial
    async with Process(database, clock, adapter) as process:
        await subscribe_many(process, chats, ChatSettings.default(Settings()))
        await process.say(chats[4], "/settings paused on")  # a paused chat in the middle of a page
        clock.set(utc(2025, 6, 2, 9))
        await process.scheduler.sweep()
    posted = Counter(chat.key for chat, _, _ in adapter.questions())
    assert posted == {c.key: 1 for c in chats if c != chats[4]}
