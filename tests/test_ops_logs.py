import io
import json
import logging
import re
import sys
import threading
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.ops.logs import NOISY_LOGGERS, REDACTED, TOKEN_SHAPES, Redactor, secrets_from, setup_logging

TELEGRAM_TOKEN = "123456789:AAHfakeTOKENfakeTOKENfakeTOKENfake12"
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GAbCdE.aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678"
WEBHOOK_SECRET = "s3cret-webhook-value"
# Shaped like a Telegram token but configured nowhere: caught by its shape alone.
STRANGER_TOKEN = "987654321:ZZZotherBOTotherBOTotherBOTother99"
SECRETS = (TELEGRAM_TOKEN, DISCORD_TOKEN, WEBHOOK_SECRET, STRANGER_TOKEN)


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), sys.excepthook, threading.excepthook)
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    sys.excepthook, threading.excepthook = saved[2], saved[3]
    for name, level in noisy.items():
        logging.getLogger(name).setLevel(level)


def configure(fmt: str, level: str = "DEBUG") -> io.StringIO:
    stream = io.StringIO()
    setup_logging(level, fmt, [TELEGRAM_TOKEN, DISCORD_TOKEN, WEBHOOK_SECRET, None, ""], stream=stream)
    return stream


def log_every_way() -> None:
    log = logging.getLogger("bot.adapters.telegram")
    log.info("token in the message %s", TELEGRAM_TOKEN)
    log.info("POST https://api.telegram.org/bot%s/sendMessage", TELEGRAM_TOKEN)
    log.info(f"https://api.telegram.org/bot{STRANGER_TOKEN}/getUpdates")
    log.info("url-encoded %s", quote(TELEGRAM_TOKEN, safe=""))
    log.warning("args as a dict %(token)s", {"token": DISCORD_TOKEN})
    log.info("in extra fields", extra={"url": f"/bot{TELEGRAM_TOKEN}/x", "headers": {"auth": DISCORD_TOKEN}})
    logging.getLogger("httpx").warning("HTTP Request: GET https://x/bot%s/getMe", TELEGRAM_TOKEN)
    try:
        raise ConnectionError(f"cannot reach https://api.telegram.org/bot{TELEGRAM_TOKEN}/getMe")
    except ConnectionError:
        log.exception("send failed")
    try:
        try:
            raise ValueError(WEBHOOK_SECRET)
        except ValueError as inner:
            raise RuntimeError(f"wrapped {DISCORD_TOKEN}") from inner
    except RuntimeError:
        log.error("chained", exc_info=True)
    log.info("where am I %s", TELEGRAM_TOKEN, stack_info=True)
    sys.excepthook(KeyError, KeyError(TELEGRAM_TOKEN), None)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_survives_any_path(restore_logging, fmt):
    stream = configure(fmt)
    log_every_way()
    output = stream.getvalue()
    for secret in SECRETS:
        assert secret not in output
        assert secret.split(":")[-1] not in output
    assert quote(TELEGRAM_TOKEN, safe="") not in output
    events = output.splitlines()
    assert len(events) == 11  # nothing dropped: every event is there, each with its secret removed
    assert all(REDACTED in event for event in events)
    assert "Traceback" in output and "ConnectionError" in output


def test_a_broken_format_string_is_logged_redacted(restore_logging):
    stream = io.StringIO()
    handler = setup_logging("INFO", "text", [WEBHOOK_SECRET], stream=stream)
    # Only our handler: pytest's capture handler on the root would raise on the bad format first.
    isolated = logging.getLogger("test.isolated")
    isolated.propagate = False
    isolated.addHandler(handler)
    try:
        isolated.info("bad format %d", WEBHOOK_SECRET)
    finally:
        isolated.removeHandler(handler)
        isolated.propagate = True
    assert "bad format %d" in stream.getvalue() and REDACTED in stream.getvalue()
    assert WEBHOOK_SECRET not in stream.getvalue()


def test_handlers_after_ours_see_the_redacted_record(restore_logging):
    configure("text")
    plain = io.StringIO()
    # A handler added later with the standard formatter renders exc_info itself when it can.
    logging.getLogger().addHandler(logging.StreamHandler(plain))
    try:
        raise ConnectionError(f"https://api.telegram.org/bot{TELEGRAM_TOKEN}/getMe")
    except ConnectionError:
        logging.getLogger("telegram.ext").exception("polling failed")
    assert "ConnectionError" in plain.getvalue() and TELEGRAM_TOKEN not in plain.getvalue()


def test_text_is_one_line_per_event(restore_logging):
    stream = configure("text")
    log = logging.getLogger("bot.core")
    log.info("first\nsecond line of the same event")
    try:
        raise KeyError("boom")
    except KeyError:
        log.exception("failed for chat %s", "telegram:42", extra={"post": 7})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("INFO bot.core: first\\nsecond line of the same event")
    assert "ERROR bot.core: failed for chat telegram:42 post=7 | Traceback" in lines[1]
    assert "KeyError: 'boom'" in lines[1]


