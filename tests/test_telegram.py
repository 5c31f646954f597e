"""Telegram end to end: the real python-telegram-bot over HTTP to a fake Bot API on 127.0.0.1.

The conversations run the real core on a real SQLite file; time comes from a FakeClock. A few
translation tests use a recording core instead, to see exactly what the adapter hands over.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import inspect
import logging
import random
import socket
import string
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import telegram
from aiohttp import ClientSession
from telegram import Bot
from telegram.ext import ExtBot

from bot.adapters import telegram as telegram_adapter
from bot.adapters.telegram import AdminCache, RequestTimeouts, TelegramAdapter
from bot.config import Settings
from bot.core.bank import Bank
from bot.core.commands import COMMANDS, Core
from bot.core.messages import t
from bot.core.model import Button, ChatRef, Incoming, Question, Reply, SentRef
from bot.core.ports import ChatGone, PlatformError
from bot.core.ports import Core as CoreProtocol
from bot.core.render import to_telegram_html
from bot.core.scheduler import Scheduler
from bot.core.store import SQLiteStore, Store
from tests.clock import FakeClock
from tests.fakes.telegram_api import (
    BAD_GATEWAY,
    BLOCKED,
    CHAT_NOT_FOUND,
    HANG,
    KICKED,
    MALFORMED_JSON,
    NEVER_STARTED,
    TEXT_LIMIT,
    TOKEN,
    Call,
    Chat,
    FakeTelegram,
    Fault,
    User,
    forum,
    group,
    migrated,
    private_chat,
    retry_after,
    spoiler,
    utf16_len,
    visible_text,
)

ALICE = User(1001, "Alice", language_code="en")
BOB = User(1002, "Bob", language_code="en")
GROUP = group(-5001)
FORUM = forum(-1005002)
TOPIC = 7
# Small enough that a hung request fails fast, large enough for a loaded CI machine.
FAST = RequestTimeouts(connect=2.0, read=0.5, write=2.0, media_write=2.0, pool=2.0)
MONDAY_8AM = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NINE_AM = MONDAY_8AM + timedelta(hours=1, seconds=30)


def long_answer() -> str:
    """About 9,000 characters of what banks contain: headings, lists, code, tables, math, CJK, emoji."""
    parts = []
    number = 0
    while sum(map(len, parts)) < 9000:
        number += 1
        parts.append(
            f"#### Part {number}\n\n"
            f"Attention costs O(n²) in time & memory when n > 4096; <mark>caches</mark> help. 中文说明 🚀\n\n"
            f"- keys & values are cached\n- queries are not: `q · k < threshold`\n\n"
            f"```python\ndef step_{number}(x):\n    return x < {number} and x > 0  # <tag> & more\n```\n\n"
            f"| layer | heads |\n|---|---|\n| {number} | {number * 8} |\n\n"
            f"$$\\text{{softmax}}(QK^T / \\sqrt{{d}})$$\n"
        )
    return "\n".join(parts)


def make_bank(image: Path) -> Bank:
    return Bank(
        [
            Question(
                "q-kv",
                "What is a KV cache?",
                "Keys and values are kept.",
                summary="**Summary**: kept.",
                tags=("llm",),
            ),
            Question(
                "q-rag",
                "What is RAG?",
                "Retrieval, then generation.",
                summary="Retrieve first.",
                tags=("rag",),
            ),
            Question(
                "q-long", "Explain attention in full", long_answer(), summary="Weighted sums.", tags=("long",)
            ),
            Question(
                "q-pic",
                "Read this diagram",
                "It shows a transformer.",
                summary="A transformer.",
                tags=("pic",),
                images=(str(image),),
            ),
        ]
    )


@dataclass
class World:
    tg: FakeTelegram
    store: Store
    core: Core
    clock: FakeClock
    adapter: TelegramAdapter
    scheduler: Scheduler
    slept: list[float] = field(default_factory=list)

    async def row(self, sql: str, *params: object) -> tuple | None:
        async with self.store.db.execute(sql, params) as cursor:
            found = await cursor.fetchone()
        return tuple(found) if found else None


@asynccontextmanager
async def running(adapter: TelegramAdapter, core: CoreProtocol, tg: FakeTelegram) -> AsyncIterator[None]:
    """The adapter's run() as the app runs it, from its first poll (or webhook) until cancelled."""
    task = asyncio.create_task(adapter.run(core))
    try:
        await tg.wait_until(lambda: bool(tg.calls_to("getUpdates") or tg.calls_to("setWebhook")))
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def world(tg: FakeTelegram, tmp_path: Path) -> AsyncIterator[World]:
    image = tmp_path / "diagram.png"
    image.write_bytes(b"\x89PNG fake image bytes")
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    clock = FakeClock(MONDAY_8AM)
    settings = Settings(db=tmp_path / "dailyq.sqlite3", timezone="UTC", post_time="09:00", lang="en")
    core = Core(store, make_bank(image), settings, clock, random.Random(7), fuzz=False)
    adapter = TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the scheduler's backoff, on the fake clock
        slept.append(seconds)
        clock.advance(timedelta(seconds=seconds))

    scheduler = Scheduler(store, core, {"telegram": adapter}, clock, sleep=sleep)
    try:
        async with running(adapter, core, tg):
            yield World(tg, store, core, clock, adapter, scheduler, slept)
    finally:
        await store.close()


def shown(call: Call) -> str:
    """The text Telegram displays for a call the fake accepted."""
    assert call.result is not None, f"refused: {call.fault or call.error}"
    return call.result.get("text") or call.result.get("caption") or ""


def said(markdown: str) -> str:
    """What a catalog sentence looks like on Telegram."""
    return "".join(visible_text(chunk) for chunk in to_telegram_html(markdown))


