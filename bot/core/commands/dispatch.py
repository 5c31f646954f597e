"""The commands: Incoming → [Reply], driven by one explicit table; the call context every handler gets.

Every platform is a thin translation of what happens here. A button press arrives as an ordinary
Incoming whose text is the button's payload (a command line such as `/grade good 12`), so the
core never sees a platform callback. Handlers only return replies; nothing is sent from here.
Each topic's handlers live in their own module (answering, review, subscription, profile); what
the scheduler asks of the core is in daily.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from bot.config import Settings
from bot.core import srs
from bot.core.bank import Bank, LoadResult, load
from bot.core.clock import Clock
from bot.core.commands import answering, daily, feedback, lookup, profile, review, subscription
from bot.core.commands.inbound import platform_language, split_command, valid_unicode
from bot.core.commands.texts import echo
from bot.core.feedback import Reviewer
from bot.core.messages import LANGUAGES, t
from bot.core.model import ChatRef, Incoming, Question, Reply, SentRef
from bot.core.render import escape
from bot.core.store import ChatRow, DatabaseBusy, Post, Store
from bot.core.timing import KEYS as SETTING_KEYS
from bot.core.timing import ChatSettings

log = logging.getLogger(__name__)

RELOAD_ERRORS_SHOWN = 10


@dataclass(frozen=True)
class Option:
    name: str
    required: bool
    help: str  # a message key: t(lang, option.help)


@dataclass(frozen=True)
class Command:
    """One row of the command table; `help_key` is the message key of its one-line help."""

    name: str
    options: tuple[Option, ...]
    admin_only: bool  # in groups: only admins (and the chat's `role`) may use it
    help_key: str
    handler: Callable[[Core, Call], Awaitable[list[Reply]]] = field(repr=False, compare=False)


@dataclass
class Call:
    """One command or message being handled, with what every handler needs to know about it."""

    incoming: Incoming
    args: str
    now: datetime
    chat: ChatRow | None
    settings: ChatSettings
    lang: str
    _admin: bool | None = None

    @property
    def user(self) -> str:
        return self.incoming.user_key

    @property
    def in_group(self) -> bool:
        return self.incoming.is_group

    async def is_admin(self) -> bool:
        """In a private chat the user is its admin; in a group, the platform says, or the chat's role."""
        if self._admin is None:
            role = self.settings.role
            self._admin = (
                not self.in_group
                or (role is not None and role in self.incoming.roles)
                or await self.incoming.is_admin()
            )
        return self._admin

    def today(self) -> date:
        return self.now.astimezone(self.settings.zone_info).date()