def test_json_is_one_object_per_line(restore_logging):
    stream = configure("json")
    log = logging.getLogger("bot.scheduler")
    log.info("posted %s", "telegram:42", extra={"post": 12, "ts": "not the timestamp"})
    try:
        raise LookupError("no such chat")
    except LookupError:
        log.exception("sweep failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "bot.scheduler"
    assert first["msg"] == "posted telegram:42" and first["post"] == 12
    assert first["ts"] != "not the timestamp" and first["ts"].endswith("+00:00")
    assert second["level"] == "ERROR" and "LookupError: no such chat" in second["exc"]
    assert "\n" in second["exc"]


def test_levels_are_respected_and_noise_quieted(restore_logging):
    stream = configure("text", level="warning")
    logging.getLogger("bot.core").info("hidden info")
    logging.getLogger("bot.core").warning("shown warning")
    assert stream.getvalue().count("\n") == 1 and "shown warning" in stream.getvalue()

    stream = configure("text", level="INFO")
    logging.getLogger("bot.core").info("shown info")
    logging.getLogger("httpx").info("HTTP Request: POST /sendMessage")
    logging.getLogger("discord.gateway").info("heartbeat")
    assert "shown info" in stream.getvalue()
    assert "HTTP Request" not in stream.getvalue() and "heartbeat" not in stream.getvalue()

    stream = configure("text", level="DEBUG")
    logging.getLogger("httpx").info("HTTP Request: POST /sendMessage")
    assert "HTTP Request" in stream.getvalue()


def test_a_second_setup_replaces_the_first(restore_logging):
    first = configure("text")
    second = configure("json")
    logging.getLogger("bot").warning("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["msg"] == "once"


@pytest.mark.parametrize(
    ("level", "fmt", "named"), [("LOUD", "text", "DAILYQ_LOG_LEVEL"), ("INFO", "xml", "FORMAT")]
)
def test_bad_settings_are_named(restore_logging, level, fmt, named):
    with pytest.raises(ValueError, match=named):
        setup_logging(level, fmt, [])


def test_secrets_from_settings_are_the_hidden_fields():
    settings = Settings(
        telegram_token=TELEGRAM_TOKEN, discord_token=DISCORD_TOKEN, telegram_webhook_secret=None
    )
    assert sorted(secrets_from(settings)) == sorted([TELEGRAM_TOKEN, DISCORD_TOKEN])
    assert secrets_from(Settings()) == []


# The token shapes as first written: right, but quadratic on long runs (the reference below).
BACKTRACKING_SHAPES = re.compile(
    r"\d+(?::|%3[Aa])[A-Za-z0-9_-]{30,}|[A-Za-z0-9_-]{24,}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"
)
# What long runs in log lines are made of: digits (ids, timestamps), base64url, and the
# separators the shapes look for, so that every run almost, but not quite, makes a token.
ADVERSARIAL_PIECES = ("1", "9" * 64, ":", "%3A", "%3", "a", "Zz-_" * 10, ".", "abcdef.", " ", "/bot")
LONG_LINE = 10_000  # how long these lines take is measured by bench/regex.py, not here


def adversarial_line(pieces: list[str], at: float) -> str:
    """10,000 characters of `pieces` with both tokens in it, the Telegram one at `at` (0 to 1)."""
    junk = ("".join(pieces) * LONG_LINE)[:LONG_LINE]
    cut = int(len(junk) * at)
    # Spaces around the tokens: pressed against junk of their own alphabet a token is part of a longer run.
    return f"{junk[:cut]} {TELEGRAM_TOKEN} {junk[cut:]} {DISCORD_TOKEN}"


@pytest.mark.parametrize("shape", TOKEN_SHAPES)
def test_each_token_shape_takes_its_leading_run_once(shape: str) -> None:
    """Linear by construction: a shape starts only where its leading run starts (a lookbehind for
    the run's own class) and takes the run possessively, so no suffix of a run is tried again."""
    leading = re.match(r"\(\?<!(\\d|\[[^\]]+\])\)(\\d|\[[^\]]+\])(\+\+|\{\d+,\}\+)", shape)
    assert leading and leading[1] == leading[2], shape


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("19:%3Aaz-_. "), max_size=120))
def test_token_shapes_redact_what_the_backtracking_shapes_did(line: str) -> None:
    assert Redactor([])(line) == BACKTRACKING_SHAPES.sub(REDACTED, line)


@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(st.sampled_from(ADVERSARIAL_PIECES), min_size=1, max_size=12), at=st.floats(0, 1))
@example(pieces=["1"], at=0.5)  # one run of 10,000 digits: the quadratic case
@example(pieces=["a"], at=1.0)
@example(pieces=["1", ":"], at=0.0)
def test_tokens_in_long_adversarial_lines_are_redacted(pieces: list[str], at: float) -> None:
    redacted = Redactor([])(adversarial_line(pieces, at))
    assert TELEGRAM_TOKEN not in redacted and DISCORD_TOKEN not in redacted
