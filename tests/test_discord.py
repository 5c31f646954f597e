"""Discord end to end: the real discord.py over HTTP and a WebSocket to a fake Discord on 127.0.0.1.

The conversations run the real core on a real SQLite file; time comes from a FakeClock. Users act
through the fake (a slash command, a button press, a modal submit, a message in a thread) and the
tests read what the bot sent back to the fake and what the database holds.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.adapters.discord import (
    RATELIMIT_SCAN_INTERVAL,
    THREAD_ARCHIVE_MINUTES,
    DiscordAdapter,
    GuardedParser,
    RateLimitScan,
    TokenBucket,
    amortise_ratelimit_scan,
    guard_gateway_parsers,
)
from bot.config import Settings
from bot.core.bank import Bank
from bot.core.commands import COMMANDS, Core
from bot.core.messages import t
from bot.core.model import ChatRef, Incoming, Question, Reply, SentRef
from bot.core.ports import ChatGone, PlatformError, TransientError
from bot.core.render import to_discord
from bot.core.scheduler import Scheduler
from bot.core.store import SQLiteStore, Store
from tests.clock import FakeClock
from tests.fakes.discord_api import EPHEMERAL, JSON, LOADING, FakeDiscord, FakeInteraction

MONDAY_8AM = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NINE_AM = MONDAY_8AM + timedelta(hours=1, seconds=30)
FIVE_PM = MONDAY_8AM + timedelta(hours=9, seconds=30)  # the default reveal: 8 hours after the post


def long_answer() -> str:
    """About 6,000 characters of paragraphs, lists and code, numbered so that order can be checked."""
    return "\n\n".join(
        f"#### Part {n}\n\nAttention weighs values by query–key similarity; `softmax(QK^T)` in step {n}.\n\n"
        f"- keys and values are cached\n- queries are not\n\n```python\nweights_{n} = softmax(q @ k.T)\n```"
        for n in range(1, 40)
    )


BANK = Bank(
    [
        Question(
            "q-rag",
            "What is RAG?",
            "Retrieval, then generation.",
            summary="**Summary**: retrieve first.",
            company="OpenAI",
            round="Onsite",
            date="2025-03",
            tags=("rag", "llm"),
        ),
        Question("q-kv", "What is a KV cache?", "Keys and values are kept.", summary="Kept.", tags=("llm",)),
        Question(
            "q-long", "Explain attention in full", long_answer(), summary="Weighted sums.", tags=("long",)
        ),
    ]
)


TAGS_HEADING = "\n".join(
    to_discord(t("en", "tags_heading", questions=len(BANK), tags=len(BANK.tag_counts())))
)


@dataclass
class World:
    fake: FakeDiscord
    store: Store
    core: Core
    clock: FakeClock
    adapter: DiscordAdapter
    scheduler: Scheduler
    slept: list[float] = field(default_factory=list)

    async def rows(self, sql: str, *params: object) -> list[tuple]:
        async with self.store.db.execute(sql, params) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]


def make_core(store: Store, clock: FakeClock, tmp_path: Path) -> Core:
    settings = Settings(db=tmp_path / "dailyq.sqlite3", timezone="UTC", post_time="09:00", lang="en")
    return Core(store, BANK, settings, clock, random.Random(7), fuzz=False)


def make_adapter(fake: FakeDiscord) -> DiscordAdapter:
    return DiscordAdapter(
        "fake-token", api_url=fake.api_url, gateway_url=fake.gateway_url, message_content=True
    )


@asynccontextmanager
async def running(adapter: DiscordAdapter, core: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(adapter.run(core))
    try:
        yield
    finally:
        task.cancel()  # run() closes the client on its way out
        with suppress(asyncio.CancelledError):
            await task
        assert adapter.client.is_closed()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord(heartbeat_interval_ms=1000).start()
    try:
        yield server
    finally:
        await server.close()


@asynccontextmanager
async def open_world(
    fake: FakeDiscord, tmp_path: Path, wrap: Callable[[Core], Any] = lambda core: core
) -> AsyncIterator[World]:
    """The bot on a fresh database, connected to the fake; `wrap` may put something around its core."""
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    clock = FakeClock(MONDAY_8AM)
    core = make_core(store, clock, tmp_path)
    adapter = make_adapter(fake)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the scheduler's backoff, on the fake clock
        slept.append(seconds)
        clock.advance(timedelta(seconds=seconds))

    scheduler = Scheduler(store, core, {"discord": adapter}, clock, sleep=sleep)
    try:
        async with running(adapter, wrap(core)):
            await fake.wait_connected()
            yield World(fake, store, core, clock, adapter, scheduler, slept)
    finally:
        await store.close()


@pytest.fixture
async def world(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(fake, tmp_path) as opened:
        yield opened


# ---- reading what the bot sent ------------------------------------------------------------------


async def reply(fake: FakeDiscord, interaction: FakeInteraction) -> JSON:
    """The bot's first message in answer to an interaction, once final (not a "thinking…" placeholder)."""
    found = await fake.wait_until(
        lambda: [m for m in fake.replies_to(interaction) if not m["flags"] & LOADING]
    )
    return found[0]


