"""Fuzzing: any text as any command's argument, and odd platform payloads into the adapters.

Properties: the core answers every command with something Telegram and Discord accept; an
adapter turns any update or payload into an Incoming or ignores it, never raising; and a bot fed
odd input through the fake servers keeps answering. Examples are bounded so the file stays fast.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Update

from bot.adapters.discord import DiscordAdapter
from bot.adapters.telegram import RequestTimeouts, TelegramAdapter
from bot.config import Settings
from bot.core.bank import Bank
from bot.core.commands import COMMANDS, Core
from bot.core.messages import t
from bot.core.model import Button, ChatRef, Incoming, Question, Reply, SentRef
from bot.core.render import to_discord, to_telegram_html
from bot.core.store import SQLiteStore, Store
from bot.core.timing import KEYS as SETTING_KEYS
from tests.clock import FakeClock
from tests.conftest import sql_rows
from tests.fakes.discord_api import FakeDiscord, FakeInteraction
from tests.fakes.telegram_api import (
    TEXT_LIMIT,
    TOKEN,
    Call,
    FakeTelegram,
    User,
    private_chat,
    utf16_len,
    visible_text,
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    # One bot (and one database) serves every example, as a running bot serves every message.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_MORE = settings(FUZZ, max_examples=200)  # for the cheap properties
BANK = Bank(
    [
        Question(
            f"q{n}",
            f"What is *thing* {n} <b>&amp;</b> `code`?",
            f"Answer {n} with **bold**, <tags> & ||spoilers||.\n\n```\ncode {n}\n```",
            summary=f"Summary {n}." if n % 2 else None,
            company="OpenAI" if n % 3 else None,
            tags=("llm", "rag") if n % 2 else ("agent",),
        )
        for n in range(12)
    ]
)
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FAST = RequestTimeouts(connect=2.0, read=0.5, write=2.0, media_write=2.0, pool=2.0)


async def _yes() -> bool:
    return True


async def _no() -> bool:
    return False


def make_core(store: Store) -> Core:
    settings = Settings(timezone="UTC", post_time="09:00", lang="en")
    return Core(store, BANK, settings, FakeClock(NOW), random.Random(5), fuzz=False)


# ---- any text as any command's argument -----------------------------------------------------------

ANY_CODE_POINT = st.characters(exclude_categories=())  # lone surrogates too: JSON can carry "\ud800"
arguments = st.one_of(
    st.text(),
    st.text(ANY_CODE_POINT),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1000, max_size=5000),
    st.builds("{} {}".format, st.sampled_from([*SETTING_KEYS, "good", "again", "yes", "1", "2"]), st.text()),
    st.sampled_from(
        [
            "1",
            "-1",
            "0x10",
            "１２",
            "٣",
            "²",
            "good 1",
            "999999999999999999999",
            "25:99",
            "Mars/Olympus",
            "1e5",
        ]
    ),
)


@FUZZ_MORE
@given(
    command=st.sampled_from(COMMANDS),
    argument=arguments,
    in_group=st.booleans(),
    admin=st.booleans(),
    lang=st.sampled_from([None, "en", "zh-hans", "fr", ""]),
    name=st.text(ANY_CODE_POINT, max_size=40),
)
async def test_any_text_as_any_commands_argument_gets_a_reply_both_platforms_accept(
    store: Store, command: Any, argument: str, in_group: bool, admin: bool, lang: str | None, name: str
) -> None:
    incoming = Incoming(
        "telegram",
        ChatRef("telegram", "-100" if in_group else "100"),
        "100",
        name,
        f"/{command.name} {argument}",
        is_group=in_group,
        is_admin=_yes if admin else _no,
        lang=lang,
    )
    replies = await make_core(store).handle(incoming)
    assert replies, f"/{command.name} got no reply"
    for reply in replies:
        assert reply.text.strip()
        for chunk in to_telegram_html(reply.text):
            shown = visible_text(chunk)  # raises where Telegram would refuse the HTML
            assert shown.strip() and utf16_len(shown) <= TEXT_LIMIT
        for chunk in to_discord(reply.text):
            assert chunk.strip() and len(chunk) <= 2000


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/reveal 999999999999999999999", t("en", "no_such_post")),  # a whole number, just no post's
        ("/grade good 99999999999999999999", t("en", "no_such_post")),
        ("/full " + "9" * 5000, t("en", "no_such_post")),  # longer than int() reads by default
        ("/full ²", t("en", "bad_post_id", value="²")),  # a digit to Unicode, not to us
    ],
    ids=["over-64-bits", "grade-over-64-bits", "5000-digits", "superscript-digit"],
)
async def test_a_post_id_it_cannot_read_says_why(store: Store, command: str, expected: str) -> None:
    incoming = Incoming("telegram", ChatRef("telegram", "100"), "100", "Fuzz", command)
    assert [reply.text for reply in await make_core(store).handle(incoming)] == [expected]


async def test_lone_surrogates_are_replaced_and_every_reply_renders(store: Store) -> None:
    core = make_core(store)
    chat = ChatRef("telegram", "100")
    await core.handle(Incoming("telegram", chat, "100", "Fu\udc00zz", "/quiz"))
    await core.handle(Incoming("telegram", chat, "100", "Fu\udc00zz", "/answer \ud83d\ude80 and \ud800"))
    for text in ("/quiz x\ud800", "/stats", "/settings tags \udfff", "/subscribe \ud800"):
        for reply in await core.handle(Incoming("telegram", chat, "100", "Fu\udc00zz", text)):
            assert to_telegram_html(reply.text) and to_discord(reply.text)
    rows = await sql_rows(store, "SELECT text FROM attempts UNION ALL SELECT name FROM users")
    assert sorted(row[0] for row in rows) == ["Fu\ufffdzz", "🚀 and \ufffd"], (
        "a surrogate pair is one character"
    )


async def test_a_nul_in_a_message_or_a_name_is_kept_as_a_replacement_character(store: Store) -> None:
    # PostgreSQL's text cannot hold NUL (SQLite's can): the core replaces it, so both keep the same.
    core = make_core(store)
    chat = ChatRef("telegram", "100")
    await core.handle(Incoming("telegram", chat, "100", "N\x00ul", "/quiz"))
    await core.handle(Incoming("telegram", chat, "100", "N\x00ul", "/answer a\x00b"))
    rows = await sql_rows(store, "SELECT text FROM attempts UNION ALL SELECT name FROM users")
    assert sorted(row[0] for row in rows) == ["N\ufffdul", "a\ufffdb"]


# ---- Telegram: updates into the adapter's translation ------------------------------------------------

BOT_ID = int(TOKEN.split(":")[0])  # the fake's bot
telegram_users = st.fixed_dictionaries(
    {"id": st.integers(1, 2**40), "is_bot": st.booleans(), "first_name": st.text(max_size=30)},
    optional={
        "last_name": st.text(max_size=20),
        "username": st.text(max_size=20),
        "language_code": st.one_of(st.sampled_from(["en", "zh-hans", "zh", "fr", ""]), st.text(max_size=8)),
    },
)
telegram_chats = st.fixed_dictionaries(
    {
        "id": st.integers(-(10**13), 10**13),
        "type": st.sampled_from(["private", "group", "supergroup", "channel", "sender", "something-new"]),
    },
    optional={"title": st.text(max_size=30), "is_forum": st.booleans()},
)
telegram_texts = st.one_of(
    st.text(max_size=300),
    st.builds("/{}{}".format, st.sampled_from([c.name for c in COMMANDS]), st.text(max_size=60)),
    st.builds("/{}@{} {}".format, st.text(max_size=10), st.text(max_size=20), st.text(max_size=20)),
    st.builds("||{}||".format, st.text(max_size=60)),
    st.integers(TEXT_LIMIT, 40_000).map(lambda n: "é🚀" * (n // 2)),
)
entities = st.lists(
    st.one_of(
        st.builds(lambda length: {"type": "bot_command", "offset": 0, "length": length}, st.integers(0, 40)),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    ["bot_command", "spoiler", "bold", "mention", "text_link", "brand_new"]
                ),
                "offset": st.integers(-10, 400),
                "length": st.integers(-10, 400),
            }
        ),
    ),
    max_size=6,
)
quoted_messages = st.fixed_dictionaries(
    {"message_id": st.integers(1, 2**31), "date": st.integers(1, 2**31), "chat": telegram_chats},
    optional={
        "from": st.one_of(telegram_users, st.just({"id": BOT_ID, "is_bot": True, "first_name": "DailyQ"})),
        "text": st.text(max_size=50),
        "message_thread_id": st.integers(1, 1000),
        "forum_topic_created": st.just({"name": "Topic", "icon_color": 7322096}),
    },
)
sticker = {
    "file_id": "s",
    "file_unique_id": "u",
    "type": "regular",
    "width": 1,
    "height": 1,
    "is_animated": False,
    "is_video": False,
}
message_extras = {
    "entities": entities,
    "caption": st.text(max_size=50),
    "message_thread_id": st.integers(1, 1000),
    "is_topic_message": st.booleans(),
    "sender_chat": telegram_chats,
    "reply_to_message": quoted_messages,
    "sticker": st.just(sticker),
}
message_basics = {"message_id": st.integers(1, 2**31), "date": st.integers(1, 2**31), "chat": telegram_chats}
telegram_messages = st.one_of(
    st.fixed_dictionaries(
        message_basics | {"from": telegram_users, "text": telegram_texts}, optional=message_extras
    ),
    st.fixed_dictionaries(
        message_basics, optional=message_extras | {"from": telegram_users, "text": telegram_texts}
    ),
)
inaccessible = st.fixed_dictionaries(
    {"message_id": st.integers(1, 2**31), "date": st.just(0), "chat": telegram_chats}
)
button_presses = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=10), "from": telegram_users, "chat_instance": st.text(max_size=10)},
    optional={
        "message": st.one_of(telegram_messages, inaccessible),
        "data": st.one_of(
            st.text(max_size=64), st.builds("/grade {} {}".format, st.text(max_size=8), st.integers())
        ),
        "inline_message_id": st.text(max_size=10),
    },
)
updates = st.one_of(
    st.fixed_dictionaries({"update_id": st.integers(1, 2**31), "message": telegram_messages}),
    st.fixed_dictionaries({"update_id": st.integers(1, 2**31), "callback_query": button_presses}),
    st.fixed_dictionaries({"update_id": st.integers(1, 2**31), "edited_message": telegram_messages}),
    st.fixed_dictionaries({"update_id": st.integers(1, 2**31), "channel_post": telegram_messages}),
    st.fixed_dictionaries(
        {"update_id": st.integers(1, 2**31)},
        optional={
            "kind_from_a_future_bot_api": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
        },
    ),
)


@dataclass
class RecordingCore:
    """The core's side of the interface: keeps every Incoming and answers "ok"."""

    seen: list[Incoming] = field(default_factory=list)

    async def handle(self, incoming: Incoming) -> list[Reply]:
        self.seen.append(incoming)
        return [Reply("ok")]

    async def sent(self, reply: Reply, ref: SentRef) -> None:
        pass


