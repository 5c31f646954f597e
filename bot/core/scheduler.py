"""The daily loop: every minute, claim, send and reveal each chat's daily question that is due.

The database is the source of truth; nothing the loop knows lives only in memory. The store keeps
the bookkeeping (its methods name each step; the states are PostStatus and RevealStatus):

- A daily post is claimed before it is sent (`claim_daily`: status pending, on the unique key
  chat + local date), so a second claim for the same chat and day is impossible, across restarts
  and processes. After the platform accepts the message, `mark_sent` records its message id. A
  message can be duplicated only if the process dies after the platform accepted it and before
  that write (see tests/test_scheduler.py).
- A claim still pending after `CLAIM_LEASE` was left by a crash (or by retries that ran out) and
  is taken over, with a compare-and-swap on the instant it was claimed at, by the next sweep of
  any process, while in grace (`stale_claims`, `take_over_claim`). Younger ones may still be in
  flight elsewhere and are left alone.
- A reveal is claimed the same way (`due_reveals`, `claim_reveal`) and ended as sent, failed (the
  chat is gone) or skipped (`end_reveal`).
- Only the leading process sweeps (bot.core.leader: on SQLite the only process; on PostgreSQL the
  holder of an advisory lock). When it dies, its successor `lead`s: claims still pending from
  before that moment are the predecessor's, and are taken over `TAKEOVER_WAIT` later instead of
  after their lease, so a fan-out cut short by a crash finishes within a minute or so. A leader
  that loses its election claims nothing more and gives its sends in flight `STAND_DOWN_WAIT`
  (`stand_down`); it learns of the loss within two election checks. So the only message sent
  twice is one the old leader had handed to the platform but not recorded when it died.
- When the write that records a send fails (a full disk, an I/O error), it is retried, then kept
  in memory and retried by every later sweep, before anything else; meanwhile this process does
  not take the claim over, so what a platform accepted is never sent again.

Sweeps run at start and at second 0 of every minute (APScheduler). APScheduler keeps its next run
as a wall-clock instant, so when the wall clock steps back it would wait for the wall to catch
up: a watchdog on the monotonic clock restarts the minute job when no sweep has run for
OVERDUE_AFTER, and /healthz fails (`running`) when no sweep has got anywhere for STALE_AFTER.

Missed posts and reveals are sent late while inside the grace window (default: the rest of the
chat's local day) and skipped, with a log line, after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot.config import Settings
from bot.core.clock import Clock
from bot.core.model import ChatRef, Question, Reply, SentRef
from bot.core.ports import Adapter, ChatGone, ChatMoved, TransientError
from bot.core.store import DatabaseBusy, DueReveal, RevealStatus, StaleClaim, Store
from bot.core.store.coordination import CHECK_INTERVAL
from bot.core.timing import (
    ChatSettings,
    due_post,
    end_of_grace,
    post_instant,
    reveal_instant,
)

log = logging.getLogger(__name__)

SWEEP_JOB = "dailyq-sweep"  # at second 0 of every minute
STARTUP_JOB = "dailyq-startup-sweep"  # once, at start
# Longer than one sweep can spend on a claim (its retries stop at half of it), so a claim this
# old is not in flight anywhere any more.
CLAIM_LEASE = timedelta(minutes=5)
FIRST_BACKOFF = 1.0  # seconds; doubled after each transient error
MAX_BACKOFF = 60.0
WRITE_ATTEMPTS = 6  # while another process holds the database
WRITE_BACKOFF = 0.05  # seconds, doubled per attempt
CHAT_PAGE = 1000  # subscribed chats read per query in a sweep
SHUTDOWN_WAIT = 15.0  # seconds an in-flight sweep gets to finish at shutdown
WATCH_INTERVAL = 15.0  # seconds (monotonic) between the watchdog's looks
OVERDUE_AFTER = 90.0  # seconds without a sweep, none running, before the minute job restarts
STALE_AFTER = 180.0  # seconds without progress (a chat served, a sweep finished): /healthz fails
RECORD_ATTEMPTS = 5  # tries, within one sweep, at recording what a platform accepted
RECORD_BACKOFF = 0.5  # seconds, doubled per try
CONCURRENCY = 32  # chats a sweep serves at once
STAND_DOWN_WAIT = 5.0  # seconds a deposed leader's sends in flight get to finish
# How long after taking the lead the predecessor's pending claims become this leader's: by then
# the predecessor, if alive, knows it lost (two election checks) and has stood down.
TAKEOVER_WAIT = timedelta(seconds=2 * CHECK_INTERVAL + STAND_DOWN_WAIT)


class DailyCore(Protocol):
    """What the scheduler needs from the engine (bot.core.commands.Core; its daily.py)."""

    settings: Settings  # the defaults under each chat's stored settings

    async def choose_daily_question(self, chat_key: str) -> tuple[Question, int]: ...

    async def daily_post_reply(self, post_id: int) -> Reply: ...

    async def reveal_replies(self, post_id: int) -> list[Reply]: ...

    async def move_chat(self, old_key: str, new_chat: ChatRef) -> None: ...

    async def unsubscribe(self, chat_key: str) -> None: ...


Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class Monotonic(Protocol):
    """Time that never steps back: the watchdog's, and how old the last progress is."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemMonotonic:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # the event loop's timers run on the monotonic clock


