"""Input that is too big gets a short, clear reply: long echoes are cut, too many tags and too long
answers are refused with the limit named, and nothing is stored."""

from __future__ import annotations

import random

import pytest

from bot.config import Settings
from bot.core.bank import Bank
from bot.core.commands import Core
from bot.core.commands.answering import ANSWER_LIMIT
from bot.core.commands.subscription import TAGS_LIMIT
from bot.core.commands.texts import ECHO_LIMIT
from bot.core.messages import t
from bot.core.model import Question
from bot.core.store import Store
from tests.clock import FakeClock
from tests.conftest import sql_rows
from tests.test_quiz import MONDAY_8AM
from tests.transcript import Transcript, text

# Every question has its own tag, so any number of tags up to the bank's size are all known.
BANK = Bank(
    [Question(id=f"q{n}", title=f"Question {n}", answer="An answer.", tags=(f"tag{n}",)) for n in range(1000)]
)
LONG = "x" * 5000


@pytest.fixture
def core(store: Store) -> Core:
    return Core(store, BANK, Settings(), FakeClock(MONDAY_8AM), rng=random.Random(7), fuzz=False)


@pytest.mark.parametrize(
    "command",
    [f"/quiz {LONG}", f"/{LONG}", f"/settings {LONG} x", f"/settings zone {LONG}", f"/settings tags {LONG}"],
)
async def test_a_long_input_echoed_in_a_reply_is_cut(core: Core, command: str) -> None:
    reply = text(await Transcript(core).say(command))
    assert "x" * ECHO_LIMIT not in reply and "x" * (ECHO_LIMIT - 2) + "…" in reply  # "/" may come first
    assert len(reply) < ECHO_LIMIT + 400


async def test_settings_tags_takes_up_to_the_limit_and_names_it_beyond(core: Core) -> None:
    chat = Transcript(core)
    too_many = ",".join(f"tag{n}" for n in range(1000))
    assert text(await chat.say(f"/settings tags {too_many}")) == t(
        "en", "too_many_tags", count=1000, limit=TAGS_LIMIT
    )
    assert "tags: all questions" in text(await chat.say("/settings"))
    most = ",".join(f"tag{n}" for n in range(TAGS_LIMIT))
    assert text(await chat.say(f"/settings tags {most}")).startswith("Saved: tags is now tag0,tag1,")


@pytest.mark.parametrize("how", ["/answer {}", "{}"])
async def test_an_answer_over_the_limit_is_refused_with_the_limit_named(core: Core, how: str) -> None:
    chat = Transcript(core)
    await chat.say("/quiz")
    too_long = "y" * (ANSWER_LIMIT + 1)
    assert text(await chat.say(how.format(too_long))) == t(
        "en", "answer_too_long", limit=ANSWER_LIMIT, length=ANSWER_LIMIT + 1
    )
    assert await sql_rows(core.store, "SELECT COUNT(*) FROM attempts") == [(0,)]
    assert text(await chat.say(how.format("y" * ANSWER_LIMIT))).startswith("Got your answer")
