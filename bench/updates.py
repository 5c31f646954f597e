"""Input throughput: 200 users at once sending /quiz, answers and button presses to the real stack.

    python -m bench.updates [--users 200] [--rounds 1] [--repeat 5] [--questions 1000] [--db URL]

Each user plays `rounds` times: /quiz, an answer (a spoiler reply to the question), a press on its
Reveal button, a press on the Good grade button; the next step comes as soon as the bot's reply
to the last one is in. The updates are injected into the fake Bot API's getUpdates queue and the
real TelegramAdapter (python-telegram-bot polling, the real Core on a SQLite file) answers them.
A minimal echo bot on the same stack (python-telegram-bot, the same concurrency of 64 updates)
then gets the same script against the same fake in the same run; it echoes a message's text and
answers a button press then echoes its data, so both bots make the same Bot API calls. It is
the echo bot as python-telegram-bot builds it (its httpx transport): the goal line's. A second
echo bot on dailyq's own transport (`bot/adapters/telegram_http.py`, aiohttp) runs beside it, so
the figures also show dailyq's own work above the least a bot on that transport does.

Latency: from the moment an update is queued to the moment the fake answered the bot's reply
(sendMessage). The fake and its users run in a child process; the bot's process is measured
alone. Neither bot has a rate limiter here: this measures what an update costs, not pacing.
Cost per update: CPU seconds of the bot's process (its SQLite thread included) per update. The
bots run `--repeat` times each (at least five), interleaved: dailyq, echo, echo-aio, dailyq… Each
dailyq run is compared with the echo run right after it (on a shared machine the CPU an update
costs drifts by a third from minute to minute, alike for both bots), and the goal line is the
median of those ratios: the typical run, not the lucky one. The table shows every run and ratio.
With `--db postgresql://…` dailyq also runs on that (scratch) database, interleaved with the two
others, and the cost per update on PostgreSQL is compared with the cost on SQLite, run by run: its
CPU is the bot's process plus the server processes serving it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bench.fanout import Child, answer_requests
from bench.synthetic import synthetic_bank
from bot.adapters.telegram import CONCURRENT_UPDATES, TelegramAdapter
from bot.adapters.telegram_http import AiohttpRequest, RequestTimeouts
from bot.config import Settings, database_location
from bot.core.clock import SystemClock
from bot.core.commands import Core
from bot.core.store import Store, open_store
from bot.core.store.tables import TABLES
from tests.fakes.telegram_api import Call, FakeTelegram, User, private_chat, spoiler

SEED = 20261128
FIRST_USER_ID = 5_000_000_000
STEP_LIMIT = 60.0  # seconds a user waits for one reply before the step counts as unanswered
COST_GOAL = 1.3
POSTGRESQL_COST_GOAL = 1.3  # dailyq on PostgreSQL ÷ dailyq on SQLite, cost per update
BOT_NAMES = {"sqlite": "dailyq", "postgresql": "dailyq-pg"}
ECHO_NAMES = {"httpx": "echo", "aiohttp": "echo-aio"}
MIN_RUNS = 5  # a median of fewer runs is a lucky or an unlucky one
ANSWER = "keys and values of the earlier tokens, kept so they are not computed again"


# ---- the fake and its users, in the child process ----------------------------------------------


def serve(pipe: Connection) -> None:
    asyncio.run(_serve(pipe))


async def _serve(pipe: Connection) -> None:
    async with FakeTelegram() as tg:
        inboxes: dict[int, asyncio.Queue[Call]] = defaultdict(asyncio.Queue)

        def deliver(call: Call) -> None:
            if call.method == "sendMessage" and call.status == 200 and call.chat_id is not None:
                inboxes[call.chat_id].put_nowait(call)

        tg.watch(deliver)
        pipe.send({"base_url": tg.base_url, "token": tg.token})

        async def polls() -> int:
            return len(tg.calls_to("getUpdates"))

        async def wait_polling(seen: int) -> None:
            await tg.wait_until(lambda: len(tg.calls_to("getUpdates")) > seen, within=30)

        async def drive(users: int, rounds: int) -> dict[str, Any]:
            inboxes.clear()
            latencies: list[float] = []
            unanswered = 0

            async def play(number: int) -> None:
                nonlocal unanswered
                person = User(FIRST_USER_ID + number, f"user {number}", language_code="en")
                chat, inbox = private_chat(person), inboxes[person.id]

                async def step(act: Callable[[], object]) -> Call | None:
                    nonlocal unanswered
                    queued = time.monotonic()
                    act()
                    try:
                        async with asyncio.timeout(STEP_LIMIT):
                            reply = await inbox.get()
                    except TimeoutError:
                        unanswered += 1
                        return None
                    assert reply.answered_at is not None
                    latencies.append(reply.answered_at - queued)
                    return reply

                for _ in range(rounds):
                    question = await step(partial(tg.user_says, chat, person, "/quiz"))
                    if question is None:
                        return
                    replied = question.result["message_id"]
                    await step(
                        partial(
                            tg.user_says, chat, person, ANSWER, entities=spoiler(ANSWER), reply_to=replied
                        )
                    )
                    reveal = await step(
                        partial(tg.press, button(question, "/reveal"), question.result, person)
                    )
                    if reveal is None:
                        return
                    await step(partial(tg.press, button(reveal, "/grade good"), reveal.result, person))

            began = time.monotonic()
            await asyncio.gather(*(play(n) for n in range(users)))
            return {"latencies": latencies, "seconds": time.monotonic() - began, "unanswered": unanswered}

        await answer_requests(pipe, {"polls": polls, "wait_polling": wait_polling, "drive": drive})


def button(call: Call, prefix: str) -> str:
    """The callback data of the reply's button starting with `prefix`; the echo bot's replies have
    no buttons, so its users press one with the prefix alone (the fake doesn't check)."""
    return next(
        (b["callback_data"] for b in call.buttons if b.get("callback_data", "").startswith(prefix)), prefix
    )


# ---- the two bots, in this process -------------------------------------------------------------


@dataclass
class Run:
    bot: str
    updates: int
    seconds: float
    cpu_seconds: float
    fake_cpu_seconds: float
    latencies: list[float]
    unanswered: int
    server_cpu_seconds: float = 0.0  # PostgreSQL: the server processes serving the bot

    @property
    def cost_ms_per_update(self) -> float:
        """What an update costs the bot and its database: SQLite works inside the bot's process,
        PostgreSQL in server processes of its own, counted here."""
        return (self.cpu_seconds + self.server_cpu_seconds) / self.updates * 1000

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds

    @property
    def cpu_ms_per_update(self) -> float:
        return self.cpu_seconds / self.updates * 1000

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    def describe(self) -> str:
        return (
            f"{self.bot:<10} {self.updates:>7,} {self.per_second:>10.0f} {statistics.median(self.latencies) * 1000:>8.1f}"
            f" {self.percentile_ms(0.99):>8.1f} {self.cpu_ms_per_update:>9.2f}"
            f" {self.server_cpu_seconds / self.updates * 1000:>8.2f} {self.fake_cpu_seconds / self.updates * 1000:>10.2f}"
            f" {self.unanswered:>10}"
        )


async def measure(bot: str, fake: Child, users: int, rounds: int) -> Run:
    fake_cpu = await fake.ask("cpu")
    started = time.process_time()
    outcome = await fake.ask("drive", users, rounds)
    cpu = time.process_time() - started
    fake_cpu = await fake.ask("cpu") - fake_cpu
    latencies = outcome["latencies"]
    return Run(bot, len(latencies), outcome["seconds"], cpu, fake_cpu, latencies, outcome["unanswered"])


async def ours(fake: Child, users: int, rounds: int, questions: int, database: Path | str) -> Run:
    settings = Settings(db=database, timezone="UTC", post_time="09:00", lang="en")
    store = await open_store(settings.db)
    try:
        if store.backend == "postgresql":
            await emptied(store)
        core = Core(store, synthetic_bank(questions, SEED), settings, SystemClock(), random.Random(SEED))
        adapter = TelegramAdapter(fake.info["token"], base_url=fake.info["base_url"], rate_limiter=False)
        seen = await fake.ask("polls")
        running = asyncio.create_task(adapter.run(core))
        try:
            await fake.ask("wait_polling", seen)
            await fake.ask("drive", users // 10, 1)  # warm-up: connections, caches
            if store.backend == "sqlite":
                return await measure(BOT_NAMES["sqlite"], fake, users, rounds)
            before = await server_cpu(database)
            run = await measure(BOT_NAMES["postgresql"], fake, users, rounds)
            after = await server_cpu(database)
            run.server_cpu_seconds = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
            return run
        finally:
            running.cancel()
            with suppress(asyncio.CancelledError):
                await running
    finally:
        await store.close()


async def server_cpu(url: Path | str) -> dict[int, float]:
    """CPU seconds so far of each server process serving the bot's connections (the bench's
    database runs on this machine, so /proc has them; connections stay open once opened)."""
    connection = await asyncpg.connect(str(url))
    try:
        pids = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'dailyq bot ' || current_schema()"
        )
    finally:
        await connection.close()
    return {pid: seconds for (pid,) in pids if (seconds := process_cpu(pid)) is not None}


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user and system) of a process so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def emptied(store: Store) -> None:
    """The scratch database as new, so that each run starts from nothing as on a new SQLite file:
    its rows replaced by none, the way `dailyq copy-db --replace` replaces a target's."""

    async def no_rows() -> AsyncIterator[tuple[str, list[tuple]]]:
        return
        yield

    await store.import_rows(no_rows(), dict.fromkeys(TABLES, 0), replace=True)


