"""Discord across processes: DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS, adapters that each hold
some of the shards against the fake gateway (which sends each guild's events to the shard
`(guild_id >> 22) % shard_count`, as Discord does), and a reveal sent by another process than
the one that posted."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.adapters.discord import DiscordAdapter, Shards
from bot.config import ConfigError, Settings
from bot.core.commands import Core
from bot.core.model import Incoming, Reply, SentRef
from bot.core.scheduler import Scheduler
from bot.core.store import open_store
from tests.clock import FakeClock
from tests.fakes.discord_api import FakeDiscord
from tests.test_discord import (
    BANK,
    FIVE_PM,
    MONDAY_8AM,
    NINE_AM,
    make_adapter,
    make_core,
    reply,
    running,
    shown,
)
from tests.test_discord import fake as fake  # the fixture, by the name the tests ask for

# ---- configuration ------------------------------------------------------------------------------


def test_shards_come_from_the_environment() -> None:
    settings = Settings.from_env({"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "2, 3"})
    assert (settings.discord_shard_count, settings.discord_shard_ids) == (4, (2, 3))
    default = Settings.from_env({})
    assert (default.discord_shard_count, default.discord_shard_ids) == (None, ())


@pytest.mark.parametrize(
    ("count", "ids", "message"),
    [
        (None, "0,1", "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"),
        ("0", None, "DISCORD_SHARD_COUNT must be one whole number of at least 1, got '0'"),
        ("two", None, "DISCORD_SHARD_COUNT must be whole numbers"),
        (
            "4",
            "3,4",
            "DISCORD_SHARD_IDS must be different shards from 0 to 3 (DISCORD_SHARD_COUNT), got '3,4'",
        ),
        ("4", "1,1", "DISCORD_SHARD_IDS must be different shards from 0 to 3"),
    ],
)
def test_shard_settings_that_cannot_work_are_refused_by_name(
    count: str | None, ids: str | None, message: str
) -> None:
    env = {
        name: value for name, value in (("DISCORD_SHARD_COUNT", count), ("DISCORD_SHARD_IDS", ids)) if value
    }
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


# ---- adapters holding shards --------------------------------------------------------------------


@dataclass
class Seen:
    """The real core, noting which chats' input reached this adapter."""

    core: Core
    chats: list[str] = field(default_factory=list)

    async def handle(self, incoming: Incoming) -> list[Reply]:
        self.chats.append(incoming.chat.key)
        return await self.core.handle(incoming)

    async def sent(self, reply: Reply, ref: SentRef) -> None:
        await self.core.sent(reply, ref)


@dataclass
class Guilds:
    """Two more guilds, one on each of two shards, with a channel each."""

    fake: FakeDiscord
    channels: list[int]

    @classmethod
    def on_two_shards(cls, fake: FakeDiscord) -> Guilds:
        guilds = [fake.add_guild(f"Team {shard}", shard=shard, shard_count=2) for shard in (0, 1)]
        return cls(fake, [fake.add_text_channel("daily", guild_id=guild) for guild in guilds])


@asynccontextmanager
async def sharded_bots(fake: FakeDiscord, tmp_path: Path, shards: list[Shards]) -> AsyncIterator[list[Seen]]:
    """One adapter per entry of `shards`, all on one core, connected to the fake."""
    store = await open_store(tmp_path / "dailyq.sqlite3")
    settings = Settings(db=store.path, timezone="UTC", post_time="09:00", lang="en")
    core = Core(store, BANK, settings, FakeClock(MONDAY_8AM), random.Random(7), fuzz=False)
    seen = [Seen(core) for _ in shards]
    try:
        async with AsyncExitStack() as stack:
            for share, bot in zip(shards, seen, strict=True):
                adapter = DiscordAdapter(
                    "fake-token", api_url=fake.api_url, gateway_url=fake.gateway_url, shards=share
                )
                adapter.identify_pause = 0  # Discord spaces IDENTIFYs out; the fake needs no pause
                await stack.enter_async_context(running(adapter, bot))
            yield seen
    finally:
        await store.close()


async def tags_answered(fake: FakeDiscord, channel_id: int) -> None:
    answer = await reply(fake, await fake.slash(fake.member, "tags", channel_id=channel_id))
    assert "3 questions" in shown(answer), answer


async def test_each_process_gets_the_events_of_the_guilds_on_its_shards(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    guilds = Guilds.on_two_shards(fake)
    async with sharded_bots(fake, tmp_path, [Shards(2, (0,)), Shards(2, (1,))]) as [first, second]:
        await fake.wait_for_call("WS", "IDENTIFY", 2)
        await fake.wait_connected(len(fake.guild_names))
        await fake.wait_for_call("PUT", r"/applications/\d+/commands", 2)
        assert sorted(call.body["shard"] for call in fake.calls_to("WS", "IDENTIFY")) == [[0, 2], [1, 2]]

        for channel in guilds.channels:
            await tags_answered(fake, channel)
    assert first.chats == [f"discord:{guilds.channels[0]}"]
    assert second.chats == [f"discord:{guilds.channels[1]}"]


async def test_without_shard_settings_one_process_runs_every_recommended_shard(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    fake.recommended_shards = 2
    guilds = Guilds.on_two_shards(fake)
    async with sharded_bots(fake, tmp_path, [Shards()]) as [bot]:
        await fake.wait_for_call("WS", "IDENTIFY", 2)
        await fake.wait_connected(len(fake.guild_names))
        await fake.wait_for_call("PUT", r"/applications/\d+/commands")
        assert sorted(call.body["shard"] for call in fake.calls_to("WS", "IDENTIFY")) == [[0, 2], [1, 2]]
        for channel in guilds.channels:
            await tags_answered(fake, channel)
    assert bot.chats == [f"discord:{channel}" for channel in guilds.channels]


async def test_the_reveal_goes_to_the_posts_thread_whichever_process_sends_it(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """Process A posts the daily question (and opens its thread); A goes away; process B, which
    never saw the post, sends the reveal: it finds the thread from the database alone."""
    store = await open_store(tmp_path / "dailyq.sqlite3")
    clock = FakeClock(MONDAY_8AM)
    core = make_core(store, clock, tmp_path)
    try:
        first = make_adapter(fake)
        async with running(first, core):
            await fake.wait_connected()
            subscribed = await reply(
                fake, await fake.slash(fake.admin, "subscribe", time="09:00", zone="UTC")
            )
            assert shown(subscribed).startswith("Subscribed")
            clock.set(NINE_AM)
            await Scheduler(store, core, {"discord": first}, clock).sweep()
        [thread] = fake.threads()

        second = make_adapter(fake)
        async with running(second, core):
            await fake.wait_connected(2)
            clock.set(FIVE_PM)
            await Scheduler(store, core, {"discord": second}, clock).sweep()
        revealed = [m for m in fake.channel_messages(int(thread["id"])) if m["content"].startswith("💡")]
        assert len(revealed) == 1
    finally:
        await store.close()