async def says(
    tg: FakeTelegram,
    chat: Chat,
    user: User,
    text: str,
    *,
    entities: list[dict[str, Any]] | None = None,
    reply_to: int | None = None,
    thread_id: int | None = None,
) -> Call:
    """The user says `text`; the bot's first message in answer, in that chat (and topic)."""
    tg.user_says(chat, user, text, entities=entities, reply_to=reply_to, thread_id=thread_id)
    where = {} if thread_id is None else {"message_thread_id": thread_id}
    [reply] = await tg.wait_for("sendMessage", chat_id=chat.id, **where)
    return reply


async def subscribe(world: World, chat: Chat, thread_id: int | None = None) -> None:
    world.tg.set_member_status(chat, BOB, "administrator")
    reply = await says(world.tg, chat, BOB, "/subscribe 09:00 UTC", thread_id=thread_id)
    assert shown(reply).startswith("Subscribed")


# ---- conversations -------------------------------------------------------------------------------


async def test_private_quiz_spoiler_answer_reveal_and_grade(world: World) -> None:
    tg, me = world.tg, private_chat(ALICE)
    welcome = await says(tg, me, ALICE, "/start")
    assert shown(welcome) == said(t("en", "welcome", bot="dailyq"))

    question = await says(tg, me, ALICE, "/quiz llm")
    assert "What is a KV cache?" in shown(question)
    assert question.button("/reveal")

    answer = "keys and values of past tokens"
    sent = tg.user_says(me, ALICE, answer, entities=spoiler(answer), reply_to=question.result["message_id"])
    [ack] = await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert shown(ack).startswith("Got your answer")
    assert ack.params["reply_parameters"]["message_id"] == sent["message"]["message_id"]
    assert await world.row("SELECT text, hidden FROM attempts") == (answer, 1)

    reveal = await says(tg, me, ALICE, "/reveal")
    assert "Summary" in shown(reveal) and "kept." in shown(reveal)
    press = tg.press(reveal.button("/grade good"), reveal.result, ALICE)
    [answered] = await tg.wait_for("answerCallbackQuery")
    assert answered.params["callback_query_id"] == press["callback_query"]["id"]
    [graded] = await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert shown(graded).startswith("Graded: Good")
    assert await world.row("SELECT grade FROM attempts") == ("good",)
    assert await world.row("SELECT user_key, question_id FROM reviews") == ("telegram:1001", "q-kv")


async def test_in_a_group_only_admins_subscribe(world: World) -> None:
    tg = world.tg
    tg.set_member_status(GROUP, ALICE, "member")
    tg.set_member_status(GROUP, BOB, "creator")
    refused = await says(tg, GROUP, ALICE, "/subscribe")
    assert shown(refused) == said(t("en", "admins_only", command="/subscribe"))
    assert await world.row("SELECT subscribed FROM chats WHERE key = 'telegram:-5001'") in (None, (0,))

    accepted = await says(tg, GROUP, BOB, "/subscribe@dailyq_test_bot 09:30 Europe/Berlin")
    assert shown(accepted).startswith("Subscribed: a question at 09:30 (Europe/Berlin)")
    assert await world.row("SELECT subscribed FROM chats WHERE key = 'telegram:-5001'") == (1,)
    asked = [(c.chat_id, int(c.params["user_id"])) for c in tg.calls_to("getChatMember")]
    assert asked == [(GROUP.id, ALICE.id), (GROUP.id, BOB.id)]

    again = await says(tg, GROUP, ALICE, "/unsubscribe")
    assert shown(again) == said(t("en", "admins_only", command="/unsubscribe"))
    assert len(tg.calls_to("getChatMember")) == 2, "the admin answer is cached"


async def test_daily_post_reaches_a_group_and_a_forum_topic_at_its_time(world: World) -> None:
    tg = world.tg
    await subscribe(world, GROUP)
    await subscribe(world, FORUM, thread_id=TOPIC)

    mark = tg.mark()
    await world.scheduler.sweep()
    assert tg.calls_to("sendMessage", after=mark) == [], "nothing before 09:00"

    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    [in_group] = tg.calls_to("sendMessage", after=mark, chat_id=GROUP.id)
    [in_topic] = tg.calls_to("sendMessage", after=mark, chat_id=FORUM.id)
    assert "message_thread_id" not in in_group.params
    assert in_topic.thread_id == TOPIC
    assert shown(in_topic).startswith("❓")
    posts = {
        key: message
        for key, message in await world.store.db.execute_fetchall(
            "SELECT chat_key, message_id FROM posts WHERE kind = 'daily' AND status = 'sent'"
        )
    }
    assert posts == {
        "telegram:-5001": str(in_group.result["message_id"]),
        f"telegram:{FORUM.id}/{TOPIC}": str(in_topic.result["message_id"]),
    }

    # An answer in the topic, as a spoiler reply to the post, counts for the topic's question.
    ack = await says(
        tg,
        FORUM,
        ALICE,
        "self-attention",
        entities=spoiler("self-attention"),
        reply_to=in_topic.result["message_id"],
        thread_id=TOPIC,
    )
    assert shown(ack).startswith("Got your answer")
    assert await world.row("SELECT chat_key, hidden FROM attempts") == (f"telegram:{FORUM.id}/{TOPIC}", 1)


async def test_an_answer_in_the_clear_gets_the_reminder_and_a_hidden_one_does_not(world: World) -> None:
    tg = world.tg
    await subscribe(world, GROUP)
    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    [post] = tg.calls_to("sendMessage", chat_id=GROUP.id)[-1:]

    tg.user_says(GROUP, ALICE, "retrieval first", reply_to=post.result["message_id"])
    ack, reminder = await tg.wait_for("sendMessage", count=2, chat_id=GROUP.id)
    assert shown(ack).startswith("Got your answer")
    assert shown(reminder) == said(t("en", "spoiler_reminder"))

    tg.user_says(GROUP, BOB, "||retrieval, then generation||", reply_to=post.result["message_id"])
    [ack] = await tg.wait_for("sendMessage", chat_id=GROUP.id)
    assert shown(ack).startswith("Got your answer")
    assert await world.row("SELECT hidden FROM attempts WHERE user_key = 'telegram:1002'") == (1,)
    assert await world.row("SELECT hidden FROM attempts WHERE user_key = 'telegram:1001'") == (0,)


