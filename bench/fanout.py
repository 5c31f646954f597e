"""Daily fan-outs to 1,000 chats at the platform's rate limit, through the real stack, five times.

    python -m bench.fanout [--chats 1000] [--scale 2.5] [--runs 5] [--platform telegram|discord|both]
                           [--telegram-pace 29] [--db URL]

Telegram: the real Scheduler, Core and TelegramAdapter (python-telegram-bot with the adapter's
SteadyPacer) against the fake Bot API enforcing Telegram's flood limits, 30 messages/s overall and 20/min per
group, with 429 retry_after past them. Half the chats are groups (negative ids), half private.
Discord: the same with DiscordAdapter, whose own pacer keeps under the limit, against the fake
Discord enforcing 50 requests/s overall and 5 per 5 s per channel; a post there is two requests
(the message, then its answer thread).

To keep the run short, `--scale` multiplies the fakes' limits and the bot's limiter settings
(the pacers' rates and burst) by the same factor; the output states it. `--telegram-pace` sets
the Telegram pacer's messages per second before scaling (production: 29), to measure how close
to Telegram's 30 it can go.
The schedule's instant comes from a FakeClock set to the post time; the fan-out itself runs in
real time, since it is a rate measurement. The subscriptions are bulk-loaded in one
transaction (their settings JSON is what /subscribe stores). Each fake runs in a child
process, as the real platform runs elsewhere, so the bot's process is measured alone; with
`--platform both` the two fan-outs run at once, each bot in a process of its own.

The database is a new SQLite file, or with `--db postgresql://…` a PostgreSQL database whose
tables each run replaces (then the two platforms run one after the other). The sweep is run by
the leader, as in `dailyq run`: on PostgreSQL the bot first wins the advisory-lock election.

Achieved rate = messages (Telegram) or requests (Discord) the fake accepted during the fan-out,
per second from the first to the last; the goal compares it with the allowed rate. The fan-out
runs `--runs` times (at least five; with `both`, the two platforms side by side each time), each
on a fresh database and fake, and every goal line is the median of the runs (posts lost and
duplicates: the worst run), printed below every run's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.synthetic import synthetic_bank
from bot.adapters.discord import SEND_BURST, SENDS_PER_SECOND, DiscordAdapter, TokenBucket
from bot.adapters.telegram import OVERALL_MESSAGES_PER_SECOND, TelegramAdapter, smooth_rate_limiter
from bot.app import leadership_for
from bot.config import Settings, database_location
from bot.core.commands import Core
from bot.core.ports import Adapter
from bot.core.scheduler import Scheduler
from bot.core.store import Store, open_store
from bot.core.store.tables import TABLES
from bot.core.timing import ChatSettings
from tests.clock import FakeClock
from tests.fakes.discord_api import FakeDiscord, RateLimits
from tests.fakes.telegram_api import FakeTelegram, FloodLimits

POST_DAY = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # a Friday, 09:00 UTC: every chat's post time
SEED = 20261128
BANK_QUESTIONS = 500
RATE_GOAL = 0.95
MIN_RUNS = 5  # a median of fewer runs is a lucky or an unlucky one
FIRST_GROUP_ID = -1_001_000_000_000
FIRST_USER_ID = 7_000_000_000


# ---- a fake platform in a child process -------------------------------------------------------

Handlers = dict[str, Callable[..., Awaitable[Any]]]


class Child:
    """A fake platform server running in its own process, asked for things over a pipe.

    `serve` runs in the child: it starts the fake, sends what the bot needs to reach it, then
    answers requests with `answer_requests` until asked to stop.
    """

    def __init__(self, serve: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(target=serve, args=(theirs, *args), daemon=True)
        self._process.start()
        self.info: dict[str, Any] = self._pipe.recv()

    async def ask(self, request: str, *args: Any) -> Any:
        await asyncio.to_thread(self._pipe.send, (request, args))
        return await asyncio.to_thread(self._pipe.recv)

    def close(self) -> None:
        self._pipe.send(("stop", ()))
        self._process.join(10)


async def answer_requests(pipe: Connection, handlers: Handlers) -> None:
    """The child's side: run each request's handler and send back its result, until "stop".
    "cpu" is always there: the child's CPU seconds so far (the fake's own cost)."""

    async def cpu() -> float:
        return time.process_time()

    handlers = {"cpu": cpu, **handlers}
    while True:
        request, args = await asyncio.to_thread(pipe.recv)
        if request == "stop":
            return
        pipe.send(await handlers[request](*args))


def serve_telegram(pipe: Connection, scale: float) -> None:
    asyncio.run(_serve_telegram(pipe, scale))


async def _serve_telegram(pipe: Connection, scale: float) -> None:
    async with FakeTelegram(limits=FloodLimits().scaled(scale)) as tg:
        pipe.send({"base_url": tg.base_url, "token": tg.token})

        async def report() -> dict[str, Any]:
            accepted = [c for c in tg.calls if c.method == "sendMessage" and c.status == 200]
            return {
                "per_chat": Counter(c.chat_id for c in accepted),
                "times": sorted(c.answered_at for c in accepted),
                "refused": tg.flood_refusals,
            }

        await answer_requests(pipe, {"report": report})


def serve_discord(pipe: Connection, scale: float, channels: int) -> None:
    asyncio.run(_serve_discord(pipe, scale, channels))


async def _serve_discord(pipe: Connection, scale: float, channels: int) -> None:
    fake = await FakeDiscord(limits=RateLimits().scaled(scale)).start()
    try:
        # Made before the bot connects, so they come in GUILD_CREATE as a real guild's would.
        ids = [fake.add_text_channel(f"study-{n}") for n in range(channels)]
        pipe.send({"api_url": fake.api_url, "gateway_url": fake.gateway_url, "channels": ids})

        async def report() -> dict[str, Any]:
            fan_out = [
                c for c in fake.calls if c.method in ("GET", "POST") and c.path.startswith("/channels/")
            ]
            posts = [m for m in fake.messages.values() if m["embeds"] and m["type"] == 0]
            return {
                "per_chat": Counter(int(m["channel_id"]) for m in posts),
                "times": sorted(c.at for c in fan_out if c.status == 200),
                "threads": len(fake.threads()),
                "refused": fake.rate_limited,
            }

        await answer_requests(pipe, {"report": report})
    finally:
        await fake.close()


# ---- the bot's side ---------------------------------------------------------------------------


async def subscribe_all(store: Store, keys: list[tuple[str, bool]], settings: Settings) -> None:
    """Every chat subscribed for 09:00 UTC since the day before, in place of whatever the database
    held: one bulk transaction (what copy-db does)."""
    stored = json.dumps(ChatSettings.default(settings).updated("time", "09:00").to_json())
    since = POST_DAY - timedelta(days=1)
    unset = dict.fromkeys(TABLES["chats"]) | {"settings": stored, "subscribed": True, "revision": 0}
    chats = [
        tuple(
            (
                unset
                | {"key": key, "platform": key.partition(":")[0], "chat_id": key.partition(":")[2]}
                | {"is_group": is_group, "schedule_from": since, "created_at": since}
            ).values()
        )
        for key, is_group in keys
    ]

    async def rows() -> AsyncIterator[tuple[str, list[tuple]]]:
        yield "chats", chats

    await store.import_rows(rows(), dict.fromkeys(TABLES, 0) | {"chats": len(chats)}, replace=True)


async def unsent(store: Store) -> int:
    """Subscribed chats without a post marked sent for the post day: none at all, or still pending."""
    missing, after = 0, ""
    while page := await store.subscribed_chats(after, 1000):
        after = page[-1].key
        missing += sum(1 for chat in page if chat.last_daily != POST_DAY.date())
    pending = await store.stale_claims(POST_DAY + timedelta(days=1))
    return missing + len(pending)


class CountingHandler(logging.Handler):
    """Counts the warnings and errors logged during the sweep, by logger: a fan-out near the limit
    logs the 429s that python-telegram-bot or discord.py meet, and the scheduler's retries."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.name] += 1


