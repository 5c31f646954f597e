"""Feedback on Discord end to end: the real discord.py against the fake Discord, the real `openai`
client against the fake OpenAI-compatible server, the real core on a SQLite file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.adapters.discord import DiscordAdapter
from bot.core.commands import Core
from bot.core.messages import t
from bot.core.scheduler import Scheduler
from tests.clock import FakeClock
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.openai_api import FakeOpenAI
from tests.test_discord import (
    BANK,
    FIVE_PM,
    MONDAY_8AM,
    buttons,
    daily_post,
    is_private,
    reply,
    running,
    said,
    shown,
)


@dataclass
class World:
    fake: FakeDiscord
    llm: FakeOpenAI
    core: Core
    clock: FakeClock
    adapter: DiscordAdapter
    scheduler: Scheduler


@pytest.fixture
async def world(llm: FakeOpenAI, core_with_feedback) -> AsyncIterator[World]:
    clock = FakeClock(MONDAY_8AM)
    core = await core_with_feedback(BANK, clock)
    fake = await FakeDiscord(heartbeat_interval_ms=1000).start()
    adapter = DiscordAdapter(
        "fake-token", api_url=fake.api_url, gateway_url=fake.gateway_url, commands=core.commands
    )
    scheduler = Scheduler(core.store, core, {"discord": adapter}, clock)
    try:
        async with running(adapter, core):
            await fake.wait_connected()
            yield World(fake, llm, core, clock, adapter, scheduler)
    finally:
        await fake.close()


async def revealed_post(world: World, *, feedback: bool) -> tuple[int, dict]:
    """Today's post in the channel (feedback on or off), answered by the member, then revealed."""
    fake = world.fake
    if feedback:
        saved = await reply(fake, await fake.slash(fake.admin, "settings", key="feedback", value="on"))
        assert shown(saved).startswith("Saved: feedback is now on")
    await daily_post(world)  # type: ignore[arg-type]
    answered = await reply(fake, await fake.slash(fake.member, "answer", text="||retrieve, then generate||"))
    assert shown(answered).startswith("Got your answer")
    world.clock.set(FIVE_PM)
    await world.scheduler.sweep()
    [reveal] = [m for m in fake.channel_messages(fake.channel_id) if m["content"].startswith("💡")]
    [(post_id,)] = await world.core.store.db.execute_fetchall("SELECT id FROM posts WHERE kind = 'daily'")
    return post_id, reveal


async def test_the_feedback_button_answers_ephemerally_with_the_grade_buttons(world: World) -> None:
    fake = world.fake
    world.llm.then_review(score=2, covered=["retrieval"], missed=["how retrieved text enters the prompt"])
    post_id, reveal = await revealed_post(world, feedback=True)
    assert buttons(reveal)["Feedback"].startswith(f"dq:/start feedback-{post_id}-")  # and the post's token

    review = await reply(fake, await fake.press(fake.member, reveal["id"], buttons(reveal)["Feedback"]))
    assert is_private(review)
    assert "score 2/5" in shown(review) and "how retrieved text enters the prompt" in shown(review)
    assert buttons(review)["✓ Hard"] == f"dq:/grade hard {post_id}"
    [request] = world.llm.requests
    assert json.loads(request.messages[1]["content"])["member_answer"] == "retrieve, then generate"

    graded = await reply(fake, await fake.press(fake.member, review["id"], buttons(review)["✓ Hard"]))
    assert shown(graded).startswith("Graded: Hard")

    # Someone who did not answer is told so, privately; the model is not asked.
    other = await reply(fake, await fake.press(fake.admin, reveal["id"], buttons(reveal)["Feedback"]))
    assert is_private(other) and shown(other) == said(t("en", "feedback_not_answered"))
    # /feedback does what the button does; the review is not asked for twice.
    again = await reply(fake, await fake.slash(fake.member, "feedback"))
    assert is_private(again) and shown(again) == shown(review)
    assert len(world.llm.requests) == 1


async def test_no_button_where_the_channel_has_not_turned_feedback_on(world: World) -> None:
    _, reveal = await revealed_post(world, feedback=False)
    assert "Feedback" not in buttons(reveal)
    synced = {c["name"] for c in world.fake.calls_to("PUT", r"/applications/\d+/commands")[0].body}
    assert "feedback" in synced  # the model is configured; the channel decides


async def test_a_slow_model_gets_the_press_deferred_and_the_review_follows_privately(world: World) -> None:
    fake = world.fake
    _, reveal = await revealed_post(world, feedback=True)
    world.adapter.defer_after = 0.01
    world.llm.then_hold()
    press = await fake.press(fake.member, reveal["id"], buttons(reveal)["Feedback"])
    [deferred] = await fake.wait_for_call("POST", rf"/interactions/{press.id}/{press.token}/callback")
    await world.llm.wait_for_requests(1)
    # Meanwhile the channel is answered as usual.
    stats = await reply(fake, await fake.slash(fake.admin, "stats"))
    assert shown(stats).startswith("📊")
    world.llm.release()
    review = await reply(fake, press)
    assert is_private(review) and shown(review).startswith("🔎")
    assert deferred.body["type"] == 6, "a button press is deferred without a public placeholder"