class _ChatGoneError(Exception):
    """The chat is gone and has been unsubscribed; nothing more is sent to it."""


class _GaveUpError(Exception):
    """Transient errors outlasted the attempts; the claim stays pending for a later sweep."""


@dataclass
class _ChatWork:
    """One chat's share of a sweep, done in this order: due reveals, crashed claims, today's post."""

    key: str
    settings: ChatSettings
    due: tuple[date, datetime] | None = None  # today's post, not claimed yet
    schedule_from: datetime | None = None
    last_daily: date | None = None  # the latest local date the chat has a daily post for
    claims: list[StaleClaim] = field(default_factory=list)
    reveals: list[DueReveal] = field(default_factory=list)
    former_keys: set[str] = field(default_factory=set)  # keys the chat had before a move

    def address(self, reply: Reply) -> ChatRef:
        """Where a reply goes: the thread or chat it names, else (or if that chat moved) this chat."""
        if reply.chat is None or reply.chat.key in self.former_keys:
            return ChatRef.from_key(self.key)
        return reply.chat


CHAT_FAILED = "chat %s: the daily schedule failed for this chat; the next sweep tries again"


@contextmanager
def _logged_and_skipped(chat_key: str) -> Iterator[None]:
    """One chat's bad row (say, unreadable settings) is logged and skipped; the others go on."""
    try:
        yield
    except Exception:
        log.exception(CHAT_FAILED, chat_key)