@dataclass
class Sweep:
    backend: str
    elected_seconds: float  # from the start of the election to this process leading
    seconds: float
    cpu_seconds: float  # the bot's process
    fake_cpu_seconds: float  # the fake's process
    unsent_in_db: int  # subscribed chats without a post marked sent
    logged: dict[str, int]


async def fan_out(
    platform: str, adapter: Adapter, keys: list[tuple[str, bool]], db: Path | str, fake: Child
) -> Sweep:
    """Subscribe the chats, run the adapter, win the election, sweep once at the post time."""
    settings = Settings(db=db, timezone="UTC", post_time="09:00")
    store = await open_store(settings.db)
    leadership = leadership_for(settings)
    try:
        await subscribe_all(store, keys, settings)
        clock = FakeClock(POST_DAY + timedelta(seconds=30))
        core = Core(store, synthetic_bank(BANK_QUESTIONS, SEED), settings, clock, random.Random(SEED))
        scheduler = Scheduler(store, core, {platform: adapter}, clock)
        running = asyncio.create_task(adapter.run(core))
        started = time.perf_counter()
        campaign = asyncio.create_task(leadership.run())
        try:
            await asyncio.wait_for(leadership.wait_for(True), 60)
            elected = time.perf_counter() - started
            if isinstance(adapter, DiscordAdapter):
                await asyncio.wait_for(adapter.client.wait_until_ready(), 60)
            fake_cpu = await fake.ask("cpu")
            logged = CountingHandler()
            logging.getLogger().addHandler(logged)
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                await scheduler.sweep()
            finally:
                logging.getLogger().removeHandler(logged)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            fake_cpu = await fake.ask("cpu") - fake_cpu
        finally:
            for task in (running, campaign):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        return Sweep(store.backend, elected, seconds, cpu, fake_cpu, await unsent(store), dict(logged.counts))
    finally:
        await store.close()