class Core:
    def __init__(
        self,
        store: Store,
        bank: Bank,
        settings: Settings,
        clock: Clock,
        rng: random.Random | None = None,
        *,
        fuzz: bool = True,
        reviewer: Reviewer | None = None,
        others_reload: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.store = store
        self.bank = bank
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.srs_scheduler = srs.make_scheduler(fuzz=fuzz)
        self._link_key: bytes | None = None
        # Feedback exists only with a model to ask: without one its command, setting and button never show.
        self.reviewer = reviewer
        self.commands = commands_with(feedback=reviewer is not None)
        self.commands_by_name = {command.name: command for command in self.commands}
        self.setting_keys = tuple(key for key in SETTING_KEYS if reviewer is not None or key != "feedback")
        # With several processes on one database (PostgreSQL): asks the others to re-read their banks.
        self.others_reload = others_reload
        self.set_bank(bank)

    def set_bank(self, bank: Bank) -> None:
        """Swap in a re-parsed bank; progress survives because question ids are stable."""
        self.question_hashes = {q.id: daily.hash64(q.id) for q in bank.questions}
        self.question_by_hash = {
            h: bank.by_id[question_id] for question_id, h in self.question_hashes.items()
        }
        self.tags_by_id = {q.id: q.tags for q in bank.questions}
        self.labels = frozenset(
            {tag.casefold() for tag in bank.tag_counts()} | {c.casefold() for c in bank.company_counts()}
        )  # the tags and companies a chat may draw its daily questions from
        self.bank = bank

    async def reload_bank(self) -> LoadResult:
        """Re-parse the bank; a bank with errors (or no questions) leaves the current one in place."""
        loaded = await asyncio.to_thread(load, self.settings.content)
        if not loaded.errors and loaded.bank.questions:
            self.set_bank(loaded.bank)
        return loaded

    # --- the adapter-facing interface ----------------------------------------------------

    async def handle(self, incoming: Incoming) -> list[Reply]:
        incoming = replace(
            incoming, text=valid_unicode(incoming.text), user_name=valid_unicode(incoming.user_name)
        )
        try:
            return await self._answer(incoming)
        except DatabaseBusy as error:
            # While the database is away (or held) every update fails alike: one log line each
            # rather than a traceback, and the user is asked to try again. Nothing was half-written:
            # each of the store's writes is one transaction.
            command = incoming.text.strip().split(maxsplit=1)[0][:32] if incoming.text.startswith("/") else "a message"
            log.warning("%s in %s: the database did not answer (%s)", command, incoming.chat.key, error)
            lang = platform_language(incoming.lang) or platform_language(self.settings.lang) or LANGUAGES[0]
            return [Reply(t(lang, "error"), lang=lang)]

    async def _answer(self, incoming: Incoming) -> list[Reply]:
        call = await self._call(incoming)
        # The language goes with each reply, for words an adapter adds itself (the console's headers).
        return [replace(reply, lang=reply.lang or call.lang) for reply in await self._dispatch(call)]

    async def _dispatch(self, call: Call) -> list[Reply]:
        text = call.incoming.text.strip()
        if not text.startswith("/"):
            return await answering.plain_text(self, call, text)
        name, call.args = split_command(text)
        command = self.commands_by_name.get(name)
        if command is None:
            return [Reply(t(call.lang, "unknown_command", command=echo(f"/{name}")))]
        if command.admin_only and not await call.is_admin():
            return [Reply(t(call.lang, "admins_only", command=f"/{name}"))]
        return await command.handler(self, call)

    async def sent(self, reply: Reply, ref: SentRef) -> None:
        """Remember where a question landed, so that a reply to that message answers it."""
        if reply.kind == "question" and reply.post_id is not None:
            await self.store.set_message_id(reply.post_id, ref.message_id)

    # --- the scheduler-facing interface --------------------------------------------------

    async def chat_settings(self, chat_key: str) -> ChatSettings:
        return self.settings_of(await self.store.chat(chat_key))

    async def choose_daily_question(self, chat_key: str) -> tuple[Question, int]:
        return await daily.choose_daily_question(self, chat_key)

    async def daily_post_reply(self, post_id: int) -> Reply:
        return await daily.daily_post_reply(self, post_id)

    async def reveal_replies(self, post_id: int) -> list[Reply]:
        return await daily.reveal_replies(self, post_id)

    async def move_chat(self, old_key: str, new_chat: ChatRef) -> None:
        await self.store.move_chat(old_key, new_chat)

    async def unsubscribe(self, chat_key: str) -> None:
        await self.store.unsubscribe(chat_key)

    # --- the call context, for every handler -------------------------------------------------------------------------

    async def _call(self, incoming: Incoming) -> Call:
        chat = await self.store.chat(incoming.chat.key)
        settings = self.settings_of(chat)
        lang = self.chat_language(settings, chat, incoming.lang)
        return Call(incoming, "", self.clock.now(), chat, settings, lang)

    def settings_of(self, chat: ChatRow | None) -> ChatSettings:
        if chat is None:
            return ChatSettings.default(self.settings)
        return ChatSettings.from_json(chat.settings, self.settings)

    def chat_language(self, settings: ChatSettings, chat: ChatRow | None, reported: str | None) -> str:
        return (
            settings.lang
            or platform_language(reported)
            or platform_language(chat.platform_lang if chat else None)
            or platform_language(self.settings.lang)
            or LANGUAGES[0]
        )

    async def link_key(self) -> bytes:
        """The secret behind post tokens (lookup.post_token), read from the database once."""
        if self._link_key is None:
            self._link_key = await self.store.secret(lookup.LINK_SECRET)
        return self._link_key

    async def existing_post(self, post_id: int) -> Post:
        post = await self.store.post(post_id)
        if post is None:
            raise LookupError(f"no post {post_id}")
        return post


async def start(core: Core, call: Call) -> list[Reply]:
    # `/start answer-<id>-<token>` is what the group's "Answer privately" link sends in private.
    deep_link = re.fullmatch(r"answer-(\S+)", call.args)
    if deep_link and not call.in_group:
        found = await lookup.post_by_argument(core, call, deep_link[1])
        if isinstance(found, str):
            return [Reply(t(call.lang, found, value=echo(deep_link[1])))]
        return await answering.answer_privately(core, call, found)
    # `/start feedback-<id>-<token>`: the group's Feedback link, answered here like /feedback.
    feedback_link = re.fullmatch(r"feedback-(\S+)", call.args)
    if feedback_link and core.reviewer is not None:
        return await feedback.feedback(core, replace(call, args=feedback_link[1]))
    return [Reply(_with_feedback_notice(core, call, t(call.lang, "welcome", bot="dailyq")))]


async def help_(core: Core, call: Call) -> list[Reply]:
    lines = [t(call.lang, "help_header")]
    for command in core.commands:
        words = [(o, t(call.lang, f"placeholder_{o.name}")) for o in command.options]
        usage = " ".join([f"/{command.name}"] + [f"<{w}>" if o.required else f"[{w}]" for o, w in words])
        lines.append(f"`{usage}` — {t(call.lang, command.help_key)}")
    return [Reply(_with_feedback_notice(core, call, "\n".join(lines)))]


def _with_feedback_notice(core: Core, call: Call, text: str) -> str:
    """/start and /help in a chat with feedback on say where answers go when feedback is asked for."""
    if core.reviewer is None or not call.settings.feedback:
        return text
    return text + "\n\n" + t(call.lang, "feedback_notice", model=escape(core.reviewer.model))


async def reload(core: Core, call: Call) -> list[Reply]:
    if call.user not in core.settings.owners:
        return [Reply(t(call.lang, "owners_only"))]
    loaded = await core.reload_bank()
    if core.others_reload is not None:
        await core.others_reload()  # each reports in its own log
    if core.bank is not loaded.bank:
        lines = [t(call.lang, "reload_kept", questions=len(core.bank))]
        lines += [
            f"• {escape(str(p))}" for p in loaded.errors[:RELOAD_ERRORS_SHOWN]
        ]
        if not loaded.errors:
            lines.append(t(call.lang, "reload_empty"))
        return [Reply("\n".join(lines), private=True)]
    return [
        Reply(
            t(call.lang, "reload_done", questions=len(loaded.bank), warnings=len(loaded.warnings)),
            private=True,
        )
    ]


def _option(name: str, required: bool = False) -> Option:
    return Option(name, required, f"option_{name}")


# The command table: the one source for dispatch, /help, permissions and the platforms' menus.
COMMANDS: tuple[Command, ...] = (
    Command("start", (), False, "help_start", start),
    Command("help", (), False, "help_help", help_),
    Command("quiz", (_option("filter"),), False, "help_quiz", answering.quiz),
    Command("answer", (_option("text", required=True),), False, "help_answer", answering.answer),
    Command("reveal", (_option("id"),), False, "help_reveal", review.reveal),
    Command("full", (_option("id", required=True),), False, "help_full", review.full),
    Command("grade", (_option("grade", required=True), _option("id")), False, "help_grade", review.grade),
    Command("skip", (), False, "help_skip", answering.skip),
    Command("stats", (), False, "help_stats", profile.stats),
    Command("top", (), False, "help_top", profile.top),
    Command("tags", (), False, "help_tags", profile.tags),
    Command("subscribe", (_option("time"), _option("zone")), True, "help_subscribe", subscription.subscribe),
    Command("unsubscribe", (), True, "help_unsubscribe", subscription.unsubscribe),
    Command("settings", (_option("key"), _option("value")), False, "help_settings", subscription.settings),
    Command("forgetme", (_option("confirm"),), False, "help_forgetme", profile.forgetme),
    Command("reload", (), False, "help_reload", reload),  # owners only: checked in the handler
)
COMMANDS_BY_NAME = {command.name: command for command in COMMANDS}
# Only in a core with a model to ask (Core.commands).
FEEDBACK_COMMAND = Command("feedback", (_option("id"),), False, "help_feedback", feedback.feedback)


def commands_with(*, feedback: bool) -> tuple[Command, ...]:
    """The command table, with /feedback (after /grade) when a model is configured."""
    if not feedback:
        return COMMANDS
    at = next(i for i, command in enumerate(COMMANDS) if command.name == "grade") + 1
    return (*COMMANDS[:at], FEEDBACK_COMMAND, *COMMANDS[at:])