# Shapes of real updates (Bot API documentation, python-telegram-bot's and pyTelegramBotAPI's tests).
def photo_with_caption(caption: str, entities: list[dict[str, Any]]) -> dict[str, Any]:
    sizes = [(90, 67, 1251), (320, 240, 13597), (800, 600, 53720)]
    return {
        "photo": [
            {
                "file_id": f"AgACAgIAAxkBAAIBY2X{w}",
                "file_unique_id": f"AQADr7{w}",
                "file_size": size,
                "width": w,
                "height": h,
            }
            for w, h, size in sizes
        ],
        "caption": caption,
        "caption_entities": entities,
    }


def document_with_caption(caption: str, entities: list[dict[str, Any]]) -> dict[str, Any]:
    thumbnail = {
        "file_id": "AAMCAgADGQEAAgF",
        "file_unique_id": "AQADbw",
        "file_size": 1940,
        "width": 90,
        "height": 90,
    }
    return {
        "document": {
            "file_name": "answer.pdf",
            "mime_type": "application/pdf",
            "thumbnail": thumbnail,
            "thumb": thumbnail,
            "file_id": "BQACAgIAAxkBAAIBZGX",
            "file_unique_id": "AgADCw",
            "file_size": 48213,
        },
        "caption": caption,
        "caption_entities": entities,
    }


@pytest.mark.parametrize("media", [photo_with_caption, document_with_caption], ids=["photo", "document"])
async def test_an_answer_in_a_caption_counts(world: World, media: Callable[..., dict[str, Any]]) -> None:
    tg = world.tg
    await subscribe(world, GROUP)
    mark = tg.mark()
    world.clock.set(NINE_AM)
    await world.scheduler.sweep()  # the daily post, its message id recorded before the answer comes
    [post] = tg.calls_to("sendMessage", after=mark, chat_id=GROUP.id)
    answer = "keys and values"
    tg.user_sends(GROUP, ALICE, media(answer, spoiler(answer)), reply_to=post.result["message_id"])
    [ack] = await tg.wait_for("sendMessage", chat_id=GROUP.id)
    assert shown(ack).startswith("Got your answer")
    assert await world.row("SELECT text, hidden FROM attempts") == (answer, 1)


async def test_an_edited_answer_replaces_the_answer(world: World) -> None:
    tg, me = world.tg, private_chat(ALICE)
    question = await says(tg, me, ALICE, "/quiz llm")
    first = tg.user_says(me, ALICE, "keys", reply_to=question.result["message_id"])
    await tg.wait_for("sendMessage", chat_id=ALICE.id)
    fixed = "keys and values"
    tg.user_edits(first["message"], fixed, entities=spoiler(fixed))
    [ack] = await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert shown(ack).startswith("Replaced your earlier answer")
    assert await world.row("SELECT text, hidden FROM attempts WHERE current = 1") == (fixed, 1)
    # An edited command other than /answer is not run again.
    quiz = tg.user_says(me, ALICE, "/quiz rag")
    await tg.wait_for("sendMessage", chat_id=ALICE.id)
    mark = tg.mark()
    tg.user_edits(quiz["message"], "/quiz llm")
    await says(tg, me, ALICE, "/answer sequence of steps")
    assert len(tg.calls_to("sendMessage", after=mark)) == 1


@pytest.mark.parametrize("first_answer", ["keys", "/answer keys"], ids=["plain", "command"])
async def test_an_edit_never_moves_an_answer_to_a_later_question(world: World, first_answer: str) -> None:
    """In a private chat a message that is not a reply answers the open question; an edit of it
    after /quiz served another question must not become the answer to the new one."""
    tg, me = world.tg, private_chat(ALICE)
    await says(tg, me, ALICE, "/quiz llm")
    first = tg.user_says(me, ALICE, first_answer)
    await tg.wait_for("sendMessage", chat_id=ALICE.id)
    await says(tg, me, ALICE, "/quiz rag")
    mark = tg.mark()
    tg.user_edits(first["message"], f"{first_answer} and values")
    await says(tg, me, ALICE, "/stats")  # updates are handled in order: the edit's turn has passed
    assert len(tg.calls_to("sendMessage", after=mark)) == 1  # the edit got no reply
    answers = "SELECT p.question_id = 'q-rag', a.text FROM attempts a JOIN posts p ON p.id = a.post_id"
    assert await world.row(f"SELECT COUNT(*) FROM ({answers})") == (1,)
    assert await world.row(answers) == (0, "keys")  # the first question's answer, as first written


async def test_a_full_answer_of_9000_characters_is_split_into_valid_messages(world: World) -> None:
    tg, me = world.tg, private_chat(ALICE)
    await says(tg, me, ALICE, "/quiz long")
    reveal = await says(tg, me, ALICE, "/reveal")
    question = world.core.bank.get("q-long")
    assert question is not None and len(question.answer) >= 9000
    (post_id,) = await world.row("SELECT id FROM posts") or (None,)
    heading = t("en", "full_answer_heading", title=question.title, number=t("en", "post_number", number=post_id))
    expected = to_telegram_html(f"{heading}\n\n{question.answer}")
    assert len(expected) >= 2  # its formulas are shorter as Unicode text than as TeX

    tg.press(reveal.button("/full"), reveal.result, ALICE)
    chunks = await tg.wait_for("sendMessage", count=len(expected), chat_id=ALICE.id)
    texts = [shown(chunk) for chunk in chunks]  # the fake refuses unbalanced or unknown tags
    assert all(utf16_len(text) <= TEXT_LIMIT for text in texts)
    assert [chunk.params["text"] for chunk in chunks] == expected, "sent in order"
    whole = "".join(texts)
    numbers = [int(part.split()[0]) for part in whole.split("Part ")[1:]]
    assert numbers == list(range(1, numbers[-1] + 1)) and numbers[-1] >= 10, "nothing lost or repeated"
    assert "x < 3 and x > 0  # <tag> & more" in whole
    assert whole.count("中文说明 🚀") == numbers[-1]


