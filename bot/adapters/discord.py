"""Discord on discord.py 2.7: interactions and thread messages → Incoming, Reply → messages. Translation only.

Every behaviour lives in the core; this module only knows Discord:

- Input is a slash command (one per row of the core's command table, with its option names), a
  button press, an answer modal's submit, or (with the message-content intent) a message in a
  thread the bot opened on a post. A slash command becomes the text `/name opt1 opt2`, a button
  its payload. A thread started from a message shares the message's id, so a message in the
  bot's thread answers the post: the chat is the post's channel and `reply_to` the thread's id.
  Permission to change things is Manage Server (the core also matches the `role` setting
  against the member's role ids passed along; `/settings role` takes a mention, an id, or a name
  the adapter turns into the id).
- Every interaction is acknowledged within Discord's 3 seconds: the core's replies are the
  response when they come quickly, otherwise the interaction is deferred first. A failure is
  answered with a private "something went wrong", a command this run does not know (the client's
  list is stale) with a private "being updated", a button that is not ours with a silent
  acknowledgement: never left to time out.
- A gateway payload discord.py cannot read is logged and dropped; the connection stays up.
- Buttons are `dq:<payload>` custom ids parsed by one `DynamicItem`, so a button from any earlier
  run still works after a restart. Discord has modals, so a question gets an Answer button that
  opens one instead of asking the core; the submit, `/answer <text>` about the message the
  button was on, is handled without any state in memory (it too must survive a restart) and is
  acknowledged privately.
- Output is Discord markdown from `bot.core.render`; a question is an embed with its metadata as
  fields; a question posted by `send` (the daily post) gets a thread for answers, and the reveal
  of such a post goes to the thread as well. A private reply is ephemeral.
- `send` paces itself under Discord's global rate limit, and its errors become the kinds of
  `bot.core.ports`; 429s are retried inside discord.py.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, cast

import aiohttp
import discord
import yarl
from discord import app_commands

from bot.core import messages
from bot.core.commands import COMMANDS, Command
from bot.core.commands.inbound import platform_language
from bot.core.model import Button, ChatRef, Incoming, Question, Reply, SentRef
from bot.core.ports import ChatGone, Core, PlatformError, TransientError
from bot.core.render import escape, to_discord, to_plain
from bot.core.timing import validate

log = logging.getLogger(__name__)

PLATFORM = "discord"
CUSTOM_ID_PREFIX = "dq:"
PAYLOAD_CUSTOM_ID = re.compile(r"dq:(?P<payload>.+)")  # a PayloadButton's custom id
CUSTOM_ID_LIMIT = 100
ANSWER_PAYLOAD = "/answer"  # the Answer button: /answer without text opens the modal
# The core's "answer privately" button (a deep link on Telegram) is the same modal here.
PRIVATE_ANSWER_PAYLOAD = re.compile(r"/start answer-[0-9]+-[0-9a-f]+")  # the post id, then its token
MODAL_TEXT_ID = "text"
MODAL_TEXT_LIMIT = 4000
MODAL_TITLE_LIMIT = 45
CONTENT_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TITLE_LIMIT = 256
EMBED_FIELD_LIMIT = 1024
BUTTON_LABEL_LIMIT = 80
BUTTONS_PER_ROW = 5
ROWS_PER_MESSAGE = 5
THREAD_NAME_LIMIT = 100
COMMAND_DESCRIPTION_LIMIT = 100
THREAD_ARCHIVE_MINUTES = 1440
DEFER_AFTER = 1.5  # seconds the core gets before the interaction is deferred (Discord allows 3)
# Discord's global limit is 50 requests per second per bot; the fan-out stays under it.
SENDS_PER_SECOND = 48.0
SEND_BURST = 2
IDENTIFY_PAUSE = 5.0  # seconds between two shards' IDENTIFYs (discord.py's default)
DRAIN_LIMIT = 10.0  # seconds input being handled gets to finish when the bot stops
# Interactions whose payload had a channel_id but no channel object, until they are handled.
REMEMBERED_INTERACTION_CHANNELS = 1_000
ROLE_MENTION = re.compile(r"<@&(\d+)>")
ROLE_ID = re.compile(r"\d{15,20}")  # a snowflake
SPOILER = re.compile(r"\|\|(.+?)\|\|", re.DOTALL)
NETWORK_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


class TokenBucket:
    """An async token bucket: `acquire` waits until a request may go out at `rate` per second.

    The burst lets requests woken late (a busy event loop) catch up, but never past `rate`
    (rounded up) in any one second: a catch-up on top of the steady pace would otherwise fill a
    strict 50-per-second window, and each global 429 holds back every request in discord.py
    (bench/fanout.py: 4 to 22 of them per 1,000 posts, 0.93 of the allowed rate).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._now = now
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = now()
        self._lock = asyncio.Lock()
        self._handed_over: deque[float] = deque(maxlen=math.ceil(rate))

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            self._refill()
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) / self.rate)
                self._refill()
            # Taken even if rounding left a hair less than a whole token: the next caller waits it out.
            self._tokens -= 1
            handed = self._handed_over
            while len(handed) == handed.maxlen and (room := handed[0] + 1.0 - self._now()) > 0:
                await self._sleep(room)
            handed.append(self._now())

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now


