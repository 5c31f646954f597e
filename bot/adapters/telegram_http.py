"""The Bot API's HTTP transport: python-telegram-bot's requests carried by aiohttp.

python-telegram-bot's own `HTTPXRequest` (httpx over httpcore and h11, all pure Python) spends
2.1 to 2.5 ms of CPU on a sendMessage to a Bot API on the same machine, where aiohttp (its HTTP
parser in C, a connection pool that does not scan every connection for every request) spends
0.26 to 0.32 (`bench/README.md`). An update costs one or two Bot API calls, so the transport was
most of what an update cost. aiohttp already serves the webhook: no dependency is added.

`AiohttpRequest` keeps `HTTPXRequest`'s contract: the same five timeouts, the same errors
(`TimedOut`, `NetworkError`), the same forms on the wire, redirects not followed, HTTP/1.1,
and a proxy set in the environment (HTTPS_PROXY, as httpx reads it) still used.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

import aiohttp
import certifi
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# python-telegram-bot's marker for a timeout the caller did not give (its class is not public).
DefaultValue = type(BaseRequest.DEFAULT_NONE)


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

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts.read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ssl=tls()),
                headers={"User-Agent": self.USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets none
                trust_env=True,
            )

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
        # A form, as HTTPXRequest sends it: each value JSON-encoded, and multipart when files go along.
        fields = request_data.json_parameters if request_data else {}
        body: aiohttp.FormData | dict[str, str] = fields
        if files:
            body = aiohttp.FormData(fields)
            for name, (filename, content, mimetype) in files.items():
                body.add_field(name, content, filename=filename, content_type=mimetype)
        try:
            async with self._session.request(
                method, url, data=body, timeout=timeout, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:  # aiohttp's own timeouts are TimeoutErrors too
            raise TimedOut from error
        except (aiohttp.ClientError, OSError) as error:  # OSError: a socket error aiohttp left unwrapped
            # The URL holds the bot's token: keep it out of the message, which may be logged.
            detail = str(error).replace(url, f"the Bot API's {url.rsplit('/', 1)[-1]}")
            raise NetworkError(f"aiohttp.{type(error).__name__}: {detail}") from error


def _chosen(value: object, default: float) -> float | None:
    """A timeout given for one call (None: no limit), or the default when none was given."""
    if isinstance(value, DefaultValue):
        return default
    assert value is None or isinstance(value, int | float)
    return value


def _sum(*seconds: float | None) -> float | None:
    """The sum of timeouts; no limit if any of them is none."""
    return None if any(value is None for value in seconds) else sum(seconds)  # type: ignore[arg-type]