async def test_a_question_with_an_image_sends_the_photo_first_behind_a_spoiler(
    world: World, tmp_path: Path
) -> None:
    tg, me = world.tg, private_chat(ALICE)
    await says(tg, me, ALICE, "/quiz pic")
    [photo] = tg.calls_to("sendPhoto")
    [text] = tg.calls_to("sendMessage", after=tg.calls.index(photo))
    assert photo.files["photo"] == (tmp_path / "diagram.png").read_bytes()
    assert photo.params["has_spoiler"] == "true"
    assert "Read this diagram" in shown(text)


async def test_private_answers_go_through_a_deep_link(world: World) -> None:
    tg = world.tg
    await subscribe(world, GROUP)
    changed = await says(tg, GROUP, BOB, "/settings answers private")
    assert shown(changed).startswith("Saved")
    world.clock.set(NINE_AM)
    await world.scheduler.sweep()
    [post] = tg.calls_to("sendMessage", chat_id=GROUP.id)[-1:]
    (post_id,) = await world.row("SELECT id FROM posts WHERE kind = 'daily'")
    start = f"https://t.me/dailyq_test_bot?start=answer-{post_id}-"  # and the post's token
    [link] = [button["url"] for button in post.buttons if button.get("url", "").startswith(start)]

    me = private_chat(ALICE)
    refused = await says(tg, me, ALICE, f"/start answer-{post_id}")  # the id alone: anyone could type it
    assert shown(refused) == said(t("en", "post_elsewhere"))
    opened = await says(tg, me, ALICE, f"/start {link.partition('start=')[2]}")
    assert shown(opened).endswith(said(t("en", "answer_here")))
    ack = await says(tg, me, ALICE, "my private answer")
    assert shown(ack).startswith("Got your answer")
    assert await world.row("SELECT post_id, text FROM attempts") == (post_id, "my private answer")


async def test_a_stale_or_broken_button_press_is_still_answered(world: World) -> None:
    tg, me = world.tg, private_chat(ALICE)
    menu = await says(tg, me, ALICE, "/start")
    tg.press("/grade good 999", menu.result, ALICE)
    await tg.wait_for("answerCallbackQuery")
    [reply] = await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert shown(reply) == said(t("en", "no_such_post"))


async def test_a_press_is_answered_when_the_core_fails(tg: FakeTelegram) -> None:
    def broken(incoming: Incoming) -> list[Reply]:
        if incoming.text.startswith("/grade"):
            raise RuntimeError("the database is on fire")
        return [Reply("question", buttons=((Button("Good", "/grade good 1"),),))]

    core = RecordingCore(answer=broken)
    async with running(TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST), core, tg):
        question = await says(tg, private_chat(ALICE), ALICE, "/quiz")
        tg.press(question.button("/grade"), question.result, ALICE)
        await tg.wait_for("answerCallbackQuery")
        again = await says(tg, private_chat(ALICE), ALICE, "/quiz")
    assert shown(again) == "question"


async def test_commands_are_registered_in_english_and_chinese(world: World) -> None:
    en, zh = world.tg.calls_to("setMyCommands")
    assert "language_code" not in en.params and zh.params["language_code"] == "zh"
    for call, lang in ((en, "en"), (zh, "zh")):
        assert call.params["commands"] == [
            {"command": c.name, "description": t(lang, c.help_key)} for c in COMMANDS
        ]


