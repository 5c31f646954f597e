"""After answering: /reveal (the summary), /full (the whole answer) and /grade (spaced repetition)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core import srs
from bot.core.commands import lookup, texts
from bot.core.messages import format_day, format_when, t
from bot.core.model import Reply
from bot.core.render import escape
from bot.core.store import Post, PostKind

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Call, Core

# Rounds of read, review and compare-and-set before a grade gives up (its card kept changing).
GRADE_ATTEMPTS = 5


async def reveal(core: Core, call: Call) -> list[Reply]:
    post, refusal = await _revealable_post(core, call)
    if post is None:
        return [Reply(refusal)]
    if post.kind == PostKind.QUIZ or post.chat_key == call.incoming.chat.key:
        # The answer is out: the post takes no more answers, and a daily post's scheduled reveal
        # would only repeat it. A quiz has no scheduled reveal: its first /reveal anywhere is it.
        await core.store.mark_revealed(post.id, call.now)
    here = call.incoming.chat
    return [
        await texts.reveal_reply(core, call.lang, post, None, shown_in=here, quote=post.chat_key == here.key)
    ]


async def full(core: Core, call: Call) -> list[Reply]:
    post, refusal = await _revealable_post(core, call)
    if post is None:
        return [Reply(refusal)]
    question = core.bank.get(post.question_id)
    if question is None:
        return [Reply(t(call.lang, "question_gone"))]
    number = texts.number(call.lang, post.id)
    heading = t(call.lang, "full_answer_heading", title=question.title, number=number)
    return [Reply(f"{heading}\n\n{question.answer}", kind="answer", question=question, post_id=post.id)]


async def _revealable_post(core: Core, call: Call) -> tuple[Post | None, str]:
    """The post /reveal or /full is about if this user may see its answer now, else why not."""
    if call.args:
        argument = call.args.split()[0]
        found = await lookup.post_by_argument(core, call, argument)
        if isinstance(found, str):
            return None, t(call.lang, found, value=texts.echo(argument))
        post = found
    else:
        post = await lookup.current_post(core, call)
        if post is None:
            return None, t(call.lang, "nothing_to_reveal")
    if post.kind != PostKind.DAILY or post.revealed_at is not None:
        return post, ""
    if post.reveal_due_at is None:  # claimed by the scheduler but not sent yet
        return None, t(call.lang, "no_such_post")
    if call.now >= post.reveal_due_at:
        return post, ""
    here = post.chat_key == call.incoming.chat.key
    post_chat = call.chat if here else await core.store.chat(post.chat_key)
    if post_chat is None or not post_chat.is_group or (here and await call.is_admin()):
        return post, ""
    settings = core.settings_of(post_chat)
    when = format_when(call.lang, post.reveal_due_at, settings.zone_info, call.now)
    return None, t(call.lang, "reveal_not_yet", when=when)


async def grade(core: Core, call: Call) -> list[Reply]:
    words = call.args.split()
    grade = words[0].casefold() if words else ""
    if grade not in srs.GRADES or len(words) > 2:
        return [Reply(t(call.lang, "grade_usage"))]
    if len(words) == 2:
        found = await lookup.post_by_argument(core, call, words[1])
        if isinstance(found, str):
            return [Reply(t(call.lang, found, value=texts.echo(words[1])))]
        post: Post | None = found
    else:
        post = await lookup.current_post(core, call)
    if post is None:
        return [Reply(t(call.lang, "nothing_to_grade"))]
    # The card is written back only if nobody changed it since it was read (a grade of another
    # post of the same question, at the same moment); else it is read and reviewed again.
    for _ in range(GRADE_ATTEMPTS):
        answered = await core.store.attempt(post.id, call.user)
        if answered is None:
            return [Reply(t(call.lang, "grade_not_answered", name=escape(call.incoming.user_name)))]
        attempt, review = answered
        # A re-grade of the same post starts again from the card before its first grade, so
        # the review is applied once; a newer review of the question (another post) wins.
        if review is not None and review.post_id == post.id:
            before = review.previous_card
        elif attempt.grade is not None:
            return [Reply(t(call.lang, "grade_superseded"))]
        else:
            before = review.card if review else None
        card, due = srs.review(before, grade, call.now, core.srs_scheduler)
        if await core.store.grade(attempt, call.user, grade, before, card, due, call.now, replacing=review):
            break
    else:
        raise RuntimeError(f"{call.user}'s card for {post.question_id} kept changing while being graded")
    zone = call.settings.zone_info
    return [
        Reply(
            t(
                call.lang,
                "graded",
                grade=t(call.lang, f"grade_{grade}"),
                next=format_day(call.lang, due.astimezone(zone).date(), call.today()),
            )
        )
    ]