@dataclass
class Figures:
    """One platform's fan-out, as printed (and passed between processes as JSON)."""

    platform: str
    scale: float
    backend: str  # the database: sqlite or postgresql
    elected_seconds: float  # until the bot led (won the election on PostgreSQL)
    limits: str  # what the fake enforces and how the bot paces, after scaling
    unit: str  # what the limit counts: messages or requests
    chats: int
    sweep_seconds: float
    cpu_seconds: float
    fake_cpu_seconds: float
    accepted: int
    achieved_per_second: float
    allowed_per_second: float
    rate_limited: int  # 429s met
    lost: int
    duplicates: int
    threads: int | None = None
    logged: dict[str, int] = field(default_factory=dict)  # warnings and errors during the sweep, by logger

    @classmethod
    def of(
        cls,
        platform: str,
        scale: float,
        limits: str,
        unit: str,
        allowed: float,
        chats: int,
        sweep: Sweep,
        report: dict[str, Any],
    ) -> Figures:
        times, per_chat = report["times"], report["per_chat"]
        delivered = sum(1 for count in per_chat.values() if count)
        return cls(
            platform=platform,
            scale=scale,
            backend=sweep.backend,
            elected_seconds=sweep.elected_seconds,
            limits=limits,
            unit=unit,
            chats=chats,
            sweep_seconds=sweep.seconds,
            cpu_seconds=sweep.cpu_seconds,
            fake_cpu_seconds=sweep.fake_cpu_seconds,
            accepted=len(times),
            achieved_per_second=(len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
            allowed_per_second=allowed,
            rate_limited=report["refused"],
            lost=max(chats - delivered, sweep.unsent_in_db),
            duplicates=sum(count - 1 for count in per_chat.values() if count > 1),
            threads=report.get("threads"),
            logged=sweep.logged,
        )

    def describe(self) -> str:
        lines = [
            f"{self.platform}: {self.chats:,} chats, scale ×{self.scale:g}: {self.limits}",
            f"  database           {self.backend}; this process led after {self.elected_seconds:.2f} s",
            f"  sweep              {self.sweep_seconds:8.1f} s; CPU {self.cpu_seconds:.1f} s in the bot's"
            f" process, {self.fake_cpu_seconds:.1f} s in the fake's",
            f"  {self.unit + ' accepted':<19}{self.accepted:8,}",
            f"  achieved           {self.achieved_per_second:8.1f} {self.unit}/s",
            f"  allowed            {self.allowed_per_second:8.1f} {self.unit}/s",
            f"  429s met           {self.rate_limited:8,}",
        ]
        if self.threads is not None:
            lines.append(f"  answer threads     {self.threads:8,}")
        for logger, count in sorted(self.logged.items()):
            lines.append(f"  logged             {count:8,} warnings or errors from {logger}")
        return "\n".join(lines)

    @property
    def rate_ratio(self) -> float:
        return self.achieved_per_second / self.allowed_per_second


def goals(runs: list[Figures]) -> list[str]:
    """One platform's goal lines over its runs: the median rate, the worst run's losses and duplicates."""
    name = runs[0].platform
    ratios = [run.rate_ratio for run in runs]
    return [
        f"  ({name}: achieved ÷ allowed run by run {', '.join(f'{r:.3f}' for r in ratios)};"
        f" 429s met {', '.join(str(run.rate_limited) for run in runs)})",
        f"{name}_fanout_rate_ratio: {statistics.median(ratios):.2f} (goal: ≥ {RATE_GOAL:.2f})",
        f"{name}_posts_lost: {max(run.lost for run in runs)} (goal: = 0)",
        f"{name}_duplicates: {max(run.duplicates for run in runs)} (goal: = 0)",
    ]


async def telegram(chats: int, scale: float, db: Path | str, pace: float) -> Figures:
    overall, per_group = 30 * scale, 20 * scale
    fake = Child(serve_telegram, scale)
    try:
        adapter = TelegramAdapter(
            fake.info["token"], base_url=fake.info["base_url"], rate_limiter=smooth_rate_limiter(scale, pace)
        )
        groups = chats // 2
        keys = [(f"telegram:{FIRST_GROUP_ID - n}", True) for n in range(groups)]
        keys += [(f"telegram:{FIRST_USER_ID + n}", False) for n in range(chats - groups)]
        sweep = await fan_out("telegram", adapter, keys, db, fake)
        report = await fake.ask("report")
    finally:
        fake.close()
    limits = (
        f"the fake allows {overall:g} messages/s and {per_group:g}/min per group;"
        f" the bot paces {pace * scale:g}/s, {per_group:g}/min per group"
    )
    return Figures.of("telegram", scale, limits, "messages", overall, chats, sweep, report)


async def discord(chats: int, scale: float, db: Path | str) -> Figures:
    pace, burst = SENDS_PER_SECOND * scale, round(SEND_BURST * scale)
    fake = Child(serve_discord, scale, chats)
    try:
        adapter = DiscordAdapter(
            "fake-token", api_url=fake.info["api_url"], gateway_url=fake.info["gateway_url"]
        )
        adapter.pacer = TokenBucket(pace, burst)
        keys = [(f"discord:{channel}", True) for channel in fake.info["channels"]]
        sweep = await fan_out("discord", adapter, keys, db, fake)
        report = await fake.ask("report")
    finally:
        fake.close()
    limits = (
        f"the fake allows {50 * scale:g} requests/s and {5 * scale:g} per 5 s per channel;"
        f" the adapter's pacer {pace:g}/s, burst {burst}"
    )
    return Figures.of("discord", scale, limits, "requests", 50 * scale, chats, sweep, report)


async def in_own_process(platform: str, chats: int, scale: float, pace: float, db: str | None) -> Figures:
    """One platform's fan-out run by a fresh `python -m bench.fanout`, so the two run side by side
    on the two cores; it answers with its figures as JSON on its last line."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.fanout",
        "--platform",
        platform,
        "--chats",
        str(chats),
        "--scale",
        str(scale),
        "--telegram-pace",
        str(pace),
        "--runs",
        "1",
        "--json",
        *(["--db", db] if db else []),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await child.communicate()
    if child.returncode:
        raise RuntimeError(f"the {platform} fan-out failed (exit code {child.returncode})")
    return Figures(**json.loads(output.decode().splitlines()[-1]))


async def one_run(args: argparse.Namespace) -> list[Figures]:
    given = str(args.db) if args.db else None
    if args.platform == "both":
        runs = [
            in_own_process(platform, args.chats, args.scale, args.telegram_pace, given)
            for platform in ("telegram", "discord")
        ]
        # On one database the two would replace each other's rows: one after the other there.
        return [await run for run in runs] if given else list(await asyncio.gather(*runs))
    with tempfile.TemporaryDirectory() as directory:
        db = args.db or Path(directory) / f"{args.platform}.sqlite3"
        if args.platform == "telegram":
            return [await telegram(args.chats, args.scale, db, args.telegram_pace)]
        return [await discord(args.chats, args.scale, db)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=2.5, help="multiplies the limits on both sides")
    parser.add_argument(
        "--platform",
        choices=("telegram", "discord", "both"),
        default="both",
        help="both: the two fan-outs at once, each in a process of its own",
    )
    parser.add_argument(
        "--runs", type=int, default=MIN_RUNS, help=f"fan-outs; the goals are medians (≥ {MIN_RUNS})"
    )
    parser.add_argument(
        "--telegram-pace",
        type=float,
        default=OVERALL_MESSAGES_PER_SECOND,
        help="the Telegram pacer's messages/s before scaling (Telegram allows 30)",
    )
    parser.add_argument(
        "--db",
        type=database_location,
        help="a scratch database, its tables replaced: a postgresql:// URL or a SQLite file (default: a new one)",
    )
    parser.add_argument("--json", action="store_true", help="one run, its figures only, as JSON")
    args = parser.parse_args()
    # The libraries' warnings are counted during the sweep (Figures.logged), not printed.
    logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()])
    if args.json:
        [figures] = await one_run(args)
        print(json.dumps(asdict(figures)))
        return
    if args.runs < MIN_RUNS:
        parser.error(f"--runs: at least {MIN_RUNS}, for a median that is not one lucky run")
    by_platform: dict[str, list[Figures]] = {}
    for number in range(1, args.runs + 1):
        for figures in await one_run(args):
            print(f"\nrun {number}, {figures.describe()}", flush=True)
            by_platform.setdefault(figures.platform, []).append(figures)
    print()
    print("\n".join(line for runs in by_platform.values() for line in goals(runs)))


if __name__ == "__main__":
    asyncio.run(main())
