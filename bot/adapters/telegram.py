"""Telegram on python-telegram-bot 22: Update → Incoming, Reply → Bot API calls. Translation only.

Every behaviour lives in the core; this module only knows Telegram:

- Input is a message's text or a photo's or document's caption (commands with their `@botname`
  stripped), an edit of an answer, or a button's callback data. In groups the bot passes on its
  own commands and replies to its own messages (all that a bot in privacy mode sees anyway), and
  ignores commands it does not know unless they name it; a reply carries the replied message id,
  which is how an answer finds its question. An answer is hidden when spoiler entities (or typed
  `||…||`) cover every visible character of its body. A forum topic is part of the chat's address
  (`ChatRef.thread_id`); a button in a topic carries the topic in its callback data.
- Webhook mode always checks Telegram's secret token header (generated when none is configured).
- Output is Telegram HTML from `bot.core.render`, split into messages by the renderer; buttons go
  on the last one, a question's images before it, a private reply from a group to the user's
  private chat.
- Errors of `send` become the kinds of `bot.core.ports`. A bot removed from a chat is not told
  to the core when it happens (those updates are not even requested): the next send gets
  Forbidden, and the scheduler unsubscribes the chat.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import math
import re
import time
import warnings
import weakref
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    ChatMember,
    Message,
    MessageEntity,
    Update,
)
from telegram import Chat as TgChat
from telegram.constants import ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackQueryHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.adapters.telegram_http import AiohttpRequest, RequestTimeouts
from bot.core import messages
from bot.core.commands import COMMANDS, Command
from bot.core.commands.inbound import platform_language
from bot.core.leader import Leadership, SoleProcess, while_leading
from bot.core.model import Button, ChatRef, Incoming, Reply, SentRef
from bot.core.ports import ChatGone, ChatMoved, Core, PlatformError, TransientError
from bot.core.render import to_telegram_html
from bot.ops.logs import RedactingFilter, Redactor

log = logging.getLogger(__name__)

PLATFORM = "telegram"
DEFAULT_BASE_URL = "https://api.telegram.org/bot"
# What the bot asks Telegram for; my_chat_member (the bot removed from a chat) is left out on
# purpose: the next send's Forbidden tells the scheduler, which unsubscribes the chat. An edited
# message is a user fixing (or hiding) an answer.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
ADMIN_STATUSES = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR})
CALLBACK_DATA_BYTES = 64
# (chat, user) pairs whose admin status is remembered: about 2 MB, and more than the distinct users
# who press a button or send a command within the cache's minute in all but the largest deployments.
ADMIN_CACHE_ENTRIES = 10_000
COMMAND_DESCRIPTION_LIMIT = 256
CONCURRENT_UPDATES = 64  # one chat waiting on its group rate limit must not hold up the others
OVERALL_MESSAGES_PER_SECOND = 29  # just under Telegram's 30, so timing jitter never tips it over
GROUP_MESSAGES_PER_MINUTE = 20
RATE_LIMIT_RETRIES = 3
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Bad Request descriptions that mean the chat (or the forum topic a subscription lives in) is gone.
GONE_DESCRIPTIONS = ("chat not found", "message thread not found", "topic_deleted")
COMMAND = re.compile(r"/([^\s@]+)(?:@(\S+))?")  # /name@bot_username
ANSWER_COMMAND = "answer"
# A button in a forum topic carries its topic after its payload, so that a press still finds the
# topic when Telegram sends the message as inaccessible (older ones come as chat and id only).
TOPIC_SEPARATOR = "\n"  # never inside a payload: payloads are one-line commands
START_PAYLOAD = re.compile(r"/start ([A-Za-z0-9_-]{1,64})")
TYPED_SPOILER = re.compile(r"\|\|.+?\|\|", re.DOTALL)
SPACE_UTF16 = " ".encode("utf-16-le")
# The Bot API's objects of a reply (keyboard, reply parameters, link preview options) go as plain
# dicts, as the Bot API spells them: python-telegram-bot's InlineKeyboardMarkup, ReplyParameters…
# would be built for each reply only to be turned back into these dicts (to_dict) when sent.
NO_PREVIEW: dict[str, Any] = {"is_disabled": True}


async def _yes() -> bool:
    return True


class _LibraryRedaction(logging.Filter):
    """python-telegram-bot logs its API URL, token included, and (at DEBUG) every call's parameters
    (setWebhook's secret token) on its own loggers, and httpx logs each request's URL: redact there
    too, so the secrets stay out even where `bot.ops.logs.setup_logging` did not run (tests,
    embedding) or does not know them (a webhook secret generated at start).

    One such filter per library logger, holding the secrets of the adapters alive now: an adapter
    with a fresh webhook secret changes what it redacts instead of adding a filter.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: weakref.WeakKeyDictionary[object, tuple[str, ...]] = weakref.WeakKeyDictionary()
        self._redacting = RedactingFilter(Redactor(()))

    def keep_out(self, owner: object, hidden: tuple[str, ...]) -> None:
        """Redact `hidden` for as long as `owner` lives."""
        self._secrets[owner] = hidden
        self._redacting = RedactingFilter(Redactor(set().union(*self._secrets.values())))
        # A filter acts only on its own logger's records (adding it again is a no-op).
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        return self._redacting.filter(record)


_LIBRARY_LOGGERS = ("telegram.Bot", "telegram.ext.ExtBot", "httpx")  # those that log the secrets
_LIBRARY_REDACTION = _LibraryRedaction()


def smooth_rate_limiter(scale: float = 1.0, per_second: float = OVERALL_MESSAGES_PER_SECOND) -> SteadyPacer:
    """Telegram's limits (30 messages/s overall, 20/min per group), paced one message at a time.

    `scale` is for benchmarks against a fake whose limits are raised by the same factor, and
    `per_second` for measuring how close to 30 the pacing can go (bench/fanout.py).
    """
    return SteadyPacer(per_second * scale, GROUP_MESSAGES_PER_MINUTE * scale, max_retries=RATE_LIMIT_RETRIES)


class SteadyPacer(BaseRateLimiter[int]):
    """Every message to a chat in its own slot on an even timeline, and at most `per_group` to one
    group in any 60 s: Telegram's limits as a strict sliding window reads them.

    python-telegram-bot's AIORateLimiter (a leaky bucket) lets a whole second's worth out at once
    after any pause, which a strict window refuses with 429s; paced one at a time it wakes each
    message only once the one before has gone, so every late wake-up (a busy event loop) is lost
    for good and a fan-out ran at 0.88 of the allowed rate. Here a message reserves its slot when
    it arrives, one `1/per_second` after the last reserved, never before now: the slots stay
    evenly spaced whatever the wake-ups do, with no catch-up burst after an idle spell. A group's
    message first waits until its group had fewer than `per_group` slots in the last 60 s.
    Slots woken late together (the loop stalled) would go out closer than their spacing: a last
    check keeps the messages actually handed over to at most `per_second` (rounded up) in any
    second, so a stall costs time rather than making a burst.

    A 429 holds back only its own message: it waits the `retry_after` it was given and tries again
    (`max_retries` times) without taking another slot, while the others keep theirs
    (AIORateLimiter held every send back, for the wait and 0.1 s more). Requests to no chat
    (answering a button press, getUpdates) are not paced. `clock` and `sleep` are the event
    loop's unless injected.
    """

    GROUP_WINDOW = 60.0  # seconds

    def __init__(
        self,
        per_second: float,
        per_group: float,
        *,
        max_retries: int = 0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.interval = 1 / per_second
        self.per_group = max(1, int(per_group))
        self.max_retries = max_retries
        self._clock = clock
        self._sleep = sleep
        self._next_slot = float("-inf")
        self._handed_over: deque[float] = deque(maxlen=math.ceil(per_second))
        self._group_slots: dict[int | str, deque[float]] = {}
        self._groups_pruned_at = float("-inf")

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = data.get("chat_id")
        retries = self.max_retries if rate_limit_args is None else rate_limit_args
        if chat_id is not None:
            await self.turn(_group_of(chat_id))
        for attempt in range(retries + 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                if attempt == retries:
                    raise
                wait = _retry_seconds(error)
                log.info("telegram: %s refused with 429; retrying it in %.2f s", endpoint, wait)
                await self._sleep(wait)
                # Not a fresh slot at the back of the queue: Telegram said when its window has
                # room, and the pace leaves a little under the limit for such retries.
                if chat_id is not None:
                    await self._hand_over()
        raise AssertionError("unreachable")  # the loop returns or raises

    async def turn(self, group: int | str | None) -> None:
        """Wait for this message's slot (and, in a group, for room in the group's window)."""
        if group is not None:
            slots = self._group_slots.setdefault(group, deque(maxlen=self.per_group))
            # Re-checked after each wait: another message to the group may have taken the room.
            while len(slots) == self.per_group and (room := slots[0] + self.GROUP_WINDOW - self._now()) > 0:
                await self._sleep(room)
        now = self._now()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self.interval
        if group is not None:
            slots.append(slot)
            self._forget_quiet_groups(now)
        if slot > now:
            await self._sleep(slot - now)
        await self._hand_over()

    async def _hand_over(self) -> None:
        """At most `per_second` (rounded up) messages handed over in any second, whatever the wake-ups."""
        handed = self._handed_over
        while len(handed) == handed.maxlen and (room := handed[0] + 1.0 - self._now()) > 0:
            await self._sleep(room)
        handed.append(self._now())

    def _forget_quiet_groups(self, now: float) -> None:
        """Groups with nothing in the last window are dropped, once a window: memory stays bounded."""
        if now - self._groups_pruned_at < self.GROUP_WINDOW:
            return
        self._groups_pruned_at = now
        quiet = [group for group, slots in self._group_slots.items() if slots[-1] <= now - self.GROUP_WINDOW]
        for group in quiet:
            del self._group_slots[group]


def _group_of(chat_id: object) -> int | str | None:
    """The group a chat id names (a negative id or an @channel username), None for a private chat."""
    if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
        return chat_id
    number = int(chat_id)  # type: ignore[call-overload]
    return number if number < 0 else None


class _TolerantBot(ExtBot):
    """An ExtBot whose getUpdates gets past an update python-telegram-bot cannot read.

    Bot.get_updates parses a batch in one go: one update it cannot read (a required field missing,
    say) raises, the Updater keeps its offset and fetches the same batch again, forever, and the
    bot answers no one. Here, when that happens, the batch is fetched once more (the offset has
    not moved, so Telegram sends the same updates, at once: timeout 0) as plain JSON through the
    public `do_api_request`, and each update is read on its own: an unreadable one becomes a bare
    Update with its id, no handler takes it, and the next offset acknowledges it. Only public API:
    a batch that reads (every batch but a rare one) costs exactly what Bot.get_updates costs.
    """

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        try:
            return await super().get_updates(*args, **kwargs)
        except TelegramError:
            raise  # network and API errors: the Updater's retry loop handles them
        except Exception as error:
            asked = inspect.signature(Bot.get_updates).bind(self, *args, **kwargs).arguments
            log.info(
                "telegram: python-telegram-bot could not read a batch (%r); reading it update by update",
                error,
            )
            with warnings.catch_warnings():
                # "use Bot.get_updates instead": that is the call that could not read the batch.
                warnings.simplefilter("ignore", PTBUserWarning)
                batch = await self.do_api_request(
                    "getUpdates",
                    api_kwargs={
                        "offset": asked.get("offset"),
                        "limit": asked.get("limit"),
                        "timeout": 0,
                        "allowed_updates": asked.get("allowed_updates"),
                    },
                )
        updates = tuple(read_update(data, self) for data in batch)
        for update in updates:
            self.insert_callback_data(update)  # as ExtBot.get_updates does
        return updates


class AdminCache:
    """Whether a user is an admin of a chat, remembered for `seconds`, for at most `size` pairs.

    A command checks it, a button press may again a moment later; getChatMember is a round trip.
    The least recently used pair goes first when the cache is full, so a bot in many busy groups
    holds a fixed amount of memory (unbounded, 200,000 pairs took 44 MB).
    """

    def __init__(self, seconds: float, size: int, *, now: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.size = size
        self._now = now
        self._entries: OrderedDict[tuple[int, int], tuple[float, bool]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, chat_id: int, user_id: int) -> bool | None:
        key = (chat_id, user_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._now() - entry[0] >= self.seconds:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, chat_id: int, user_id: int, is_admin: bool) -> None:
        self._entries[(chat_id, user_id)] = (self._now(), is_admin)
        self._entries.move_to_end((chat_id, user_id))
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def webhook_secret_of(token: str) -> str:
    """The webhook secret when none is configured: derived from the token, so every process of
    the bot behind one load balancer registers and expects the same one (each registering a
    random one of its own, the last would win and the others refuse every update); only who
    holds the token can know it. 64 hex digits, of the A-Za-z0-9_- Telegram allows."""
    return hmac.new(token.encode(), b"dailyq webhook secret", "sha256").hexdigest()


def read_update(data: dict[str, Any], bot: Bot) -> Update:
    """The update, or a bare one with its id (logged) when python-telegram-bot cannot read it:
    either way it is acknowledged, so it is not delivered again and the updates after it flow."""
    try:
        return Update.de_json(data, bot)
    except Exception as error:
        log.warning("telegram: update %s is unreadable and ignored: %r", data["update_id"], error)
        return Update(data["update_id"])


class TelegramAdapter:
    platform = PLATFORM

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        webhook_url: str | None = None,
        webhook_listen: str | None = None,
        webhook_secret: str | None = None,
        request_timeouts: RequestTimeouts = RequestTimeouts(),
        rate_limiter: BaseRateLimiter | bool = True,
        poll_timeout: float = 10.0,
        admin_cache_seconds: float = 60.0,
        admin_cache_size: int = ADMIN_CACHE_ENTRIES,
        commands: Sequence[Command] = COMMANDS,  # the core's (Core.commands): /feedback when a model is set
        poll_while: Leadership | None = None,
    ) -> None:
        self._commands = tuple(commands)
        self._command_names = frozenset(command.name for command in self._commands)
        self._base_url = base_url
        self._webhook_url = webhook_url
        self._webhook_listen = webhook_listen or "0.0.0.0:8443"
        # Always a secret: without one, anyone who finds the URL can post updates (a forged
        # "anonymous admin" message passes the admin check). Telegram sends it with every update.
        self._webhook_secret = webhook_secret or webhook_secret_of(token)
        _LIBRARY_REDACTION.keep_out(self, (token, self._webhook_secret) if webhook_url else (token,))
        self._poll_timeout = poll_timeout
        # Telegram serves getUpdates to one consumer at a time: with several processes, the leader.
        self._poll_while = poll_while or SoleProcess()
        self.admin_cache = AdminCache(admin_cache_seconds, admin_cache_size)
        self._core: Core | None = None
        self._init_lock = asyncio.Lock()
        self._app = self._build(token, request_timeouts, rate_limiter)
        # send_message_id calls sendMessage through `do_api_request`, which warns "use
        # Bot.sendMessage instead": deliberate here. Set per adapter, not at import, so a
        # warnings context around the import (a test collector's) does not drop it.
        warnings.filterwarnings("ignore", r"Please use 'Bot\.sendMessage' instead", PTBUserWarning)
        self._app.add_handler(
            MessageHandler(filters.UpdateType.MESSAGES & (filters.TEXT | filters.CAPTION), self._on_message)
        )
        self._app.add_handler(CallbackQueryHandler(self._on_button))

    def _build(
        self, token: str, timeouts: RequestTimeouts, rate_limiter: BaseRateLimiter | bool
    ) -> Application:
        if rate_limiter is True:
            rate_limiter = smooth_rate_limiter()
        # A bot of our own means the builder takes none of the bot's settings: they go to the bot.
        self._requests = (
            AiohttpRequest(timeouts, pool_size=256),
            AiohttpRequest(timeouts, pool_size=1),  # getUpdates: adds its long-poll timeout
        )
        bot = _TolerantBot(
            token,
            base_url=self._base_url,
            request=self._requests[0],
            get_updates_request=self._requests[1],
            rate_limiter=rate_limiter or None,
        )
        builder = (
            ApplicationBuilder()
            .bot(bot)
            .concurrent_updates(CONCURRENT_UPDATES)
            .job_queue(None)  # the schedule lives in the core (bot.core.scheduler)
        )
        if self._webhook_url:
            builder = builder.updater(None)  # updates arrive at our own aiohttp webhook server
        return builder.build()

    @property
    def bot(self) -> Bot:
        return self._app.bot

    # ---- running --------------------------------------------------------------------------------

    async def run(self, core: Core) -> None:
        """Poll (or serve the webhook) and answer until cancelled; then stop cleanly."""
        self._core = core
        webhook: web.AppRunner | None = None
        try:
            await self._initialize()
            await self._register_commands()
            await self._app.start()
            if self._webhook_url:
                webhook = await self._serve_webhook()
                log.info("telegram: running as @%s (webhook)", self.bot.username)
                await asyncio.Event().wait()
            else:
                log.info("telegram: running as @%s (polling)", self.bot.username)
                await while_leading(self._poll_while, self._start_polling, self._stop_polling)
        finally:
            if webhook:
                await webhook.cleanup()
            if self._app.updater and self._app.updater.running:
                await self._app.updater.stop()
            if self._app.running:
                await self._app.stop()
            await self._app.shutdown()

    async def _start_polling(self) -> None:
        assert self._app.updater is not None
        await self._app.updater.start_polling(
            timeout=self._poll_timeout, allowed_updates=ALLOWED_UPDATES, error_callback=_log_poll_error
        )
        if not isinstance(self._poll_while, SoleProcess):
            log.info("telegram: this process takes the updates (getUpdates) now")

    async def _stop_polling(self) -> None:
        assert self._app.updater is not None
        if self._app.updater.running:
            await self._app.updater.stop()
            if not self._poll_while.is_leader:  # deposed, rather than shutting down
                log.info("telegram: this process stopped taking the updates; another process polls")

    async def _initialize(self) -> None:
        """Connect and learn the bot's username (getMe); `send` may come before `run` does it."""
        async with self._init_lock:
            try:
                await self._app.initialize()
            except BaseException as error:
                # The library closes its connections only once it has initialised: a failed getMe
                # would leave them open.
                for request in self._requests:
                    await request.shutdown()
                if isinstance(error, InvalidToken):  # its message quotes the token
                    raise PlatformError("telegram: the Bot API refused TELEGRAM_BOT_TOKEN") from None
                if isinstance(error, NetworkError):
                    raise TransientError(f"telegram: {self._base_url} is unreachable ({error})") from None
                raise

    async def _register_commands(self) -> None:
        """The client's command menu, in English and (for Chinese-speaking users) in Chinese."""
        for lang in ("en", "zh"):
            commands = [
                BotCommand(command.name, messages.t(lang, command.help_key)[:COMMAND_DESCRIPTION_LIMIT])
                for command in self._commands
            ]
            try:
                await self.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)
            except TelegramError as error:
                log.warning("telegram: setMyCommands (%s) failed: %s", lang, error)

    async def _serve_webhook(self) -> web.AppRunner:
        """Our own aiohttp server for webhook mode (aiohttp is a dependency; PTB's needs tornado)."""
        assert self._webhook_url is not None
        host, _, port = self._webhook_listen.rpartition(":")
        server = web.Application()
        server.router.add_post(urlsplit(self._webhook_url).path or "/", self._on_webhook)
        runner = web.AppRunner(server, access_log=None)  # the path may embed a secret
        await runner.setup()
        try:
            await web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port)).start()
            await self.bot.set_webhook(
                self._webhook_url, secret_token=self._webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def _on_webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            return web.Response(status=403)
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            log.warning("telegram: the webhook got a body that is not an update")
            return web.Response(status=400)
        # 200 even for an update we cannot read: Telegram would deliver it again and again, and
        # hold back the updates after it.
        await self._app.update_queue.put(read_update(data, self.bot))
        return web.Response()

    # ---- Update → Incoming ----------------------------------------------------------------------

    def incoming_from(self, update: Update) -> Incoming | None:
        """The core's view of an update, or None when it is not for the bot."""
        if update.callback_query:
            return self._from_button(update.callback_query)
        if update.message:
            return self._from_message(update.message)
        if update.edited_message:
            return self._from_message(update.edited_message, edited=True)
        return None

    def _from_message(self, message: Message, *, edited: bool = False) -> Incoming | None:
        """A text message, or a photo or document with a caption (an answer may come as either)."""
        user = message.from_user
        text, entities = _text_and_entities(message)
        if user is None or text is None:
            return None
        replied = self._replied_bot_message(message)
        command = COMMAND.match(text) if _starts_with_command(entities) else None
        body_start = 0
        if command:
            name, addressed = command[1].casefold(), command[2]
            if addressed and addressed.casefold() != (self.bot.username or "").casefold():
                return None  # for another bot
            if _is_group(message.chat) and not addressed and name not in self._command_names:
                # Another bot's command (`/random 1 6`, `/test @OtherBot`): Telegram shows groups'
                # commands to every bot that posted last, so an unknown one is not ours to refuse.
                return None
            if edited and name != ANSWER_COMMAND:
                return None  # an edited /answer replaces the answer; other commands are not run twice
            body_start = command.end()
            text = f"/{command[1]}{text[body_start:]}"
        elif message.chat.type != ChatType.PRIVATE and replied is None:
            return None  # group chatter (seen only with privacy mode off)
        return Incoming(
            platform=PLATFORM,
            chat=_chat_ref(message),
            user_id=str(user.id),
            user_name=user.full_name,
            text=text,
            is_group=_is_group(message.chat),
            is_admin=self._admin_check(message.chat, user.id, message.sender_chat),
            reply_to=str(replied.message_id) if replied else None,
            hidden=_is_hidden(message, body_start),
            lang=user.language_code,
            message_id=str(message.message_id),
            edited=edited,
        )

    def _from_button(self, query: CallbackQuery) -> Incoming | None:
        message = query.message
        if message is None or not query.data:
            return None  # a button under an inline-mode message: not ours
        payload, _, topic = query.data.partition(TOPIC_SEPARATOR)
        if isinstance(message, Message) and message.is_accessible:
            chat = _chat_ref(message)
        else:
            # Inaccessible (python-telegram-bot reads it as a Message dated 0): only the chat and
            # the message id came; the topic is in the data.
            chat = ChatRef(PLATFORM, str(message.chat.id), topic if topic.isdigit() else None)
        return Incoming(
            platform=PLATFORM,
            chat=chat,
            user_id=str(query.from_user.id),
            user_name=query.from_user.full_name,
            text=payload,
            is_group=_is_group(message.chat),
            is_admin=self._admin_check(message.chat, query.from_user.id, None),
            lang=query.from_user.language_code,
        )

    def _replied_bot_message(self, message: Message) -> Message | None:
        replied = message.reply_to_message
        if replied is None or replied.from_user is None or replied.from_user.id != self.bot.id:
            return None  # not a reply, or to someone else, or (in a topic) to the topic's creation
        return replied

    def _admin_check(
        self, chat: TgChat, user_id: int, sender_chat: TgChat | None
    ) -> Callable[[], Awaitable[bool]]:
        # A private chat is its user's own; an anonymous admin posts as the group itself.
        if chat.type == ChatType.PRIVATE or (sender_chat is not None and sender_chat.id == chat.id):
            return _yes

        async def is_admin() -> bool:
            return await self._is_admin(chat.id, user_id)

        return is_admin

    async def _is_admin(self, chat_id: int, user_id: int) -> bool:
        """getChatMember, remembered for a while (see AdminCache)."""
        cached = self.admin_cache.get(chat_id, user_id)
        if cached is not None:
            return cached
        try:
            member = await self.bot.get_chat_member(chat_id, user_id)
        except TelegramError as error:
            log.warning(
                "telegram: getChatMember in %s failed (%s); treating the user as a member", chat_id, error
            )
            return False
        answer = member.status in ADMIN_STATUSES
        self.admin_cache.put(chat_id, user_id, answer)
        return answer

    # ---- handling -------------------------------------------------------------------------------

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming, replies = await self._handle(update)
        if incoming:
            await self._respond(incoming, replies)

    async def _on_button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming, replies = await self._handle(update)
        query = update.callback_query
        assert query is not None
        # Answered before the replies go out: those may wait on a group's rate limit, and the
        # client shows a spinner until the answer. Stale and failed presses are answered too.
        try:
            await query.answer()
        except TelegramError as error:
            log.warning("telegram: answering a button press failed: %s", error)
        if incoming:
            await self._respond(incoming, replies)

    async def _handle(self, update: Update) -> tuple[Incoming | None, list[Reply]]:
        assert self._core is not None
        try:
            incoming = self.incoming_from(update)
            if incoming is None:
                return None, []
            return incoming, await self._core.handle(incoming)
        except Exception:
            log.exception("telegram: update %s failed", update.update_id)
            return None, []

    async def _respond(self, incoming: Incoming, replies: Sequence[Reply]) -> None:
        """Send each reply; a failure is logged and never stops the others or the bot."""
        assert self._core is not None
        for reply in replies:
            try:
                if reply.private and incoming.is_group:
                    ref = await self._send_privately(incoming, reply)
                else:
                    ref = await self._post(reply.chat or incoming.chat, reply)
                if ref and reply.post_id is not None:
                    await self._core.sent(reply, ref)
            except Exception as error:
                log.warning("telegram: a reply to %s failed: %r", incoming.chat.key, error)

    async def _send_privately(self, incoming: Incoming, reply: Reply) -> SentRef | None:
        """To the user's private chat; if they never started the bot, say so in the group."""
        try:
            return await self._post(ChatRef(PLATFORM, incoming.user_id), replace(reply, reply_to=None))
        except Forbidden:
            # The chat's language as the core chose it (a group's /settings lang), else the user's.
            lang = reply.lang or platform_language(incoming.lang) or "en"
            start = Button(messages.t(lang, "button_open_private"), url=f"https://t.me/{self.bot.username}")
            notice = Reply(
                messages.t(lang, "private_blocked"),
                buttons=((start,),),
                reply_to=incoming.message_id,
            )
            await self._post(incoming.chat, notice)
            return None

    # ---- Reply → Telegram -----------------------------------------------------------------------

    async def send(self, chat: ChatRef, reply: Reply) -> SentRef:
        """A message the core sends unprompted (a daily post, a reveal), errors as PlatformError kinds."""
        with _platform_errors(chat):
            await self._initialize()
            return await self._post(chat, reply)

    async def _post(self, chat: ChatRef, reply: Reply) -> SentRef:
        chat_id = int(chat.chat_id)
        thread = int(chat.thread_id) if chat.thread_id else None
        if reply.kind == "question" and reply.question:
            await self._send_images(chat_id, thread, reply.question.images)
        chunks = to_telegram_html(reply.text)
        first: int | None = None
        for number, chunk in enumerate(chunks, start=1):
            sent = await send_message_id(
                self.bot,
                chat_id=chat_id,
                text=chunk,
                parse_mode=ParseMode.HTML,
                message_thread_id=thread,
                reply_parameters=_reply_parameters(reply.reply_to) if first is None else None,
                reply_markup=self._keyboard(reply.buttons, thread) if number == len(chunks) else None,
                link_preview_options=NO_PREVIEW,
            )
            first = first or sent
        if first is None:
            raise ValueError("a reply with no text to send")
        return SentRef(chat, str(first))

    def _keyboard(self, rows: tuple[tuple[Button, ...], ...], thread: int | None) -> dict[str, Any] | None:
        """The Bot API's InlineKeyboardMarkup."""
        keyboard = [[self._inline_button(button, thread) for button in row] for row in rows if row]
        return {"inline_keyboard": keyboard} if keyboard else None

    def _inline_button(self, button: Button, thread: int | None) -> dict[str, str]:
        """The Bot API's InlineKeyboardButton."""
        if button.url:
            return {"text": button.label, "url": button.url}
        # `/start <parameter>` is what a deep link makes the user send to the bot's private chat.
        start = START_PAYLOAD.fullmatch(button.payload)
        if start:
            return {"text": button.label, "url": f"https://t.me/{self.bot.username}?start={start[1]}"}
        return {"text": button.label, "callback_data": _callback_data(button.payload, thread)}

    async def _send_images(self, chat_id: int, thread: int | None, images: Sequence[str]) -> None:
        for image in images:
            try:
                photo = await asyncio.to_thread(Path(image).read_bytes)
            except OSError as error:  # removed since the bank was loaded
                log.warning("telegram: image %s not sent: %s", image, error)
                continue
            try:
                # Behind a spoiler: an image may belong to the answer.
                await self.bot.send_photo(
                    chat_id, photo, filename=Path(image).name, message_thread_id=thread, has_spoiler=True
                )
            except BadRequest as error:
                if _means_gone(error):
                    raise
                log.warning("telegram: image %s not sent: %s", image, error)


def _text_and_entities(message: Message) -> tuple[str | None, Sequence[MessageEntity]]:
    if message.text is not None:
        return message.text, message.entities
    return message.caption, message.caption_entities


def _starts_with_command(entities: Sequence[MessageEntity]) -> bool:
    return any(e.type == MessageEntity.BOT_COMMAND and e.offset == 0 for e in entities)


def _is_group(chat: TgChat) -> bool:
    return chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


def _chat_ref(message: Message) -> ChatRef:
    """A forum topic's messages belong to the topic; everything else to the chat."""
    thread = message.message_thread_id if message.chat.is_forum and message.is_topic_message else None
    return ChatRef(PLATFORM, str(message.chat.id), str(thread) if thread else None)


def _is_hidden(message: Message, body_start: int) -> bool:
    """Every visible character of the body (the text from `body_start`, past a command) is inside
    a spoiler: a spoiler entity (its offsets count UTF-16 units) or a typed `||…||`.

    Worked in UTF-16, the units entity offsets count: covered units become spaces, and the body
    is hidden when nothing but whitespace is left of it. A spoiler that covers half of a
    character (a surrogate pair) leaves a replacement character behind: not hidden.
    """
    text, entities = _text_and_entities(message)
    assert text is not None
    if not text[body_start:].strip():
        return False
    units = bytearray(text.encode("utf-16-le"))  # two bytes per unit
    body = _utf16_len(text[:body_start])
    spans = [
        (entity.offset, entity.offset + entity.length)
        for entity in entities
        if entity.type == MessageEntity.SPOILER
    ]
    spans += [
        (_utf16_len(text[: match.start()]), _utf16_len(text[: match.end()]))
        for match in TYPED_SPOILER.finditer(text, body_start)
    ]
    for start, end in spans:
        start, end = max(start, body), min(end, len(units) // 2)
        if start < end:
            units[2 * start : 2 * end] = SPACE_UTF16 * (end - start)
    return not units[2 * body :].decode("utf-16-le", errors="replace").strip()


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def send_message_id(bot: Bot, **fields: Any) -> int:
    """sendMessage, reading only the id of the message sent from Telegram's answer.

    Bot.send_message builds a whole Message from the answer (the text's entities, the keyboard,
    the chat, the quoted message): a third of a millisecond an update that nothing here reads.
    The call goes through the public `do_api_request` (defaults, rate limiter and errors as for
    send_message); tests/test_telegram.py checks it stays quiet and builds no Message.
    """
    try:
        answer = await bot.do_api_request("sendMessage", api_kwargs=fields)
    except EndPointNotFound as error:  # do_api_request's name for a refused token (401, 404)
        raise InvalidToken("the Bot API refused the token") from error
    return int(answer["message_id"])


def _reply_parameters(message_id: str | None) -> dict[str, Any] | None:
    """The Bot API's ReplyParameters."""
    if not message_id:
        return None
    return {"message_id": int(message_id), "allow_sending_without_reply": True}


def _callback_data(payload: str, thread: int | None) -> str:
    """The payload, with its forum topic after it when both fit in Telegram's 64 bytes."""
    with_topic = f"{payload}{TOPIC_SEPARATOR}{thread}" if thread else payload
    if len(with_topic.encode()) <= CALLBACK_DATA_BYTES:
        return with_topic
    data = payload.encode()
    if len(data) > CALLBACK_DATA_BYTES:
        # Payloads are short by design; cut at a character boundary rather than have Telegram
        # refuse the whole message.
        log.error("telegram: button payload over %d bytes cut: %r", CALLBACK_DATA_BYTES, payload)
    return data[:CALLBACK_DATA_BYTES].decode(errors="ignore")


def _means_gone(error: BadRequest) -> bool:
    description = error.message.lower()
    return any(phrase in description for phrase in GONE_DESCRIPTIONS)


def _retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # the int form is deprecated; timedelta comes with PTB_TIMEDELTA
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@contextmanager
def _platform_errors(chat: ChatRef) -> Iterator[None]:
    """python-telegram-bot's errors as the kinds the scheduler acts on."""
    try:
        yield
    except ChatMigrated as error:
        raise ChatMoved(ChatRef(PLATFORM, str(error.new_chat_id), chat.thread_id)) from error
    except RetryAfter as error:
        raise TransientError(f"telegram: {error}", retry_after=_retry_seconds(error)) from error
    except Forbidden as error:
        raise ChatGone(f"telegram: {error}") from error
    except BadRequest as error:  # before NetworkError: BadRequest is one
        if _means_gone(error):
            raise ChatGone(f"telegram: {error}") from error
        raise PlatformError(f"telegram: {error}") from error
    except InvalidToken as error:
        raise PlatformError("telegram: the Bot API refused TELEGRAM_BOT_TOKEN") from error
    except TelegramError as error:  # timeouts, 5xx, connection errors, responses that are not JSON
        raise TransientError(f"telegram: {error}") from error


def _log_poll_error(error: TelegramError) -> None:
    """One line per failed poll (the library's default logs a traceback each time); it retries."""
    log.warning("telegram: getUpdates failed (%s); retrying", error)
