"""/forgetme confirm as /help documents it, and what a question's number may look like."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.core.commands import Core
from bot.core.messages import t
from bot.core.store import SQLiteStore
from tests.clock import FakeClock
from tests.test_quiz import BANK, MONDAY_8AM, rows
from tests.transcript import Transcript, text


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    store = await SQLiteStore.open(tmp_path / "dailyq.sqlite3")
    yield Core(store, BANK, Settings(), FakeClock(MONDAY_8AM), rng=random.Random(7), fuzz=False)
    await store.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_forgetme_confirm_as_help_shows_it_deletes(core: Core, lang: str) -> None:
    chat = Transcript(core, lang=lang)
    await chat.say("/quiz")
    await chat.say("/answer something")
    confirm = t(lang, "placeholder_confirm")  # "confirm", "确认"
    assert f"/forgetme [{confirm}]" in text(await chat.say("/help"))
    assert text(await chat.say(f"/forgetme {confirm}")) == t(lang, "forgotten")
    assert await rows(core.store, "SELECT COUNT(*) FROM attempts") == [(0,)]


@pytest.mark.parametrize("number", ["99999999999999999999", "9223372036854775808", "0"])
async def test_a_whole_number_that_names_no_question_says_so(core: Core, number: str) -> None:
    chat = Transcript(core)
    for command in (f"/reveal {number}", f"/full {number}", f"/grade good {number}"):
        assert text(await chat.say(command)) == t("en", "no_such_post"), command


async def test_what_is_not_a_number_is_told_without_pointing_at_buttons(core: Core) -> None:
    reply = text(await Transcript(core).say("/reveal twelve"))
    assert reply == t("en", "bad_post_id", value="twelve")
    assert "button" not in reply