# discord.py keeps a rate-limit bucket per route and channel (a daily post makes two: its message
# and its thread) and, from 256 buckets on, scans all of them for inactive ones each time it makes
# a new one (`HTTPClient._try_clear_expired_ratelimits`). A bucket is inactive only after 300 s
# without a request, so during a fan-out every scan finds nothing, and their cost grows with the
# square of the channels: 40 % of the bot's CPU over 5,000 channels. The scan is kept, but run
# only when the buckets have doubled since the last one, or this long after it:
RATELIMIT_SCAN_INTERVAL = 60.0  # seconds; a bucket goes inactive at the earliest 300 s after its last request


class RateLimitScan:
    """discord.py's scan for inactive rate-limit buckets, run only when it can pay off.

    Installed in place of `HTTPClient._try_clear_expired_ratelimits`, which discord.py calls each
    time it makes a bucket, it scans when the bucket count has doubled since the last scan, or
    `interval` seconds after it. A new bucket then costs O(1) amortised instead of a pass over all
    of them; the buckets held stay under twice what were left at the last scan plus what `interval`
    seconds of requests add; an inactive bucket is still dropped, at most `interval` s later than
    discord.py would drop it. Time is the event loop's, the clock of discord.py's own buckets.
    """

    def __init__(
        self, http: Any, scan: Callable[[], None], *, interval: float = RATELIMIT_SCAN_INTERVAL
    ) -> None:
        self._http = http
        self._scan = scan  # discord.py's own method, bound to `http`
        self.interval = interval
        self._kept = 0  # buckets left after the last scan
        self._scanned_at: float | None = None

    def __call__(self) -> None:
        buckets = getattr(self._http, "_buckets", None)
        if not isinstance(buckets, dict):  # discord.py changed: do what it does
            self._scan()
            return
        now = _loop_time()
        if (
            self._scanned_at is not None
            and len(buckets) < 2 * self._kept
            and now - self._scanned_at < self.interval
        ):
            return
        self._scan()  # itself a no-op under 256 buckets
        self._kept = len(buckets)
        self._scanned_at = now


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()  # discord.py 2.7 makes buckets only in the loop
    except RuntimeError:
        return time.monotonic()  # the default loop's clock


def amortise_ratelimit_scan(http: Any) -> bool:
    """Put a `RateLimitScan` in place of discord.py's scan on this HTTPClient; whether it could.

    It relies on two private names of discord.py 2.7's HTTPClient; if either is gone, the client
    is left as discord.py made it (correct, only slower during a large fan-out).
    """
    scan = getattr(http, "_try_clear_expired_ratelimits", None)
    if isinstance(scan, RateLimitScan):
        return True
    if not callable(scan) or not isinstance(getattr(http, "_buckets", None), dict):
        log.info("discord: discord.py's rate-limit buckets are not where expected; their scan is left as is")
        return False
    try:
        http._try_clear_expired_ratelimits = RateLimitScan(http, scan)
    except (AttributeError, TypeError):  # e.g. __slots__
        return False
    return True


@dataclass(frozen=True)
class Shards:
    """This process's share of the bot's Discord shards (DISCORD_SHARD_COUNT, DISCORD_SHARD_IDS).

    Discord sends a server's events to shard `(guild_id >> 22) % count`, and direct messages to
    shard 0. No count: as many as Discord recommends, all in this process.
    """

    count: int | None = None
    ids: tuple[int, ...] = ()  # empty: every shard of `count`


class GuardedParser:
    """One of discord.py's gateway parsers behind a guard: a payload it cannot read (a required
    field missing, a new shape) is logged, one line, and dropped, instead of raising out of the
    gateway's read loop, which ends `Client.start` and with it every interaction until a restart."""

    def __init__(
        self, event: str, parse: Callable[[Any], None], before: Callable[[Any], None] | None = None
    ) -> None:
        self.event = event
        self.parse = parse
        self._before = before

    def __call__(self, data: Any) -> None:
        try:
            if self._before is not None:
                self._before(data)
            self.parse(data)
        except Exception as error:
            ident = data.get("id") if isinstance(data, dict) else None
            log.warning("discord: a %s event (id %s) discord.py cannot read is ignored: %r", self.event, ident, error)


def guard_gateway_parsers(client: discord.Client, before: dict[str, Callable[[Any], None]]) -> bool:
    """Put a `GuardedParser` around each of the client's gateway parsers; whether it could.

    discord.py 2.7 keeps them in `client._connection.parsers` (event name → method), the dict its
    gateway looks events up in; `before` runs ahead of the named events' parsers. If the names are
    gone, the client is left as discord.py made it (an unreadable payload then ends the run and
    the supervisor restarts it).
    """
    parsers = getattr(getattr(client, "_connection", None), "parsers", None)
    if not isinstance(parsers, dict) or not parsers or not all(callable(p) for p in parsers.values()):
        log.warning(
            "discord: discord.py %s keeps its gateway parsers elsewhere; an unreadable event will restart the bot",
            discord.__version__,
        )
        return False
    for event, parse in parsers.items():
        if not isinstance(parse, GuardedParser):
            parsers[event] = GuardedParser(event, parse, before.get(event))
    return True


