"""Several `dailyq run` processes on one PostgreSQL database, as an operator runs them.

Real processes (`python -m bot run`) against the fake Bot API and the fake Discord on 127.0.0.1,
sharing a schema of their own on the test server. Time is real, as in tests/test_app.py: every
chat is subscribed (through the core, on a fake clock) the day before for 00:00 UTC, so each
post is due the moment a process leads.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bot.config import Settings
from bot.core.bank import load
from bot.core.commands import Core
from bot.core.model import ChatRef, Incoming
from bot.core.scheduler import CONCURRENCY
from bot.core.store import open_store
from tests.clock import FakeClock
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram, User, private_chat
from tests.test_app import DUE_AT_START, BotProcess, bank_markdown, bot_env
from tests.test_app import bank as bank  # the fixture, by the name the tests ask for

LEADS = "leader: this process now leads"
FAN_OUT = 500
KILL_AFTER = 150  # posts delivered when the leader is killed: the fan-out is a third done
TAKEOVER_LIMIT = 120.0  # seconds: every chat has its post this soon after the leader's death
POLL_FAILOVER_LIMIT = 30.0  # seconds: updates are answered again this soon after it
ALICE = User(1001, "Alice", language_code="en")


async def _yes() -> bool:
    return True


async def subscribe(settings: Settings, chats: Iterable[ChatRef], *, group: bool) -> None:
    """Subscribe the chats through the real core, yesterday: today's post is due at once."""
    store = await open_store(settings.db)
    try:
        core = Core(store, load(settings.content).bank, settings, FakeClock(datetime.now(UTC) - timedelta(days=1)))
        for chat in chats:
            incoming = Incoming(chat.platform, chat, "1", "admin", "/subscribe", is_group=group, is_admin=_yes)
            [reply] = await core.handle(incoming)
            assert reply.text.startswith("Subscribed"), reply.text
    finally:
        await store.close()


@asynccontextmanager
async def processes(env: dict[str, str], count: int, cwd: Path) -> AsyncIterator[list[BotProcess]]:
    """`count` bots started at once; each is stopped (SIGTERM, then killed) on the way out."""
    async with AsyncExitStack() as stack:
        bots = await asyncio.gather(*(BotProcess.start(env, "run", cwd=cwd) for _ in range(count)))
        for bot in bots:
            stack.push_async_callback(bot.exit_code)
            stack.callback(bot.kill)
        yield list(bots)


async def the_leader(bots: list[BotProcess]) -> BotProcess:
    """The one process that logs that it leads (waiting for it)."""
    waits = {asyncio.ensure_future(bot.line_with(LEADS)): bot for bot in bots}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in pending:
        wait.cancel()
    return waits[done.pop()]


async def said(tg: FakeTelegram, user: User, text: str, within: float = 20.0) -> str:
    tg.user_says(private_chat(user), user, text)
    [answer] = await tg.wait_for("sendMessage", chat_id=user.id, within=within)
    return answer.text


def stats_counts(text: str) -> str:
    return re.sub(r"\s+", " ", text)


async def test_three_processes_share_the_database_and_outlive_their_leader(
    postgres_database: str, tmp_path: Path, bank: Path
) -> None:
    chats = [ChatRef("telegram", str(chat)) for chat in range(600_000, 600_000 + FAN_OUT)]
    settings = Settings.from_env(bot_env(tmp_path, bank, DAILYQ_DB=postgres_database, **DUE_AT_START))
    await subscribe(settings, chats, group=False)

    async with FakeTelegram() as tg:
        env = bot_env(
            tmp_path, bank, DAILYQ_DB=postgres_database, TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.base_url, **DUE_AT_START,
        )  # fmt: skip
        async with processes(env, 3, tmp_path) as bots:
            leader = await the_leader(bots)
            # Alice's progress, seen through the leader (the one process that polls).
            assert (await said(tg, ALICE, "/quiz")).startswith("❓")
            await said(tg, ALICE, "||attention is weighted sums||")
            before = await said(tg, ALICE, "/stats")
            assert "Answered: 1" in before, before

            def posts_delivered() -> int:
                return sum(1 for c in tg.calls_to("sendMessage") if c.status == 200 and c.chat_id != ALICE.id)

            await tg.wait_until(lambda: posts_delivered() >= KILL_AFTER, within=60)
            leader.process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await leader.exit_code()
            followers = [bot for bot in bots if bot is not leader]

            # Updates are answered again (another process polls), and Alice's /stats is the same.
            after = await said(tg, ALICE, "/stats", within=POLL_FAILOVER_LIMIT)
            assert stats_counts(after) == stats_counts(before)
            successor = await the_leader(followers)

            def every_chat_posted() -> bool:
                delivered = {c.chat_id for c in tg.calls_to("sendMessage") if c.status == 200}
                return all(int(chat.chat_id) in delivered for chat in chats)

            await tg.wait_until(every_chat_posted, within=TAKEOVER_LIMIT)
            finished = max(c.answered_at or 0 for c in tg.calls_to("sendMessage") if c.status == 200)
            assert finished - killed_at < TAKEOVER_LIMIT

            for bot in followers:
                assert await bot.stop() == 0, bot.output
            assert [bot for bot in followers if LEADS in bot.output] == [successor], "one successor"

    accepted = [c for c in tg.calls_to("sendMessage") if c.status == 200 and c.chat_id != ALICE.id]
    per_chat = Counter(c.chat_id for c in accepted)
    assert set(per_chat) == {int(chat.chat_id) for chat in chats}, "every chat has its post"
    recorded = await recorded_messages(postgres_database)
    doubled = {chat: count for chat, count in per_chat.items() if count > 1}
    for chat, count in doubled.items():
        # The only double allowed: a message the dead leader handed to Telegram before it died
        # but had not recorded, sent again by its successor, which recorded its own.
        assert count == 2
        first, second = sorted((c for c in accepted if c.chat_id == chat), key=lambda c: c.answered_at or 0)
        assert (first.answered_at or 0) < killed_at
        assert recorded[chat] == str(second.result["message_id"])
    assert len(doubled) <= CONCURRENCY, "at most the sends in flight when the leader died"
    print(f"\n{FAN_OUT} chats, leader killed after {KILL_AFTER} posts: {len(doubled)} double(s)")


