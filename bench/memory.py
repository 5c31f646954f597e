"""Resident memory of a bot process: the 10,000-question synthetic bank, 100,000 users.

    python -m bench.memory [--questions 10000] [--users 100000] [--one-file]

A child process first writes the synthetic bank as markdown files, one per chapter of 50
questions (a bank directory as `dailyq` loads it), and bulk-inserts the users into a new
database, each with a private chat subscribed to the daily post. This process then does what a
bot process does: imports both adapters, loads the bank, opens the Store, builds the Core and
a Scheduler (with a Telegram and a Discord adapter, not connected), answers 2,000 commands from
200 users, and sweeps once an hour before the post time (every subscribed chat is read, nothing
is sent). Resident memory (VmRSS) and its peak so far (VmHWM, what ru_maxrss reports) are printed
after each stage; the goals are on the peak after the commands and on the peak with the sweep.

`--one-file` writes the whole bank as one file instead (one markdown-it token stream for all of it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import re
import sqlite3
import tempfile
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.synthetic import synthetic_bank_markdown
from bot.adapters.discord import DiscordAdapter
from bot.adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.core.bank import load
from bot.core.commands import Core
from bot.core.model import ChatRef, Incoming, Reply
from bot.core.scheduler import Scheduler
from bot.core.store import SQLiteStore, iso
from bot.core.timing import ChatSettings
from tests.clock import FakeClock

SEED = 20261128
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # an hour before everyone's 09:00 post
COMMAND_USERS = 200
GOAL_MB = 200


def memory_mb() -> tuple[float, float]:
    """(resident now, resident at its peak) in MB, from /proc/self/status (values in kB)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


# ---- the setup, in a child process so that its memory is not counted -------------------------


def prepare(directory: str, questions: int, users: int, one_file: bool) -> None:
    bank = Path(directory, "bank")
    bank.mkdir()
    text = synthetic_bank_markdown(questions, SEED)
    chapters = [text] if one_file else [c for c in re.split(r"(?m)^(?=# )", text) if c.strip()]
    for number, chapter in enumerate(chapters, start=1):
        (bank / f"{number:03d}.md").write_text(chapter, encoding="utf-8")
    asyncio.run(_populate(Path(directory, "dailyq.sqlite3"), users))


async def _populate(path: Path, users: int) -> None:
    store = await SQLiteStore.open(path)  # the schema, by the real migrations
    await store.close()
    settings = json.dumps(ChatSettings.default(Settings()).to_json())
    since = iso(NOW - timedelta(days=30))
    with closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO users (key, name, lang, created_at) VALUES (?, ?, 'en', ?)",
            ((f"telegram:{n}", f"user {n}", since) for n in range(1, users + 1)),
        )
        db.executemany(
            "INSERT INTO chats (key, platform, chat_id, settings, subscribed, schedule_from, created_at)"
            " VALUES (?, 'telegram', ?, ?, 1, ?, ?)",
            ((f"telegram:{n}", str(n), settings, since, since) for n in range(1, users + 1)),
        )


# ---- the bot process being measured ------------------------------------------------------------


async def commands(core: Core, clock: FakeClock, users: int) -> int:
    """Every user asks, answers, reveals, grades and looks around, in their private chat."""
    count = 0

    async def say(user: int, text: str) -> list[Reply]:
        nonlocal count
        count += 1
        clock.advance(timedelta(seconds=1))
        chat = ChatRef("telegram", str(user))
        return await core.handle(
            Incoming("telegram", chat, str(user), f"user {user}", text, hidden=True, lang="en")
        )

    for user in range(1, users + 1):
        [question] = await say(user, "/quiz")
        await say(user, "/answer ||the keys and values of earlier tokens||")
        await say(user, f"/reveal {question.post_id}")
        await say(user, f"/grade good {question.post_id}")
        for text in ("/stats", "/top", "/tags", "/settings", "/help", "/start"):
            await say(user, text)
    return count


async def measure(directory: Path) -> list[tuple[str, tuple[float, float]]]:
    stages = [("imports (core, both adapters)", memory_mb())]
    loaded = load(directory / "bank")
    if loaded.errors:
        raise SystemExit(f"the synthetic bank has errors: {loaded.errors[:3]}")
    stages.append((f"bank loaded: {len(loaded.bank):,} questions", memory_mb()))
    settings = Settings(db=directory / "dailyq.sqlite3")
    store = await SQLiteStore.open(settings.db)
    try:
        [(users,)] = await store.db.execute_fetchall("SELECT COUNT(*) FROM users")
        clock = FakeClock(NOW)
        core = Core(store, loaded.bank, settings, clock, random.Random(SEED))
        adapters = {
            "telegram": TelegramAdapter("1:memory-bench", base_url="http://127.0.0.1:9/bot"),
            "discord": DiscordAdapter("memory-bench", api_url="http://127.0.0.1:9/api/v10"),
        }
        scheduler = Scheduler(store, core, adapters, clock)
        stages.append((f"store over {users:,} users, core, scheduler, adapters", memory_mb()))
        handled = await commands(core, clock, COMMAND_USERS)
        stages.append((f"{handled:,} commands from {COMMAND_USERS} users", memory_mb()))
        await scheduler.sweep()
        [(subscribed,)] = await store.db.execute_fetchall("SELECT COUNT(*) FROM chats WHERE subscribed = 1")
        stages.append((f"a sweep over {subscribed:,} subscribed chats", memory_mb()))
    finally:
        await store.close()
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--one-file", action="store_true", help="the whole bank in one markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        setup = multiprocessing.get_context("spawn").Process(
            target=prepare, args=(directory, args.questions, args.users, args.one_file)
        )
        setup.start()
        setup.join()
        if setup.exitcode:
            raise SystemExit(f"preparing the bank and the database failed ({setup.exitcode})")
        stages = asyncio.run(measure(Path(directory)))
    layout = "one file" if args.one_file else "one file per chapter of 50 questions"
    print(f"resident memory after each stage (MB); the bank as {layout}")
    print(f"  {'VmRSS':>7} {'peak':>7}")
    for stage, (mb, peak_mb) in stages:
        print(f"  {mb:7.1f} {peak_mb:7.1f}  {stage}")
    (_, before_sweep), (_, peak) = stages[-2][1], stages[-1][1]
    print()
    print(f"peak_rss_mb_after_commands: {before_sweep:.0f} (goal: < {GOAL_MB})")
    print(f"peak_rss_mb_with_sweep: {peak:.0f} (goal: < {GOAL_MB})")


if __name__ == "__main__":
    main()