# ---- platform errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [retry_after(0.05), BAD_GATEWAY, HANG, MALFORMED_JSON],
    ids=["429", "502", "timeout", "malformed"],
)
async def test_a_transient_failure_delays_the_daily_post_once(
    world: World, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tg = world.tg
    await subscribe(world, GROUP)
    world.clock.set(NINE_AM)
    mark = tg.mark()
    tg.fail("sendMessage", fault, chat_id=GROUP.id)
    await world.scheduler.sweep()

    failed, delivered = tg.calls_to("sendMessage", after=mark, chat_id=GROUP.id)
    assert failed.fault is fault and delivered.result is not None
    assert await world.row("SELECT status, message_id FROM posts WHERE kind = 'daily'") == (
        "sent",
        str(delivered.result["message_id"]),
    )
    if fault.status == 429:
        assert world.slept == [], "python-telegram-bot's rate limiter waited and retried"
    else:
        assert world.slept, "the scheduler backed off on its clock and retried"
    await assert_still_running(tg)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("fault", [KICKED, CHAT_NOT_FOUND], ids=["403-kicked", "400-chat-not-found"])
async def test_a_chat_the_bot_cannot_reach_is_unsubscribed(
    world: World, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tg = world.tg
    await subscribe(world, GROUP)
    tg.bot_removed(GROUP, BOB)  # not even requested: the next send tells
    world.clock.set(NINE_AM)
    tg.fail("sendMessage", fault, chat_id=GROUP.id, times=None)
    await world.scheduler.sweep()

    assert await world.row("SELECT subscribed FROM chats WHERE key = 'telegram:-5001'") == (0,)
    assert await world.row("SELECT status FROM posts WHERE kind = 'daily'") == ("failed",)
    await assert_still_running(tg)
    assert TOKEN not in caplog.text


async def test_a_migrated_group_keeps_its_subscription_and_progress_under_the_new_id(world: World) -> None:
    tg = world.tg
    supergroup = -1009001
    await subscribe(world, GROUP)
    world.clock.set(NINE_AM)
    tg.fail("sendMessage", migrated(supergroup), chat_id=GROUP.id, times=None)
    await world.scheduler.sweep()

    [delivered] = [c for c in tg.calls_to("sendMessage", chat_id=supergroup) if c.result]
    assert await world.row("SELECT key, subscribed FROM chats") == (f"telegram:{supergroup}", 1)
    assert await world.row("SELECT chat_key, status, message_id FROM posts") == (
        f"telegram:{supergroup}",
        "sent",
        str(delivered.result["message_id"]),
    )


async def test_a_failed_reply_is_logged_and_the_next_one_still_goes(
    tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    core = RecordingCore(answer=lambda incoming: [Reply("first"), Reply("second")])
    async with running(TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST), core, tg):
        for fault in (BLOCKED, BAD_GATEWAY, HANG, MALFORMED_JSON):
            tg.fail("sendMessage", fault, chat_id=ALICE.id)
            tg.user_says(private_chat(ALICE), ALICE, "/help")
            failed, sent = await tg.wait_for("sendMessage", count=2, chat_id=ALICE.id)
            assert (failed.fault, failed.text, shown(sent)) == (fault, "first", "second")
            assert caplog.text.count("a reply to telegram:1001 failed") == len(core.seen)
    assert TOKEN not in caplog.text


async def assert_still_running(tg: FakeTelegram) -> None:
    reply = await says(tg, private_chat(ALICE), ALICE, "/start")
    assert shown(reply).startswith("Welcome")


async def test_send_maps_errors_for_the_scheduler(tg: FakeTelegram) -> None:
    adapter = TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST, rate_limiter=False)
    topic = ChatRef("telegram", str(FORUM.id), str(TOPIC))
    tg.add_chat(FORUM)
    sent = await adapter.send(topic, Reply("**daily**"))  # before run(): send connects by itself
    assert sent == SentRef(topic, "1")
    tg.fail("sendMessage", KICKED)
    with pytest.raises(ChatGone):
        await adapter.send(topic, Reply("again"))
    deleted_topic = ChatRef("telegram", str(FORUM.id), "404")
    tg.fail("sendMessage", Fault.error(400, "Bad Request: message thread not found"))
    with pytest.raises(ChatGone):
        await adapter.send(deleted_topic, Reply("to a deleted topic"))
    tg.fail("sendMessage", Fault.error(400, "Bad Request: can't parse entities"))
    with pytest.raises(PlatformError) as refused:
        await adapter.send(topic, Reply("refused"))
    assert type(refused.value) is PlatformError
    tg.fail("sendMessage", Fault.error(401, "Unauthorized"))  # the token revoked while running
    with pytest.raises(PlatformError, match="TELEGRAM_BOT_TOKEN"):
        await adapter.send(topic, Reply("with a revoked token"))
    async with running(adapter, RecordingCore(), tg):  # run() starts on that connection, closes it
        await says(tg, private_chat(ALICE), ALICE, "/start")


@pytest.fixture
async def sending(tg: FakeTelegram) -> AsyncIterator[TelegramAdapter]:
    """An adapter that sends without run() (as the scheduler may before run() has started); its
    connections are closed at the end, as run() closes them when it stops."""
    adapter = TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST, rate_limiter=False)
    try:
        yield adapter
    finally:
        await adapter.bot.shutdown()


async def test_a_send_reads_only_the_message_id_quietly(
    tg: FakeTelegram, sending: TelegramAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Building the whole Message from sendMessage's answer cost a third of a millisecond an update
    # (bench/README.md, issue 19) for an id; the public do_api_request returns the plain answer,
    # and the adapter silences the warning it gives for a method the library has.
    version = telegram.__version__
    built: list[object] = []
    de_json = telegram.Message.de_json
    monkeypatch.setattr(telegram.Message, "de_json", lambda data, bot=None: built.append(data) or de_json(data, bot))
    adapter = sending
    chat = ChatRef("telegram", str(ALICE.id))
    with warnings.catch_warnings(record=True) as caught:
        first = await adapter.send(chat, Reply("**question**", buttons=((Button("Reveal", "/reveal 1"),),)))
        second = await adapter.send(chat, Reply("reveal", reply_to=first.message_id))
    assert (first, second) == (SentRef(chat, "1"), SentRef(chat, "2"))
    assert tg.calls_to("sendMessage")[-1].params["reply_parameters"]["message_id"] == 1
    assert built == [], f"python-telegram-bot {version}: a send built a Message"
    assert [str(w.message) for w in caught] == [], f"python-telegram-bot {version} warns"


async def test_a_reply_s_bot_api_objects_go_as_plain_dicts(
    tg: FakeTelegram, sending: TelegramAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The keyboard, reply parameters and link preview options were built as python-telegram-bot
    # objects for each reply, only to be turned back into dicts (to_dict) when sent: over 0.1 ms a
    # reply with five buttons. The Bot API gets the same objects either way.
    adapter = sending
    chat = ChatRef("telegram", str(ALICE.id))
    await adapter.send(chat, Reply("warm-up"))  # getMe and the first sendMessage
    converted: list[str] = []
    to_dict = telegram.TelegramObject.to_dict
    monkeypatch.setattr(
        telegram.TelegramObject,
        "to_dict",
        lambda self, recursive=True: converted.append(type(self).__name__) or to_dict(self, recursive),
    )
    buttons = (
        (Button("Full", "/full 7"),),
        (Button("Good", "/grade good 7"), Button("Open", url="https://x.org")),
    )
    await adapter.send(chat, Reply("reveal", buttons=buttons, reply_to="1"))
    assert converted == []
    params = tg.calls_to("sendMessage")[-1].params
    assert params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Full", "callback_data": "/full 7"}],
            [{"text": "Good", "callback_data": "/grade good 7"}, {"text": "Open", "url": "https://x.org"}],
        ]
    }
    assert params["reply_parameters"] == {"message_id": 1, "allow_sending_without_reply": True}
    assert params["link_preview_options"] == {"is_disabled": True}


async def test_a_wrong_token_is_a_clear_error_without_the_token(tg: FakeTelegram) -> None:
    wrong = "42:WrongTokenWrongTokenWrongToken"
    adapter = TelegramAdapter(wrong, base_url=tg.base_url, request_timeouts=FAST)
    with pytest.raises(PlatformError, match="TELEGRAM_BOT_TOKEN") as error:
        await adapter.run(RecordingCore())
    assert wrong not in str(error.value)