@dataclass
class _Outgoing:
    """One Discord message of a reply: content or an embed, and (on the last one) buttons."""

    content: str | None = None
    embed: discord.Embed | None = None
    buttons: tuple[tuple[Button, ...], ...] = ()

    def fields(self) -> dict[str, Any]:
        """The keyword arguments of discord.py's send and edit calls."""
        result: dict[str, Any] = {}
        if self.content is not None:
            result["content"] = self.content
        if self.embed is not None:
            result["embed"] = self.embed
        view = _view(self.buttons)
        if view is not None:
            result["view"] = view
        return result


class PayloadButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PAYLOAD_CUSTOM_ID.pattern):
    """A button whose custom id carries the core's payload; it works in any later run of the bot."""

    def __init__(self, payload: str, label: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=label[:BUTTON_LABEL_LIMIT] or "…",
                custom_id=CUSTOM_ID_PREFIX + payload,
                style=discord.ButtonStyle.secondary,
            )
        )
        self.payload = payload

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PayloadButton:
        return cls(match["payload"], getattr(item, "label", None) or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        await cast(_Client, interaction.client).adapter.on_button(interaction, self.payload)


class _Client(discord.AutoShardedClient):
    """discord.py's client with the adapter's hooks; the adapter holds the behaviour.

    Auto-sharded: with no shard settings it runs every shard Discord recommends (one, below
    2,500 servers); with them, only this process's shards of the given count, the other
    processes on the same database holding the rest.
    """

    def __init__(self, adapter: DiscordAdapter, *, intents: discord.Intents, shards: Shards) -> None:
        # No member list (a privileged intent it does not need) and no message cache.
        super().__init__(
            intents=intents,
            chunk_guilds_at_startup=False,
            max_messages=None,
            shard_count=shards.count,
            shard_ids=list(shards.ids) if shards.ids else None,
        )
        amortise_ratelimit_scan(self.http)
        guard_gateway_parsers(self, {"INTERACTION_CREATE": adapter.note_interaction_channel})
        self.adapter = adapter
        self.tree = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        if self.shard_count is None and self.adapter.gateway_overridden:
            # Without a count discord.py connects to the gateway Discord names, not the override:
            # ask for the recommended count here, and it connects to DEFAULT_GATEWAY.
            self.shard_count, _, _ = await self.http.get_bot_gateway()
        await self.adapter.setup()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:  # as discord.py's own: Discord takes one IDENTIFY per few seconds
            await asyncio.sleep(self.adapter.identify_pause)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is discord.InteractionType.modal_submit:
            await self.adapter.on_modal_submit(interaction)
        elif interaction.type is discord.InteractionType.component:
            await self.adapter.on_component(interaction)

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(message)


class _Translator(app_commands.Translator):
    """Command and option descriptions in the client's language, from the core's catalog."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        lang = platform_language(locale.value)
        if key is None or lang in (None, "en"):
            return None
        return messages.t(lang, key)[:COMMAND_DESCRIPTION_LIMIT]


class DiscordAdapter:
    platform = PLATFORM

    def __init__(
        self,
        token: str,
        *,
        api_url: str | None = None,
        gateway_url: str | None = None,
        guild_ids: Iterable[int] = (),
        message_content: bool = False,
        commands: Sequence[Command] = COMMANDS,  # the core's (Core.commands): /feedback when a model is set
        shards: Shards = Shards(),
    ) -> None:
        self._token = token
        self._commands = tuple(commands)
        self._shards = shards
        self._api_url = api_url
        self._gateway_url = gateway_url
        self._guild_ids = tuple(guild_ids)
        self.defer_after = DEFER_AFTER
        self.identify_pause = IDENTIFY_PAUSE
        self.pacer = TokenBucket(SENDS_PER_SECOND, SEND_BURST)
        self._core: Core | None = None
        # interaction id → channel id, for interactions that came without a channel object
        self._interaction_channels: OrderedDict[int, int] = OrderedDict()
        self._logged_in = asyncio.Event()  # REST works from log-in, before the gateway is up
        self._handling: set[asyncio.Task[Any]] = set()  # input being answered right now
        self._intents = discord.Intents.none()
        self._intents.guilds = True  # channels, threads and roles in the cache
        self._intents.guild_messages = message_content
        self._intents.message_content = message_content  # privileged: a switch in the developer portal
        self.client = self._new_client()

    def _new_client(self) -> _Client:
        client = _Client(self, intents=self._intents, shards=self._shards)
        for command in self._commands:
            client.tree.add_command(self._slash_command(command))
        client.tree.error(self._on_command_error)
        return client

    @property
    def gateway_overridden(self) -> bool:
        return self._gateway_url is not None

    # ---- running --------------------------------------------------------------------------------

    async def run(self, core: Core) -> None:
        """Log in, sync the slash commands, take input until cancelled; then close cleanly."""
        self._core = core
        if self.client.is_closed():
            # A run after an earlier one ended (a retry after an error): discord.py's client
            # cannot log in again once closed.
            self.client = self._new_client()
        if self._api_url:
            discord.http.Route.BASE = self._api_url.rstrip("/")
        if self._gateway_url:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._gateway_url)
        try:
            async with self.client:
                try:
                    await self.client.start(self._token)
                finally:
                    await self._drain()
        except discord.LoginFailure as error:
            raise PlatformError("discord: DISCORD_BOT_TOKEN was refused") from error
        except discord.PrivilegedIntentsRequired as error:
            raise PlatformError(
                "discord: the Message Content intent is not enabled for this application "
                "(Developer Portal → Bot → Privileged Gateway Intents)"
            ) from error
        except NETWORK_ERRORS as error:
            raise TransientError(f"discord: {discord.http.Route.BASE} is unreachable ({error!r})") from error
        finally:
            self._logged_in.clear()

    async def _drain(self) -> None:
        """Let input being answered finish (bounded) before the client closes: nothing half-done."""
        if self._handling:
            await asyncio.wait(set(self._handling), timeout=DRAIN_LIMIT)

    @contextmanager
    def _answering(self) -> Iterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._handling.add(task)
        try:
            yield
        finally:
            self._handling.discard(task)

    async def setup(self) -> None:
        """At log-in, before the gateway: the buttons of every earlier run, and the commands."""
        self._logged_in.set()
        self.client.add_dynamic_items(PayloadButton)
        tree = self.client.tree
        await tree.set_translator(_Translator())
        try:
            if not self._guild_ids:
                await tree.sync()
            for guild_id in self._guild_ids:
                guild = discord.Object(guild_id)
                tree.copy_global_to(guild=guild)
                await tree.sync(guild=guild)
        except discord.HTTPException as error:
            # Commands synced earlier keep working; a wrong guild id must not stop the bot.
            log.error("discord: syncing the slash commands failed: %s", error)

    def _slash_command(self, command: Command) -> app_commands.Command[Any, ..., None]:
        """A slash command with the command table's options, passed on as `/name opt1 opt2`."""

        async def invoke(interaction: discord.Interaction, **options: str | None) -> None:
            words = [options[o.name] for o in command.options if options.get(o.name)]
            if command.name == "settings" and len(words) == 2 and words[0].strip().casefold() == "role":
                role_id, refusal = _role_id(interaction, words[1].strip())
                if refusal:
                    await _Responder(interaction).send(_Outgoing(content=refusal), ephemeral=True)
                    return
                words[1] = role_id
            await self.on_input(interaction, " ".join([f"/{command.name}", *words]))

        parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        parameters += [
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=str if option.required else str | None,
                default=inspect.Parameter.empty if option.required else None,
            )
            for option in command.options
        ]
        # discord.py reads a command's options from its callback's signature.
        invoke.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        descriptions = {option.name: _described(option.help) for option in command.options}
        return app_commands.Command(
            name=command.name,
            description=_described(command.help_key),
            callback=app_commands.describe(**descriptions)(invoke),
        )

    # ---- input ----------------------------------------------------------------------------------

    async def on_input(self, interaction: discord.Interaction, text: str, *, private: bool = False) -> None:
        """Ask the core; answer with its replies, deferring first if it takes more than a moment."""
        with self._answering():
            await self._answer(interaction, text, private)

    async def _answer(self, interaction: discord.Interaction, text: str, private: bool) -> None:
        responder = _Responder(interaction)
        try:
            incoming = self._incoming(interaction, text)
            work = asyncio.ensure_future(self._handle(incoming))
            done, _ = await asyncio.wait({work}, timeout=self.defer_after)
            if not done:
                await responder.defer()
            replies = await work
        except Exception:
            log.exception("discord: interaction %s failed", interaction.id)
            await responder.finish(failed=True, lang=platform_language(interaction.locale.value) or "en")
            return
        if private:
            replies = [replace(reply, private=True) if reply.chat is None else reply for reply in replies]
        await self._respond(responder, incoming, replies)

    async def on_button(self, interaction: discord.Interaction, payload: str) -> None:
        if _opens_answer_modal(payload):
            lang = platform_language(interaction.locale.value) or "en"
            await interaction.response.send_modal(_answer_modal(lang))
            return
        await self.on_input(interaction, payload)

    async def on_component(self, interaction: discord.Interaction) -> None:
        """A button or menu that is not ours (another app's custom id on a message we can see, or
        a shape we never made): acknowledged without a word, so the client shows no failure.
        Ours go to PayloadButton, which discord.py finds by the same pattern."""
        data = cast(dict[str, Any], interaction.data or {})
        if not PAYLOAD_CUSTOM_ID.fullmatch(str(data.get("custom_id", ""))):
            await _acknowledge(interaction)

    async def on_modal_submit(self, interaction: discord.Interaction) -> None:
        """The Answer modal: `/answer <text>` about the message its button was on, answered privately."""
        data = cast(dict[str, Any], interaction.data or {})
        if data.get("custom_id") != CUSTOM_ID_PREFIX + ANSWER_PAYLOAD:
            await _acknowledge(interaction)  # not our modal: no failure shown either
            return
        answer = _text_input_value(data.get("components", []), MODAL_TEXT_ID).strip()
        await self.on_input(interaction, f"{ANSWER_PAYLOAD} {answer}".strip(), private=True)

    async def on_message(self, message: discord.Message) -> None:
        """A message in a thread the bot opened on a post: an answer to that post."""
        with self._answering():
            await self._answer_message(message)

    async def _answer_message(self, message: discord.Message) -> None:
        channel = message.channel
        if isinstance(channel, discord.PartialMessageable) and message.guild is not None:
            channel = await self._uncached_thread(channel.id)  # an archived thread come back to life
        me = self.client.user
        if (
            message.author.bot
            or me is None
            or not isinstance(channel, discord.Thread)
            or channel.owner_id != me.id
        ):
            return
        hidden, text = _spoiler_answer(message.content)
        if not text:
            return
        incoming = Incoming(
            platform=PLATFORM,
            chat=ChatRef(PLATFORM, str(channel.parent_id)),
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            text=text,
            is_group=True,
            is_admin=_member_admin_check(message.author),
            reply_to=str(channel.id),
            hidden=hidden,
            roles=_roles(message.author),
            message_id=str(message.id),
        )
        lang = _guild_language(channel.guild)
        for reply in await self._handle(incoming):
            try:
                if reply.chat not in (None, incoming.chat):
                    await self._send_and_report(reply.chat, reply)
                elif reply.private:
                    # A message cannot be answered privately in place; a direct message can.
                    await self._post(await message.author.create_dm(), reply, lang)
                else:
                    await self._post(channel, reply, lang, reference=message)
            except (discord.HTTPException, *NETWORK_ERRORS) as error:
                log.warning("discord: a reply in thread %s failed: %r", channel.id, error)

    def _incoming(self, interaction: discord.Interaction, text: str) -> Incoming:
        chat, reply_to = self._chat_of(interaction)
        if reply_to is None and interaction.message is not None:
            reply_to = str(interaction.message.id)  # the message whose button (or modal) this is
        user = interaction.user
        in_guild = interaction.guild_id is not None
        return Incoming(
            platform=PLATFORM,
            chat=chat,
            user_id=str(user.id),
            user_name=user.display_name,
            text=text,
            is_group=in_guild,
            is_admin=_permission_check(interaction) if in_guild else _yes,
            reply_to=reply_to,
            hidden=True,  # command options and modal fields are not shown to the channel
            lang=interaction.locale.value,
            roles=_roles(user),
        )

    def note_interaction_channel(self, data: Any) -> None:
        """Before discord.py reads an INTERACTION_CREATE: a payload without its `channel` object
        (older shapes) leaves discord.py's `channel_id` None; its own `channel_id` is kept here."""
        if isinstance(data, dict) and "channel" not in data and data.get("channel_id") and data.get("id"):
            self._interaction_channels[int(data["id"])] = int(data["channel_id"])
            while len(self._interaction_channels) > REMEMBERED_INTERACTION_CHANNELS:
                self._interaction_channels.popitem(last=False)

    def _chat_of(self, interaction: discord.Interaction) -> tuple[ChatRef, str | None]:
        """The chat of an interaction, and the post it is about when that follows from the place.

        In a thread the bot opened on a post the chat is the post's channel and the post is the
        thread's id; any other thread is a chat of its own.
        """
        channel = interaction.channel
        if isinstance(channel, discord.Thread):
            if self.client.user is not None and channel.owner_id == self.client.user.id:
                return ChatRef(PLATFORM, str(channel.parent_id)), str(channel.id)
            return ChatRef(PLATFORM, str(channel.parent_id), str(channel.id)), None
        from_payload = self._interaction_channels.pop(interaction.id, None)
        channel_id = interaction.channel_id or from_payload
        if channel_id is None:
            raise ValueError(f"interaction {interaction.id} names no channel")
        return ChatRef(PLATFORM, str(channel_id)), None

    async def _handle(self, incoming: Incoming) -> list[Reply]:
        assert self._core is not None, "run() sets the core before any input arrives"
        try:
            return await self._core.handle(incoming)
        except Exception:
            log.exception("discord: %s in %s failed", incoming.text.split(" ", 1)[0], incoming.chat.key)
            return [Reply(messages.t(platform_language(incoming.lang) or "en", "error"), private=True)]

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        responder = _Responder(interaction)
        lang = platform_language(interaction.locale.value) or "en"
        if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
            # The client's command list predates this run's (a sync is under way or was refused).
            log.info("discord: a command this run does not have: %s", error)
            try:
                await responder.send(_Outgoing(content=messages.t(lang, "command_outdated")), ephemeral=True)
            except (discord.HTTPException, *NETWORK_ERRORS) as failure:
                log.warning("discord: could not answer interaction %s: %r", interaction.id, failure)
            return
        log.error("discord: slash command failed: %s", error)
        await responder.finish(failed=True, lang=lang)

    # ---- output ---------------------------------------------------------------------------------

    async def _respond(self, responder: _Responder, incoming: Incoming, replies: Sequence[Reply]) -> None:
        """Each reply as the interaction's response or a follow-up; a failure never stops the rest."""
        assert self._core is not None
        # The chat's language as the core chose it (a server's /settings lang), else the client's.
        lang = next((reply.lang for reply in replies if reply.lang), None) or platform_language(incoming.lang) or "en"
        failed = False
        for reply in replies:
            try:
                if reply.chat not in (None, incoming.chat):
                    await self._send_and_report(reply.chat, reply)
                    continue
                first: discord.Message | None = None
                for part in self._render(reply, reply.lang or lang):
                    sent = await responder.send(part, ephemeral=reply.private)
                    first = first or sent
                if first is not None and reply.post_id is not None:
                    await self._core.sent(reply, SentRef(incoming.chat, str(first.id)))
            except Exception as error:
                failed = True
                log.warning("discord: a reply to %s failed: %r", incoming.chat.key, error)
        await responder.finish(failed=failed, lang=lang)

    async def _send_and_report(self, chat: ChatRef, reply: Reply) -> None:
        """A reply the core addressed to another chat: sent like a post, reported like a response."""
        assert self._core is not None
        ref = await self.send(chat, reply)
        if reply.post_id is not None:
            await self._core.sent(reply, ref)

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        """A message the core sends unprompted (a daily post, a reveal); errors as PlatformError kinds.

        A question posted to a channel gets a thread for the answers; the reveal of a post with a
        thread goes there too. The caller records the returned SentRef (the scheduler marks its
        claim sent with it).
        """
        if not self._logged_in.is_set():
            raise TransientError("discord: not logged in yet")
        try:
            channel = await self._messageable(int(chat.thread_id or chat.chat_id))
            reference = None
            if reply.reply_to and chat.thread_id is None:
                reference = discord.MessageReference(
                    message_id=int(reply.reply_to), channel_id=channel.id, fail_if_not_exists=False
                )
            lang = reply.lang or _guild_language(getattr(channel, "guild", None))
            first = await self._post(channel, reply, lang, reference=reference)
        except (discord.Forbidden, discord.NotFound) as error:  # Missing Access, Unknown Channel
            raise ChatGone(f"discord: {error}") from error
        except discord.RateLimited as error:
            raise TransientError(f"discord: {error}", retry_after=error.retry_after) from error
        except discord.DiscordServerError as error:
            raise TransientError(f"discord: {error}") from error
        except discord.HTTPException as error:
            raise PlatformError(f"discord: {error}") from error
        except NETWORK_ERRORS as error:
            raise TransientError(f"discord: {error!r}") from error
        if chat.thread_id is None and isinstance(channel, discord.TextChannel):
            if reply.kind == "question" and reply.question is not None:
                await self._open_thread(first, reply)
            elif reply.kind == "reveal":
                await self._reveal_in_thread(reply, lang)
        return SentRef(chat, str(first.id))

    async def _uncached_thread(self, channel_id: int) -> discord.abc.Messageable | None:
        try:
            return await self._messageable(channel_id)
        except (discord.HTTPException, PlatformError, *NETWORK_ERRORS) as error:
            log.warning("discord: channel %s of a message is unknown: %r", channel_id, error)
            return None

    async def _messageable(self, channel_id: int) -> discord.abc.Messageable:
        cached = self.client.get_channel(channel_id)
        if isinstance(cached, discord.abc.Messageable):
            return cached
        await self.pacer.acquire()
        fetched = await self.client.fetch_channel(channel_id)
        if not isinstance(fetched, discord.abc.Messageable):
            raise PlatformError(f"discord: channel {channel_id} takes no messages ({fetched.type})")
        return fetched

    async def _post(
        self,
        channel: discord.abc.Messageable,
        reply: Reply,
        lang: str,
        *,
        reference: discord.Message | discord.MessageReference | None = None,
    ) -> discord.Message:
        """The reply's messages in one channel, paced; returns the first."""
        sent: list[discord.Message] = []
        for part in self._render(reply, lang):
            await self.pacer.acquire()
            sent.append(await channel.send(**part.fields(), reference=None if sent else reference))
        return sent[0]

    async def _open_thread(self, post: discord.Message, reply: Reply) -> None:
        assert reply.question is not None
        name = to_plain(reply.question.title)[:THREAD_NAME_LIMIT].strip() or "…"
        try:
            await self.pacer.acquire()
            await post.create_thread(name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES)
        except (discord.HTTPException, *NETWORK_ERRORS) as error:
            # The post itself went out; answers still come through the Answer button and /answer.
            log.warning("discord: no thread for post %s in %s: %r", post.id, post.channel.id, error)

    async def _reveal_in_thread(self, reply: Reply, lang: str) -> None:
        """The reveal also in the thread opened on its post.

        A thread started from a message has the message's id, and the reveal quotes its post
        (`reply_to`, the post's message id from the database): so whichever process sends the
        reveal finds the thread, with nothing kept in memory.
        """
        if not reply.reply_to:
            return
        thread_id = int(reply.reply_to)
        try:
            thread = self.client.get_channel(thread_id)
            if thread is None:  # not cached: archived, or opened by an earlier run
                await self.pacer.acquire()
                thread = await self.client.fetch_channel(thread_id)
            if isinstance(thread, discord.Thread):
                await self._post(thread, replace(reply, reply_to=None), lang)
        except discord.NotFound:
            return  # the post has no thread
        except (discord.HTTPException, *NETWORK_ERRORS) as error:
            log.warning("discord: the reveal in thread %s failed: %r", thread_id, error)

    def _render(self, reply: Reply, lang: str) -> list[_Outgoing]:
        """A reply as Discord messages: a question as an embed, anything else as text; buttons last."""
        if reply.kind == "question" and reply.question is not None:
            parts = [
                _Outgoing(embed=discord.Embed(description=chunk))
                for chunk in to_discord(reply.text, limit=EMBED_DESCRIPTION_LIMIT)
            ] or [_Outgoing(embed=discord.Embed())]
            _describe_question(parts[0].embed, reply.question, lang)
            buttons = reply.buttons
            if reply.post_id is not None and not any(
                _opens_answer_modal(b.payload) for row in buttons for b in row
            ):
                buttons = ((Button(messages.t(lang, "button_answer"), ANSWER_PAYLOAD),), *buttons)
        else:
            parts = [_Outgoing(content=chunk) for chunk in to_discord(reply.text, limit=CONTENT_LIMIT)]
            parts = parts or [_Outgoing(content="")]
            buttons = reply.buttons
        parts[-1].buttons = buttons
        return parts


