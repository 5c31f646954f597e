"""The message catalog: both languages say everything, with the same placeholders."""

from __future__ import annotations

import ast
import string
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.core.messages import CATALOG, LANGUAGES, count_of, format_day, format_when, t

CORE = Path(__file__).resolve().parent.parent / "bot" / "core"


def placeholders(message: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(message) if field is not None}


def test_every_language_has_the_same_keys_and_placeholders() -> None:
    english = CATALOG["en"]
    for lang in LANGUAGES:
        assert CATALOG[lang].keys() == english.keys(), lang
        for key, message in CATALOG[lang].items():
            assert placeholders(message) == placeholders(english[key]), (lang, key)
            assert message.strip(), (lang, key)


def test_word_lists_have_one_word_per_day_and_month() -> None:
    for lang in LANGUAGES:
        assert len(t(lang, "weekdays").split()) == 7
        assert len(t(lang, "months").split()) == 12


def test_every_key_the_core_names_exists() -> None:
    """Literal keys passed to t() anywhere in bot/core; dynamic ones are covered by the conversations."""
    named: set[str] = set()
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "t" and len(node.args) >= 2:
                key = node.args[1]
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    named.add(key.value)
    assert named, "no t() calls found"
    assert named - CATALOG["en"].keys() == set()


@pytest.mark.parametrize(
    ("lang", "day", "words"),
    [
        ("en", date(2026, 3, 2), "today (Mon 2 Mar)"),
        ("en", date(2026, 3, 3), "tomorrow (Tue 3 Mar)"),
        ("en", date(2026, 3, 6), "Fri 6 Mar (in 4 days)"),
        ("en", date(2027, 1, 4), "Mon 4 Jan 2027 (in 308 days)"),
        ("zh", date(2026, 3, 3), "明天（3月3日 周二）"),
        ("zh", date(2026, 3, 6), "3月6日 周五（4 天后）"),
    ],
)
def test_dates_in_words(lang: str, day: date, words: str) -> None:
    assert format_day(lang, day, date(2026, 3, 2)) == words


def test_an_instant_is_told_in_the_chats_zone() -> None:
    now = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # already Tuesday in Shanghai
    instant = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)
    assert format_when("en", instant, ZoneInfo("Asia/Shanghai"), now) == "today (Tue 3 Mar) at 09:30"
    assert format_when("en", instant, ZoneInfo("America/New_York"), now) == "today (Mon 2 Mar) at 20:30"


def test_an_unknown_language_falls_back_to_english() -> None:
    assert t("fr", "button_reveal") == t("en", "button_reveal")


@pytest.mark.parametrize(
    ("lang", "count", "words"),
    [("en", 0, "0 characters"), ("en", 1, "1 character"), ("en", 2, "2 characters"), ("zh", 1, "1 个字符")],
)
def test_a_count_agrees_with_its_number(lang: str, count: int, words: str) -> None:
    assert count_of(lang, "characters", count) == words
    assert f"({words})" in t(lang, "answer_saved", title="t", chars=count_of(lang, "characters", count)).replace(
        "（", "("
    ).replace("）", ")")
