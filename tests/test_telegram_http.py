"""The Bot API transport (`bot/adapters/telegram_http.py`): python-telegram-bot's requests over
aiohttp, keeping the contract of the library's own httpx transport. Real python-telegram-bot,
real aiohttp, servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.adapters.telegram_http import AiohttpRequest, RequestTimeouts
from tests.fakes.telegram_api import HANG, FakeTelegram

PATIENT = RequestTimeouts(connect=30.0, read=30.0, write=30.0, media_write=30.0, pool=30.0)


@asynccontextmanager
async def bot_for(
    base_url: str, token: str, timeouts: RequestTimeouts = PATIENT, pool_size: int = 4
) -> AsyncIterator[Bot]:
    """A bot on the transport, its session open, without python-telegram-bot's start-up getMe."""
    request = AiohttpRequest(timeouts, pool_size=pool_size)
    await request.initialize()
    try:
        # Both of the bot's requests, or python-telegram-bot makes an httpx one for getUpdates.
        yield Bot(token, base_url=base_url, request=request, get_updates_request=request)
    finally:
        await request.shutdown()


@asynccontextmanager
async def tcp_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A server on 127.0.0.1 speaking raw bytes (what aiohttp's would not send); its port."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_calls_and_answers_go_through_as_with_the_library_transport() -> None:
    async with FakeTelegram() as tg, bot_for(tg.base_url, tg.token) as bot:
        me = await bot.get_me()
        sent = await bot.send_message(1001, "<b>Hi</b> there", parse_mode="HTML")
        photo = await bot.send_photo(1001, b"\x89PNG picture", filename="graph.png", has_spoiler=True)
    assert me.username and sent.message_id and photo.message_id
    [message] = tg.calls_to("sendMessage")
    assert message.params["text"] == "<b>Hi</b> there" and message.params["parse_mode"] == "HTML"
    [upload] = tg.calls_to("sendPhoto")  # a multipart form: the file beside the other fields
    assert upload.files["photo"] == b"\x89PNG picture" and upload.params["has_spoiler"] == "true"


async def test_a_timeout_given_for_one_call_is_kept() -> None:
    """The long poll passes its own read timeout; a call that gives one must not wait the default."""
    async with FakeTelegram() as tg, bot_for(tg.base_url, tg.token) as bot:
        tg.fail("getMe", HANG)
        with pytest.raises(TimedOut):
            async with asyncio.timeout(10):  # the default read timeout is 30 s
                await bot.get_me(read_timeout=0.2)


async def test_a_full_pool_is_a_timeout_not_an_endless_wait() -> None:
    """Every connection busy: a call waits the pool's and the connect's time, then times out."""
    short_wait = RequestTimeouts(connect=0.2, read=30.0, write=30.0, media_write=30.0, pool=0.2)
    async with FakeTelegram() as tg, bot_for(tg.base_url, tg.token, short_wait, pool_size=1) as bot:
        tg.fail("getMe", HANG)
        hung = asyncio.create_task(bot.get_me())  # holds the only connection
        try:
            await tg.wait_until(lambda: bool(tg.calls_to("getMe")))
            with pytest.raises(TimedOut):
                async with asyncio.timeout(10):  # the read timeout is 30 s
                    await bot.send_message(1001, "waits for a connection")
        finally:
            hung.cancel()
            with suppress(asyncio.CancelledError, TimedOut):
                await hung
    assert tg.calls_to("sendMessage") == []


async def test_a_redirect_is_not_followed_with_the_token() -> None:
    """A redirect from the Bot API's address would carry the token's URL to another host."""
    elsewhere: list[str] = []

    async def record(request: web.Request) -> web.Response:
        elsewhere.append(request.path)
        return web.json_response({"ok": True, "result": True})

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", record)
    async with serving(other) as other_url:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(other_url + request.path)

        api = web.Application()
        api.router.add_route("*", "/{tail:.*}", redirect)
        async with serving(api) as api_url, bot_for(api_url + "/bot", "123:redirected") as bot:
            with pytest.raises(NetworkError, match="307"):
                await bot.get_me()
    assert elsewhere == []


async def test_an_unusable_bot_api_url_is_a_network_error_without_the_token() -> None:
    token = "123456:do-not-print-me"
    async with bot_for("http://127.0.0.1:99999/bot", token) as bot:  # no such port: aiohttp names the URL
        with pytest.raises(NetworkError) as raised:
            await bot.get_me()
    assert "do-not-print-me" not in str(raised.value) and "getMe" in str(raised.value)


async def test_a_malformed_answer_is_a_network_error_whose_traceback_has_no_token() -> None:
    """aiohttp names the URL as it spells it (the host lower-cased), not as it was given, and a
    logged traceback shows the errors an error was raised from."""
    token = "123456:do-not-print-me"

    async def malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n")
        await writer.drain()
        writer.close()

    async with tcp_server(malformed) as port, bot_for(f"http://LOCALHOST:{port}/bot", token) as bot:
        with pytest.raises(NetworkError) as raised:
            await bot.get_me()
    shown = "".join(traceback.format_exception(raised.value))
    assert "Content-Length" in shown and "do-not-print-me" not in shown


async def test_an_uploaded_file_keeps_its_name() -> None:
    async with FakeTelegram() as tg, bot_for(tg.base_url, tg.token) as bot:
        await bot.send_photo(1001, b"\x89PNG picture", filename="注意力 (attention).png")
    assert tg.calls_to("sendPhoto")[0].filenames["photo"] == "注意力 (attention).png"


@asynccontextmanager
async def recording_proxy() -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP proxy on 127.0.0.1 that records each request's head and answers getMe itself."""
    heads: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        if heads[-1].startswith(b"CONNECT "):  # an https request's tunnel: refused, seen is enough
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        body = b'{"ok": true, "result": {"id": 1, "is_bot": true, "first_name": "Q", "username": "q_bot"}}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % len(body)
        )
        writer.write(body)
        await writer.drain()
        writer.close()

    async with tcp_server(proxy) as port:
        yield f"127.0.0.1:{port}", heads


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_a_proxy_from_the_environment_carries_the_requests(
    no_proxy_settings: pytest.MonkeyPatch,
) -> None:
    """Deployments behind an HTTP proxy set HTTP(S)_PROXY, which python-telegram-bot's httpx
    transport honoured: the requests still go to the proxy, with its credentials."""
    async with recording_proxy() as (address, heads):
        no_proxy_settings.setenv("HTTP_PROXY", f"http://dailyq:s3cret@{address}")
        async with bot_for("http://bot-api.invalid/bot", "123:proxied") as bot:
            me = await bot.get_me()
            await bot.get_me()
    assert me.username == "q_bot" and len(heads) == 2
    for head in heads:
        request_line, *fields = head.decode().split("\r\n")
        assert request_line == "POST http://bot-api.invalid/bot123:proxied/getMe HTTP/1.1"
        assert "Proxy-Authorization: Basic ZGFpbHlxOnMzY3JldA==" in fields  # dailyq:s3cret