class Scheduler:
    def __init__(
        self,
        store: Store,
        core: DailyCore,
        adapters: dict[str, Adapter],
        clock: Clock,
        *,
        grace: timedelta | None = None,
        concurrency: int = CONCURRENCY,
        max_attempts: int = 5,
        sleep: Sleep = asyncio.sleep,
        monotonic: Monotonic | None = None,
    ) -> None:
        self.store = store
        self.core = core
        self.adapters = adapters
        self.clock = clock
        self.grace = grace  # None: until the end of the post's local day
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self._sweeping = asyncio.Lock()
        self._sweep_task: asyncio.Task[None] | None = None
        self._apscheduler: AsyncIOScheduler | None = None
        self.monotonic = monotonic or SystemMonotonic()
        self._progress_at = self.monotonic.now()  # a sweep finished, or served a chat
        self._watch_deadline = self._progress_at + OVERDUE_AFTER  # a sweep should have run by then
        self._watchdog: asyncio.Task[None] | None = None
        # What a platform accepted and the database has not recorded yet, by ("post" or "reveal",
        # post id): the write, retried by every sweep until it succeeds.
        self._unrecorded: dict[tuple[str, int], Callable[[], Awaitable[object]]] = {}
        self._leading_since: datetime | None = None  # see lead()
        self._standing_down = False  # see stand_down()

    # --- running -------------------------------------------------------------------------

    def start(self) -> None:
        """Sweep now, then at second 0 of every minute (call from inside the running event loop)."""
        self._apscheduler = AsyncIOScheduler(timezone=UTC)
        # A late sweep is still worth running; missed ones are one.
        one_at_a_time = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        # The start-up sweep is a job of its own: a minute job first run "now" would keep the
        # second the process started at (a 09:00 post at 09:00:52).
        self._apscheduler.add_job(
            self._scheduled_sweep, "date", run_date=self.clock.now(), id=STARTUP_JOB, **one_at_a_time
        )
        self._apscheduler.add_job(self._scheduled_sweep, _every_minute(), id=SWEEP_JOB, **one_at_a_time)
        self._apscheduler.start()
        self._watch_deadline = self.monotonic.now() + OVERDUE_AFTER
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def lead(self) -> None:
        """Start sweeping as the leader: claims left pending by whoever led before are taken over
        TAKEOVER_WAIT from now (one more sweep then), not after their lease."""
        self._leading_since = self.clock.now()
        self.start()
        assert self._apscheduler is not None
        self._apscheduler.add_job(
            self._scheduled_sweep,
            DateTrigger(datetime.now(UTC) + TAKEOVER_WAIT),
            id="dailyq-takeover",
            misfire_grace_time=None,
        )

    async def stand_down(self) -> None:
        """Another process leads now: claim nothing more; the sends in flight get STAND_DOWN_WAIT
        seconds, then the sweep is cancelled (what it left pending, the new leader takes over)."""
        self._standing_down = True
        try:
            await self._stop(STAND_DOWN_WAIT)
        finally:
            self._standing_down = False

    @property
    def running(self) -> bool:
        """Sweeping (for /healthz): started, not shut down, and a sweep got somewhere (served a chat,
        or finished) within STALE_AFTER by the monotonic clock."""
        return (
            self._apscheduler is not None
            and self._apscheduler.state == STATE_RUNNING
            and self.monotonic.now() - self._progress_at <= STALE_AFTER
        )

    async def _watch(self) -> None:
        """Restart the minute job when no sweep has run for OVERDUE_AFTER and none is running: the
        wall clock stepped back, and APScheduler would wait for it to catch up."""
        while True:
            await self.monotonic.sleep(WATCH_INTERVAL)
            now = self.monotonic.now()
            if self._sweep_task is None and now > self._watch_deadline and self._apscheduler is not None:
                log.warning(
                    "no sweep for %.0f s (has the wall clock stepped back?): the minute job restarts",
                    now - self._watch_deadline + OVERDUE_AFTER,
                )
                self._apscheduler.reschedule_job(SWEEP_JOB, trigger=_every_minute())
                self._watch_deadline = now + OVERDUE_AFTER

    async def shutdown(self) -> None:
        """Stop sweeping; a sweep in flight gets SHUTDOWN_WAIT seconds to finish, then is cancelled."""
        await self._stop(SHUTDOWN_WAIT)

    async def _stop(self, wait: float) -> None:
        if self._apscheduler is None:
            return
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        self._apscheduler.pause()
        # A sweep APScheduler has just handed to the loop starts now (it would be cancelled before
        # its first step otherwise, and APScheduler would log that with a traceback).
        await asyncio.sleep(0)
        sweep = self._sweep_task
        if sweep is not None and not sweep.done():
            finished, _ = await asyncio.wait({sweep}, timeout=wait)
            if not finished:
                log.warning("the sweep in flight did not finish within %.0f s; cancelled", wait)
                sweep.cancel()
                await asyncio.gather(sweep, return_exceptions=True)
        self._apscheduler.shutdown(wait=False)
        self._apscheduler = None

    async def _scheduled_sweep(self) -> None:
        try:
            await self.sweep()
        except DatabaseBusy as error:
            log.warning("sweep failed: the database did not answer (%s); the next sweep tries again", error)
        except Exception:
            log.exception("sweep failed")

    async def sweep(self) -> None:
        """Send every post and reveal due now, one chat isolated from another. Safe to call any time."""
        async with self._sweeping:
            self._sweep_task = asyncio.current_task()
            try:
                for key in list(self._unrecorded):
                    await self._record(key)
                now = self.clock.now()
                work = await self._work(now)
                async with asyncio.TaskGroup() as group:
                    for chat in work:
                        group.create_task(self._chat(chat, now))
                self._progress_at = self.monotonic.now()
            finally:
                self._sweep_task = None
                self._watch_deadline = self.monotonic.now() + OVERDUE_AFTER

    async def _work(self, now: datetime) -> list[_ChatWork]:
        """What is due now, chat by chat, from three queries; chats with nothing due cost no more."""
        by_chat: dict[str, _ChatWork] = {}

        def chat(key: str, settings_json: str) -> _ChatWork | None:
            if key not in by_chat:
                if ChatRef.from_key(key).platform not in self.adapters:
                    return None
                settings = ChatSettings.from_json(json.loads(settings_json), self.core.settings)
                by_chat[key] = _ChatWork(key, settings)
            return by_chat[key]

        # Subscribed chats a page at a time, keeping only those with a post due: memory stays
        # bounded however many chats subscribe (100,000 rows at once cost over 100 MB).
        after = ""
        while page := await self.store.subscribed_chats(after, CHAT_PAGE):
            after = page[-1].key
            for subscribed in page:
                with _logged_and_skipped(subscribed.key):
                    work = chat(subscribed.key, subscribed.settings_json)
                    if work is None:
                        continue
                    work.schedule_from = subscribed.schedule_from
                    work.last_daily = subscribed.last_daily
                    due = (
                        None
                        if work.settings.paused
                        else due_post(work.settings, work.schedule_from, now, self.grace)
                    )
                    if due is not None and (work.last_daily is None or due[0] > work.last_daily):
                        work.due = due
                    else:
                        del by_chat[work.key]
        stale = self._abandoned_before(now)
        for claim in await self.store.stale_claims(stale):
            if ("post", claim.post_id) in self._unrecorded:
                continue  # sent: only its record is missing
            with _logged_and_skipped(claim.chat_key):
                if work := chat(claim.chat_key, claim.settings_json):
                    work.claims.append(claim)
        for reveal in await self.store.due_reveals(now, stale):
            if ("reveal", reveal.post_id) in self._unrecorded:
                continue
            with _logged_and_skipped(reveal.chat_key):
                if work := chat(reveal.chat_key, reveal.settings_json):
                    work.reveals.append(reveal)
        return [work for work in by_chat.values() if work.due or work.claims or work.reveals]

    def _abandoned_before(self, now: datetime) -> datetime:
        """Claims made before this instant are nobody's any more: past their lease, or (once
        TAKEOVER_WAIT has passed) made before this process took the lead."""
        past_lease = now - CLAIM_LEASE
        since = self._leading_since
        if since is not None and now >= since + TAKEOVER_WAIT:
            return max(past_lease, since)
        return past_lease

    async def _chat(self, work: _ChatWork, now: datetime) -> None:
        async with self._slots:
            if self._standing_down:
                return  # another process leads now
            try:
                for post in work.reveals:
                    await self._reveal(work, post, now)
                for claim in work.claims:
                    await self._resume_claim(work, claim, now)
                if work.due is not None:
                    await self._claim_and_post(work, work.due[0], now)
            except _ChatGoneError:
                pass
            except DatabaseBusy as error:  # the database is away: one line, not a traceback per chat
                log.warning(CHAT_FAILED + " (the database did not answer: %s)", work.key, error)
            except Exception:
                log.exception(CHAT_FAILED, work.key)
            self._progress_at = self.monotonic.now()

    # --- daily posts -------------------------------------------------------------------------

    async def _claim_and_post(self, work: _ChatWork, local_date: date, now: datetime) -> None:
        question, cycle = await self.core.choose_daily_question(work.key)
        post_id = await self._retried(self.store.claim_daily, work.key, question.id, local_date, cycle, now)
        if post_id is None:
            return  # another process claimed it first
        self._log_missed_days(work, local_date)
        await self._send_post(work, post_id, now)

    def _log_missed_days(self, work: _ChatWork, local_date: date) -> None:
        """Log the scheduled days before `local_date` that got no post (down, or paused, past grace)."""
        settings, zone = work.settings, work.settings.zone_info
        assert work.schedule_from is not None
        day = work.schedule_from.astimezone(zone).date()
        if work.last_daily is not None:
            day = max(day, work.last_daily + timedelta(days=1))
        missed = []
        while day < local_date:
            if (
                day.weekday() in settings.weekdays
                and post_instant(day, settings.post_time, zone) > work.schedule_from
            ):
                missed.append(day)
            day += timedelta(days=1)
        if missed:
            log.warning(
                "chat %s: %d scheduled post(s) from %s to %s got none (down or paused past the grace window)",
                work.key,
                len(missed),
                missed[0],
                missed[-1],
            )

    async def _resume_claim(self, work: _ChatWork, claim: StaleClaim, now: datetime) -> None:
        settings = work.settings
        instant = post_instant(claim.local_date, settings.post_time, settings.zone_info)
        if settings.paused or now >= end_of_grace(instant, settings.zone_info, self.grace):
            await self._retried(self.store.mark_failed, claim.post_id)
            log.warning(
                "chat %s: the post for %s was claimed but never sent and is past the grace window "
                "(or the chat is paused); marked failed",
                work.key,
                claim.local_date,
            )
            return
        if await self._retried(self.store.take_over_claim, claim.post_id, claim.claimed_at, now):
            log.info(
                "chat %s: sending the post for %s left pending by an earlier run", work.key, claim.local_date
            )
            await self._send_post(work, claim.post_id, now)

    async def _send_post(self, work: _ChatWork, post_id: int, claimed_at: datetime) -> None:
        reply = await self.core.daily_post_reply(post_id)
        try:
            ref = await self._send(work, reply, claimed_at)
        except _ChatGoneError:
            await self._retried(self.store.mark_failed, post_id)
            raise
        except _GaveUpError:
            return
        # The duplicate window: the platform has the message; this write records it.
        sent_at = self.clock.now()
        reveal_at = reveal_instant(work.settings, sent_at.replace(second=0, microsecond=0))
        await self._record(
            ("post", post_id),
            lambda: self._retried(self.store.mark_sent, post_id, ref.message_id, sent_at, reveal_at),
        )

    # --- reveals -------------------------------------------------------------------------------

    async def _reveal(self, work: _ChatWork, reveal: DueReveal, now: datetime) -> None:
        if now >= end_of_grace(reveal.due_at, work.settings.zone_info, self.grace):
            await self._retried(self.store.end_reveal, reveal.post_id, RevealStatus.SKIPPED)
            log.warning(
                "chat %s: the reveal of post %s (due %s) is past the grace window; skipped",
                work.key,
                reveal.post_id,
                reveal.due_at.isoformat(),
            )
            return
        if not await self._retried(self.store.claim_reveal, reveal.post_id, reveal.claimed_at, now):
            return  # claimed by another process, or revealed by hand meanwhile
        try:
            for reply in await self.core.reveal_replies(reveal.post_id):
                await self._send(work, reply, now)
        except _ChatGoneError:
            await self._retried(self.store.end_reveal, reveal.post_id, RevealStatus.FAILED)
            raise
        except _GaveUpError:
            return
        await self._record(
            ("reveal", reveal.post_id),
            lambda: self._retried(self.store.end_reveal, reveal.post_id, RevealStatus.SENT),
        )

    async def _record(
        self, key: tuple[str, int], write: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        """Record what a platform accepted (`write`, else the one kept for `key`), retried: a claim
        left pending would be sent again. While the database refuses (a full disk, an I/O error),
        the write is kept, retried first by every later sweep, and the claim is not taken over
        meanwhile (see _work): this process never sends it twice."""
        if write is not None:
            self._unrecorded[key] = write
        for attempt in range(RECORD_ATTEMPTS):
            try:
                await self._unrecorded[key]()
            except Exception as error:  # whatever the database says, the message is out
                failure = error
                if attempt + 1 < RECORD_ATTEMPTS:
                    await self._sleep(RECORD_BACKOFF * 2**attempt)
            else:
                del self._unrecorded[key]
                return
        log.error(
            "%s %s: the platform accepted it but the database did not record it (%s); "
            "it is not sent again, and the next sweep tries to record it",
            *key,
            failure,
        )

    # --- the platform ------------------------------------------------------------------------

    async def _send(self, work: _ChatWork, reply: Reply, claimed_at: datetime) -> SentRef:
        """Send one reply, following a move.

        Transient errors are retried with exponential backoff, honouring the platform's
        retry-after, until `max_attempts` or until half the claim's lease is used up.
        """
        give_up_at = claimed_at + CLAIM_LEASE / 2
        backoff = FIRST_BACKOFF
        for attempt in range(1, self.max_attempts + 1):
            chat = work.address(reply)
            try:
                return await self.adapters[chat.platform].send(chat, reply)
            except ChatGone as error:
                log.warning("chat %s is gone (%s): unsubscribed", work.key, error)
                await self.core.unsubscribe(work.key)
                raise _ChatGoneError from error
            except ChatMoved as moved:
                log.info(
                    "chat %s moved to %s: its subscription and progress follow", work.key, moved.new_chat.key
                )
                await self.core.move_chat(work.key, moved.new_chat)
                work.former_keys.add(work.key)
                work.key = moved.new_chat.key
            except TransientError as error:
                wait = min(max(backoff, error.retry_after or 0.0), MAX_BACKOFF)
                if (
                    attempt == self.max_attempts
                    or self.clock.now() + timedelta(seconds=wait) > give_up_at
                    or self._standing_down
                ):
                    log.warning(
                        "chat %s: %s after %d attempts; a later sweep tries again", work.key, error, attempt
                    )
                    raise _GaveUpError from error
                log.info("chat %s: %s; retrying in %.0f s", work.key, error, wait)
                await self._sleep(wait)
                backoff *= 2
        log.warning(
            "chat %s: still moving after %d attempts; a later sweep tries again", work.key, self.max_attempts
        )
        raise _GaveUpError

    async def _retried(self, write: Callable[..., Awaitable[T]], *arguments: object) -> T:
        """A store write, retried while another process holds the database rather than given up:
        a 'sent' that is not recorded would be sent again."""
        attempt = 1
        while True:
            try:
                return await write(*arguments)
            except DatabaseBusy:
                if attempt == WRITE_ATTEMPTS:
                    raise
            await self._sleep(WRITE_BACKOFF * 2**attempt)
            attempt += 1


def _every_minute() -> CronTrigger:
    return CronTrigger(second=0, timezone=UTC)
