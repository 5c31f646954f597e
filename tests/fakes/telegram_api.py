"""A fake Telegram Bot API server that the real python-telegram-bot talks to over HTTP.

It listens on 127.0.0.1 (a random port) and speaks what LIBRARY-NOTES.md describes: every call is
`POST /bot<token>/<method>` with a form, multipart or JSON body, answered `{"ok": true, "result": …}`.
Tests play the users (`user_says`, `press`, or any raw update with `inject`), read back every call
the bot made (`calls`, `wait_for`, or `watch` each as it is answered) and inject the failures
Telegram produces (`fail` with the faults below). Like Telegram it checks what the bot sends: HTML
that Telegram would refuse, texts over 4096 UTF-16 units, captions over 1024, callback data over 64
bytes and answers over 200 characters get Telegram's 400 errors. Given `FloodLimits`, it also
enforces Telegram's flood control and answers `429 retry_after` past it.

    async with FakeTelegram() as tg:
        adapter = TelegramAdapter(tg.token, base_url=tg.base_url)
        ...
        tg.user_says(private_chat(ALICE), ALICE, "/quiz")
        [question] = await tg.wait_for("sendMessage", chat_id=ALICE.id)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import ClientError, ClientSession, web

TOKEN = "123456789:AAFakeTokenThatMustNeverAppearInLogs"

# Form fields that python-telegram-bot sends as JSON strings.
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "commands",
        "scope",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "media",
    }
)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
CALLBACK_ANSWER_LIMIT = 200
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The calls that post a message, which are what Telegram's flood control counts.
MESSAGE_METHODS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "copyMessage", "forwardMessage"}
)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def spoiler(text: str, part: str | None = None) -> list[dict[str, Any]]:
    """A spoiler entity over `part` of `text` (all of it by default), offsets in UTF-16 units."""
    part = text if part is None else part
    start = text.index(part)
    return [{"type": "spoiler", "offset": utf16_len(text[:start]), "length": utf16_len(part)}]


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    language_code: str | None = None
    username: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            data["language_code"] = self.language_code
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True)
class Chat:
    id: int
    type: str  # private | group | supergroup
    title: str | None = None
    is_forum: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            data["title"] = self.title
        if self.is_forum:
            data["is_forum"] = True
        return data


def private_chat(user: User) -> Chat:
    return Chat(user.id, "private")


def group(chat_id: int, title: str = "Study group") -> Chat:
    return Chat(chat_id, "group", title)


def forum(chat_id: int, title: str = "Study forum") -> Chat:
    return Chat(chat_id, "supergroup", title, is_forum=True)


@dataclass(frozen=True)
class Fault:
    """What the fake answers instead of the real thing: a status and raw body, or no answer at all."""

    status: int
    body: bytes = b""
    hang: bool = False  # keep the request open until the fake stops: the client times out

    @classmethod
    def error(cls, status: int, description: str, **parameters: Any) -> Fault:
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return cls(status, json.dumps(payload).encode())


def retry_after(seconds: float) -> Fault:
    """Telegram sends whole seconds; a fraction keeps python-telegram-bot's wait short in tests."""
    return Fault.error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)


def migrated(new_chat_id: int) -> Fault:
    return Fault.error(
        400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=new_chat_id
    )