async def test_a_failed_start_leaves_no_connection_open(tg: FakeTelegram) -> None:
    """python-telegram-bot closes its connections only once getMe has succeeded; the adapter
    closes them itself when it fails (the app starts the adapter again and again meanwhile)."""
    tg.fail("getMe", Fault.error(401, "Unauthorized"))
    adapter = TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST)
    with pytest.raises(PlatformError):
        await adapter.run(RecordingCore())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        del adapter
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


# ---- translation ---------------------------------------------------------------------------------


@dataclass
class RecordingCore:
    """The core's side of the interface, keeping what it was given; replies come from `answer`."""

    answer: Callable[[Incoming], list[Reply]] = lambda incoming: [Reply("ok")]
    seen: list[Incoming] = field(default_factory=list)
    sent_refs: list[SentRef] = field(default_factory=list)
    admin: list[bool] = field(default_factory=list)
    told: asyncio.Event = field(default_factory=asyncio.Event)  # set by sent()

    async def handle(self, incoming: Incoming) -> list[Reply]:
        self.seen.append(incoming)
        self.admin.append(await incoming.is_admin())
        return self.answer(incoming)

    async def sent(self, reply: Reply, ref: SentRef) -> None:
        self.sent_refs.append(ref)
        self.told.set()


@pytest.fixture
async def recorded(tg: FakeTelegram) -> AsyncIterator[RecordingCore]:
    core = RecordingCore()
    async with running(TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST), core, tg):
        yield core


async def test_commands_messages_and_spoilers_become_incoming(
    tg: FakeTelegram, recorded: RecordingCore
) -> None:
    chen = User(1003, "Chen", language_code="zh-hans")
    text = "答案 is 🚀 attention"  # offsets count UTF-16 units: 🚀 is two
    messages: list[tuple[str, list[dict[str, Any]] | None]] = [
        ("/quiz@dailyq_test_bot rag", None),
        (text, spoiler(text)),
        (text, spoiler(text, "🚀 attention")),
        ("/answer ||hidden||", None),
        ("/answer spoiler", spoiler("/answer spoiler", "spoiler")),
    ]
    for words, entities in messages:
        await says(tg, private_chat(chen), chen, words, entities=entities)
    assert [(i.text, i.hidden, i.lang, i.is_group) for i in recorded.seen] == [
        ("/quiz rag", False, "zh-hans", False),
        (text, True, "zh-hans", False),
        (text, False, "zh-hans", False),
        ("/answer ||hidden||", True, "zh-hans", False),
        ("/answer spoiler", True, "zh-hans", False),
    ]
    assert recorded.admin == [True] * 5 and tg.calls_to("getChatMember") == [], "a private chat is the user's"


async def test_in_groups_only_commands_and_replies_to_the_bot_reach_the_core(
    tg: FakeTelegram, recorded: RecordingCore
) -> None:
    tg.set_member_status(GROUP, BOB, "administrator")
    bot_message = await says(tg, GROUP, BOB, "/quiz")
    tg.user_says(GROUP, ALICE, "chatter between members")
    tg.user_says(GROUP, ALICE, "/quiz@another_bot")
    tg.user_says(GROUP, BOB, "a reply to a member", reply_to=bot_message.result["message_id"] - 1)
    answer = tg.user_says(GROUP, ALICE, "an answer", reply_to=bot_message.result["message_id"])
    await tg.wait_for("sendMessage", chat_id=GROUP.id)
    first, last = recorded.seen
    assert (first.text, first.is_group, first.chat.key) == ("/quiz", True, "telegram:-5001")
    assert (last.text, last.reply_to, last.message_id) == (
        "an answer",
        str(bot_message.result["message_id"]),
        str(answer["message"]["message_id"]),
    )
    assert recorded.admin == [True, False]


async def test_spoilers_count_by_the_utf16_positions_of_the_body_only(
    tg: FakeTelegram, recorded: RecordingCore
) -> None:
    def over(offset: int, length: int) -> list[dict[str, Any]]:
        return [{"type": "spoiler", "offset": offset, "length": length}]

    text = "/answer keys and values"
    emoji = "/answer 🚀 keys and values"  # 🚀 is two UTF-16 units
    cases = [
        (text, over(0, 16), False),  # "/answer keys and": as many characters as the body, not its own
        (text, over(8, 15), True),
        (text, over(0, 23), True),
        (text, over(8, 14), False),  # the final "s" is in the clear
        (emoji, over(8, 18), True),
        (emoji, over(8, 17), False),  # counted in characters, 17 would reach the end
        ("/answer ||keys|| and values", over(17, 10), True),  # typed and entity spoilers together
        ("答案 🚀 kv", over(0, 4), False),
        ("答案 🚀 kv", over(0, 8), True),
    ]
    for words, entities, _ in cases:
        await says(tg, private_chat(ALICE), ALICE, words, entities=entities)
    assert [i.hidden for i in recorded.seen] == [hidden for *_, hidden in cases]


async def test_in_groups_unknown_commands_not_addressed_to_us_are_ignored(
    tg: FakeTelegram, recorded: RecordingCore
) -> None:
    for words in ("/random 1000 2000", "/test @OtherBot", "/roll@dice_bot 6"):
        tg.user_says(GROUP, ALICE, words)
    await says(tg, GROUP, ALICE, "/nonsense@dailyq_test_bot")  # addressed to us: we say it is unknown
    await says(tg, GROUP, ALICE, "/stats")
    await says(tg, private_chat(ALICE), ALICE, "/random 1000 2000")  # a private chat is ours alone
    assert [i.text for i in recorded.seen] == ["/nonsense", "/stats", "/random 1000 2000"]