@asynccontextmanager
async def running_telegram(tg: FakeTelegram, core: Any) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(tg.token, base_url=tg.base_url, request_timeouts=FAST, poll_timeout=1)
    task = asyncio.create_task(adapter.run(core))
    try:
        await tg.wait_until(lambda: bool(tg.calls_to("getUpdates")))
        yield adapter
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def telegram_adapter() -> AsyncIterator[TelegramAdapter]:
    async with FakeTelegram() as tg, running_telegram(tg, RecordingCore()) as adapter:
        yield adapter


def check_incoming(incoming: Incoming, platform: str) -> None:
    assert incoming.platform == platform
    assert ChatRef.from_key(incoming.chat.key) == incoming.chat
    assert incoming.chat.chat_id.lstrip("-").isdigit(), incoming.chat
    assert incoming.user_id and isinstance(incoming.text, str) and isinstance(incoming.hidden, bool)


@FUZZ_MORE
@given(data=updates)
async def test_any_update_translates_to_an_incoming_or_nothing(
    telegram_adapter: TelegramAdapter, data: dict[str, Any]
) -> None:
    update = Update.de_json(data, telegram_adapter.bot)
    incoming = telegram_adapter.incoming_from(update)
    if incoming is not None:
        check_incoming(incoming, "telegram")
        if update.callback_query:
            # the button's payload, less the forum topic a button may carry after a line break
            data = update.callback_query.data
            assert data == incoming.text or data.startswith(incoming.text + "\n")