def shown(message: JSON) -> str:
    """The text a message shows: its content, or its embeds' titles and descriptions."""
    parts = [message["content"]] if message["content"] else []
    for embed in message["embeds"]:
        parts += [embed[key] for key in ("title", "description") if embed.get(key)]
    return "\n".join(parts)


def said(markdown: str) -> str:
    """A catalog sentence as Discord shows it."""
    return "\n".join(to_discord(markdown))


def buttons(message: JSON) -> dict[str, str]:
    """Button label → custom id."""
    return {b["label"]: b["custom_id"] for row in message["components"] for b in row["components"]}


def is_private(message: JSON) -> bool:
    return bool(message["flags"] & EPHEMERAL)


async def subscribe(world: World) -> None:
    accepted = await reply(
        world.fake, await world.fake.slash(world.fake.admin, "subscribe", time="09:00", zone="UTC")
    )
    assert shown(accepted).startswith("Subscribed")


async def daily_post(world: World) -> JSON:
    """Subscribe the channel and let the scheduler post today's question at 09:00."""
    await subscribe(world)
    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    [post] = [m for m in world.fake.channel_messages(world.fake.channel_id) if m["embeds"]]
    return post


# ---- start-up -------------------------------------------------------------------------------------


async def test_the_slash_commands_are_the_command_table_with_its_option_names(world: World) -> None:
    [sync] = world.fake.calls_to("PUT", rf"/applications/{world.fake.application_id}/commands")
    synced = {command["name"]: command for command in sync.body}
    assert list(synced) == [command.name for command in COMMANDS]
    options = {
        name: [(o["name"], o.get("required", False)) for o in c.get("options", [])]
        for name, c in synced.items()
    }
    assert options["answer"] == [("text", True)]
    assert options["subscribe"] == [("time", False), ("zone", False)]
    assert options["settings"] == [("key", False), ("value", False)]
    assert options["grade"] == [("grade", True), ("id", False)]
    assert synced["quiz"]["description"] == t("en", "help_quiz")
    assert synced["quiz"]["description_localizations"]["zh-CN"] == t("zh", "help_quiz")
    identify = world.fake.calls_to("WS", "IDENTIFY")[0].body
    assert identify["token"] == "fake-token"
    assert identify["intents"] & (1 << 15), "message content was asked for"


