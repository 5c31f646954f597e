"""/forgetme confirm as /help documents it, and what a question's number may look like."""

from __future__ import annotations

import random

import pytest

from bot.config import Settings
from bot.core.commands import Core
from bot.core.messages import t
from bot.core.store import Store
from tests.clock import FakeClock
from tests.conftest import sql_rows
from tests.test_quiz import BANK, MONDAY_8AM
from tests.transcript import Transcript, text


@pytest.fixture
def core(store: Store) -> Core:
    return Core(store, BANK, Settings(), FakeClock(MONDAY_8AM), rng=random.Random(7), fuzz=False)


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_forgetme_confirm_as_help_shows_it_deletes(core: Core, lang: str) -> None:
    chat = Transcript(core, lang=lang)
    await chat.say("/quiz")
    await chat.say("/answer something")
    confirm = t(lang, "placeholder_confirm")  # "confirm", "确认"
    assert f"/forgetme [{confirm}]" in text(await chat.say("/help"))
    assert text(await chat.say(f"/forgetme {confirm}")) == t(lang, "forgotten")
    assert await sql_rows(core.store, "SELECT COUNT(*) FROM attempts") == [(0,)]


@pytest.mark.parametrize(("lang", "word"), [(lang, word) for lang in ("en", "zh") for word in ("confirm", "yes", "确认")])
async def test_forgetme_takes_each_confirming_word_in_either_language(core: Core, lang: str, word: str) -> None:
    chat = Transcript(core, lang=lang)
    await chat.say("/quiz")
    await chat.say("/answer something")
    assert text(await chat.say(f"/forgetme {word}")) == t(lang, "forgotten")
    assert await sql_rows(core.store, "SELECT COUNT(*) FROM attempts") == [(0,)]


# Where a question's number is shown, as each language's messages say it.
WHERE_NUMBERS_ARE = {"en": "after the question's title", "zh": "题目标题后"}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("number", ["99999999999999999999", "9223372036854775808", "0"])
async def test_a_whole_number_that_names_no_question_says_so_and_where_numbers_are(
    core: Core, lang: str, number: str
) -> None:
    chat = Transcript(core, lang=lang)
    for command in (f"/reveal {number}", f"/full {number}", f"/grade good {number}"):
        reply = text(await chat.say(command))
        assert reply == t(lang, "no_such_post"), command
        assert WHERE_NUMBERS_ARE[lang] in reply and reply != t(lang, "bad_post_id", value=number)


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_what_is_not_a_number_is_told_without_pointing_at_buttons(core: Core, lang: str) -> None:
    reply = text(await Transcript(core, lang=lang).say("/reveal twelve"))
    assert reply == t(lang, "bad_post_id", value="twelve")
    assert WHERE_NUMBERS_ARE[lang] in reply
    assert "button" not in reply and "按钮" not in reply