ALICE = User(2001, "Alice", language_code="en")


def message(text: str | None, **fields: Any) -> dict[str, Any]:
    """Alice's message in her private chat; no `text` key when None (a sticker, say)."""
    basics = {"message_id": 1, "date": 1_700_000_000, "chat": {"id": ALICE.id, "type": "private"}}
    return basics | {"from": ALICE.to_json()} | ({} if text is None else {"text": text}) | fields


ODD_UPDATES = {
    "huge text": {"message": message("x" * 200_000)},
    "entity past the end": {
        "message": message("/quiz", entities=[{"type": "bot_command", "offset": 0, "length": 500}])
    },
    "spoiler splitting an emoji": {
        "message": message("🚀🚀 answer", entities=[{"type": "spoiler", "offset": 1, "length": 2}])
    },
    "command entity not at the start": {
        "message": message("hi /quiz", entities=[{"type": "bot_command", "offset": 3, "length": 5}])
    },
    "no text (a sticker)": {"message": message(None, sticker=sticker)},
    "a channel's post": {"channel_post": message("/quiz", chat={"id": -100777, "type": "channel"})},
    "an unknown update kind": {"kind_from_a_future_bot_api": {"anything": 1}},
    "a press without data": {
        "callback_query": {"id": "9", "from": ALICE.to_json(), "chat_instance": "c", "message": message("q")}
    },
    "a press on an inaccessible message": {
        "callback_query": {
            "id": "10",
            "from": ALICE.to_json(),
            "chat_instance": "c",
            "data": "/reveal 1",
            "message": {"message_id": 5, "date": 0, "chat": {"id": ALICE.id, "type": "private"}},
        }
    },
    "a press from an inline message": {
        "callback_query": {
            "id": "11",
            "from": ALICE.to_json(),
            "chat_instance": "c",
            "inline_message_id": "x",
            "data": "/quiz",
        }
    },
}


