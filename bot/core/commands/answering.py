"""Getting a question and answering it: /quiz, /skip, /answer, plain replies, and answering a
group's question in private."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bot.core.commands import lookup, texts
from bot.core.commands.inbound import looks_hidden
from bot.core.messages import count_of, t
from bot.core.model import Question, Reply
from bot.core.store import Post, PostKind

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Call, Core

# /quiz looks at this many due reviews for one that fits the filter before taking new questions.
DUE_LOOKAHEAD = 20
ANSWER_LIMIT = 4000  # characters; Discord's answer box takes as many
# Random candidates checked against what the user has seen before looking at the whole pool.
RANDOM_PROBES = 16
SPOILER_MARKS = re.compile(r"\|\|(.+?)\|\|", re.DOTALL)  # ||hidden|| → hidden, for counting


async def answer_privately(core: Core, call: Call, post: Post) -> list[Reply]:
    """Make a group's question (its link was followed) the one the user answers in this chat."""
    question = core.bank.get(post.question_id)
    if question is None:
        return [Reply(t(call.lang, "question_gone"))]
    incoming = call.incoming
    await core.store.open_post(
        incoming.chat, incoming.is_group, call.user, incoming.user_name, post.id, call.now
    )
    return [Reply(texts.question_text(call.lang, question, post.id) + "\n\n" + t(call.lang, "answer_here"))]


async def quiz(core: Core, call: Call) -> list[Reply]:
    opened = await core.store.open_question(call.user, call.incoming.chat.key)
    return await _serve_quiz(core, call, call.args, [opened.post.question_id] if opened else [])


async def skip(core: Core, call: Call) -> list[Reply]:
    opened = await core.store.open_question(call.user, call.incoming.chat.key)
    own_quiz = opened is not None and opened.post.kind == PostKind.QUIZ and opened.post.user_key == call.user
    if call.in_group and not own_quiz:
        return [Reply(t(call.lang, "skip_where"))]
    quiz_filter = opened.filter if opened else ""
    if opened is not None and len(_pool(core, quiz_filter)) == 1:
        key = "skip_only_one" if quiz_filter else "skip_only_question"
        return [Reply(t(call.lang, key, filter=texts.echo(quiz_filter)))]
    # Every question served and left unanswered since the last answer, newest first: none of
    # them comes back while another matches (more than the bank holds cannot matter).
    skipped = await core.store.skipped_questions(call.user, call.incoming.chat.key, len(core.bank))
    current = [opened.post.question_id] if opened else []
    return await _serve_quiz(core, call, quiz_filter, list(dict.fromkeys([*current, *skipped])))


def _pool(core: Core, quiz_filter: str) -> Sequence[Question]:
    return core.bank.matching(quiz_filter) if quiz_filter else core.bank.questions


async def _serve_quiz(core: Core, call: Call, quiz_filter: str, avoid: Sequence[str]) -> list[Reply]:
    """A new question for the user, none of `avoid` (newest first) while another matches."""
    pool = _pool(core, quiz_filter)
    if not pool:
        tags = texts.some_tags(core, call.lang)
        return [Reply(t(call.lang, "no_match", filter=texts.echo(quiz_filter), tags=tags))]
    question = await _pick_for_user(core, call, pool, bool(quiz_filter), avoid)
    incoming = call.incoming
    post = await core.store.add_quiz(
        incoming.chat,
        incoming.is_group,
        call.user,
        incoming.user_name,
        question.id,
        quiz_filter,
        call.now,
    )
    return [await texts.question_reply(core, call.lang, post, None, call.in_group, call.settings)]


