"""A fake of Discord's REST API and gateway, served on 127.0.0.1 for end-to-end tests.

The real discord.py client talks to it over HTTP and a WebSocket, so tests exercise the library's
own parsing, rate-limit handling, resume logic and interaction plumbing. Payloads follow Discord's
schema closely enough for discord.py 2.7 (which reads `attachment_size_limit`, member `flags`,
thread `message_count` … without defaults). The fake keeps a small world (one guild, a text
channel, an admin and a plain member), records every REST call and gateway op, and lets a test
inject faults (429, 403, 404, 5xx, a dropped connection) and wait on what was recorded. Given
`RateLimits`, it also enforces Discord's global and per-channel limits with 429s.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from tests.fakes.telegram_api import SlidingWindow, admit

T = TypeVar("T")
JSON = dict[str, Any]

API_PREFIX = "/api/v10"
ADMINISTRATOR = 1 << 3
ALL_PERMISSIONS = (1 << 53) - 1  # what Discord reports for the owner and administrators
MANAGE_GUILD = 1 << 5
# What @everyone may do: add reactions, view channels, send messages, embed links, read history,
# use application commands, send messages in threads.
EVERYONE_PERMISSIONS = (1 << 6) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 31) | (1 << 38)
MESSAGE_CONTENT_INTENT = 1 << 15
GUILD_MESSAGES_INTENT = 1 << 9
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
WAIT_LIMIT = 10.0  # seconds: a failure guard for waits, never a way to pass time


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Call:
    """One recorded REST request (method and path under /api/v10), gateway op the client sent
    (method "WS", path the op's name), event the fake dispatched (method "EVENT") or sent again
    on a resume (method "REPLAY")."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)
    status: int | None = None  # a REST request's answer, once given (0: the connection was dropped)


@dataclass(frozen=True)
class RateLimits:
    """Discord's rate limits, as the fake enforces them on REST requests: at most `per_second` in
    any one-second window for the bot (the global limit; interaction responses are exempt, as on
    Discord), and at most `per_channel` in any `channel_period` seconds on one channel's routes.
    Past either, the request is refused with 429 and the exact `retry_after` until the window has
    room. `scaled(k)` multiplies both counts, for runs that must be short."""

    per_second: float = 50.0
    per_channel: float = 5.0
    channel_period: float = 5.0
    now: Callable[[], float] = time.monotonic

    def scaled(self, factor: float) -> RateLimits:
        return RateLimits(self.per_second * factor, self.per_channel * factor, self.channel_period, self.now)


class _RateControl:
    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._global = SlidingWindow(1.0, limits.per_second)
        self._channels: dict[int, SlidingWindow] = {}

    def admit(self, path: str, channel_id: int | None) -> tuple[float, bool] | None:
        """None when the request may go through, else (seconds to wait, whether the global limit)."""
        if path.startswith("/interactions/"):
            return None
        windows = [self._global]
        if channel_id is not None:
            if channel_id not in self._channels:
                self._channels[channel_id] = SlidingWindow(
                    self.limits.channel_period, self.limits.per_channel
                )
            windows.append(self._channels[channel_id])
        now = self.limits.now()
        wait = admit(windows, now)
        return None if wait is None else (wait, self._global.wait(now) > 0)


@dataclass
class FakeUser:
    id: int
    name: str
    roles: tuple[int, ...] = ()
    bot: bool = False

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class FakeInteraction:
    id: int
    token: str
    channel_id: int
    type: int
    message_id: int | None = None  # the message whose button was pressed


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    body: JSON | None  # None: drop the connection without an answer
    headers: dict[str, str]
    remaining: int


@dataclass
class _Session:
    id: str
    intents: int = 0
    history: list[tuple[int, str, JSON]] = field(default_factory=list)  # (seq, event, data) for resume
    shard: int = 0
    seq: int = 0
    socket: web.WebSocketResponse | None = None  # None while the client is disconnected


class FakeDiscord:
    """Start with `await FakeDiscord().start()`; point discord.py at `api_url` and `gateway_url`."""

    def __init__(self, *, heartbeat_interval_ms: int = 45_000, limits: RateLimits | None = None) -> None:
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._rates = _RateControl(limits) if limits else None
        self.rate_limited = 0  # 429s answered because the bot went past the rate limits
        self._ids = itertools.count(1_180_000_000_000_000_000)
        self.application_id = self.new_id()
        self.bot = FakeUser(self.new_id(), "dailyq", bot=True)
        self.guild_id = self.new_id()
        self.guild_names: dict[int, str] = {self.guild_id: "Study Group"}  # every guild the bot is in
        self.recommended_shards = 1  # what GET /gateway/bot recommends
        self.admin_role_id = self.new_id()
        self.quiz_role_id = self.new_id()
        self.roles: dict[int, JSON] = {
            self.guild_id: self._role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0),
            self.admin_role_id: self._role(self.admin_role_id, "Moderators", MANAGE_GUILD, 1),
            self.quiz_role_id: self._role(self.quiz_role_id, "Quizmasters", 0, 2),
        }
        self.owner = FakeUser(self.new_id(), "owner")
        self.admin = FakeUser(self.new_id(), "ada", roles=(self.admin_role_id,))
        self.member = FakeUser(self.new_id(), "bob")
        self.users = {u.id: u for u in (self.bot, self.owner, self.admin, self.member)}
        self.channel_id = self.new_id()
        self.channels: dict[int, JSON] = {
            self.channel_id: self._text_channel(self.channel_id, "daily-questions")
        }
        self.messages: dict[int, JSON] = {}
        self.commands: dict[int | None, list[JSON]] = {}  # guild id (None: global) → synced commands
        self.modals: dict[str, JSON] = {}  # interaction token → the modal it opened
        self.calls: list[Call] = []
        self._interaction_channels: dict[str, int] = {}  # token → channel of the interaction
        self._interaction_messages: dict[str, list[int]] = {}  # token → messages sent in answer
        self._original: dict[str, int] = {}  # token → id of the original response message
        self._unreachable: set[int] = set()  # channels where the bot lost access
        self._faults: list[_Fault] = []
        self._changed = asyncio.Condition()
        self._sessions: dict[int, _Session] = {}  # shard id → its gateway session
        self.shard_count = 1  # as the client identified: an event goes to (guild_id >> 22) % shard_count
        self._reconnect_allowed = asyncio.Event()
        self._reconnect_allowed.set()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.port = 0
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Awaitable[Any]]]] = [
            ("GET", re.compile(r"/users/@me"), self._get_me),
            ("GET", re.compile(r"/gateway/bot"), self._get_gateway_bot),
            ("GET", re.compile(r"/oauth2/applications/@me"), self._get_application),
            ("PUT", re.compile(r"/applications/(?P<app>\d+)/commands"), self._put_commands),
            (
                "PUT",
                re.compile(r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands"),
                self._put_commands,
            ),
            ("POST", re.compile(r"/interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback"), self._callback),
            ("POST", re.compile(r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"), self._followup),
            (
                "PATCH",
                re.compile(r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/@original"),
                self._edit_original,
            ),
            (
                "DELETE",
                re.compile(r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/@original"),
                self._delete_original,
            ),
            ("GET", re.compile(r"/channels/(?P<channel>\d+)"), self._get_channel),
            ("POST", re.compile(r"/channels/(?P<channel>\d+)/messages"), self._post_message),
            (
                "POST",
                re.compile(r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/threads"),
                self._start_thread,
            ),
        ]

    # ----------------------------------------------------------------- life cycle

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway-resume", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def new_id(self) -> int:
        return next(self._ids)

    # ----------------------------------------------------------------- recording and waiting

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], T]) -> T:
        """Wait until `predicate()` is truthy, re-checked whenever the fake records something.

        Bounded by WAIT_LIMIT, so a bot that never does the thing fails the test instead of hanging it.
        """
        async with self._changed:
            return await asyncio.wait_for(self._changed.wait_for(predicate), WAIT_LIMIT)

    def calls_to(self, method: str, path: str) -> list[Call]:
        """Calls whose method matches and whose path fully matches the regex `path`."""
        pattern = re.compile(path)
        return [c for c in self.calls if c.method == method and pattern.fullmatch(c.path)]

    async def wait_for_call(self, method: str, path: str, count: int = 1) -> list[Call]:
        return await self.wait_until(lambda: len(found := self.calls_to(method, path)) >= count and found)

    # ----------------------------------------------------------------- faults

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        code: int = 0,
        message: str = "",
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` matching requests with an error (the request is still recorded)."""
        body: JSON = {"message": message or f"{status}: fake error", "code": code}
        headers: dict[str, str] = {}
        if status == 429:
            retry = retry_after if retry_after is not None else 0.05
            body = {
                "message": "You are being rate limited.",
                "retry_after": retry,
                "global": False,
                "code": 0,
            }
            # discord.py retries a 429 only when it carries `Via` (otherwise it assumes a Cloudflare ban).
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(retry))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": str(retry),
                "X-RateLimit-Bucket": "fake-bucket",
                "X-RateLimit-Scope": "user",
            }
        self._faults.append(_Fault(method, re.compile(path), status, body, headers, times))

    def drop_requests(self, method: str, path: str, times: int = 1) -> None:
        """Close the TCP connection instead of answering (a network error for the client)."""
        self._faults.append(_Fault(method, re.compile(path), 0, None, {}, times))

    def revoke_access(self, channel_id: int) -> None:
        """The bot loses access to a channel: every call on it answers 403 Missing Access."""
        self._unreachable.add(channel_id)

    def delete_channel(self, channel_id: int) -> None:
        self.channels.pop(channel_id, None)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.path.fullmatch(path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ----------------------------------------------------------------- REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        raw = await request.read()
        body = json.loads(raw) if raw and request.content_type == "application/json" else None
        call = Call(request.method, path, dict(request.query), body)
        await self._record(call)
        try:
            response = await self._answer(request, call)
        except web.HTTPException as refused:  # a handler's 400
            call.status = refused.status
            raise
        if call.status is None:
            call.status = response.status
        return response

    async def _answer(self, request: web.Request, call: Call) -> web.StreamResponse:
        fault = self._take_fault(call.method, call.path)
        if fault is not None:
            if fault.body is None:
                assert request.transport is not None
                request.transport.close()
                call.status = 0
                return web.Response(status=500)
            return _json(fault.body, status=fault.status, headers=fault.headers)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if method == call.method and match:
                channel = match.groupdict().get("channel")
                if self._rates is not None:
                    limited = self._rates.admit(call.path, int(channel) if channel else None)
                    if limited is not None:
                        self.rate_limited += 1
                        return _rate_limited(*limited)
                if channel is not None:
                    refusal = self._channel_refusal(int(channel))
                    if refusal is not None:
                        return refusal
                result = await handler(call.body, request.query, **match.groupdict())
                if isinstance(result, web.StreamResponse):
                    return result
                return _json(result)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _channel_refusal(self, channel_id: int) -> web.Response | None:
        if channel_id in self._unreachable:
            return _json({"message": "Missing Access", "code": 50001}, status=403)
        if channel_id not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        return None

    async def _get_me(self, body: Any, query: Any) -> JSON:
        return {**self.bot.payload(), "flags": 0, "mfa_enabled": False, "verified": True, "locale": "en-US"}

    async def _get_gateway_bot(self, body: Any, query: Any) -> JSON:
        return {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
        }

    async def _get_application(self, body: Any, query: Any) -> JSON:
        return {
            "id": str(self.application_id),
            "name": "dailyq",
            "icon": None,
            "description": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "bot": self.bot.payload(),
            "owner": self.owner.payload(),
            "summary": "",
            "verify_key": "00" * 32,
            "team": None,
            "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "approximate_guild_count": 1,
        }

    async def _put_commands(
        self, body: list[JSON], query: Any, app: str, guild: str | None = None
    ) -> list[JSON]:
        guild_id = int(guild) if guild else None
        synced = [
            {
                "id": str(self.new_id()),
                "application_id": app,
                "version": str(self.new_id()),
                "type": command.get("type", 1),
                "name": command["name"],
                "description": command.get("description", ""),
                "options": command.get("options", []),
                "default_member_permissions": command.get("default_member_permissions"),
                "nsfw": command.get("nsfw", False),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types", [0]),
                **({"guild_id": guild} if guild else {}),
            }
            for command in body
        ]
        self.commands[guild_id] = synced
        return synced

    async def _callback(self, body: JSON, query: Any, id: str, token: str) -> JSON | web.Response:
        if token not in self._interaction_channels:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if token in self._original or token in self.modals:
            return _json({"message": "Interaction has already been acknowledged.", "code": 40060}, status=400)
        kind = body["type"]
        data = body.get("data") or {}
        channel_id = self._interaction_channels[token]
        message: JSON | None = None
        if kind == 4:  # CHANNEL_MESSAGE_WITH_SOURCE
            message = self._store_message(channel_id, data, interaction_token=token)
        elif kind == 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: a "thinking…" placeholder
            message = self._store_message(
                channel_id,
                {"content": "", "flags": (data.get("flags") or 0) | LOADING},
                interaction_token=token,
            )
        elif kind == 9:  # MODAL
            self.modals[token] = data
        if message is not None:
            self._original[token] = int(message["id"])
        elif kind != 9:
            self._original[token] = 0  # acknowledged without a message of its own (deferred update)
        await self._notify()
        interaction: JSON = {"id": id, "type": 2}
        if message is not None:
            interaction |= {
                "response_message_id": message["id"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message["flags"] & EPHEMERAL),
            }
        resource: JSON = {"type": kind}
        if message is not None:
            resource["message"] = message
        return {"interaction": interaction, "resource": resource}

    async def _followup(self, body: JSON, query: Any, app: str, token: str) -> JSON | web.Response:
        if token not in self._interaction_channels:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        return self._store_message(self._interaction_channels[token], body, interaction_token=token)

    def _original_message(self, token: str) -> JSON | None:
        return self.messages.get(self._original.get(token, 0))

    async def _edit_original(self, body: JSON, query: Any, app: str, token: str) -> JSON | web.Response:
        message = self._original_message(token)
        if message is None:
            return _unknown_message()
        return self._edit(message, body)

    async def _delete_original(self, body: Any, query: Any, app: str, token: str) -> web.Response:
        message = self._original_message(token)
        if message is None:
            return _unknown_message()
        del self.messages[int(message["id"])]
        await self._notify()
        return web.Response(status=204)

    async def _get_channel(self, body: Any, query: Any, channel: str) -> JSON:
        return self.channels[int(channel)]

    async def _post_message(self, body: JSON, query: Any, channel: str) -> JSON:
        return self._store_message(int(channel), body)

    async def _start_thread(self, body: JSON, query: Any, channel: str, message: str) -> JSON | web.Response:
        starter = self.messages.get(int(message))
        if starter is None or starter["channel_id"] != channel:
            return _unknown_message()
        thread_id = int(message)  # a thread started from a message shares the message's id
        if thread_id in self.channels:
            return _json(
                {"message": "A thread has already been created for this message", "code": 160004}, 400
            )
        thread = self._thread(
            thread_id, int(channel), self.bot, body["name"], body.get("auto_archive_duration", 4320)
        )
        self.channels[thread_id] = thread
        starter["thread"] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    def _store_message(self, channel_id: int, body: JSON, *, interaction_token: str | None = None) -> JSON:
        message_id = self.new_id()
        channel = self.channels[channel_id]
        message: JSON = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": self.bot.payload(),
            "content": body.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0 if interaction_token is None else 20,  # DEFAULT / CHAT_INPUT_COMMAND
            "flags": body.get("flags") or 0,
        }
        if interaction_token is not None:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
        if "nonce" in body:
            message["nonce"] = body["nonce"]
        reference = body.get("message_reference")
        if reference:
            referenced = self.messages.get(int(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                raise web.HTTPBadRequest(  # bytes, so that no charset is added to the content type
                    body=json.dumps({"message": "Invalid Form Body", "code": 50035}).encode(),
                    content_type="application/json",
                )
            if referenced is not None:
                message["type"] = 19  # REPLY
                message["message_reference"] = {
                    "type": 0,
                    "message_id": referenced["id"],
                    "channel_id": str(channel_id),
                }
        self.messages[message_id] = message
        if channel["type"] == 11:
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
        channel["last_message_id"] = str(message_id)
        if interaction_token is not None:
            self._interaction_messages.setdefault(interaction_token, []).append(message_id)
        return message

    def _edit(self, message: JSON, body: JSON) -> JSON:
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = _now()
        return message

    # ----------------------------------------------------------------- what tests read

    def channel_messages(self, channel_id: int) -> list[JSON]:
        """Messages in a channel that everyone sees (no ephemeral ones, no thinking placeholders)."""
        return [
            m
            for m in self.messages.values()
            if m["channel_id"] == str(channel_id) and not m["flags"] & (EPHEMERAL | LOADING)
        ]

    def replies_to(self, interaction: FakeInteraction) -> list[JSON]:
        """Messages the bot sent in answer to an interaction: the response and its follow-ups."""
        ids = self._interaction_messages.get(interaction.token, [])
        return [self.messages[i] for i in ids if i in self.messages]

    def threads(self) -> list[JSON]:
        return [c for c in self.channels.values() if c["type"] == 11]

    # ----------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.add(socket)
        try:
            await self._reconnect_allowed.wait()
            await socket.send_json({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    break
                await self._on_op(socket, json.loads(frame.data), request.path)
        finally:
            self._sockets.discard(socket)
            for session in self._sessions.values():
                if session.socket is socket:
                    session.socket = None
        return socket

    async def _on_op(self, socket: web.WebSocketResponse, message: JSON, path: str) -> None:
        op, data = message["op"], message.get("d")
        name = {1: "HEARTBEAT", 2: "IDENTIFY", 3: "PRESENCE", 6: "RESUME"}.get(op, str(op))
        await self._record(Call("WS", name, {"path": path}, data))
        if op == 1:
            await socket.send_json({"op": 11})
        elif op == 2:
            shard, self.shard_count = data.get("shard") or (0, 1)
            session = _Session(f"session-{self.new_id()}", data.get("intents", 0), shard=shard, socket=socket)
            self._sessions[shard] = session
            await self.dispatch("READY", self._ready_payload(session), shard=shard)
            for guild_id in self.guilds_on(shard):
                await self.dispatch("GUILD_CREATE", self._guild_payload(guild_id), shard=shard)
        elif op == 6:
            resumed = [s for s in self._sessions.values() if s.id == data["session_id"]]
            if not resumed:
                await socket.send_json({"op": 9, "d": False})
                return
            [session] = resumed
            session.socket = socket
            for seq, event, payload in session.history:
                if seq > (data.get("seq") or 0):
                    await socket.send_json({"op": 0, "t": event, "s": seq, "d": payload})
                    await self._record(Call("REPLAY", event, {"seq": str(seq)}, payload))
            await self.dispatch("RESUMED", {}, shard=session.shard)

    async def dispatch(self, event: str, data: JSON, *, shard: int | None = None) -> None:
        """Send a gateway event to the shard of its guild (shard 0 without one, as Discord does
        with direct messages); while that shard is disconnected it waits for the resume."""
        if shard is None:
            shard = self.shard_of(int(data["guild_id"])) if data.get("guild_id") else 0
        session = self._sessions.get(shard)
        if session is None:
            raise RuntimeError(f"no gateway session for shard {shard}: no client has identified with it")
        session.seq += 1
        session.history.append((session.seq, event, data))
        if session.socket is not None and not session.socket.closed:
            await session.socket.send_json({"op": 0, "t": event, "s": session.seq, "d": data})
        await self._record(Call("EVENT", event, {"seq": str(session.seq), "shard": str(shard)}, data))

    def shard_of(self, guild_id: int) -> int:
        return (guild_id >> 22) % self.shard_count

    def guilds_on(self, shard: int) -> list[int]:
        return [guild_id for guild_id in self.guild_names if self.shard_of(guild_id) == shard]

    @asynccontextmanager
    async def disconnected(self, code: int = 4000) -> AsyncIterator[None]:
        """The gateway connection drops, as on a server-side hiccup, and the client's reconnect is
        held until the block ends: events dispatched inside it are missed, and must come back
        when the client resumes its session."""
        socket = self._sessions[0].socket if 0 in self._sessions else None
        assert socket is not None, "no gateway connection to drop"
        self._reconnect_allowed.clear()
        try:
            await socket.close(code=code, message=b"fake: connection dropped")
            yield
        finally:
            self._reconnect_allowed.set()

    async def wait_connected(self, sessions: int = 1) -> None:
        """Wait until the `sessions`-th identified session got its GUILD_CREATE."""
        await self.wait_for_call("EVENT", "GUILD_CREATE", sessions)

    def _ready_payload(self, session: _Session) -> JSON:
        return {
            "v": 10,
            "user": {**self.bot.payload(), "flags": 0, "mfa_enabled": False, "verified": True},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds_on(session.shard)],
            "shard": [session.shard, self.shard_count],
            "session_id": session.id,
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway-resume",
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
        }

    def _guild_payload(self, guild_id: int) -> JSON:
        return {
            "id": str(guild_id),
            "name": self.guild_names[guild_id],
            "icon": None,
            "owner_id": str(self.owner.id),
            "unavailable": False,
            "large": False,
            "member_count": len(self.users),
            "joined_at": _now(),
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": list(self.roles.values())
            if guild_id == self.guild_id
            else [self._role(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)],
            "channels": [
                c for c in self.channels.values() if c["type"] != 11 and c["guild_id"] == str(guild_id)
            ],
            "threads": [t for t in self.threads() if t["guild_id"] == str(guild_id)],
            "members": [self._member_payload(u) for u in self.users.values()],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "afk_channel_id": None,
            "afk_timeout": 300,
        }

    # ----------------------------------------------------------------- world building

    @staticmethod
    def _role(role_id: int, name: str, permissions: int, position: int) -> JSON:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _thread(
        self, thread_id: int, parent_id: int, owner: FakeUser, name: str, auto_archive_duration: int
    ) -> JSON:
        return {
            "id": str(thread_id),
            "type": 11,  # PUBLIC_THREAD
            "guild_id": self.channels[parent_id]["guild_id"],
            "parent_id": str(parent_id),
            "owner_id": str(owner.id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive_duration,
                "archive_timestamp": _now(),
                "locked": False,
                "create_timestamp": _now(),
            },
        }

    def _text_channel(self, channel_id: int, name: str, guild_id: int | None = None) -> JSON:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id or self.guild_id),
            "name": name,
            "position": 0,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }

    def add_text_channel(self, name: str, guild_id: int | None = None) -> int:
        channel_id = self.new_id()
        self.channels[channel_id] = self._text_channel(channel_id, name, guild_id)
        return channel_id

    def add_guild(self, name: str, *, shard: int = 0, shard_count: int = 1) -> int:
        """Another guild the bot is in, with an id that puts it on `shard` of `shard_count`
        (the gateway sends its events to the client that identified with that shard)."""
        guild_id = self.new_id()
        while (guild_id >> 22) % shard_count != shard:
            guild_id += 1 << 22
        self._ids = itertools.count(guild_id + 1)  # ids stay unique and growing, as snowflakes do
        self.guild_names[guild_id] = name
        return guild_id

    def add_thread(self, parent_id: int, owner: FakeUser, name: str) -> int:
        """A thread a user started on their own (not from a message), already active."""
        thread_id = self.new_id()
        self.channels[thread_id] = self._thread(thread_id, parent_id, owner, name, auto_archive_duration=1440)
        return thread_id

    async def create_role(self, name: str, permissions: int = 0) -> int:
        """A role made by a server member, announced to a connected bot by GUILD_ROLE_CREATE."""
        role_id = self.new_id()
        self.roles[role_id] = self._role(role_id, name, permissions, len(self.roles))
        if self._sessions:
            await self.dispatch(
                "GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": self.roles[role_id]}
            )
        return role_id

    def add_member(self, name: str, roles: tuple[int, ...] = ()) -> FakeUser:
        user = FakeUser(self.new_id(), name, roles=roles)
        self.users[user.id] = user
        return user

    def permissions_of(self, user: FakeUser) -> int:
        if user.id == self.owner.id:
            return ALL_PERMISSIONS
        value = int(self.roles[self.guild_id]["permissions"])
        for role in user.roles:
            value |= int(self.roles[role]["permissions"])
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def _member_payload(self, user: FakeUser, *, with_permissions: bool = False) -> JSON:
        member: JSON = {
            "user": user.payload(),
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in user.roles],
            "joined_at": _now(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_permissions:
            member["permissions"] = str(self.permissions_of(user))
        return member

    # ----------------------------------------------------------------- what users do

    async def _interact(
        self,
        user: FakeUser,
        channel_id: int,
        kind: int,
        data: JSON,
        message_id: int | None = None,
        **extra: Any,
    ) -> FakeInteraction:
        interaction, payload = self.interaction_payload(user, channel_id, kind, data, message_id, **extra)
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    def interaction_payload(
        self,
        user: FakeUser,
        channel_id: int,
        kind: int,
        data: JSON,
        message_id: int | None = None,
        **extra: Any,
    ) -> tuple[FakeInteraction, JSON]:
        """An INTERACTION_CREATE payload as Discord sends it, its token known to the fake so that the
        bot's answer lands; a test may change it before it `dispatch`es it."""
        interaction = FakeInteraction(self.new_id(), f"token-{self.new_id()}", channel_id, kind, message_id)
        if message_id is not None:
            extra["message"] = self.messages[message_id]
        self._interaction_channels[interaction.token] = channel_id
        channel = self.channels[channel_id]
        guild_id = channel["guild_id"]
        payload = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": guild_id,
            "guild": {"id": guild_id, "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": {**channel, "permissions": str(self.permissions_of(user))},
            "member": self._member_payload(user, with_permissions=True),
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(self.permissions_of(self.bot) | EVERYONE_PERMISSIONS),
            "locale": extra.pop("locale", "en-US"),
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            **extra,
        }
        return interaction, payload

    async def slash(
        self,
        user: FakeUser,
        name: str,
        *,
        channel_id: int | None = None,
        locale: str = "en-US",
        **options: str,
    ) -> FakeInteraction:
        """A slash command as a user types it; the command must have been synced."""
        channel_id = channel_id or self.channel_id
        guild_id = int(self.channels[channel_id]["guild_id"])
        data = self.slash_data(name, guild_id=guild_id, **options)
        return await self._interact(user, channel_id, 2, data, locale=locale)

    def slash_data(self, name: str, *, guild_id: int | None = None, **options: str) -> JSON:
        """The `data` of a slash command's interaction, for a command synced globally or to the
        guild (the fake's own guild unless told)."""
        command = self._command(name, guild_id or self.guild_id)
        declared = {o["name"] for o in command.get("options", [])}
        unknown = set(options) - declared
        assert not unknown, f"/{name} has no option(s) {unknown}; declared: {declared}"
        data: JSON = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": 3, "value": v} for k, v in options.items()],
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    def _command(self, name: str, guild_id: int) -> JSON:
        for commands in (self.commands.get(guild_id, []), self.commands.get(None, [])):
            for command in commands:
                if command["name"] == name:
                    return command
        raise AssertionError(f"/{name} was not synced")

    async def press(self, user: FakeUser, message_id: int | str, custom_id: str) -> FakeInteraction:
        """A button press on a message the bot sent."""
        message = self.messages[int(message_id)]
        found = [
            b for row in message["components"] for b in row["components"] if b.get("custom_id") == custom_id
        ]
        assert found, f"no button {custom_id!r} on message {message_id}"
        return await self._interact(
            user,
            int(message["channel_id"]),
            3,
            {"custom_id": custom_id, "component_type": 2},
            int(message_id),
        )

    async def submit_modal(
        self, user: FakeUser, opened_by: FakeInteraction, values: dict[str, str]
    ) -> FakeInteraction:
        """Fill in and submit the modal that the bot opened in answer to `opened_by`.

        As on Discord, the submit of a modal opened by a button carries the button's message.
        """
        modal = self.modals[opened_by.token]
        return await self._interact(
            user,
            opened_by.channel_id,
            5,
            {"custom_id": modal["custom_id"], "components": _filled(modal["components"], values)},
            opened_by.message_id,
        )

    async def say(self, user: FakeUser, channel_id: int, content: str) -> JSON:
        """A user posts a message; delivered as MESSAGE_CREATE with the intents the bot asked for."""
        message = self.message_payload(user, channel_id, content)
        session = self._sessions[self.shard_of(int(message["guild_id"]))]
        if not session.intents & GUILD_MESSAGES_INTENT:
            return message
        seen = message if session.intents & MESSAGE_CONTENT_INTENT else {**message, "content": ""}
        await self.dispatch("MESSAGE_CREATE", seen)
        return message

    def message_payload(self, user: FakeUser, channel_id: int, content: str) -> JSON:
        """A user's message, stored, in the shape MESSAGE_CREATE carries it (without dispatching it)."""
        message = self._store_message(channel_id, {"content": content})
        message |= {
            "author": user.payload(),
            "guild_id": self.channels[channel_id]["guild_id"],
            "member": self._member_payload(user),
        }
        del message["member"]["user"]  # MESSAGE_CREATE carries the member without its user
        return message


def _filled(components: list[JSON], values: dict[str, str]) -> list[JSON]:
    """A modal's submitted components: the same layout, each text input with its value."""
    result = []
    for component in components:
        if component["type"] == 4:  # TEXT_INPUT
            result.append(
                {
                    "type": 4,
                    "custom_id": component["custom_id"],
                    "value": values.get(component["custom_id"], ""),
                }
            )
        elif "components" in component:  # ACTION_ROW
            result.append({"type": component["type"], "components": _filled(component["components"], values)})
        elif "component" in component:  # LABEL
            result.append(
                {"type": component["type"], "component": _filled([component["component"]], values)[0]}
            )
    return result


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly `application/json`: with `; charset=utf-8` discord.py reads the body as text.
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _rate_limited(wait: float, is_global: bool) -> web.Response:
    retry = math.ceil(wait * 1000) / 1000
    body = {"message": "You are being rate limited.", "retry_after": retry, "global": is_global, "code": 0}
    # discord.py retries a 429 only when it carries `Via` (otherwise it assumes a Cloudflare ban).
    headers = {"Via": "1.1 google", "Retry-After": str(math.ceil(retry))}
    if is_global:
        headers |= {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
    else:
        headers |= {"X-RateLimit-Scope": "user", "X-RateLimit-Reset-After": str(retry)}
    return _json(body, status=429, headers=headers)


def _unknown_message() -> web.Response:
    return _json({"message": "Unknown Message", "code": 10008}, status=404)