class _Responder:
    """Answers one interaction: the response first, then follow-ups; deferring when asked to."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self._placeholder = False  # a deferred "thinking…" message still waits for the first reply

    async def defer(self) -> None:
        if self.interaction.type is discord.InteractionType.component:
            await self.interaction.response.defer()  # no placeholder: the replies are follow-ups
        else:
            await self.interaction.response.defer(thinking=True)
            self._placeholder = True

    async def send(self, part: _Outgoing, *, ephemeral: bool) -> discord.Message | None:
        response = self.interaction.response
        if not response.is_done():
            callback = await response.send_message(**part.fields(), ephemeral=ephemeral)
            resource = callback.resource
            return resource if isinstance(resource, discord.Message) else None
        if self._placeholder:
            self._placeholder = False
            if not ephemeral:
                return await self.interaction.edit_original_response(**part.fields())
            # The placeholder is public; a private reply replaces it with an ephemeral follow-up.
            await self.interaction.delete_original_response()
        return await self.interaction.followup.send(**part.fields(), ephemeral=ephemeral, wait=True)

    async def finish(self, *, failed: bool, lang: str) -> None:
        """Never leave the interaction unanswered or thinking: say what failed, or acknowledge."""
        try:
            if failed:
                await self.send(_Outgoing(content=messages.t(lang, "error")), ephemeral=True)
            elif not self.interaction.response.is_done():
                await self.defer()  # nothing to say (every reply went elsewhere)
            if self._placeholder:
                self._placeholder = False
                await self.interaction.delete_original_response()
        except (discord.HTTPException, *NETWORK_ERRORS) as error:
            log.warning("discord: could not answer interaction %s: %r", self.interaction.id, error)


def _view(rows: tuple[tuple[Button, ...], ...]) -> discord.ui.View | None:
    """Buttons as a persistent view: no timeout, every button identified by its payload."""
    view = discord.ui.View(timeout=None)
    for row_number, row in enumerate(rows[:ROWS_PER_MESSAGE]):
        for button in row[:BUTTONS_PER_ROW]:
            if button.url:
                item: discord.ui.Item[Any] = discord.ui.Button(
                    label=button.label[:BUTTON_LABEL_LIMIT], url=button.url, row=row_number
                )
            elif len(CUSTOM_ID_PREFIX + button.payload) > CUSTOM_ID_LIMIT:
                log.error(
                    "discord: a button payload over %d characters left out: %r",
                    CUSTOM_ID_LIMIT,
                    button.payload,
                )
                continue
            else:
                item = PayloadButton(button.payload, button.label)
                item.row = row_number
            view.add_item(item)
    return view if view.children else None


def _describe_question(embed: discord.Embed | None, question: Question, lang: str) -> None:
    """The question's title and its metadata as the embed's title and fields."""
    assert embed is not None
    title = to_discord(question.title, limit=EMBED_TITLE_LIMIT)
    embed.title = title[0] if title else None
    metadata = (
        ("field_company", question.company),
        ("field_round", question.round),
        ("field_date", question.date),
        ("field_tags", ", ".join(question.tags)),
    )
    for key, value in metadata:
        if value:
            shown = to_discord(escape(value), limit=EMBED_FIELD_LIMIT)
            embed.add_field(name=messages.t(lang, key), value=shown[0] if shown else "-")


def _answer_modal(lang: str) -> discord.ui.Modal:
    modal = discord.ui.Modal(
        title=messages.t(lang, "answer_modal_title")[:MODAL_TITLE_LIMIT],
        custom_id=CUSTOM_ID_PREFIX + ANSWER_PAYLOAD,
        timeout=None,
    )
    modal.add_item(
        discord.ui.TextInput(
            label=messages.t(lang, "answer_modal_label")[:MODAL_TITLE_LIMIT],
            custom_id=MODAL_TEXT_ID,
            style=discord.TextStyle.paragraph,
            max_length=MODAL_TEXT_LIMIT,
        )
    )
    # The submit is handled by on_modal_submit from its custom id alone (it must work after a
    # restart too), so discord.py is not asked to keep this modal waiting in memory.
    modal.stop()
    return modal


def _opens_answer_modal(payload: str) -> bool:
    return payload == ANSWER_PAYLOAD or PRIVATE_ANSWER_PAYLOAD.fullmatch(payload) is not None


def _text_input_value(components: object, custom_id: str) -> str:
    """A modal field's value, inside action rows (the older layout) or labels (the newer one)."""
    if not isinstance(components, list):  # a malformed payload: no field to read
        return ""
    for component in components:
        if not isinstance(component, dict):
            continue
        if component.get("custom_id") == custom_id:
            return str(component.get("value") or "")
        nested = component.get("components") or ([component["component"]] if "component" in component else [])
        found = _text_input_value(nested, custom_id)
        if found:
            return found
    return ""