def sent_to(tg: FakeTelegram, user: User) -> list[Call]:
    return [c for c in tg.calls_to("sendMessage", chat_id=user.id) if c.result is not None]


async def assert_answers(tg: FakeTelegram, user: User = ALICE) -> None:
    tg.user_says(private_chat(user), user, "/start")
    await tg.wait_until(lambda: any(c.result["text"].startswith("Welcome") for c in sent_to(tg, user)))


@pytest.mark.parametrize("raw", ODD_UPDATES.values(), ids=ODD_UPDATES.keys())
async def test_an_odd_update_through_the_fake_leaves_the_bot_answering(
    store: Store, raw: dict[str, Any]
) -> None:
    async with FakeTelegram() as tg, running_telegram(tg, make_core(store)):
        tg.inject(raw)
        await assert_answers(tg)
        if raw.get("message", {}).get("text", "").startswith("/quiz"):  # its entity runs past the text

            def a_question_came() -> bool:
                return any(
                    b.get("callback_data", "").startswith("/reveal")
                    for c in sent_to(tg, ALICE)
                    for b in c.buttons
                )

            await tg.wait_until(a_question_came)


async def test_an_update_missing_a_required_field_does_not_stop_the_bot(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # python-telegram-bot alone raises while parsing the batch and polls the same one forever.
    async with FakeTelegram() as tg, running_telegram(tg, make_core(store)):
        bad = tg.inject({"message": {"message_id": 1, "text": "no date, no chat"}})

        def acknowledged() -> bool:
            return any(int(c.params.get("offset") or 0) > bad["update_id"] for c in tg.calls_to("getUpdates"))

        await tg.wait_until(acknowledged)
        await assert_answers(tg)
    unreadable = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(unreadable) == 1 and f"update {bad['update_id']} " in unreadable[0]
    assert tg.token not in caplog.text


# ---- Discord: payloads into the adapter's translation -------------------------------------------------


class ErrorLog(logging.Handler):
    """The adapter's errors: it logs one whenever translating or answering an input fails."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class DiscordWorld:
    fake: FakeDiscord
    adapter: DiscordAdapter
    core: RecordingCore
    errors: ErrorLog

    @property
    def state(self) -> Any:
        # The connection state discord.py parses gateway payloads with: how a payload becomes an object.
        return self.adapter.client._connection


@pytest.fixture
async def discord_world(store: Store) -> AsyncIterator[DiscordWorld]:
    fake = await FakeDiscord(heartbeat_interval_ms=1000).start()
    adapter = DiscordAdapter(
        "fake-token", api_url=fake.api_url, gateway_url=fake.gateway_url, message_content=True
    )
    core = RecordingCore()
    errors = ErrorLog()
    logging.getLogger("bot.adapters.discord").addHandler(errors)
    task = asyncio.create_task(adapter.run(core))
    try:
        await fake.wait_connected()
        yield DiscordWorld(fake, adapter, core, errors)
    finally:
        logging.getLogger("bot.adapters.discord").removeHandler(errors)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await fake.close()


text_inputs = st.fixed_dictionaries(
    {
        "type": st.just(4),
        "custom_id": st.sampled_from(["text", "other", ""]),
        "value": st.text(max_size=4500),
    },
    optional={"label": st.text(max_size=10)},
)
# Modal layouts of Discord's shape (lists of dicts) with anything inside: rows, labels, unknown kinds.
components = st.lists(
    st.one_of(
        st.fixed_dictionaries({"type": st.just(1), "components": st.lists(text_inputs, max_size=2)}),
        st.fixed_dictionaries({"type": st.just(18), "component": text_inputs}),
        st.fixed_dictionaries(
            {"type": st.integers(0, 40)},
            optional={
                "custom_id": st.text(max_size=10),
                "value": st.text(max_size=10),
                "components": st.just([]),
            },
        ),
    ),
    max_size=3,
)
interaction_changes = st.fixed_dictionaries(
    {},
    optional={
        "locale": st.one_of(st.sampled_from(["zh-CN", "en-GB", "pt-BR"]), st.text(max_size=8)),
        "in_dm": st.booleans(),
        "channel_type": st.sampled_from([0, 5, 10, 11, 12, 15, 99]),
        "without_channel": st.booleans(),
    },
)


def odd_interaction(
    world: DiscordWorld, kind: int, data: dict[str, Any], changes: dict[str, Any]
) -> tuple[FakeInteraction, discord.Interaction]:
    fake = world.fake
    made, payload = fake.interaction_payload(fake.member, fake.channel_id, kind, data)
    if "locale" in changes:
        payload["locale"] = changes["locale"]
    if changes.get("in_dm"):
        for key in ("guild_id", "guild", "member"):
            payload.pop(key)
        payload |= {"user": fake.member.payload(), "context": 1}
        payload["channel"] = {"id": payload["channel_id"], "type": 1, "recipients": [fake.member.payload()]}
    elif "channel_type" in changes:
        payload["channel"] = {**payload["channel"], "type": changes["channel_type"]}
    if changes.get("without_channel"):
        payload.pop("channel")
    world.adapter.note_interaction_channel(payload)  # what the guarded gateway parser does first
    return made, discord.Interaction(data=payload, state=world.state)


async def assert_answered(world: DiscordWorld, made: FakeInteraction) -> None:
    callbacks = world.fake.calls_to("POST", rf"/interactions/{made.id}/{made.token}/callback")
    assert callbacks and callbacks[0].status == 200, "the interaction was acknowledged"
    assert world.errors.records == [], [r.getMessage() for r in world.errors.records]


@FUZZ
@given(
    command=st.sampled_from(COMMANDS),
    words=st.text(max_size=3000),
    changes=interaction_changes,
)
async def test_any_slash_command_interaction_translates_and_is_answered(
    discord_world: DiscordWorld, command: Any, words: str, changes: dict[str, Any]
) -> None:
    made, interaction = odd_interaction(
        discord_world, 2, {"id": "1", "name": command.name, "type": 1}, changes
    )
    text = f"/{command.name} {words}".strip()
    await discord_world.adapter.on_input(interaction, text)
    seen = discord_world.core.seen[-1]
    check_incoming(seen, "discord")
    assert seen.text == text
    await assert_answered(discord_world, made)


@FUZZ
@given(
    payload=st.one_of(
        st.text(max_size=120), st.just("/answer"), st.just("/start answer-12-0123456789abcdef0123")
    ),
    changes=interaction_changes,
)
async def test_any_button_press_is_answered(
    discord_world: DiscordWorld, payload: str, changes: dict[str, Any]
) -> None:
    data = {"custom_id": f"dq:{payload}"[:100], "component_type": 2}
    made, interaction = odd_interaction(discord_world, 3, data, changes)
    await discord_world.adapter.on_button(interaction, payload)
    if made.token in discord_world.fake.modals:
        assert discord_world.errors.records == []
    else:
        assert discord_world.core.seen[-1].text == payload
        await assert_answered(discord_world, made)


@FUZZ
@given(
    custom_id=st.one_of(st.just("dq:/answer"), st.text(max_size=30)),
    layout=components,
    changes=interaction_changes,
)
async def test_any_modal_submit_is_answered_or_ignored(
    discord_world: DiscordWorld, custom_id: str, layout: list[Any], changes: dict[str, Any]
) -> None:
    before = len(discord_world.core.seen)
    made, interaction = odd_interaction(
        discord_world, 5, {"custom_id": custom_id, "components": layout}, changes
    )
    await discord_world.adapter.on_modal_submit(interaction)
    if custom_id != "dq:/answer":
        assert len(discord_world.core.seen) == before, "not the bot's modal: ignored"
        return
    assert discord_world.core.seen[-1].text.startswith("/answer")
    await assert_answered(discord_world, made)


async def test_a_modal_submit_with_components_of_the_wrong_type_is_answered(
    discord_world: DiscordWorld,
) -> None:
    made, interaction = odd_interaction(
        discord_world, 5, {"custom_id": "dq:/answer", "components": [{"components": True}]}, {}
    )
    await discord_world.adapter.on_modal_submit(interaction)
    await assert_answered(discord_world, made)


@FUZZ
@given(content=st.text(max_size=4000), in_bot_thread=st.booleans(), by_bot=st.booleans())
async def test_any_message_in_a_thread_translates_or_is_ignored(
    discord_world: DiscordWorld, content: str, in_bot_thread: bool, by_bot: bool
) -> None:
    fake, adapter = discord_world.fake, discord_world.adapter
    owner = fake.bot if in_bot_thread else fake.member
    thread = fake.add_thread(fake.channel_id, owner, "answers")
    author = fake.bot if by_bot else fake.member
    payload = fake.message_payload(author, thread, content)
    channel = adapter.client.get_partial_messageable(thread, guild_id=fake.guild_id)
    before = len(discord_world.core.seen)
    await adapter.on_message(discord.Message(state=discord_world.state, channel=channel, data=payload))
    assert discord_world.errors.records == []
    if len(discord_world.core.seen) > before:
        seen = discord_world.core.seen[-1]
        check_incoming(seen, "discord")
        assert in_bot_thread and not by_bot and seen.text.strip()
        assert seen.chat.key == f"discord:{fake.channel_id}" and seen.reply_to == str(thread)


async def test_odd_input_through_the_gateway_leaves_the_bot_answering(tmp_path: Path) -> None:
    fake = await FakeDiscord(heartbeat_interval_ms=1000).start()
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    adapter = DiscordAdapter(
        "fake-token", api_url=fake.api_url, gateway_url=fake.gateway_url, message_content=True
    )
    task = asyncio.create_task(adapter.run(make_core(store)))
    try:
        await fake.wait_connected()
        answered = [
            await fake.slash(fake.member, "quiz", filter="🚀" * 2000),
            await fake.slash(fake.member, "settings", key="time", value="\x00\u202e25:99"),
            await fake.slash(fake.member, "answer", text="x" * 6000),
        ]
        # Buttons from an older version of the bot: a command since removed, a post that is gone.
        old = Reply(
            "from an older version",
            buttons=((Button("Gone", "/removed-command 7"), Button("Stale", "/grade good 999999")),),
        )
        posted = await adapter.send(ChatRef("discord", str(fake.channel_id)), old)
        for custom_id in ("dq:/removed-command 7", "dq:/grade good 999999"):
            answered.append(await fake.press(fake.member, posted.message_id, custom_id))
        modal = {
            "custom_id": "dq:/answer",
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": "text", "value": "ans " * 1000}]}
            ],
        }
        made, payload = fake.interaction_payload(fake.member, fake.channel_id, 5, modal)
        await fake.dispatch("INTERACTION_CREATE", payload)
        answered.append(made)
        thread = fake.add_thread(fake.channel_id, fake.bot, "answers")
        await fake.say(fake.member, thread, "||" + "x" * 1990 + "||")

        for made in answered:
            await fake.wait_for_call("POST", rf"/interactions/{made.id}/{made.token}/callback")
        await fake.wait_for_call("GET", rf"/channels/{thread}")  # the bot looked the thread up
        still = await fake.slash(fake.member, "help")
        replies = await fake.wait_until(lambda: fake.replies_to(still))
        assert replies[0]["content"].startswith(to_discord(t("en", "help_header"))[0])
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await store.close()
        await fake.close()
