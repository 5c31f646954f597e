"""One line per event, as text or JSON, with every secret redacted before anything is written.

The redaction is a filter on the root handler, so it sees records from every logger (the
libraries' included) and rewrites the record itself: message, arguments, extra fields, the
formatted traceback and the stack. Besides the configured secrets it removes anything shaped
like a bot token, because a token can reach a log line in forms we never configured (inside
a URL the HTTP client logs, percent-encoded, in an exception raised deep in a library).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO
from urllib.parse import quote

from bot.config import Settings, database_password

REDACTED = "[redacted]"

# Telegram: "<bot id>:<35 characters>", the colon possibly percent-encoded inside a URL.
# Discord: three base64url parts joined by dots (user id, timestamp, HMAC).
# Each shape starts only where its leading run starts (the lookbehind) and takes that run whole,
# never giving characters back (the possessive `++`, `{24,}+`): a run is then tried once, where
# a plain `\d+` retried every suffix of it and took quadratic time on a long run of digits
# (1.6 s for a 10,000-digit line).
TOKEN_SHAPES = (
    r"(?<!\d)\d++(?::|%3[Aa])[A-Za-z0-9_-]{30,}",
    r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{24,}+\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}",
)

# Chatty at INFO (a line per HTTP request, per gateway event, per scheduler tick): kept at
# WARNING unless the operator asks for DEBUG.
NOISY_LOGGERS = ("httpx", "httpx2", "httpcore", "aiohttp.access", "discord.gateway", "apscheduler.executors")
# A line per block rule per source line: useless even when debugging dailyq, and floods a reload.
SILENCED_LOGGERS = ("markdown_it",)
# Start-up notes that are no news for dailyq, logged at DEBUG instead of their own level:
# (logger, start of the message). dailyq uses no voice; APScheduler's job bookkeeping is its own.
DEMOTED_MESSAGES = (
    ("discord.client", "PyNaCl is not installed"),
    ("discord.client", "davey is not installed"),
    ("apscheduler.scheduler", "Adding job tentatively"),
    ("apscheduler.scheduler", "Added job"),
    ("apscheduler.scheduler", "Scheduler started"),
)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def secrets_from(settings: Settings) -> list[str]:
    """The secret values in Settings: the fields declared with repr=False (tokens, webhook secret,
    a database URL) and the password in that URL."""
    values = [getattr(settings, f.name) for f in fields(settings) if not f.repr]
    values.append(database_password(settings.db))
    return [value for value in values if isinstance(value, str) and value]


class Redactor:
    def __init__(self, secrets: Iterable[str | None]) -> None:
        literal = {variant for secret in secrets if secret for variant in (secret, quote(secret, safe=""))}
        # Longest first, so a secret that contains another is removed whole.
        alternatives = [re.escape(s) for s in sorted(literal, key=len, reverse=True)] + list(TOKEN_SHAPES)
        self._pattern = re.compile("|".join(alternatives))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not take down the caller or leak raw args
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = self._redact(message), None
        if record.exc_info:
            # Formatters reuse exc_text rather than render exc_info again, so every handler after
            # this one shows the redacted traceback.
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        for key, value in extra_fields(record).items():
            if not isinstance(value, int | float | bool | None):
                setattr(record, key, self._redact(value if isinstance(value, str) else repr(value)))
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES and not k.startswith("_")}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _details(record: logging.LogRecord) -> str | None:
    parts = [part for part in (record.exc_text, record.stack_info) if part]
    return "\n".join(parts) or None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in extra_fields(record).items() if k not in line})
        if details := _details(record):
            line["exc"] = details
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger: message key="value" | traceback`, newlines escaped to keep one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        for key, value in extra_fields(record).items():
            line += f" {key}={json.dumps(value, ensure_ascii=False, default=str)}"
        if details := _details(record):
            line += " | " + details
        return line.replace("\r", "\\r").replace("\n", "\\n")


class DemotingFilter(logging.Filter):
    """On a library's logger: turns the records that start with one of `starts` into DEBUG records,
    passed on only when that logger is open to DEBUG."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self._starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(self._starts)):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _demote_startup_notes() -> None:
    for name in {name for name, _ in DEMOTED_MESSAGES}:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, DemotingFilter)]:
            logger.removeFilter(old)
        logger.addFilter(DemotingFilter(tuple(start for owner, start in DEMOTED_MESSAGES if owner == name)))


class _DailyqHandler(logging.StreamHandler):
    """Marks the handler setup_logging installed, so a second call replaces it."""


def setup_logging(
    level: str, fmt: str, secrets: Iterable[str | None], stream: TextIO | None = None
) -> logging.Handler:
    """Route every logger through one redacting handler on `stream` (stderr by default).

    Also sends uncaught exceptions (main thread and others) through logging, so a crash's
    traceback is redacted like everything else.
    """
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"DAILYQ_LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"DAILYQ_LOG_FORMAT must be 'text' or 'json', not {fmt!r}")

    handler = _DailyqHandler(sys.stderr if stream is None else stream)
    handler.addFilter(RedactingFilter(Redactor(secrets)))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _DailyqHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
    for name in SILENCED_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _demote_startup_notes()

    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)
    return handler


def _log_uncaught(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None) -> None:
    logging.getLogger("dailyq").critical("uncaught exception", exc_info=(exc_type, exc, tb))
