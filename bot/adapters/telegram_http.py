"""The Bot API's HTTP transport: python-telegram-bot's requests carried by aiohttp.

python-telegram-bot's own `HTTPXRequest` (httpx over httpcore and h11, all pure Python) spends
2.1 to 2.5 ms of CPU on a sendMessage to a Bot API on the same machine, where aiohttp (its HTTP
parser in C, a connection pool that does not scan every connection for every request) spends
0.26 to 0.32 (`bench/README.md`). An update costs one or two Bot API calls, so the transport was
most of what an update cost. aiohttp already serves the webhook: no dependency is added.

`AiohttpRequest` keeps `HTTPXRequest`'s contract: the same five timeouts (aiohttp counts the
wait for a free connection with the connect time: pool + connect in all), the same errors
(`TimedOut`, `NetworkError`), redirects not followed, HTTP/1.1, and a proxy set in the
environment (HTTP(S)_PROXY, ALL_PROXY and NO_PROXY, read when the session opens, as httpx reads
them) still used. The body is JSON, which the Bot API takes for every method, rather than a form of JSON
values; uploads go as the same multipart form as before.
"""

from __future__ import annotations

import functools
import json
import re
import ssl
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import certifi
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

# python-telegram-bot's marker for a timeout the caller did not give (its class is not public).
DefaultValue = type(BaseRequest.DEFAULT_NONE)
JSON = {"Content-Type": "application/json"}
PROXY_AUTHORIZATION = "Proxy-Authorization"
# A bot token, as BotFather makes them (123456:ABC-def…): its secret is not all digits, as the
# port in a host:port is.
TOKEN = re.compile(r"\d+:[\w-]*[A-Za-z_-][\w-]*", re.ASCII)


@dataclass(frozen=True)
class RequestTimeouts:
    """Seconds per Bot API request (python-telegram-bot's defaults are 5 s for most)."""

    connect: float = 10.0
    read: float = 10.0
    write: float = 10.0
    media_write: float = 30.0
    pool: float = 5.0


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every HTTP client: loading the CA bundle takes a good part of a second."""
    return ssl.create_default_context(cafile=certifi.where())


class AiohttpRequest(BaseRequest):
    """Bot API requests over one aiohttp session holding at most `pool_size` connections."""

    def __init__(self, timeouts: RequestTimeouts, pool_size: int) -> None:
        self._timeouts = timeouts
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str] = {}
        self._proxy_for_origin: dict[tuple[str, str], tuple[URL | None, str | None]] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts.read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ssl=tls()),
                headers={"User-Agent": self.USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets none
            )
            # The environment's proxies, read once as httpx reads them when its client is made
            # (aiohttp's own `trust_env` reads them, and ~/.netrc, in a thread for every request).
            self._proxies = urllib.request.getproxies()
            self._proxy_for_origin.clear()

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        defaults = self._timeouts
        read = _chosen(read_timeout, defaults.read)
        write = _chosen(write_timeout, defaults.media_write if files else defaults.write)
        connect = _chosen(connect_timeout, defaults.connect)
        pool = _chosen(pool_timeout, defaults.pool)
        timeout = aiohttp.ClientTimeout(
            # aiohttp has no write timeout: the whole request is held to the sum of its phases.
            total=_sum(pool, connect, write, read),
            connect=_sum(pool, connect),  # aiohttp's `connect` includes the wait for a free connection
            sock_connect=connect,
            sock_read=read,
        )
        headers = None
        body: aiohttp.FormData | bytes | None = None
        if files:  # a multipart form: each value JSON-encoded, as HTTPXRequest sends it
            # Field and file names as they are (UTF-8), as httpx sent them, not percent-encoded.
            body = aiohttp.FormData(request_data.json_parameters, quote_fields=False)  # type: ignore[union-attr]
            for name, (filename, content, mimetype) in files.items():
                body.add_field(name, content, filename=filename, content_type=mimetype)
        elif request_data is not None:
            # A JSON body, which the Bot API takes for everything but uploads: one encoding of the
            # whole, where a form encodes each value as JSON and then the form.
            body, headers = json.dumps(request_data.parameters).encode(), JSON
        proxy, proxy_authorization = self._proxy(url)
        proxy_headers = None
        if proxy_authorization is not None:
            # aiohttp sends `proxy_headers` with an https request's CONNECT only; a plain http
            # request goes to the proxy itself, with the header among its own.
            if url.startswith("https:"):
                proxy_headers = {PROXY_AUTHORIZATION: proxy_authorization}
            else:
                headers = {**(headers or {}), PROXY_AUTHORIZATION: proxy_authorization}
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                proxy=proxy,
                proxy_headers=proxy_headers,
            ) as response:
                return response.status, await response.read()
        # aiohttp's errors name the URL, which holds the bot's token (its own spelling of it: the
        # host lower-cased, the path normalised): the token is taken out of the message, and the
        # error is not chained, as a logged traceback would show the original.
        except TimeoutError as error:  # aiohttp's own timeouts are TimeoutErrors too
            raise TimedOut(f"Timed out ({_described(error)})") from None
        except (aiohttp.ClientError, OSError) as error:  # OSError: a socket error aiohttp left unwrapped
            raise NetworkError(_described(error)) from None

    def _proxy(self, url: str) -> tuple[URL | None, str | None]:
        """The proxy for a URL's origin and its Proxy-Authorization, or none (NO_PROXY, or none set)."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._proxy_for_origin:
            address = self._proxies.get(parts.scheme) or self._proxies.get("all")  # ALL_PROXY
            if address is None or urllib.request.proxy_bypass_environment(
                parts.hostname or "", self._proxies
            ):
                self._proxy_for_origin[origin] = (None, None)
            else:
                proxy = URL(address if "://" in address else f"http://{address}")  # as httpx reads it
                if proxy.scheme not in ("http", "https"):  # its address may hold a password: not shown
                    raise NetworkError(
                        f"the proxy set in the environment is {proxy.scheme}://…; use http(s)://"
                    )
                auth = aiohttp.BasicAuth.from_url(proxy)
                self._proxy_for_origin[origin] = (proxy.with_user(None), auth.encode() if auth else None)
        return self._proxy_for_origin[origin]


def _described(error: BaseException) -> str:
    return f"aiohttp.{type(error).__name__}: " + TOKEN.sub("<token>", str(error))


def _chosen(value: object, default: float) -> float | None:
    """A timeout given for one call (None: no limit), or the default when none was given."""
    if isinstance(value, DefaultValue):
        return default
    assert value is None or isinstance(value, int | float)
    return value


def _sum(*seconds: float | None) -> float | None:
    """The sum of timeouts; no limit if any of them is none."""
    return None if any(value is None for value in seconds) else sum(seconds)  # type: ignore[arg-type]