async def test_a_forum_topic_is_part_of_the_address(tg: FakeTelegram, recorded: RecordingCore) -> None:
    in_topic = await says(tg, FORUM, ALICE, "/quiz", thread_id=TOPIC)
    assert in_topic.thread_id == TOPIC
    await says(tg, FORUM, ALICE, "/quiz")  # the General topic: no thread
    await says(tg, FORUM, ALICE, "answer", reply_to=in_topic.result["message_id"], thread_id=TOPIC)
    keys = [(i.chat.key, i.reply_to) for i in recorded.seen]
    assert keys == [
        (f"telegram:{FORUM.id}/{TOPIC}", None),  # replying to the topic's creation is not a reply
        (f"telegram:{FORUM.id}", None),
        (f"telegram:{FORUM.id}/{TOPIC}", str(in_topic.result["message_id"])),
    ]
    tg.press("/reveal 1", in_topic.result, ALICE)
    await tg.wait_for("answerCallbackQuery")
    await tg.wait_for("sendMessage", message_thread_id=TOPIC)
    assert recorded.seen[-1].chat.key == f"telegram:{FORUM.id}/{TOPIC}"


async def test_a_press_on_an_inaccessible_message_keeps_its_forum_topic(tg: FakeTelegram) -> None:
    core = RecordingCore(answer=lambda incoming: [Reply("ok", buttons=((Button("Reveal", "/reveal 12"),),))])
    async with running(TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST), core, tg):
        tg.user_says(FORUM, ALICE, "/quiz", thread_id=TOPIC)
        [in_topic] = await tg.wait_for("sendMessage", message_thread_id=TOPIC)
        mark = tg.mark()
        tg.press_inaccessible(in_topic.button("/reveal"), in_topic.result, ALICE)
        await tg.wait_for("answerCallbackQuery", after=mark)
        [answer] = await tg.wait_for("sendMessage", after=mark)
    pressed = core.seen[-1]
    assert (pressed.text, pressed.chat.key) == ("/reveal 12", f"telegram:{FORUM.id}/{TOPIC}")
    assert answer.thread_id == TOPIC, "the reply went to General"


async def test_buttons_go_on_the_last_message_and_core_learns_the_first(tg: FakeTelegram) -> None:
    long_text = "\n\n".join(f"Paragraph {n}: " + "word " * 300 for n in range(8))
    buttons = (
        (Button("Reveal", "/reveal 12"), Button("Site", url="https://example.com")),
        (Button("Answer privately", "/start answer-12"), Button("Too long", "/grade good " + "9" * 80)),
    )
    core = RecordingCore(
        answer=lambda incoming: [Reply(long_text, buttons=buttons, kind="question", post_id=12)]
    )
    async with running(TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST), core, tg):
        tg.user_says(private_chat(ALICE), ALICE, "/quiz")
        count = len(to_telegram_html(long_text))
        chunks = await tg.wait_for("sendMessage", count=count, chat_id=ALICE.id)
        await asyncio.wait_for(core.told.wait(), 5)
    assert count > 1 and all(not c.buttons for c in chunks[:-1])
    assert chunks[-1].buttons == [
        {"text": "Reveal", "callback_data": "/reveal 12"},
        {"text": "Site", "url": "https://example.com"},
        {"text": "Answer privately", "url": "https://t.me/dailyq_test_bot?start=answer-12"},
        {"text": "Too long", "callback_data": ("/grade good " + "9" * 80)[:64]},
    ]
    assert core.sent_refs == [
        SentRef(ChatRef("telegram", str(ALICE.id)), str(chunks[0].result["message_id"]))
    ]


async def test_a_private_reply_from_a_group_goes_to_the_users_private_chat(tg: FakeTelegram) -> None:
    core = RecordingCore(answer=lambda incoming: [Reply("just for you", private=True, reply_to="1")])
    async with running(TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST), core, tg):
        tg.user_says(GROUP, ALICE, "/stats")
        [private] = await tg.wait_for("sendMessage")
    assert (private.chat_id, shown(private)) == (ALICE.id, "just for you")
    assert "reply_parameters" not in private.params, "the message replied to is in the group"


@pytest.mark.parametrize(("language_code", "lang"), [("en", "en"), ("zh-hans", "zh"), (None, "en")])
async def test_a_user_who_never_started_the_bot_is_asked_to_in_the_group(
    tg: FakeTelegram, language_code: str | None, lang: str
) -> None:
    user = User(1001, "Alice", language_code=language_code)
    core = RecordingCore(answer=lambda incoming: [Reply("just for you", private=True)])
    async with running(TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST), core, tg):
        tg.fail("sendMessage", NEVER_STARTED, chat_id=user.id)
        asked = tg.user_says(GROUP, user, "/stats")
        refused, notice = await tg.wait_for("sendMessage", count=2)
    assert refused.fault is NEVER_STARTED and notice.chat_id == GROUP.id
    assert shown(notice) == said(t(lang, "private_blocked"))
    assert notice.params["reply_parameters"]["message_id"] == asked["message"]["message_id"]
    assert notice.buttons == [{"text": t(lang, "button_open_private"), "url": "https://t.me/dailyq_test_bot"}]


async def test_the_never_started_notice_speaks_the_groups_language_not_the_members_client(world: World) -> None:
    tg = world.tg
    await subscribe(world, GROUP)
    assert shown(await says(tg, GROUP, BOB, "/settings lang zh")).startswith("已")
    world.core.settings = replace(world.core.settings, owners=(f"telegram:{ALICE.id}",))
    tg.fail("sendMessage", NEVER_STARTED, chat_id=ALICE.id)
    tg.user_says(GROUP, ALICE, "/reload")  # the owner's reload report is private; Alice's client is English
    _, notice = await tg.wait_for("sendMessage", count=2)
    assert shown(notice) == said(t("zh", "private_blocked"))
    assert notice.buttons == [{"text": t("zh", "button_open_private"), "url": "https://t.me/dailyq_test_bot"}]


