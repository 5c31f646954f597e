"""Feedback on Telegram end to end: the real python-telegram-bot against the fake Bot API, the real
`openai` client against the fake OpenAI-compatible server, the real core on a SQLite file."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.adapters.telegram import TelegramAdapter
from bot.core.bank import Bank
from bot.core.commands import Core
from bot.core.messages import t
from bot.core.model import Question
from bot.core.render import escape
from bot.core.scheduler import Scheduler
from tests.clock import FakeClock
from tests.fakes.openai_api import API_KEY, MODEL, FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram, private_chat, spoiler
from tests.test_telegram import ALICE, BOB, FAST, GROUP, MONDAY_8AM, NINE_AM, running, said, says, shown

REVEAL_TIME = NINE_AM + timedelta(hours=8)  # the default reveal: 8 hours after the post
BANK = Bank([Question("q-kv", "What is a KV cache?", "Keys and values are kept.", summary="Kept K/V.")])


@dataclass
class World:
    tg: FakeTelegram
    llm: FakeOpenAI
    core: Core
    clock: FakeClock
    scheduler: Scheduler


@pytest.fixture
async def world(llm: FakeOpenAI, core_with_feedback) -> AsyncIterator[World]:
    clock = FakeClock(MONDAY_8AM)
    core = await core_with_feedback(BANK, clock)
    async with FakeTelegram() as tg:
        adapter = TelegramAdapter(
            tg.token, base_url=tg.base_url, request_timeouts=FAST, commands=core.commands
        )
        scheduler = Scheduler(core.store, core, {"telegram": adapter}, clock)
        async with running(adapter, core, tg):
            yield World(tg, llm, core, clock, scheduler)


async def answered_daily_post(world: World, *, feedback: bool) -> int:
    """The group subscribed (feedback on or off), today's post sent, answered by Alice, revealed."""
    tg = world.tg
    tg.set_member_status(GROUP, BOB, "administrator")
    assert shown(await says(tg, GROUP, BOB, "/subscribe 09:00 UTC")).startswith("Subscribed")
    if feedback:
        saved = await says(tg, GROUP, BOB, "/settings feedback on")
        assert said(t("en", "feedback_turned_on", model=escape(MODEL))) in shown(saved)
    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    [post] = tg.calls_to("sendMessage", chat_id=GROUP.id)[-1:]
    answer = "keys and values of past tokens"
    tg.user_says(GROUP, ALICE, answer, entities=spoiler(answer), reply_to=post.result["message_id"])
    [ack] = await tg.wait_for("sendMessage", chat_id=GROUP.id)
    assert shown(ack).startswith("Got your answer")
    world.clock.set(REVEAL_TIME)
    await world.scheduler.sweep()
    async with world.core.store.db.execute("SELECT id FROM posts WHERE kind = 'daily'") as cursor:
        (post_id,) = await cursor.fetchone()
    return post_id


def reveal_buttons(world: World) -> list[dict]:
    [reveal] = [c for c in world.tg.calls_to("sendMessage", chat_id=GROUP.id) if shown(c).startswith("💡")]
    return reveal.buttons


async def test_the_feedback_button_is_a_deep_link_and_the_review_comes_privately(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="markdown_it")  # a line per parsing rule
    tg = world.tg
    world.llm.then_review(score=5, covered=["keys and values are cached"], missed=[], advice="Well done.")
    post_id = await answered_daily_post(world, feedback=True)
    welcome = await says(tg, GROUP, ALICE, "/start")
    assert shown(welcome).endswith(said(t("en", "feedback_notice", model=escape(MODEL))))
    start = f"https://t.me/dailyq_test_bot?start=feedback-{post_id}-"  # and the post's token
    [link] = [url for button in reveal_buttons(world) if (url := button.get("url") or "").startswith(start)]

    mark = tg.mark()
    me = private_chat(ALICE)
    review = await says(tg, me, ALICE, f"/start {link.partition('start=')[2]}")  # what the deep link sends
    assert "score 5/5" in shown(review) and "keys and values are cached" in shown(review)
    assert "Suggested grade: Easy" in shown(review)
    labels = {button["text"]: button.get("callback_data") for button in review.buttons}
    assert labels["✓ Easy"] == f"/grade easy {post_id}" and labels["Hard"] == f"/grade hard {post_id}"
    assert tg.calls_to("sendMessage", after=mark, chat_id=GROUP.id) == [], "nothing of it in the group"

    [request] = world.llm.requests
    assert json.loads(request.messages[1]["content"])["member_answer"] == "keys and values of past tokens"

    tg.press(labels["Hard"], review.result, ALICE)  # the member overrides the suggestion
    [graded] = await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert shown(graded).startswith("Graded: Hard")
    assert API_KEY not in caplog.text


async def test_no_button_where_the_chat_has_not_turned_feedback_on(world: World) -> None:
    post_id = await answered_daily_post(world, feedback=False)
    assert not any("feedback" in (button.get("url") or "") for button in reveal_buttons(world))
    refused = await says(world.tg, private_chat(ALICE), ALICE, f"/feedback {post_id}")
    assert shown(refused) == said(t("en", "feedback_off"))
    assert world.llm.requests == []


async def test_the_menu_has_feedback_when_a_model_is_configured(world: World) -> None:
    en, zh = world.tg.calls_to("setMyCommands")
    assert {"command": "feedback", "description": t("en", "help_feedback")} in en.params["commands"]
    assert {"command": "feedback", "description": t("zh", "help_feedback")} in zh.params["commands"]


async def test_other_members_are_answered_while_the_model_thinks(world: World) -> None:
    post_id = await answered_daily_post(world, feedback=True)
    tg = world.tg
    world.llm.then_hold()
    tg.user_says(private_chat(ALICE), ALICE, f"/feedback {post_id}")
    await world.llm.wait_for_requests(1)
    stats = await says(tg, GROUP, BOB, "/stats")
    assert shown(stats).startswith("📊")
    assert tg.calls_to("sendMessage", chat_id=ALICE.id) == [], "Alice's review is still at the model"
    world.llm.release()
    [review] = await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert shown(review).startswith("🔎")


async def test_feedback_typed_in_the_group_is_answered_in_private(world: World) -> None:
    await answered_daily_post(world, feedback=True)
    tg = world.tg
    mark = tg.mark()
    tg.user_says(GROUP, ALICE, "/feedback")
    [review] = await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert shown(review).startswith("🔎")
    assert tg.calls_to("sendMessage", after=mark, chat_id=GROUP.id) == []
