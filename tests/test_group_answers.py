"""Answers in a group never vanish: one that cannot be matched to a question gets a hint, and a
question anyone asked for with /quiz is the group's, for every member to answer, on its leaderboard."""

from __future__ import annotations

import pytest

from bot.core.commands import Core
from bot.core.messages import count_of, t
from bot.core.store import Store
from tests.clock import FakeClock
from tests.conftest import sql_rows
from tests.test_quiz import MONDAY_8AM, make_core, newest, question_of, scheduler
from tests.transcript import Transcript, text

langs = pytest.mark.parametrize("lang", ["en", "zh"])


def monday_core(store: Store) -> Core:
    """The test bank's core on the test's database (each backend), Monday 08:00 UTC on its clock."""
    return make_core(store, FakeClock(MONDAY_8AM))


@pytest.fixture
def core(store: Store) -> Core:
    return monday_core(store)


def group(core: Core, lang: str = "en") -> Transcript:
    """ada, the admin of a group, who speaks `lang`."""
    return Transcript(core, user="ada", group=True, chat="group", admin=True, lang=lang)


@langs
async def test_a_hidden_answer_that_answers_no_question_gets_a_hint(core: Core, lang: str) -> None:
    ada = group(core, lang)
    bob = ada.member("bob")
    assert text(await bob.say("||an answer to nothing||")) == t(lang, "answer_unmatched")
    assert text(await bob.say("/answer something")) == t(lang, "nothing_to_answer")
    assert await sql_rows(core.store, "SELECT COUNT(*) FROM attempts") == [(0,)]


async def test_a_hidden_answer_replying_to_something_else_gets_the_hint_and_chat_stays_quiet(
    core: Core,
) -> None:
    ada = group(core)
    bob = ada.member("bob")
    [welcome] = await ada.say("/start")  # a message of the bot's that is not a question
    assert text(await bob.say("||an answer||", reply_to=welcome)) == t("en", "answer_unmatched")
    assert await bob.say("good morning, everyone") == []  # conversation: not for the bot
    assert await bob.say("good morning", reply_to=welcome) == []


@langs
async def test_a_quiz_asked_in_a_group_is_answered_by_every_member_and_counts_on_its_board(
    core: Core, lang: str
) -> None:
    ada = group(core, lang)
    bob, cat = ada.member("bob"), ada.member("cat")
    [asked] = await bob.say("/quiz")
    title = question_of(asked).title

    saved, reminder = await cat.say("/answer attention weighs tokens")
    assert saved.text == t(lang, "answer_saved", title=title, chars=count_of(lang, "characters", len("attention weighs tokens")))
    assert reminder.text == t(lang, "spoiler_reminder")
    await ada.say("||hidden, as a reply||", reply_to=asked)
    await bob.say("/answer mine")
    [revealed] = await cat.say("/reveal")
    assert revealed.kind == "reveal" and title in revealed.text
    for member in (ada, bob, cat):
        await member.say("/grade good")
    assert await sql_rows(core.store, "SELECT user_key, grade FROM attempts ORDER BY user_key") == [
        ("test:ada", "good"), ("test:bob", "good"), ("test:cat", "good")
    ]  # fmt: skip

    week = text(await cat.say("/top")).split("\n\n")[0].splitlines()[1:]
    assert week == [
        t(lang, "top_line", rank=rank, name=name, answers=1, grades=1)
        for rank, name in enumerate(("Ada", "Bob", "Cat"), 1)
    ]


async def test_in_a_group_a_bare_answer_goes_to_the_newest_question_a_daily_one_or_a_quiz(
    core: Core,
) -> None:
    clock = core.clock
    ada = group(core)
    bob = ada.member("bob")
    await ada.say("/subscribe 09:00 UTC")
    clock.set(MONDAY_8AM.replace(hour=9))
    await scheduler(core.store, core, clock, ada).sweep()
    daily = newest(ada, "question")
    assert (await bob.say("/answer for the daily"))[0].text == t(
        "en", "answer_saved", title=question_of(daily).title, chars=count_of("en", "characters", len("for the daily"))
    )
    [quiz] = await ada.say("/quiz")
    assert (await bob.say("/answer for ada's quiz"))[0].text == t(
        "en", "answer_saved", title=question_of(quiz).title, chars=count_of("en", "characters", len("for ada's quiz"))
    )
    assert await sql_rows(core.store, "SELECT p.kind FROM attempts a JOIN posts p ON p.id = a.post_id") == [
        ("daily",), ("quiz",)
    ]  # fmt: skip