async def test_an_https_request_tunnels_through_the_proxy_with_its_credentials(
    no_proxy_settings: pytest.MonkeyPatch,
) -> None:
    async with recording_proxy() as (address, heads):
        no_proxy_settings.setenv("HTTPS_PROXY", f"http://dailyq:s3cret@{address}")
        async with bot_for("https://api.telegram.invalid/bot", "123:tunnelled") as bot:
            with pytest.raises(NetworkError):  # the test's proxy refuses the tunnel
                await bot.get_me()
    [head] = heads
    request_line, *fields = head.decode().split("\r\n")
    assert request_line == "CONNECT api.telegram.invalid:443 HTTP/1.1"  # the token stays inside TLS
    assert "Proxy-Authorization: Basic ZGFpbHlxOnMzY3JldA==" in fields


@pytest.mark.parametrize(
    ("variable", "address"),
    [("ALL_PROXY", "http://{address}"), ("HTTP_PROXY", "{address}")],
    ids=["all-proxy", "no-scheme"],
)
async def test_the_proxy_settings_httpx_took_still_work(
    no_proxy_settings: pytest.MonkeyPatch, variable: str, address: str
) -> None:
    async with recording_proxy() as (proxy, heads):
        no_proxy_settings.setenv(variable, address.format(address=proxy))
        async with bot_for("http://bot-api.invalid/bot", "123:proxied") as bot:
            await bot.get_me()
    assert [head.split(b"\r\n", 1)[0] for head in heads] == [
        b"POST http://bot-api.invalid/bot123:proxied/getMe HTTP/1.1"
    ]


async def test_a_proxy_that_is_not_http_is_refused_clearly(no_proxy_settings: pytest.MonkeyPatch) -> None:
    no_proxy_settings.setenv("HTTPS_PROXY", "socks5://dailyq:s3cret@127.0.0.1:1080")
    async with bot_for("https://api.telegram.invalid/bot", "123:socks") as bot:
        with pytest.raises(NetworkError, match=r"socks5://…; use http\(s\)://") as raised:
            await bot.get_me()
    assert "s3cret" not in str(raised.value)


async def test_no_proxy_sends_directly(no_proxy_settings: pytest.MonkeyPatch) -> None:
    async with recording_proxy() as (address, heads), FakeTelegram() as tg:
        no_proxy_settings.setenv("HTTP_PROXY", f"http://{address}")
        no_proxy_settings.setenv("NO_PROXY", "127.0.0.1")
        async with bot_for(tg.base_url, tg.token) as bot:
            await bot.get_me()
    assert heads == [] and len(tg.calls_to("getMe")) == 1