async def test_the_admin_cache_keeps_the_most_recently_asked_pairs_only(tg: FakeTelegram) -> None:
    core = RecordingCore()
    adapter = TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST, admin_cache_size=2)
    carol = User(1004, "Carol", language_code="en")
    tg.set_member_status(GROUP, BOB, "administrator")
    async with running(adapter, core, tg):
        for user in (ALICE, BOB, ALICE, carol, ALICE, BOB):  # Bob is the least recent when Carol comes
            await says(tg, GROUP, user, "/stats")
    asked = [int(call.params["user_id"]) for call in tg.calls_to("getChatMember")]
    assert asked == [ALICE.id, BOB.id, carol.id, BOB.id]
    assert core.admin == [False, True, False, False, False, True]
    assert len(adapter.admin_cache) == 2


def test_an_admin_answer_expires_after_its_time() -> None:
    now = [0.0]
    cache = AdminCache(60.0, 10, now=lambda: now[0])
    cache.put(-1, 7, True)
    now[0] = 59.9
    assert cache.get(-1, 7) is True
    now[0] = 60.0
    assert cache.get(-1, 7) is None and len(cache) == 0


def webhook_adapter(tg: FakeTelegram, secret: str | None = "s3cret") -> tuple[TelegramAdapter, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/telegram-hook"
    adapter = TelegramAdapter(
        tg.token,
        base_url=tg.base_url,
        request_timeouts=FAST,
        webhook_url=url,
        webhook_listen=f"127.0.0.1:{port}",
        webhook_secret=secret,
    )
    return adapter, url


async def test_generated_webhook_secrets_share_one_filter_per_library_logger_and_levels_are_left_alone(
    tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    library = ("telegram.Bot", "telegram.ext.ExtBot", "httpx")
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    webhook_adapter(tg, secret=None)
    filters = {name: len(logging.getLogger(name).filters) for name in library}
    adapters = [webhook_adapter(tg, secret=None)[0] for _ in range(5)]
    assert {name: len(logging.getLogger(name).filters) for name in library} == filters
    assert {name: logging.getLogger(name).level for name in levels} == levels  # setup_logging's job
    with caplog.at_level(logging.DEBUG):
        for name in library:
            logging.getLogger(name).debug("setWebhook secret_token=%s", adapters[-1]._webhook_secret)
    assert adapters[-1]._webhook_secret not in caplog.text and caplog.text.count("[redacted]") == 3


async def test_webhook_mode_checks_the_secret(tg: FakeTelegram) -> None:
    adapter, url = webhook_adapter(tg)
    core = RecordingCore()
    async with running(adapter, core, tg):
        [registered] = await tg.wait_for("setWebhook", after=0)
        assert registered.params["url"] == url and registered.params["secret_token"] == "s3cret"
        started = tg.user_says(private_chat(ALICE), ALICE, "/start")
        await tg.wait_for("sendMessage", chat_id=ALICE.id)
        async with ClientSession() as http:
            forged = started | {"update_id": 999}
            async with http.post(
                url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}
            ) as response:
                assert response.status == 403
    assert [i.text for i in core.seen] == ["/start"]
    assert tg.webhook_statuses == [200]
    assert tg.calls_to("getUpdates") == []


async def test_webhook_mode_without_a_configured_secret_makes_one_and_refuses_forgeries(
    tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    adapter, url = webhook_adapter(tg, secret=None)
    core = RecordingCore()
    # A forged message "from an anonymous admin": sent on behalf of the group itself.
    forged = {
        "update_id": 999,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": GROUP.to_json(),
            "sender_chat": GROUP.to_json(),
            "text": "/settings time 03:00",
            "entities": [{"type": "bot_command", "offset": 0, "length": 9}],
        },
    }
    async with running(adapter, core, tg):
        [registered] = await tg.wait_for("setWebhook", after=0)
        secret = registered.params["secret_token"]
        assert len(secret) >= 32 and set(secret) <= set(string.ascii_letters + string.digits + "_-")
        async with ClientSession() as http:
            for headers in (
                {},
                {"X-Telegram-Bot-Api-Secret-Token": ""},
                {"X-Telegram-Bot-Api-Secret-Token": "x"},
            ):
                async with http.post(url, json=forged, headers=headers) as response:
                    assert response.status == 403
        tg.user_says(private_chat(ALICE), ALICE, "/start")  # Telegram's own delivery carries the secret
        await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert [i.text for i in core.seen] == ["/start"]
    assert tg.webhook_statuses == [200]
    assert secret not in caplog.text, "python-telegram-bot logs setWebhook's parameters at DEBUG"


async def test_webhook_mode_acknowledges_an_update_it_cannot_read_and_goes_on(
    tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    # A refused delivery would be retried by Telegram, holding back every update after it.
    adapter, _ = webhook_adapter(tg)
    core = RecordingCore()
    async with running(adapter, core, tg):
        await tg.wait_for("setWebhook", after=0)
        bad = tg.inject({"message": {"message_id": 1, "text": "no date, no chat"}})
        tg.user_says(private_chat(ALICE), ALICE, "/start")
        await tg.wait_for("sendMessage", chat_id=ALICE.id)
    assert tg.webhook_statuses == [200, 200]
    assert [i.text for i in core.seen] == ["/start"]
    assert f"update {bad['update_id']} is unreadable" in caplog.text


def test_the_adapter_needs_no_private_name_of_python_telegram_bot() -> None:
    # The adapter once re-implemented get_updates through Bot._post and Bot._request, names that
    # can change in any release. Reading a batch update by update now goes through public API:
    # these are the names it needs; this fails, naming the version, if a release drops one.
    version = telegram.__version__
    asked = {"offset", "limit", "timeout", "allowed_updates"}
    assert asked <= set(inspect.signature(Bot.get_updates).parameters), (
        f"python-telegram-bot {version}: Bot.get_updates has other parameters now"
    )
    for name in ("do_api_request", "insert_callback_data"):
        assert callable(getattr(ExtBot, name, None)), f"python-telegram-bot {version} has no ExtBot.{name}"
    tree = ast.parse(Path(telegram_adapter.__file__).read_text())
    private = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").split(".")[0] == "telegram"
        and any(part.startswith("_") for part in (node.module or "").split("."))
    ]
    assert private == [], f"python-telegram-bot {version}: the adapter imports private modules {private}"