async def test_commands_sync_to_the_configured_guilds_only(fake: FakeDiscord, tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    adapter = DiscordAdapter(
        "fake-token", api_url=fake.api_url, gateway_url=fake.gateway_url, guild_ids=[fake.guild_id]
    )
    try:
        async with running(adapter, make_core(store, FakeClock(MONDAY_8AM), tmp_path)):
            await fake.wait_connected()
            identify = fake.calls_to("WS", "IDENTIFY")[0].body
            [sync] = fake.calls_to("PUT", r"/applications/\d+/guilds/\d+/commands")
            assert sync.path.endswith(f"/guilds/{fake.guild_id}/commands")
            assert fake.calls_to("PUT", r"/applications/\d+/commands") == []
            assert not identify["intents"] & (1 << 15), "no message content unless asked for"
            done = await reply(fake, await fake.slash(fake.member, "tags"))
            assert shown(done).startswith(TAGS_HEADING)
    finally:
        await store.close()


async def test_a_refused_token_is_a_clear_error_and_a_later_run_logs_in(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    adapter = make_adapter(fake)
    core = make_core(store, FakeClock(MONDAY_8AM), tmp_path)
    try:
        fake.fail("GET", "/users/@me", 401, code=0, message="401: Unauthorized")
        with pytest.raises(PlatformError, match="DISCORD_BOT_TOKEN was refused") as refused:
            await adapter.run(core)
        assert "fake-token" not in str(refused.value)
        with pytest.raises(TransientError, match="not logged in"):
            await adapter.send(ChatRef("discord", str(fake.channel_id)), Reply("hello"))
        async with running(adapter, core):
            await fake.wait_connected()
            await adapter.send(ChatRef("discord", str(fake.channel_id)), Reply("hello"))
            assert [m["content"] for m in fake.channel_messages(fake.channel_id)] == ["hello"]
    finally:
        await store.close()


# ---- conversations --------------------------------------------------------------------------------


async def test_quiz_answer_in_the_modal_reveal_and_grade(world: World) -> None:
    fake = world.fake
    question = await reply(fake, await fake.slash(fake.member, "quiz", filter="rag"))
    [embed] = question["embeds"]
    assert embed["title"] == "What is RAG?"
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Company": "OpenAI",
        "Round": "Onsite",
        "Date": "2025-03",
        "Tags": "rag, llm",
    }
    assert not is_private(question)
    [(post_id,)] = await world.rows("SELECT id FROM posts WHERE kind = 'quiz'")
    choices = buttons(question)
    assert choices["Answer"] == "dq:/answer"
    assert choices["Reveal"] == f"dq:/reveal {post_id}"

    pressed = await fake.press(fake.member, question["id"], choices["Answer"])
    await fake.wait_until(lambda: pressed.token in fake.modals)
    ack = await reply(
        fake, await fake.submit_modal(fake.member, pressed, {"text": "retrieve, then generate"})
    )
    assert shown(ack).startswith("Got your answer to “What is RAG?”")
    assert is_private(ack), "an answer from the modal is acknowledged privately"
    assert await world.rows("SELECT post_id, text, hidden FROM attempts") == [
        (post_id, "retrieve, then generate", 1)
    ]
    # The answer found its question through the message its button was on.
    assert await world.rows("SELECT message_id FROM posts WHERE id = ?", post_id) == [(question["id"],)]

    revealed = await reply(fake, await fake.press(fake.member, question["id"], choices["Reveal"]))
    assert "Summary" in shown(revealed) and "retrieve first" in shown(revealed)
    assert "bob" in shown(revealed)
    graded = await reply(fake, await fake.press(fake.member, revealed["id"], buttons(revealed)["Good"]))
    assert shown(graded).startswith("Graded: Good")
    assert await world.rows("SELECT grade FROM attempts") == [("good",)]
    assert await world.rows("SELECT user_key, question_id FROM reviews") == [
        (f"discord:{fake.member.id}", "q-rag")
    ]


async def test_the_words_the_adapter_adds_follow_the_servers_language_not_the_members_client(
    world: World,
) -> None:
    fake = world.fake
    await reply(fake, await fake.slash(fake.admin, "settings", key="lang", value="zh"))
    question = await reply(fake, await fake.slash(fake.member, "quiz", filter="rag", locale="en-US"))
    assert t("zh", "button_answer") in buttons(question)
    assert question["embeds"][0]["fields"][0]["name"] == t("zh", "field_company")


async def test_a_long_full_answer_comes_in_messages_under_discords_limit_in_order(world: World) -> None:
    fake = world.fake
    await reply(fake, await fake.slash(fake.member, "quiz", filter="long"))
    [(post_id,)] = await world.rows("SELECT id FROM posts WHERE kind = 'quiz'")
    question = BANK.by_id["q-long"]
    heading = t("en", "full_answer_heading", title=question.title, number=t("en", "post_number", number=post_id))
    expected = to_discord(f"{heading}\n\n{question.answer}")
    assert len(expected) >= 3

    full = await fake.slash(fake.member, "full", id=str(post_id))
    parts = await fake.wait_until(lambda: len(found := fake.replies_to(full)) >= len(expected) and found)
    assert [part["content"] for part in parts] == expected
    assert all(len(part["content"]) <= 2000 for part in parts)
    numbers = [int(n) for n in re.findall(r"Part (\d+)", "".join(part["content"] for part in parts))]
    assert numbers == list(range(1, 40)), "nothing lost or repeated"


async def test_a_member_is_refused_subscribe_and_an_admin_is_accepted(world: World) -> None:
    fake = world.fake
    refused = await reply(fake, await fake.slash(fake.member, "subscribe"))
    assert shown(refused) == said(t("en", "admins_only", command="/subscribe"))
    key = f"discord:{fake.channel_id}"
    assert await world.rows("SELECT subscribed FROM chats WHERE key = ? AND subscribed = 1", key) == []

    accepted = await reply(
        fake, await fake.slash(fake.admin, "subscribe", time="09:30", zone="Europe/Berlin")
    )
    assert shown(accepted).startswith("Subscribed: a question at 09:30 (Europe/Berlin)")
    assert await world.rows("SELECT subscribed FROM chats WHERE key = ?", key) == [(1,)]


async def test_the_role_setting_lets_its_members_change_settings(world: World) -> None:
    fake = world.fake
    quizmaster = fake.add_member("cleo", roles=(fake.quiz_role_id,))
    refused = await reply(fake, await fake.slash(quizmaster, "settings", key="time", value="18:00"))
    assert shown(refused) == said(t("en", "admins_only", command="/settings"))
    saved = await reply(fake, await fake.slash(fake.admin, "settings", key="role", value="Quizmasters"))
    assert shown(saved).startswith("Saved")
    allowed = await reply(fake, await fake.slash(quizmaster, "settings", key="time", value="18:00"))
    assert shown(allowed).startswith("Saved: time is now 18:00")


async def test_the_role_setting_is_a_role_id_and_a_look_alike_role_is_not_it(world: World) -> None:
    fake = world.fake
    quizmaster = fake.add_member("cleo", roles=(fake.quiz_role_id,))
    by_name = await reply(fake, await fake.slash(fake.admin, "settings", key="role", value="quizmasters"))
    assert shown(by_name).startswith(f"Saved: role is now {fake.quiz_role_id}")
    # Anyone allowed to make roles can make one with the same name: its members are not admins.
    look_alike = await fake.create_role("Quizmasters")
    impostor = fake.add_member("mallory", roles=(look_alike,))
    refused = await reply(fake, await fake.slash(impostor, "settings", key="time", value="03:00"))
    assert shown(refused) == said(t("en", "admins_only", command="/settings"))
    allowed = await reply(fake, await fake.slash(quizmaster, "settings", key="time", value="18:00"))
    assert shown(allowed).startswith("Saved: time is now 18:00")
    # Two roles of that name now: the admin is asked to mention one; a mention or an id is taken.
    ambiguous = await reply(fake, await fake.slash(fake.admin, "settings", key="role", value="Quizmasters"))
    assert is_private(ambiguous) and shown(ambiguous) == said(t("en", "role_ambiguous", name="Quizmasters"))
    unknown = await reply(fake, await fake.slash(fake.admin, "settings", key="role", value="Nobody"))
    assert shown(unknown) == said(t("en", "role_not_found", name="Nobody"))
    mentioned = await reply(
        fake, await fake.slash(fake.admin, "settings", key="role", value=f"<@&{look_alike}>")
    )
    assert shown(mentioned).startswith(f"Saved: role is now {look_alike}")
    cleared = await reply(fake, await fake.slash(fake.admin, "settings", key="role", value="none"))
    assert shown(cleared).startswith("Saved: role is now")


async def test_the_daily_post_arrives_at_its_time_with_a_thread_and_is_revealed_in_both(world: World) -> None:
    fake = world.fake
    await subscribe(world)
    posted = len(fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages"))
    await world.scheduler.sweep()
    assert len(fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages")) == posted, (
        "nothing before 09:00"
    )

    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    [post] = [m for m in fake.channel_messages(fake.channel_id) if m["embeds"]]
    [(question_id,)] = await world.rows("SELECT question_id FROM posts WHERE kind = 'daily'")
    assert post["embeds"][0]["title"] == BANK.by_id[question_id].title
    assert to_discord(t("en", "hint_group_thread"))[0] in post["embeds"][0]["description"]
    [start] = fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages/{post['id']}/threads")
    assert start.body["auto_archive_duration"] == THREAD_ARCHIVE_MINUTES == 1440
    assert start.body["name"] == post["embeds"][0]["title"]
    [thread] = fake.threads()
    assert thread["id"] == post["id"] and thread["owner_id"] == str(fake.bot.id)
    assert await world.rows("SELECT status, message_id FROM posts WHERE kind = 'daily'") == [
        ("sent", post["id"])
    ]
    assert "Reveal" in buttons(post) and buttons(post)["Answer"] == "dq:/answer"

    world.clock.set(FIVE_PM)
    await world.scheduler.sweep()
    in_channel = [m for m in fake.channel_messages(fake.channel_id) if m["content"].startswith("💡")]
    in_thread = [m for m in fake.channel_messages(int(thread["id"])) if m["content"].startswith("💡")]
    assert len(in_channel) == len(in_thread) == 1
    assert in_channel[0]["content"] == in_thread[0]["content"]
    assert "Good" in buttons(in_thread[0])
    assert await world.rows("SELECT reveal_status FROM posts WHERE kind = 'daily'") == [("sent",)]


async def test_answer_privately_opens_the_answer_box_on_a_channel_that_answers_privately(
    world: World,
) -> None:
    fake = world.fake
    changed = await reply(fake, await fake.slash(fake.admin, "settings", key="answers", value="private"))
    assert shown(changed).startswith("Saved")
    post = await daily_post(world)
    choices = buttons(post)
    assert "Answer" not in choices, "the core's own button opens the answer box"
    pressed = await fake.press(fake.member, post["id"], choices[t("en", "button_answer_privately")])
    await fake.wait_until(lambda: pressed.token in fake.modals)
    ack = await reply(fake, await fake.submit_modal(fake.member, pressed, {"text": "kept to myself"}))
    assert shown(ack).startswith("Got your answer") and is_private(ack)
    assert await world.rows("SELECT text, hidden FROM attempts") == [("kept to myself", 1)]


async def test_a_spoiler_answer_in_the_thread_counts_and_one_in_the_clear_gets_the_reminder(
    world: World,
) -> None:
    fake = world.fake
    post = await daily_post(world)
    thread_id = int(post["id"])
    [(post_id,)] = await world.rows("SELECT id FROM posts WHERE kind = 'daily'")

    hidden = await fake.say(fake.member, thread_id, "||a vector store, then the model||")
    [ack] = await fake.wait_until(lambda: [m for m in fake.channel_messages(thread_id) if m["author"]["bot"]])
    assert shown(ack).startswith("Got your answer")
    assert ack["message_reference"]["message_id"] == hidden["id"]
    rows = await world.rows("SELECT post_id, chat_key, text, hidden FROM attempts")
    assert rows == [(post_id, f"discord:{fake.channel_id}", "a vector store, then the model", 1)]

    await fake.say(fake.admin, thread_id, "keys and values")
    bot_messages = await fake.wait_until(
        lambda: (
            len(found := [m for m in fake.channel_messages(thread_id) if m["author"]["bot"]]) >= 3 and found
        )
    )
    assert shown(bot_messages[1]).startswith("Got your answer")
    assert shown(bot_messages[2]) == said(t("en", "spoiler_reminder"))
    assert await world.rows("SELECT hidden FROM attempts WHERE user_key = ?", f"discord:{fake.admin.id}") == [
        (0,)
    ]


async def test_spaces_between_spoilers_are_kept(world: World) -> None:
    fake = world.fake
    post = await daily_post(world)
    thread_id = int(post["id"])
    await fake.say(fake.member, thread_id, "||keys|| ||values||")
    await fake.wait_until(lambda: [m for m in fake.channel_messages(thread_id) if m["author"]["bot"]])
    assert await world.rows("SELECT text, hidden FROM attempts") == [("keys values", 1)]


async def test_a_thread_of_its_own_subscribes_and_gets_its_posts_inside(world: World) -> None:
    fake = world.fake
    hall = fake.add_thread(fake.channel_id, fake.admin, "study-hall")
    accepted = await reply(fake, await fake.slash(fake.admin, "subscribe", channel_id=hall))
    assert shown(accepted).startswith("Subscribed") and accepted["channel_id"] == str(hall)
    assert await world.rows("SELECT key FROM chats WHERE subscribed = 1") == [
        (f"discord:{fake.channel_id}/{hall}",)
    ]
    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    [post] = [m for m in fake.channel_messages(hall) if m["embeds"]]
    assert post["embeds"] and fake.channel_messages(fake.channel_id) == []
    assert fake.calls_to("POST", r"/channels/\d+/messages/\d+/threads") == [], "no thread inside a thread"
    assert await world.rows("SELECT message_id FROM posts WHERE kind = 'daily'") == [(post["id"],)]


async def test_reveal_before_its_time_is_for_admins_and_works_from_the_thread(world: World) -> None:
    fake = world.fake
    post = await daily_post(world)
    answered = await reply(fake, await fake.slash(fake.member, "answer", text="retrieval first"))
    assert shown(answered).startswith("Got your answer to")
    refused = await reply(fake, await fake.slash(fake.member, "reveal"))
    assert shown(refused).startswith("The answer is revealed")

    revealed = await reply(fake, await fake.slash(fake.admin, "reveal", channel_id=int(post["id"])))
    assert revealed["channel_id"] == post["id"], "answered where it was asked: the post's thread"
    assert shown(revealed).startswith("💡")
    [(revealed_at,)] = await world.rows("SELECT revealed_at FROM posts WHERE kind = 'daily'")
    assert revealed_at is not None, "the thread's /reveal is about the channel's post"


async def test_a_button_pressed_after_a_restart_still_works(fake: FakeDiscord, tmp_path: Path) -> None:
    clock = FakeClock(MONDAY_8AM)
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    try:
        async with running(make_adapter(fake), make_core(store, clock, tmp_path)):
            await fake.wait_connected()
            question = await reply(fake, await fake.slash(fake.member, "quiz", filter="llm"))
        # Stopping let the answer to /quiz finish: the core knows where its question landed.
        [(message_id,)] = await store.db.execute_fetchall("SELECT message_id FROM posts")
        assert message_id == question["id"]
    finally:
        await store.close()

    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    try:
        async with running(make_adapter(fake), make_core(store, clock, tmp_path)):
            await fake.wait_connected(sessions=2)
            pressed = await fake.press(fake.member, question["id"], buttons(question)["Answer"])
            await fake.wait_until(lambda: pressed.token in fake.modals)
            ack = await reply(fake, await fake.submit_modal(fake.member, pressed, {"text": "cached keys"}))
            assert shown(ack).startswith("Got your answer to “What is a KV cache?”")
            revealed = await reply(
                fake, await fake.press(fake.member, question["id"], buttons(question)["Reveal"])
            )
            assert shown(revealed).startswith("💡 **What is a KV cache?**")
            assert "bob" in shown(revealed)
    finally:
        await store.close()


async def test_a_slow_core_gets_the_interaction_deferred_then_answered(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    gate = asyncio.Event()

    class SlowCore:
        def __init__(self, core: Core) -> None:
            self.core = core

        async def handle(self, incoming: Incoming) -> list[Reply]:
            await gate.wait()
            return await self.core.handle(incoming)

        async def sent(self, reply: Reply, ref: SentRef) -> None:
            await self.core.sent(reply, ref)

    async with open_world(fake, tmp_path, wrap=SlowCore) as world:
        world.adapter.defer_after = 0.01
        command = await fake.slash(fake.member, "quiz")
        [deferred] = await fake.wait_for_call("POST", rf"/interactions/{command.id}/{command.token}/callback")
        assert deferred.body["type"] == 5, "deferred with a thinking placeholder"
        gate.set()
        question = await reply(fake, command)
        assert question["embeds"] and not is_private(question)
        edits = fake.calls_to("PATCH", rf"/webhooks/\d+/{command.token}/messages/@original")
        assert edits and edits[0].body["embeds"], "the placeholder became the question"

        gate.clear()
        pressed = await fake.press(fake.member, question["id"], buttons(question)["Answer"])
        await fake.wait_until(lambda: pressed.token in fake.modals)
        submit = await fake.submit_modal(fake.member, pressed, {"text": "slowly"})
        await fake.wait_for_call("POST", rf"/interactions/{submit.id}/{submit.token}/callback")
        gate.set()
        ack = await reply(fake, submit)
        assert is_private(ack) and shown(ack).startswith("Got your answer")
        assert fake.calls_to("DELETE", rf"/webhooks/\d+/{submit.token}/messages/@original"), (
            "the public placeholder went away"
        )


async def test_a_failing_core_is_answered_privately_never_left_to_time_out(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    class BrokenCore:
        def __init__(self, core: Core) -> None:
            pass

        async def handle(self, incoming: Incoming) -> list[Reply]:
            raise RuntimeError("the database is on fire")

        async def sent(self, reply: Reply, ref: SentRef) -> None:
            raise AssertionError("nothing was sent")

    async with open_world(fake, tmp_path, wrap=BrokenCore):
        english = await reply(fake, await fake.slash(fake.member, "stats"))
        chinese = await reply(fake, await fake.slash(fake.member, "top", locale="zh-CN"))
        assert is_private(english) and shown(english) == said(t("en", "error"))
        assert is_private(chinese) and shown(chinese) == said(t("zh", "error"))
        assert shown(english) != shown(chinese)


# ---- payloads as Discord sends them, odd ones included ---------------------------------------------


async def test_a_gateway_payload_discord_py_cannot_read_is_logged_once_and_the_connection_kept(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    fake = world.fake
    made, unreadable = fake.interaction_payload(
        fake.member, fake.channel_id, 2, {"id": "1", "name": "stats", "type": 1}
    )
    del unreadable["attachment_size_limit"]  # a field discord.py 2.7 requires
    await fake.dispatch("INTERACTION_CREATE", unreadable)
    answered = await reply(fake, await fake.slash(fake.member, "stats"))
    assert answered["content"] and shown(answered) != said(t("en", "error"))
    assert not world.adapter.client.is_closed()
    assert len(fake.calls_to("WS", "IDENTIFY")) == 1, "the same connection, not a new session"
    warnings = [r.getMessage() for r in caplog.records if "cannot read" in r.getMessage()]
    assert warnings == [
        f"discord: a INTERACTION_CREATE event (id {made.id}) discord.py cannot read is ignored: KeyError('attachment_size_limit')"
    ]


async def test_an_interaction_without_a_channel_object_is_in_its_channel_id(world: World) -> None:
    fake = world.fake
    made, payload = fake.interaction_payload(
        fake.admin, fake.channel_id, 2, fake.slash_data("subscribe", time="09:00", zone="UTC")
    )
    del payload["channel"]  # older payloads carry channel_id only
    await fake.dispatch("INTERACTION_CREATE", payload)
    assert shown(await reply(fake, made)).startswith("Subscribed")
    assert await world.rows("SELECT key FROM chats") == [(f"discord:{fake.channel_id}",)]


async def test_a_stale_slash_command_is_told_apart_from_a_failure(world: World) -> None:
    fake = world.fake
    made, payload = fake.interaction_payload(
        fake.member, fake.channel_id, 2, {"id": str(fake.new_id()), "name": "daily", "type": 1}
    )
    await fake.dispatch("INTERACTION_CREATE", payload)
    answered = await reply(fake, made)
    assert is_private(answered) and shown(answered) == said(t("en", "command_outdated"))


async def test_a_button_that_is_not_ours_is_acknowledged(world: World) -> None:
    fake = world.fake
    post = await daily_post(world)
    made, payload = fake.interaction_payload(
        fake.member, fake.channel_id, 3, {"custom_id": "poll:yes", "component_type": 2}, int(post["id"])
    )
    await fake.dispatch("INTERACTION_CREATE", payload)
    path = rf"/interactions/{made.id}/{made.token}/callback"
    [callback] = await fake.wait_until(lambda: [c for c in fake.calls_to("POST", path) if c.status])
    assert callback.status == 200 and callback.body["type"] == 6  # deferred: nothing changes, nothing fails
    assert await world.rows("SELECT count(*) FROM attempts") == [(0,)]


# ---- platform errors -----------------------------------------------------------------------------


async def test_a_429_is_retried_after_retry_after(world: World) -> None:
    fake = world.fake
    fake.fail("POST", rf"/channels/{fake.channel_id}/messages", 429, retry_after=0.05)
    ref = await world.adapter.send(ChatRef("discord", str(fake.channel_id)), Reply("hello"))
    attempts = fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages")
    assert len(attempts) == 2 and attempts[0].body == attempts[1].body
    assert [m["id"] for m in fake.channel_messages(fake.channel_id)] == [ref.message_id]


async def test_missing_access_and_unknown_channel_unsubscribe_the_channel(world: World) -> None:
    fake = world.fake
    await subscribe(world)
    other = fake.add_text_channel("another-study-room")
    subscribed = await reply(fake, await fake.slash(fake.admin, "subscribe", channel_id=other))
    assert shown(subscribed).startswith("Subscribed")

    fake.revoke_access(fake.channel_id)  # 403 Missing Access (50001)
    fake.delete_channel(other)  # 404 Unknown Channel (10003)
    with pytest.raises(ChatGone):
        await world.adapter.send(ChatRef("discord", str(fake.channel_id)), Reply("hello"))
    with pytest.raises(ChatGone):
        await world.adapter.send(ChatRef("discord", str(other)), Reply("hello"))

    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    assert await world.rows("SELECT key FROM chats WHERE subscribed = 1") == []
    assert await world.rows("SELECT status FROM posts WHERE kind = 'daily'") == [("failed",), ("failed",)]


async def test_a_server_error_is_transient_and_the_scheduler_delivers_on_retry(world: World) -> None:
    fake = world.fake
    fake.fail("POST", rf"/channels/{fake.channel_id}/messages", 503, message="Service Unavailable")
    with pytest.raises(TransientError):
        await world.adapter.send(ChatRef("discord", str(fake.channel_id)), Reply("hello"))

    await subscribe(world)
    fake.fail("POST", rf"/channels/{fake.channel_id}/messages", 503, message="Service Unavailable")
    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    assert world.slept == [1.0], "one backoff on the fake clock"
    assert await world.rows("SELECT status FROM posts WHERE kind = 'daily'") == [("sent",)]
    assert len([m for m in fake.channel_messages(fake.channel_id) if m["embeds"]]) == 1


async def test_a_dropped_connection_is_a_transient_error(world: World) -> None:
    fake = world.fake
    fake.drop_requests("POST", rf"/channels/{fake.channel_id}/messages")
    with pytest.raises(TransientError):
        await world.adapter.send(ChatRef("discord", str(fake.channel_id)), Reply("hello"))
    ref = await world.adapter.send(ChatRef("discord", str(fake.channel_id)), Reply("hello again"))
    assert [m["content"] for m in fake.channel_messages(fake.channel_id)] == ["hello again"]
    assert ref.message_id == fake.channel_messages(fake.channel_id)[0]["id"]


async def test_a_gateway_disconnect_resumes_the_session_and_replays_what_was_missed(world: World) -> None:
    fake = world.fake
    session = fake.calls_to("EVENT", "READY")[0].body["session_id"]
    async with fake.disconnected():
        missed = await fake.slash(fake.member, "tags")
    [resume] = await fake.wait_for_call("WS", "RESUME")
    assert resume.body["session_id"] == session and resume.query["path"] == "/gateway-resume"
    [replayed] = await fake.wait_for_call("REPLAY", "INTERACTION_CREATE")
    assert replayed.body["id"] == str(missed.id) and int(replayed.query["seq"]) == resume.body["seq"] + 1
    assert shown(await reply(fake, missed)).startswith(TAGS_HEADING)
    assert len(fake.calls_to("WS", "IDENTIFY")) == 1, "resumed, not identified again"
    after = await reply(fake, await fake.slash(fake.member, "help"))
    assert shown(after).startswith(said(t("en", "help_header")))


# ---- pacing --------------------------------------------------------------------------------------


async def test_the_token_bucket_paces_requests_at_its_rate_after_the_burst() -> None:
    now = 0.0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        nonlocal now
        waits.append(seconds)
        now += seconds

    bucket = TokenBucket(10.0, 3, now=lambda: now, sleep=sleep)
    for _ in range(7):
        await bucket.acquire()
    assert waits == pytest.approx([0.1] * 4), "3 at once, then one every 1/rate"
    assert now == pytest.approx(0.4)


async def test_the_daily_fan_out_goes_through_the_pacer(world: World) -> None:
    fake = world.fake
    now = 0.0

    async def sleep(seconds: float) -> None:
        nonlocal now
        now += seconds

    world.adapter.pacer = TokenBucket(45.0, 1, now=lambda: now, sleep=sleep)
    rooms = [fake.add_text_channel(f"room-{n}") for n in range(4)]
    for room in rooms:
        assert shown(
            await reply(fake, await fake.slash(fake.admin, "subscribe", channel_id=room))
        ).startswith("Subscribed")
    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    requests = [c for c in fake.calls if c.method in ("GET", "POST") and c.path.startswith("/channels/")]
    assert len(requests) == 12, "per room: fetch the channel, post, open the thread"
    assert now == pytest.approx((len(requests) - 1) / 45.0), "one request per 1/45 s after the first"


async def test_discord_pys_rate_limit_buckets_are_scanned_when_that_can_pay_off_not_on_each_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """discord.py makes a rate-limit bucket per route and channel (a post and its thread: two) and,
    from 256 on, scans them all for idle ones on each new one: over a fan-out, a cost that grows
    with the square of the channels. The adapter's client scans when the buckets have doubled or a
    minute has passed since the last scan, and idle buckets are still dropped."""
    http = DiscordAdapter("fake-token").client.http  # discord.py's real HTTPClient
    assert isinstance(http._try_clear_expired_ratelimits, RateLimitScan)
    checked = 0
    is_inactive = discord.http.Ratelimit.is_inactive

    def counted(bucket: discord.http.Ratelimit) -> bool:
        nonlocal checked
        checked += 1
        return is_inactive(bucket)

    monkeypatch.setattr(discord.http.Ratelimit, "is_inactive", counted)

    def fan_out(channels: range) -> None:
        for channel in channels:
            http.get_ratelimit(f"POST /channels/{{channel_id}}/messages:{channel}")
            http.get_ratelimit(f"POST /channels/{{channel_id}}/messages/{{message_id}}/threads:{channel}")

    # Time is the event loop's clock, which discord.py's buckets read too; set by hand here, and
    # nothing is awaited until it is given back.
    loop = asyncio.get_running_loop()
    now = loop.time()
    loop.time = lambda: now  # type: ignore[method-assign]
    try:
        fan_out(range(1000))
        assert len(http._buckets) == 2000
        assert checked <= 2 * 2000, f"{checked} buckets checked: a pass per doubling, not per bucket"

        now += RATELIMIT_SCAN_INTERVAL / 2
        before = checked
        fan_out(range(1000, 1010))
        assert checked == before, "no doubling and no minute since the last scan: no scan"

        now += 301  # discord.py's buckets are idle after 300 s without a request
        http.get_ratelimit("GET /channels/{channel_id}:1")
        assert list(http._buckets) == ["GET /channels/{channel_id}:1"], "the idle ones are dropped"
    finally:
        del loop.time  # the loop's own clock again


def test_without_discord_pys_private_names_the_client_is_left_as_it_is() -> None:
    class Elsewhere:
        def _try_clear_expired_ratelimits(self) -> None:
            pass

    elsewhere = Elsewhere()  # a later discord.py: the scan is there, the buckets are not
    assert not amortise_ratelimit_scan(elsewhere) and not amortise_ratelimit_scan(object())
    assert "_try_clear_expired_ratelimits" not in vars(elsewhere)

    http = DiscordAdapter("fake-token").client.http
    installed = http._try_clear_expired_ratelimits
    assert amortise_ratelimit_scan(http) and http._try_clear_expired_ratelimits is installed, "once only"


def test_every_gateway_parser_is_guarded_and_a_later_discord_py_is_named() -> None:
    client = DiscordAdapter("fake-token").client
    parsers = getattr(getattr(client, "_connection", None), "parsers", None)
    assert isinstance(parsers, dict) and parsers, (
        f"discord.py {discord.__version__} keeps no gateway parsers in client._connection.parsers: "
        "guard_gateway_parsers must find them elsewhere"
    )
    assert all(isinstance(parse, GuardedParser) for parse in parsers.values())
    assert guard_gateway_parsers(client, {}) and not any(
        isinstance(parse.parse, GuardedParser) for parse in parsers.values()
    ), "guarded once only"

    class Elsewhere(discord.Client):  # a later discord.py: no parsers where 2.7 keeps them
        def __init__(self) -> None:
            pass

    assert not guard_gateway_parsers(Elsewhere(), {})


async def test_the_token_bucket_never_lets_more_than_its_rate_out_in_one_second() -> None:
    now = 0.0
    handed: list[float] = []

    async def sleep(seconds: float) -> None:
        nonlocal now
        now += seconds

    bucket = TokenBucket(10.0, 3, now=lambda: now, sleep=sleep)
    for _ in range(10):
        await bucket.acquire()
        handed.append(now)
    now += 0.25  # a late wake-up: the burst may catch up, but not past 10 in any second
    for _ in range(5):
        await bucket.acquire()
        handed.append(now)
    assert max(sum(1 for t in handed if start <= t < start + 1.0) for start in handed) == 10