async def _pick_for_user(
    core: Core, call: Call, pool: Sequence[Question], filtered: bool, avoid: Sequence[str]
) -> Question:
    """Due reviews first, then questions the user has not seen; none of `avoid` (the questions
    just seen here, newest first) while another matches, else the one seen longest ago."""
    in_pool: Callable[[str], bool] = (
        {q.id for q in pool}.__contains__ if filtered else core.bank.by_id.__contains__
    )
    avoided = set(avoid)
    for question_id in await core.store.due_reviews(call.user, call.now, DUE_LOOKAHEAD):
        if question_id not in avoided and in_pool(question_id):
            return core.bank.by_id[question_id]
    # Usually most of the pool is unseen: ask about a few random candidates at once rather
    # than loading everything the user has ever seen.
    candidates = core.rng.sample(pool, min(len(pool), RANDOM_PROBES))
    seen = await core.store.seen_questions(call.user, among=[q.id for q in candidates])
    fresh = [q for q in candidates if q.id not in seen and q.id not in avoided]
    if fresh:
        return fresh[0]
    seen = await core.store.seen_questions(call.user)
    unseen = [q for q in pool if q.id not in seen and q.id not in avoided]
    if unseen:
        return core.rng.choice(unseen)
    # Everything seen: start over, anything not just seen, else the one seen longest ago.
    others = [q for q in pool if q.id not in avoided]
    if others:
        return core.rng.choice(others)
    oldest = next((question_id for question_id in reversed(avoid) if in_pool(question_id)), None)
    return core.bank.by_id[oldest] if oldest else core.rng.choice(pool)


async def answer(core: Core, call: Call) -> list[Reply]:
    if call.incoming.edited:  # see plain_text
        post = await lookup.replied_post(core, call)
        return await _save_answer(core, call, post, call.args) if post and call.args else []
    if not call.args:
        return [Reply(t(call.lang, "answer_usage"))]
    post = await lookup.current_post(core, call)
    if post is None:
        return [Reply(t(call.lang, "nothing_to_answer"))]
    return await _save_answer(core, call, post, call.args)


async def plain_text(core: Core, call: Call, text: str) -> list[Reply]:
    """A message that is not a command answers the question it replies to, or, in a private
    chat, the open question. Anything else in a group is conversation, not for us.

    An edit changes only an answer given as a reply: which question an unreplied original
    answered is not known, and the open question may have changed since."""
    if call.in_group or call.incoming.edited:
        post = await lookup.replied_post(core, call)
        if post is None:
            # Hidden text is how answers look in a group: say how to answer rather than drop it
            # (an edit's original had that hint already).
            if not call.incoming.edited and (call.incoming.hidden or looks_hidden(text)):
                return [Reply(t(call.lang, "answer_unmatched"), reply_to=call.incoming.message_id)]
            return []
    else:
        post = await lookup.current_post(core, call)
        if post is None:
            return [Reply(t(call.lang, "private_hint"))]
    return await _save_answer(core, call, post, text) if text else []


async def _save_answer(core: Core, call: Call, post: Post, text: str) -> list[Reply]:
    question = core.bank.get(post.question_id)
    if question is None:
        return [Reply(t(call.lang, "question_gone"))]
    if len(text) > ANSWER_LIMIT:  # nothing is stored; the user still has their text
        return [Reply(t(call.lang, "answer_too_long", limit=ANSWER_LIMIT, length=len(text)))]
    post_chat = call.chat if post.chat_key == call.incoming.chat.key else await core.store.chat(post.chat_key)
    zone = core.settings_of(post_chat).zone_info
    hidden = call.incoming.hidden or looks_hidden(text)
    outcome = await core.store.add_attempt(
        post,
        call.user,
        call.incoming.user_name,
        text,
        hidden,
        call.now.astimezone(zone).date().isoformat(),
        call.now,
    )
    if outcome not in ("added", "replaced"):
        # Kept: a graded answer, or any once the reference is out (else anyone could read it,
        # then answer and grade themselves `easy`). The message says why and offers /quiz.
        key = "answers_closed" if outcome == "closed" else f"answer_{outcome}"
        return [Reply(t(call.lang, key, title=question.title), reply_to=call.incoming.message_id)]
    key = "answer_updated" if outcome == "replaced" else "answer_saved"
    replies = [
        Reply(
            t(
                call.lang,
                key,
                title=question.title,
                chars=count_of(call.lang, "characters", len(SPOILER_MARKS.sub(r"\1", text).strip())),
            ),
            reply_to=call.incoming.message_id,
        )
    ]
    if call.in_group and not hidden:
        reminder = "private_reminder" if call.settings.answers == "private" else "spoiler_reminder"
        replies.append(Reply(t(call.lang, reminder)))
    return replies
