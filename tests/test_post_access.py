"""Who may act on a post from where: its own chat; elsewhere, with the token its chat was shown or
with an answer to it.

A stranger who knows (or guesses) a post's number gets nothing from another chat: no answer
counted, no reveal, no full answer, no grade. A member who follows the group's "Answer
privately" link answers, reveals, reads and grades from the private chat; one who answered in
the group may name the post by its number anywhere.
"""

from __future__ import annotations

import re

import pytest

from bot.core.messages import t
from bot.core.model import Reply
from bot.core.store import Store
from tests.clock import FakeClock
from tests.conftest import sql_rows
from tests.test_quiz import MONDAY_8AM, make_core, newest, scheduler
from tests.transcript import Transcript, text

DEEP_LINK = re.compile(r"/start answer-(\d+)-(\S+)")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_8AM)


async def private_answers_group(store: Store, clock: FakeClock) -> tuple[Transcript, Reply]:
    """A group that answers privately, with today's daily question posted."""
    core = make_core(store, clock)
    admin = Transcript(core, user="ada", group=True, chat="group", admin=True)
    await admin.say("/settings answers private")
    await admin.say("/subscribe 09:00 UTC")
    clock.set(MONDAY_8AM.replace(hour=9))
    await scheduler(store, core, clock, admin).sweep()
    return admin, newest(admin, "question")


def answer_privately_payload(post: Reply) -> str:
    return next(
        b.payload for row in post.buttons for b in row if b.label == t("en", "button_answer_privately")
    )


async def test_a_stranger_cannot_answer_a_groups_question_with_its_number_or_a_made_up_link(
    store: Store, clock: FakeClock
) -> None:
    admin, post = await private_answers_group(store, clock)
    [someone_elses] = await Transcript(admin.core, user="zed", chat="zed-private").say("/quiz")
    stranger = Transcript(admin.core, user="eve", chat="eve-private")
    link = DEEP_LINK.fullmatch(answer_privately_payload(post))
    assert link is not None and int(link[1]) == post.post_id and len(link[2]) >= 16
    forged = [
        f"/start answer-{post.post_id}",
        f"/start answer-{post.post_id}-{'0' * len(link[2])}",
        f"/start answer-{someone_elses.post_id}-{link[2]}",  # one post's token opens no other
    ]
    for attempt in forged:
        assert text(await stranger.say(attempt)) == t("en", "post_elsewhere")
    assert text(await stranger.say("my answer")) == t("en", "private_hint")
    assert await sql_rows(store, "SELECT COUNT(*) FROM attempts") == [(0,)]
    assert await sql_rows(store, "SELECT COUNT(*) FROM open_questions WHERE user_key = 'test:eve'") == [(0,)]


async def test_a_member_with_the_link_answers_reveals_reads_and_grades_from_the_private_chat(
    store: Store, clock: FakeClock
) -> None:
    admin, post = await private_answers_group(store, clock)
    member = Transcript(admin.core, user="bob", chat="bob-private")
    await member.say(answer_privately_payload(post))
    await member.say("my private answer")
    clock.set(MONDAY_8AM.replace(hour=17, minute=1))  # after the reveal time

    [revealed] = await member.say("/reveal")
    assert revealed.kind == "reveal" and t("en", "answered_by", names="Bob") in revealed.text
    [full] = await member.press(t("en", "button_full"))
    assert full.kind == "answer"
    assert text(await member.press(t("en", "grade_good"))).startswith("Graded")
    assert await sql_rows(store, "SELECT chat_key, user_key, grade FROM attempts") == [
        ("test:group", "test:bob", "good")
    ]


async def test_reveal_full_and_grade_by_number_from_another_chat_are_refused(
    store: Store, clock: FakeClock
) -> None:
    admin, post = await private_answers_group(store, clock)
    bob = admin.member("bob")
    await bob.say("||in the group||", reply_to=post)
    clock.set(MONDAY_8AM.replace(hour=17, minute=1))  # after the reveal time: only the chat matters
    stranger = Transcript(admin.core, user="eve", chat="eve-private")
    other_group = Transcript(admin.core, user="eve", chat="other-group", group=True, admin=True)
    for chat in (stranger, other_group):
        for command in (f"/reveal {post.post_id}", f"/full {post.post_id}", f"/grade good {post.post_id}"):
            assert text(await chat.say(command)) == t("en", "post_elsewhere"), command
    # The group itself, and a thread of it, may.
    assert (await bob.say(f"/reveal {post.post_id}"))[0].kind == "reveal"
    in_a_thread = Transcript(admin.core, user="cat", chat="group", thread="t1", group=True)
    assert (await in_a_thread.say(f"/full {post.post_id}"))[0].kind == "answer"


async def test_who_answered_in_the_group_may_name_the_post_by_its_number_elsewhere(
    store: Store, clock: FakeClock
) -> None:
    admin, post = await private_answers_group(store, clock)
    await admin.member("bob").say("||in the group||", reply_to=post)
    clock.set(MONDAY_8AM.replace(hour=17, minute=1))
    bob_alone = Transcript(admin.core, user="bob", chat="bob-private")
    assert (await bob_alone.say(f"/reveal {post.post_id}"))[0].kind == "reveal"
    assert text(await bob_alone.say(f"/grade good {post.post_id}")).startswith("Graded")


async def test_another_users_quiz_cannot_be_revealed_from_elsewhere(
    store: Store, clock: FakeClock
) -> None:
    core = make_core(store, clock)
    ann = Transcript(core, user="ann", chat="ann-private")
    [asked] = await ann.say("/quiz")
    await ann.say("my answer")
    eve = Transcript(core, user="eve", chat="eve-private")
    for command in (f"/reveal {asked.post_id}", f"/full {asked.post_id}", f"/grade easy {asked.post_id}"):
        assert text(await eve.say(command)) == t("en", "post_elsewhere"), command
    assert (await ann.say(f"/reveal {asked.post_id}"))[0].kind == "reveal"