async def recorded_messages(url: str) -> dict[int, str]:
    """Each chat's daily post as the database has it: chat id → the message id marked sent."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT chat_key, status, message_id FROM posts WHERE kind = 'daily'")
    finally:
        await connection.close()
    assert {row["status"] for row in rows} == {"sent"}
    return {int(row["chat_key"].split(":")[1]): row["message_id"] for row in rows}


async def test_two_processes_each_with_one_of_two_discord_shards_and_reloads_reaching_both(
    postgres_database: str, tmp_path: Path, bank: Path
) -> None:
    discord = await FakeDiscord(heartbeat_interval_ms=1000).start()
    try:
        guilds = [discord.add_guild(f"Team {shard}", shard=shard, shard_count=2) for shard in (0, 1)]
        channels = [discord.add_text_channel("daily", guild_id=guild) for guild in guilds]
        settings = Settings.from_env(bot_env(tmp_path, bank, DAILYQ_DB=postgres_database, **DUE_AT_START))
        await subscribe(settings, [ChatRef("discord", str(channel)) for channel in channels], group=True)
        env = bot_env(
            tmp_path, bank, DAILYQ_DB=postgres_database, DISCORD_BOT_TOKEN="fake-discord-token",
            DISCORD_API_URL=discord.api_url, DISCORD_GATEWAY_URL=discord.gateway_url,
            DISCORD_SHARD_COUNT="2", **DUE_AT_START,
        )  # fmt: skip
        async with AsyncExitStack() as stack:
            bots = []
            for shard in (0, 1):
                bot = await BotProcess.start(env | {"DISCORD_SHARD_IDS": str(shard)}, "run", cwd=tmp_path)
                stack.push_async_callback(bot.exit_code)
                stack.callback(bot.kill)
                bots.append(bot)
            await discord.wait_for_call("WS", "IDENTIFY", 2)
            identified = sorted(call.body["shard"] for call in discord.calls_to("WS", "IDENTIFY"))
            assert identified == [[0, 2], [1, 2]]
            await discord.wait_for_call("PUT", r"/applications/\d+/commands", 2)

            for channel in channels:  # each answered by the process holding its guild's shard
                tags = await discord.slash(discord.member, "tags", channel_id=channel)
                [answer] = await discord.wait_until(lambda tags=tags: discord.replies_to(tags))
                assert "in 3 questions" in answer["content"], answer

            def posts_in(channel: int) -> list[dict]:
                return [m for m in discord.channel_messages(channel) if m["embeds"]]

            await discord.wait_until(lambda: all(posts_in(channel) for channel in channels))
            await the_leader(bots)

            # A reload reaches both processes: `dailyq reload`, then SIGHUP to one of them.
            await asyncio.to_thread(bank.write_text, bank_markdown("First", "Second", "Third", "Fourth"))
            reload = await BotProcess.start(env, "reload", cwd=tmp_path)
            assert await reload.exit_code() == 0, reload.output
            assert "asked 2 process(es)" in reload.output
            await asyncio.gather(*(bot.line_with("reload: now 4 questions") for bot in bots))
            await asyncio.to_thread(bank.write_text, bank_markdown("First", "Second", "Third", "Fourth", "Fifth"))
            bots[1].process.send_signal(signal.SIGHUP)
            await asyncio.gather(*(bot.line_with("reload: now 5 questions") for bot in bots))

            for bot in bots:
                assert await bot.stop() == 0, bot.output
        assert [len(posts_in(channel)) for channel in channels] == [1, 1], "one daily post per channel"
    finally:
        await discord.close()