def _spoiler_answer(content: str) -> tuple[bool, str]:
    """Whether every visible character is inside `||…||`, and the text (markers dropped if so,
    what was between the spoilers kept: `||keys|| ||values||` is `keys values`)."""
    if SPOILER.search(content) and not SPOILER.sub("", content).strip():
        return True, SPOILER.sub(lambda spoiler: spoiler[1], content).strip()
    return False, content.strip()


def _described(key: str) -> app_commands.locale_str:
    return app_commands.locale_str(messages.t("en", key)[:COMMAND_DESCRIPTION_LIMIT], key=key)


def _guild_language(guild: discord.Guild | None) -> str:
    """The language a server reports (its preferred locale), for words the adapter adds itself."""
    return (platform_language(guild.preferred_locale.value) if guild else None) or "en"


def _roles(user: discord.abc.User) -> tuple[str, ...]:
    """The member's role ids (the core matches them against the `role` setting). Never names: any
    member who may create a role could give one a privileged role's name."""
    if not isinstance(user, discord.Member):
        return ()
    return tuple(str(role.id) for role in user.roles if not role.is_default())


def _role_id(interaction: discord.Interaction, given: str) -> tuple[str, str | None]:
    """The `role` setting's value as a role id: from a mention, an id, or a name unique in the
    server; else a refusal to show the admin. A word that clears the setting passes as it is."""
    lang = platform_language(interaction.locale.value) or "en"
    mention = ROLE_MENTION.fullmatch(given)
    if mention:
        return mention[1], None
    if ROLE_ID.fullmatch(given) or not validate("role", given):  # an id, or a word that clears it
        return given, None
    name = given.removeprefix("@")
    guild = interaction.guild
    named = [role for role in (guild.roles if guild else []) if role.name.casefold() == name.casefold()]
    if len(named) == 1:
        return str(named[0].id), None
    key = "role_ambiguous" if named else "role_not_found"
    return "", messages.t(lang, key, name=escape(name))


async def _acknowledge(interaction: discord.Interaction) -> None:
    try:
        await interaction.response.defer()
    except (discord.HTTPException, *NETWORK_ERRORS) as error:
        log.warning("discord: could not acknowledge interaction %s: %r", interaction.id, error)


async def _yes() -> bool:
    return True


def _permission_check(interaction: discord.Interaction) -> Callable[[], Awaitable[bool]]:
    # The interaction carries the member's resolved permissions: no API call needed.
    async def is_admin() -> bool:
        return interaction.permissions.manage_guild or interaction.permissions.administrator

    return is_admin


def _member_admin_check(user: discord.abc.User) -> Callable[[], Awaitable[bool]]:
    async def is_admin() -> bool:
        if not isinstance(user, discord.Member):
            return False
        permissions = user.guild_permissions  # from the roles in the guild cache
        return permissions.manage_guild or permissions.administrator

    return is_admin