def echo_bot(token: str, base_url: str, transport: str) -> Application:
    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer()
        await context.bot.send_message(query.message.chat.id, query.data or "?")

    builder = ApplicationBuilder().token(token).base_url(base_url).concurrent_updates(CONCURRENT_UPDATES)
    if transport == "aiohttp":  # dailyq's own transport, in place of python-telegram-bot's httpx
        builder = builder.request(AiohttpRequest(RequestTimeouts(), pool_size=256)).get_updates_request(
            AiohttpRequest(RequestTimeouts(), pool_size=1)
        )
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.add_handler(CallbackQueryHandler(pressed))
    return app


async def echo(fake: Child, users: int, rounds: int, transport: str = "httpx") -> Run:
    app = echo_bot(fake.info["token"], fake.info["base_url"], transport)
    async with app:
        assert app.updater is not None
        seen = await fake.ask("polls")
        await app.start()
        await app.updater.start_polling(timeout=10)
        try:
            await fake.ask("wait_polling", seen)
            await fake.ask("drive", users // 10, 1)
            return await measure(ECHO_NAMES[transport], fake, users, rounds)
        finally:
            await app.updater.stop()
            await app.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1, help="quiz → answer → reveal → grade, per user")
    parser.add_argument(
        "--repeat", type=int, default=MIN_RUNS, help=f"runs of each bot, interleaved (at least {MIN_RUNS})"
    )
    parser.add_argument("--questions", type=int, default=1000, help="size of the synthetic bank")
    parser.add_argument(
        "--db", type=database_location,
        help="also run dailyq on this postgresql:// URL of a scratch database (its rows are deleted), "
        "beside dailyq on SQLite, and compare the two",
    )  # fmt: skip
    args = parser.parse_args()
    if args.repeat < MIN_RUNS:
        parser.error(f"--repeat: at least {MIN_RUNS}, for a median that is not one lucky run")
    fake = Child(serve)
    runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory() as directory:
            for number in range(args.repeat):
                database = Path(directory, f"updates-{number}.sqlite3")
                runs.append(await ours(fake, args.users, args.rounds, args.questions, database))
                if args.db:
                    runs.append(await ours(fake, args.users, args.rounds, args.questions, args.db))
                runs.append(await echo(fake, args.users, args.rounds))
                runs.append(await echo(fake, args.users, args.rounds, "aiohttp"))
    finally:
        fake.close()
    print(
        f"{args.users} users at once, {args.rounds} rounds of /quiz, answer, Reveal, Good each; {args.repeat} runs per bot"
    )
    print(
        f"{'bot':<10} {'updates':>7} {'updates/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/u':>9} {'db ms/u':>8} {'fake ms/u':>10} {'unanswered':>10}"
    )
    for run in runs:
        print(run.describe())
    def of(bot: str) -> list[Run]:
        return [run for run in runs if run.bot == bot]

    def ratios_to(echo: str) -> list[float]:
        """Each dailyq run's cost per update ÷ that of the `echo` run after it (and after the
        PostgreSQL run between them)."""
        pairs = zip(of(BOT_NAMES["sqlite"]), of(echo), strict=True)
        return [mine.cpu_ms_per_update / theirs.cpu_ms_per_update for mine, theirs in pairs]

    ratios, own = ratios_to(ECHO_NAMES["httpx"]), ratios_to(ECHO_NAMES["aiohttp"])
    print(
        f"cost per update, dailyq ÷ echo, run by run (the goal line is their median of {len(ratios)}): "
        + ", ".join(f"{ratio:.2f}" for ratio in ratios)
    )
    print(
        "cost per update, dailyq ÷ the echo bot on dailyq's transport (aiohttp), run by run: "
        + ", ".join(f"{ratio:.2f}" for ratio in own)
        + f"; median {statistics.median(own):.2f} (dailyq's own work above the least a bot does)"
    )
    throughput = statistics.median(
        mine.per_second / theirs.per_second
        for mine, theirs in zip(of(BOT_NAMES["sqlite"]), of(ECHO_NAMES["httpx"]), strict=True)
    )
    print(f"throughput dailyq ÷ echo, median: {throughput:.2f}")
    print()
    print(f"unanswered_updates: {sum(run.unanswered for run in runs)} (goal: = 0)")
    print(f"cost_per_update_vs_echo: {statistics.median(ratios):.2f} (goal: ≤ {COST_GOAL})")
    if args.db:
        shared = list(zip(of(BOT_NAMES["postgresql"]), of(BOT_NAMES["sqlite"]), strict=True))
        pg_ratios = [pg.cost_ms_per_update / lite.cost_ms_per_update for pg, lite in shared]
        print(
            "cost per update, PostgreSQL ÷ SQLite, run by run: " + ", ".join(f"{ratio:.2f}" for ratio in pg_ratios)
        )
        print(
            f"cost_per_update_postgresql_vs_sqlite: {statistics.median(pg_ratios):.2f} (goal: ≤ {POSTGRESQL_COST_GOAL};"
            " the bot's process and the server's processes serving it)"
        )


if __name__ == "__main__":
    asyncio.run(main())