KICKED = Fault.error(403, "Forbidden: bot was kicked from the group chat")
BLOCKED = Fault.error(403, "Forbidden: bot was blocked by the user")
NEVER_STARTED = Fault.error(403, "Forbidden: bot can't initiate conversation with a user")
CHAT_NOT_FOUND = Fault.error(400, "Bad Request: chat not found")
BAD_GATEWAY = Fault(502, b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
HANG = Fault(200, hang=True)
MALFORMED_JSON = Fault(200, b'{"ok": true, "result": {"message_id": ')


@dataclass(frozen=True)
class FloodLimits:
    """Telegram's flood control, as the fake enforces it on the message-posting methods: at most
    `per_second` messages in any one-second window overall, and at most `per_group_per_minute`
    in any sixty-second window to one group (a negative chat id). Past either, the message is
    refused with 429 and `retry_after` the exact seconds until the window has room (Telegram
    rounds up to whole seconds; the exact figure keeps a scaled-up run from being penalised by
    the rounding). `scaled(k)` multiplies both counts, for runs that must be short."""

    per_second: float = 30.0
    per_group_per_minute: float = 20.0
    now: Callable[[], float] = time.monotonic

    def scaled(self, factor: float) -> FloodLimits:
        return FloodLimits(self.per_second * factor, self.per_group_per_minute * factor, self.now)


class SlidingWindow:
    """At most `allowed` events in any `period` seconds: how the fakes count toward a rate limit."""

    def __init__(self, period: float, allowed: float) -> None:
        self.period = period
        self.allowed = allowed
        self._times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0.0: it fits now)."""
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()
        return self._times[0] + self.period - now if len(self._times) >= self.allowed else 0.0

    def add(self, now: float) -> None:
        self._times.append(now)


def admit(windows: list[SlidingWindow], now: float) -> float | None:
    """Count one event in every window and return None, or the seconds to wait if any is full."""
    wait = max(window.wait(now) for window in windows)
    if wait > 0:
        return wait
    for window in windows:
        window.add(now)
    return None


class _FloodControl:
    def __init__(self, limits: FloodLimits) -> None:
        self.limits = limits
        self._overall = SlidingWindow(1.0, limits.per_second)
        self._groups: dict[int, SlidingWindow] = {}

    def admit(self, chat_id: int | None) -> float | None:
        windows = [self._overall]
        if chat_id is not None and chat_id < 0:
            if chat_id not in self._groups:
                self._groups[chat_id] = SlidingWindow(60.0, self.limits.per_group_per_minute)
            windows.append(self._groups[chat_id])
        return admit(windows, self.limits.now())


@dataclass
class Call:
    """One request the bot made and how the fake answered it: `result` when it was accepted, else
    the injected `fault` or the `error` Telegram would give."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    filenames: dict[str, str] = field(default_factory=dict)  # an uploaded file's name, by field
    status: int | None = None  # None until answered
    result: Any = None
    fault: Fault | None = None
    error: str | None = None
    answered_at: float | None = None  # time.monotonic() when the answer went out

    @property
    def decided(self) -> bool:
        """The fake has chosen its answer (a hung request is decided but never answered)."""
        return self.status is not None or self.fault is not None

    def _int(self, name: str) -> int | None:
        value = self.params.get(name)
        return None if value is None else int(value)

    @property
    def chat_id(self) -> int | None:
        return self._int("chat_id")

    @property
    def thread_id(self) -> int | None:
        return self._int("message_thread_id")

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    def button(self, data_prefix: str) -> str:
        """The callback data of the button whose data starts with `data_prefix`."""
        for button in self.buttons:
            if button.get("callback_data", "").startswith(data_prefix):
                return button["callback_data"]
        raise AssertionError(f"no button {data_prefix!r} in {self.buttons}")


