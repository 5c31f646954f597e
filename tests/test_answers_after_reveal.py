"""Once the reference answer is out, or an answer graded, answers stay as they are: nobody can
/quiz, /reveal, read the reference, then answer and grade it `easy` to climb /top."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.core.commands import Core
from bot.core.messages import t
from bot.core.store import Store
from tests.conftest import sql_rows
from tests.test_group_answers import group, monday_core
from tests.test_quiz import MONDAY_8AM, newest, question_of, scheduler
from tests.transcript import Transcript, text

langs = pytest.mark.parametrize("lang", ["en", "zh"])


@pytest.fixture
def core(store: Store) -> Core:
    return monday_core(store)


@langs
async def test_a_group_quiz_once_revealed_takes_no_answers_and_gains_nothing_on_top(core: Core, lang: str) -> None:
    ada = group(core, lang)
    bob = ada.member("bob")
    [asked] = await bob.say("/quiz")
    title = question_of(asked).title
    [revealed] = await bob.say("/reveal")
    assert revealed.kind == "reveal"
    assert await sql_rows(core.store, "SELECT revealed_at IS NOT NULL FROM posts") == [(1,)]  # like a daily post

    for late in ("/answer the reference, copied", "||the reference, hidden||"):
        refusal = text(await bob.say(late, reply_to=asked))
        assert refusal == t(lang, "answers_closed", title=title)
        assert "/reveal" not in refusal and "/quiz" in refusal
    assert text(await bob.say("/grade easy")) == t(lang, "grade_not_answered", name="Bob")
    assert await sql_rows(core.store, "SELECT COUNT(*) FROM attempts") == [(0,)]
    assert "bob" not in text(await bob.say("/top")).casefold()


async def test_a_daily_post_past_its_reveal_time_takes_no_answers(core: Core) -> None:
    ada = group(core)
    bob = ada.member("bob")
    await ada.say("/subscribe 09:00 UTC")
    core.clock.set(MONDAY_8AM.replace(hour=9))
    await scheduler(core.store, core, core.clock, ada).sweep()
    daily = newest(ada, "question")
    (due,) = (await sql_rows(core.store, "SELECT reveal_due_at FROM posts"))[0]
    core.clock.set(datetime.fromisoformat(due) + timedelta(seconds=1))  # due, not yet swept
    assert text(await bob.say("||too late||", reply_to=daily)) == t(
        "en", "answers_closed", title=question_of(daily).title
    )
    assert await sql_rows(core.store, "SELECT COUNT(*) FROM attempts") == [(0,)]


@langs
async def test_a_graded_answer_is_kept_and_stays_in_the_stats(core: Core, lang: str) -> None:
    ann = Transcript(core, lang=lang)
    [asked] = await ann.say("/quiz")
    title = question_of(asked).title
    await ann.say("keys and values")
    await ann.say("/grade good")
    assert text(await ann.say("a later thought")) == t(lang, "answer_kept_graded", title=title)
    assert await sql_rows(core.store, "SELECT text, grade FROM attempts") == [("keys and values", "good")]
    assert t(lang, "stats_counts", answered=1, graded=1) in text(await ann.say("/stats"))


@langs
async def test_an_answer_is_kept_once_its_question_is_revealed(core: Core, lang: str) -> None:
    ann = Transcript(core, lang=lang)
    [asked] = await ann.say("/quiz")
    await ann.say("keys and values")
    await ann.say("/reveal")
    refusal = text(await ann.say("/answer what the reference said"))
    assert refusal == t(lang, "answer_kept_revealed", title=question_of(asked).title)
    assert "/reveal" not in refusal
    assert await sql_rows(core.store, "SELECT text FROM attempts") == [("keys and values",)]
