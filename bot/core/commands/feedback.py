"""/feedback and the Feedback button: a private review of the caller's answer by the configured model.

Shown only when a model is configured (the core has a Reviewer) and the post's chat has
`/settings feedback on`. Every reply here is private: a Telegram group's button is a deep link to
the member's private chat, Discord answers ephemerally, the console says "only you see this".

The model is asked at most once per member and post, and never twice about the same answer to
the same question (the cache); each request counts against the member's and the chat's daily
limits. Whatever the model does (time out, refuse, send nonsense), the member's answer and grade
stay as they were and the reply says so politely, with the grade buttons.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.core.commands import lookup, texts
from bot.core.feedback import (
    Review,
    ReviewFailed,
    ReviewRequest,
    answer_digest,
    answer_text,
    review_from_json,
    review_to_json,
    suggested_grade,
)
from bot.core.messages import format_when, t
from bot.core.model import Reply
from bot.core.render import escape
from bot.core.store import FeedbackClaim, Post, PostKind

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Call, Core

# A request still pending after this many model timeouts was abandoned (its process died).
STALE_AFTER_TIMEOUTS = 3


async def feedback(core: Core, call: Call) -> list[Reply]:
    """`/feedback [id]`: the review of the caller's answer to that post, or to their latest revealed one."""
    reviewer = core.reviewer
    assert reviewer is not None, "the command exists only with a reviewer"
    words = call.args.split()
    if words:
        found = await lookup.post_by_argument(core, call, words[0])
        if isinstance(found, str):
            return [_private(t(call.lang, found, value=texts.echo(words[0])))]
        post: Post | None = found
    else:
        post = await core.store.latest_answered_post(call.user, call.now)
        if post is None:
            return [_private(t(call.lang, "feedback_nothing"))]
    question = core.bank.get(post.question_id)
    refusal = t(call.lang, "question_gone") if question is None else await _refusal(core, call, post)
    if refusal is not None:
        return [_private(refusal)]
    assert question is not None
    answer = await core.store.current_answer(post.id, call.user)
    if answer is None:
        return [_private(t(call.lang, "feedback_not_answered"))]
    request = ReviewRequest(question.title, question.answer, question.summary, answer_text(answer), call.lang)
    claim = FeedbackClaim(
        post_id=post.id,
        user_key=call.user,
        chat_key=post.chat_key,
        question_id=question.id,
        digest=answer_digest(request),
        day=call.now.date().isoformat(),
        now=call.now,
        stale_before=call.now - timedelta(seconds=core.settings.llm_timeout * STALE_AFTER_TIMEOUTS),
        user_limit=core.settings.llm_user_daily,
        chat_limit=core.settings.llm_chat_daily,
    )
    review = await _review(core, claim, request)
    if isinstance(review, Reply):
        return [review]
    return [_review_reply(call.lang, question.title, post.id, review, reviewer.model)]


async def _refusal(core: Core, call: Call, post: Post) -> str | None:
    """Why there is no feedback on this post: off in its chat, or its answer not out yet."""
    lang = call.lang
    post_chat = call.chat if post.chat_key == call.incoming.chat.key else await core.store.chat(post.chat_key)
    post_settings = core.settings_of(post_chat)
    if not post_settings.feedback:
        return t(lang, "feedback_off")
    if post.kind != PostKind.DAILY or post.revealed_at is not None:
        return None
    if post.reveal_due_at is None:  # claimed by the scheduler, not sent yet
        return t(lang, "no_such_post")
    if call.now < post.reveal_due_at:
        return t(
            lang,
            "feedback_not_revealed",
            when=format_when(lang, post.reveal_due_at, post_settings.zone_info, call.now),
        )
    return None


async def _review(core: Core, claim: FeedbackClaim, request: ReviewRequest) -> Review | Reply:
    """The member's review: the one they had, the cached one for the same answer, or the model's;
    else the reply that says why not (a limit, a request under way, the model's failure)."""
    store, lang = core.store, request.lang
    earlier = await store.feedback(claim.post_id, claim.user_key)
    if earlier is not None and earlier.review is not None:
        return review_from_json(earlier.review)
    cached = await store.cached_feedback(claim.question_id, claim.digest)
    if cached is not None:
        await store.save_feedback(claim, cached)
        return review_from_json(cached)
    outcome = await store.claim_feedback(claim)
    if outcome == "done":  # another request finished in between
        done = await store.feedback(claim.post_id, claim.user_key)
        assert done is not None and done.review is not None
        return review_from_json(done.review)
    if outcome == "pending":
        return _private(t(lang, "feedback_pending"))
    if outcome == "user_limit":
        return _private(t(lang, "feedback_user_limit", limit=claim.user_limit))
    if outcome == "chat_limit":
        return _private(t(lang, "feedback_chat_limit", limit=claim.chat_limit))
    assert core.reviewer is not None
    try:
        review = await core.reviewer.review(request)
    except ReviewFailed as failure:
        # "busy" never reached the model, so it costs the member nothing.
        await store.drop_feedback_claim(claim, refund=failure.kind == "busy")
        return _failure_reply(lang, claim.post_id, failure)
    except BaseException:
        await store.drop_feedback_claim(claim, refund=False)
        raise
    await store.save_feedback(claim, review_to_json(review))
    return review


def _review_reply(lang: str, title: str, post_id: int, review: Review, model: str) -> Reply:
    grade = suggested_grade(review.score)
    lines = [t(lang, "feedback_heading", title=title, score=review.score), ""]
    for heading, points in (("feedback_covered", review.covered), ("feedback_missed", review.missed)):
        lines.append(t(lang, heading))
        lines += [f"• {escape(point)}" for point in points] or [t(lang, "feedback_nothing_listed")]
    if review.advice:
        lines += ["", t(lang, "feedback_advice", advice=escape(review.advice))]
    lines += [
        "",
        t(lang, "feedback_suggested", grade=t(lang, f"grade_{grade}")),
        t(lang, "feedback_caveat", model=escape(model)),
    ]
    # The caller answered the post: its id alone names it for them anywhere (lookup.may_act_on).
    return Reply("\n".join(lines), buttons=(texts.grade_buttons(lang, str(post_id), grade),), private=True)


def _failure_reply(lang: str, post_id: int, failure: ReviewFailed) -> Reply:
    lines = [t(lang, f"feedback_failed_{failure.kind}")]
    if failure.kind != "busy":
        lines.append(t(lang, "feedback_try_again", post=post_id))
    lines.append(t(lang, "feedback_grade_choice"))
    return Reply(" ".join(lines), buttons=(texts.grade_buttons(lang, str(post_id)),), private=True)


def _private(text: str) -> Reply:
    return Reply(text, private=True)