class ApiError(Exception):
    """Raised inside a method handler: the fake answers with this status and description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status


def _bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


class _TelegramHtml(HTMLParser):
    """Checks HTML the way the Bot API does for parse_mode=HTML and collects the visible text."""

    SIMPLE = frozenset(
        {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "tg-spoiler"}
    )
    ATTRIBUTES = {"a": {"href"}, "span": {"class"}, "blockquote": {"expandable"}, "tg-emoji": {"emoji-id"}}
    RAW_LT = re.compile(r"<(?!/?[a-zA-Z][a-zA-Z0-9-]*(?:[\s/>]|$))")
    RAW_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.visible: list[str] = []

    @classmethod
    def visible_text(cls, html: str) -> str:
        if cls.RAW_LT.search(html) or cls.RAW_AMP.search(html):
            raise _bad_request("can't parse entities: unescaped '<' or '&'")
        parser = cls()
        parser.feed(html)
        parser.close()
        if parser.open:
            raise _bad_request(
                f"can't parse entities: can't find end tag corresponding to start tag {parser.open[-1]}"
            )
        return "".join(parser.visible)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        allowed = self.ATTRIBUTES.get(tag, {"class"} if tag == "code" else set())
        if (tag not in self.SIMPLE and tag not in self.ATTRIBUTES) or not names <= allowed:
            raise _bad_request(f'can\'t parse entities: unsupported start tag "{tag}"')
        if tag == "span" and dict(attrs).get("class") != "tg-spoiler":
            raise _bad_request("can't parse entities: unsupported span")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise _bad_request(f'can\'t parse entities: unsupported start tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise _bad_request(f'can\'t parse entities: unmatched end tag "{tag}"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)


def visible_text(html: str) -> str:
    """What Telegram shows for `html` (parse_mode=HTML); raises ApiError where Telegram would."""
    return _TelegramHtml.visible_text(html)


class FakeTelegram:
    def __init__(
        self, *, token: str = TOKEN, username: str = "dailyq_test_bot", limits: FloodLimits | None = None
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "DailyQ",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat id, message id) → message
        self.webhook: dict[str, Any] | None = None  # url, secret_token, allowed_updates
        self.webhook_statuses: list[int] = []  # HTTP status of every webhook delivery
        self._chats: dict[int, Chat] = {}
        self._member_status: dict[tuple[int, int], str] = {}
        self._faults: list[list[Any]] = []  # [method, chat_id or None, fault, remaining or None]
        self._flood = _FloodControl(limits) if limits else None
        self.flood_refusals = 0  # 429s answered because the bot went past the flood limits
        self._watchers: list[Callable[[Call], None]] = []
        self._queue: list[dict[str, Any]] = []  # updates not yet confirmed by the bot
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._message_ids: dict[int, int] = defaultdict(int)
        self._injected_at = 0  # len(calls) when the last update was injected: wait_for's default
        self._update_arrived = asyncio.Event()
        self._call_recorded = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self._webhook_push: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def __aenter__(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("*", "/{bot_token}/{method}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._client = ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()
        if self._webhook_push:
            await self._webhook_push
        if self._client:
            await self._client.close()
        if self._runner:
            await self._runner.cleanup()

    # ---- the world the bot lives in -------------------------------------------------------------

    def add_chat(self, chat: Chat) -> None:
        """Make the chat known (users talking in it do that too): getChat, forum topics."""
        self._chats[chat.id] = chat

    def set_member_status(self, chat: Chat, user: User, status: str) -> None:
        """`creator`, `administrator`, `member`, `left`, `kicked` (the default is member)."""
        self.add_chat(chat)
        self._member_status[(chat.id, user.id)] = status

    def fail(self, method: str, fault: Fault, *, chat_id: int | None = None, times: int | None = 1) -> None:
        """Answer the next `times` calls of `method` (to `chat_id`, if given) with `fault`; None: always."""
        self._faults.append([method, chat_id, fault, times])

    def user_says(
        self,
        chat: Chat,
        user: User,
        text: str,
        *,
        entities: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user's text message; a leading `/word` gets its bot_command entity as Telegram adds it.

        In a forum topic (`thread_id`) a message that replies to nothing replies, as on Telegram,
        to the topic's creation message.
        """
        self.add_chat(chat)
        fields: dict[str, Any] = {"text": text}
        all_entities = list(entities or [])
        if text.startswith("/"):
            all_entities.insert(0, {"type": "bot_command", "offset": 0, "length": utf16_len(text.split()[0])})
        if all_entities:
            fields["entities"] = all_entities
        if thread_id is not None:
            fields |= {"message_thread_id": thread_id, "is_topic_message": True}
        if reply_to is not None:
            fields["reply_to_message"] = self._quoted(chat.id, reply_to)
        elif thread_id is not None:
            fields["reply_to_message"] = self._topic_root(chat, user, thread_id)
        message = self._new_message(chat.to_json(), user.to_json(), fields)
        return self._enqueue({"message": message})

    def user_sends(
        self, chat: Chat, user: User, fields: dict[str, Any], *, reply_to: int | None = None
    ) -> dict[str, Any]:
        """A user's message of any kind (`fields` as Telegram sends them: a photo with its sizes and
        a caption, a document...), in reply to `reply_to` if given."""
        self.add_chat(chat)
        if reply_to is not None:
            fields = fields | {"reply_to_message": self._quoted(chat.id, reply_to)}
        return self._enqueue({"message": self._new_message(chat.to_json(), user.to_json(), fields)})

    def user_edits(
        self, message: dict[str, Any], text: str, *, entities: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The edited_message Telegram sends when a user changes the text of `message`: the whole
        message again, with the new text and entities and an edit_date."""
        edited = {k: v for k, v in message.items() if k != "entities"} | {"text": text, "edit_date": int(time.time())}
        all_entities = list(entities or [])
        if text.startswith("/"):
            all_entities.insert(0, {"type": "bot_command", "offset": 0, "length": utf16_len(text.split()[0])})
        if all_entities:
            edited["entities"] = all_entities
        self.messages[(message["chat"]["id"], message["message_id"])] = edited
        return self._enqueue({"edited_message": edited})

    def press_inaccessible(self, data: str, message: dict[str, Any], user: User) -> dict[str, Any]:
        """A press on a button under a message Telegram no longer shows the bot (an older one): the
        query carries an InaccessibleMessage, the chat and message id only, with date 0."""
        inaccessible = {"chat": message["chat"], "message_id": message["message_id"], "date": 0}
        return self.press(data, inaccessible, user)

    def press(self, data: str, message: dict[str, Any], user: User) -> dict[str, Any]:
        """`user` presses the inline button carrying `data` under `message` (a message the bot sent)."""
        query = {
            "id": str(next(self._callback_ids)),
            "from": user.to_json(),
            "chat_instance": str(message["chat"]["id"]),
            "data": data,
            "message": message,
        }
        return self._enqueue({"callback_query": query})

    def bot_removed(self, chat: Chat, by: User) -> dict[str, Any]:
        """The my_chat_member update Telegram sends when the bot is kicked from `chat`."""
        member = {"user": self.bot_user, "status": "member"}
        update = {
            "chat": chat.to_json(),
            "from": by.to_json(),
            "date": int(time.time()),
            "old_chat_member": member,
            "new_chat_member": member | {"status": "kicked", "until_date": 0},
        }
        return self._enqueue({"my_chat_member": update})

    def inject(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update of any shape (for fuzzing); it gets the next update_id unless it has one."""
        return self._enqueue(update)

    def watch(self, observer: Callable[[Call], None]) -> None:
        """Call `observer` with every call once it is answered (benches follow thousands this way)."""
        self._watchers.append(observer)

    # ---- what the bot did -----------------------------------------------------------------------

    def calls_to(self, method: str, *, after: int = 0, **params: Any) -> list[Call]:
        return [
            call
            for call in self.calls[after:]
            if call.method == method and all(str(call.params.get(k)) == str(v) for k, v in params.items())
        ]

    async def wait_for(
        self, method: str, *, count: int = 1, after: int | None = None, within: float = 5.0, **params: Any
    ) -> list[Call]:
        """The first `count` calls of `method` matching `params`, made after the last injected update
        (or after call number `after`), once answered. Failed calls count too: see `Call.fault`."""
        start = self._injected_at if after is None else after

        def decided() -> list[Call]:
            return [call for call in self.calls_to(method, after=start, **params) if call.decided]

        try:
            await self.wait_until(lambda: len(decided()) >= count, within)
        except AssertionError:
            made = "\n  ".join(f"{c.method} {c.params} {c.error or ''}" for c in self.calls[start:])
            raise AssertionError(f"expected {count} × {method} {params}; the bot made:\n  {made}") from None
        return decided()[:count]

    async def wait_until(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        """Wake at every call the bot makes (and every webhook delivery) until `condition()` holds."""
        try:
            async with asyncio.timeout(within):
                while not condition():
                    self._call_recorded.clear()
                    await self._call_recorded.wait()
        except TimeoutError:
            raise AssertionError(f"condition not met within {within} s") from None

    def mark(self) -> int:
        """The position in the call log now, to wait for calls made after it (`after=`)."""
        return len(self.calls)

    # ---- the HTTP side --------------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.Response:
        if request.match_info["bot_token"] != f"bot{self.token}":
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files, filenames = await _read_params(request)
        call = Call(method, params, files, filenames)
        self.calls.append(call)
        self._call_recorded.set()  # long polls and hung requests are seen while they wait
        response = await self._answer(call)
        call.status = response.status
        call.answered_at = time.monotonic()
        self._call_recorded.set()
        for observer in self._watchers:
            observer(call)
        return response

    async def _answer(self, call: Call) -> web.Response:
        fault = self._take_fault(call.method, call.chat_id)
        if fault:
            call.fault = fault
            if fault.hang:
                await self._closing.wait()
            return web.Response(status=fault.status, body=fault.body, content_type="application/json")
        handler = getattr(self, f"_api_{call.method.lower()}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        if self._flood and call.method in MESSAGE_METHODS:
            wait = self._flood.admit(call.chat_id)
            if wait is not None:
                self.flood_refusals += 1
                call.error = f"Too Many Requests: retry after {wait:.3f}"
                return _error(429, call.error, retry_after=math.ceil(wait * 1000) / 1000)
        try:
            call.result = await handler(call.params, call.files)
        except ApiError as error:
            call.error = str(error)
            return _error(error.status, call.error)
        return web.json_response({"ok": True, "result": call.result})

    def _take_fault(self, method: str, chat_id: int | None) -> Fault | None:
        for armed in self._faults:
            wanted_method, wanted_chat, fault, remaining = armed
            if wanted_method == method and wanted_chat in (None, chat_id) and remaining != 0:
                if remaining is not None:
                    armed[3] = remaining - 1
                return fault
        return None

    async def _api_getme(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return self.bot_user

    async def _api_getupdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        self._queue = [u for u in self._queue if u["update_id"] >= offset]
        allowed = params.get("allowed_updates") or None
        pending = self._deliverable(allowed)
        timeout = float(params.get("timeout") or 0)
        if not pending and timeout > 0:
            self._update_arrived.clear()
            closing = asyncio.ensure_future(self._closing.wait())
            arrived = asyncio.ensure_future(self._update_arrived.wait())
            _, waiting = await asyncio.wait(
                {closing, arrived}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in waiting:
                task.cancel()
            pending = self._deliverable(allowed)
        return pending[: int(params.get("limit") or 100)]

    def _deliverable(self, allowed: list[str] | None) -> list[dict[str, Any]]:
        # Telegram drops the updates of kinds the bot did not ask for.
        if allowed:
            self._queue = [u for u in self._queue if any(kind in u for kind in allowed)]
        return list(self._queue)

    async def _api_deletewebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.webhook = None
        return True

    async def _api_setwebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self.webhook = params
        self._push_to_webhook()
        return True

    async def _api_setmycommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        for command in params["commands"]:
            if (
                not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"])
                or not 1 <= len(command["description"]) <= 256
            ):
                raise _bad_request("BOT_COMMAND_INVALID")
        return True

    async def _api_sendmessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        text = str(params.get("text") or "")
        shown = visible_text(text) if params.get("parse_mode") == "HTML" else text
        if not shown.strip():
            raise _bad_request("message text is empty")
        if utf16_len(shown) > TEXT_LIMIT:
            raise _bad_request("message is too long")
        return self._bot_message(params, {"text": shown})

    async def _api_sendphoto(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if "photo" not in files and not params.get("photo"):
            raise _bad_request("there is no photo in the request")
        caption = str(params.get("caption") or "")
        shown = visible_text(caption) if params.get("parse_mode") == "HTML" else caption
        if utf16_len(shown) > CAPTION_LIMIT:
            raise _bad_request("message caption is too long")
        photo = [
            {
                "file_id": f"photo{len(self.calls)}",
                "file_unique_id": f"u{len(self.calls)}",
                "width": 90,
                "height": 90,
            }
        ]
        fields: dict[str, Any] = {"photo": photo}
        if shown:
            fields["caption"] = shown
        return self._bot_message(params, fields)

    async def _api_editmessagetext(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        message = self._quoted(int(params["chat_id"]), int(params["message_id"]))
        text = str(params["text"])
        message["text"] = visible_text(text) if params.get("parse_mode") == "HTML" else text
        if "reply_markup" in params:
            message["reply_markup"] = self._checked_markup(params["reply_markup"])
        self.messages[(message["chat"]["id"], message["message_id"])] = message
        return message

    async def _api_answercallbackquery(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if len(str(params.get("text") or "")) > CALLBACK_ANSWER_LIMIT:
            raise _bad_request("MESSAGE_TOO_LONG")
        return True

    async def _api_getchatmember(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        status = self._member_status.get((chat_id, user_id), "member")
        user = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        if status == "administrator":
            rights = (
                "can_manage_chat",
                "can_delete_messages",
                "can_manage_video_chats",
                "can_restrict_members",
                "can_promote_members",
                "can_change_info",
                "can_invite_users",
                "can_post_stories",
                "can_edit_stories",
                "can_delete_stories",
            )
            return {
                "status": status,
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
            } | dict.fromkeys(rights, True)
        if status == "creator":
            return {"status": status, "user": user, "is_anonymous": False}
        if status == "kicked":
            return {"status": status, "user": user, "until_date": 0}
        return {"status": status, "user": user}

    async def _api_getchat(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat = self._chats.get(int(params["chat_id"]))
        if chat is None:
            raise _bad_request("chat not found")
        return chat.to_json() | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
            },
        }

    # ---- messages and updates -------------------------------------------------------------------

    def _bot_message(self, params: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        chat = self._chats.get(chat_id) or Chat(chat_id, "private" if chat_id > 0 else "group")
        if params.get("message_thread_id"):
            if not chat.is_forum:
                raise _bad_request("message thread not found")
            fields |= {"message_thread_id": int(params["message_thread_id"]), "is_topic_message": True}
        if "reply_markup" in params:
            fields["reply_markup"] = self._checked_markup(params["reply_markup"])
        reply = params.get("reply_parameters")
        if reply and (chat_id, int(reply["message_id"])) in self.messages:
            fields["reply_to_message"] = self._quoted(chat_id, int(reply["message_id"]))
        return self._new_message(chat.to_json(), self.bot_user, fields)

    @staticmethod
    def _checked_markup(markup: dict[str, Any]) -> dict[str, Any]:
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if len(button.get("callback_data", "").encode()) > CALLBACK_DATA_LIMIT:
                    raise _bad_request("BUTTON_DATA_INVALID")
                if "callback_data" not in button and "url" not in button:
                    raise _bad_request("can't parse inline keyboard button")
        return markup

    def _new_message(
        self, chat: dict[str, Any], sender: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        self._message_ids[chat["id"]] += 1
        message = {
            "message_id": self._message_ids[chat["id"]],
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
        } | fields
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _quoted(self, chat_id: int, message_id: int) -> dict[str, Any]:
        try:
            message = self.messages[(chat_id, message_id)]
        except KeyError:
            raise _bad_request("message to be replied not found") from None
        # Telegram nests one level only: a quoted message carries no reply of its own.
        return {k: v for k, v in message.items() if k != "reply_to_message"}

    def _topic_root(self, chat: Chat, user: User, thread_id: int) -> dict[str, Any]:
        return {
            "message_id": thread_id,
            "date": int(time.time()),
            "chat": chat.to_json(),
            "from": user.to_json(),
            "message_thread_id": thread_id,
            "is_topic_message": True,
            "forum_topic_created": {"name": f"Topic {thread_id}", "icon_color": 7322096},
        }

    def _enqueue(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids)} | update  # an update_id of its own wins
        self._queue.append(update)
        self._injected_at = len(self.calls)
        self._update_arrived.set()
        self._push_to_webhook()
        return update

    def _push_to_webhook(self) -> None:
        if self.webhook and (self._webhook_push is None or self._webhook_push.done()):
            self._webhook_push = asyncio.create_task(self._deliver_to_webhook())

    async def _deliver_to_webhook(self) -> None:
        assert self._client is not None
        while self.webhook and self._queue and not self._closing.is_set():
            headers = (
                {SECRET_HEADER: self.webhook["secret_token"]} if self.webhook.get("secret_token") else {}
            )
            try:
                async with self._client.post(
                    self.webhook["url"], json=self._queue[0], headers=headers
                ) as response:
                    status = response.status
            except ClientError:
                status = 0  # nobody listening
            self.webhook_statuses.append(status)
            self._call_recorded.set()
            if status != 200:
                return  # Telegram would retry later; tests look at webhook_statuses
            self._queue.pop(0)


def _error(status: int, description: str, **parameters: Any) -> web.Response:
    payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return web.json_response(payload, status=status)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes], dict[str, str]]:
    if request.content_type == "application/json":
        return await request.json(), {}, {}
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    filenames: dict[str, str] = {}
    for key, value in (await request.post()).items():
        if isinstance(value, web.FileField):
            files[key], filenames[key] = value.file.read(), value.filename
        else:
            params[key] = json.loads(value) if key in JSON_FIELDS else value
    return params, files, filenames
