"""The texts the commands and the scheduler share: a question, its reveal, the tags to suggest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core import srs
from bot.core.commands import lookup
from bot.core.messages import join_list, t
from bot.core.model import Button, ChatRef, Question, Reply
from bot.core.render import escape
from bot.core.store import Post, PostKind
from bot.core.timing import ChatSettings

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Core

# How much of an answer the reveal shows when the bank gives no summary (cut at a paragraph).
EXCERPT_CHARS = 600
ECHO_LIMIT = 100  # characters of a user's input that a reply repeats


def echo(text: str) -> str:
    """User input repeated in a reply (a bad value, an unknown command): cut, and escaped."""
    return escape(text if len(text) <= ECHO_LIMIT else text[: ECHO_LIMIT - 1] + "…")


def question_text(lang: str, question: Question, post_id: int) -> str:
    lines = [t(lang, "question_heading", title=question.title, number=number(lang, post_id))]
    meta = [escape(part) for part in (question.company, question.round) if part]
    meta += [escape(tag) for tag in question.tags]
    if meta:
        lines.append(" · ".join(meta))
    return "\n".join(lines)


async def question_reply(
    core: Core, lang: str, post: Post, chat: ChatRef | None, in_group: bool, settings: ChatSettings
) -> Reply:
    question = core.bank.get(post.question_id)
    if question is None:
        return Reply(t(lang, "question_gone"), chat=chat, lang=lang)
    if not in_group:
        hint = "hint_private"
    elif settings.answers == "private":
        hint = "hint_group_private"
    elif post.chat_key.startswith("discord:"):
        hint = "hint_group_thread"  # Discord opens a thread on the post and adds an Answer button
    elif post.chat_key.startswith("console:"):
        hint = "hint_group_console"  # a console cannot reply to a message: a line answers
    else:
        hint = "hint_group_spoiler"
    text = question_text(lang, question, post.id) + "\n\n" + t(lang, hint)
    buttons = [Button(t(lang, "button_reveal"), f"/reveal {post.id}")]
    if post.kind == PostKind.QUIZ:
        buttons.append(Button(t(lang, "button_skip"), "/skip"))
    elif in_group and settings.answers == "private":
        # Telegram turns a `/start …` payload into a deep link to the bot's private chat; the token
        # lets those who saw the post here, and only them, answer it there.
        link = f"answer-{post.id}-{await lookup.post_token(core, post.id)}"
        buttons.append(Button(t(lang, "button_answer_privately"), f"/start {link}"))
    return Reply(
        text,
        buttons=(tuple(buttons),),
        chat=chat,
        lang=lang,
        kind="question",
        question=question,
        post_id=post.id,
    )


async def reveal_reply(
    core: Core, lang: str, post: Post, chat: ChatRef | None, *, shown_in: ChatRef, quote: bool
) -> Reply:
    question = core.bank.get(post.question_id)
    if question is None:
        return Reply(t(lang, "question_gone"), chat=chat, lang=lang)
    if question.summary:
        body, more = question.summary, True
    else:
        body, more = excerpt(question.answer)
    names = await core.store.answerers(post.id)
    lines = [t(lang, "reveal_heading", title=question.title, number=number(lang, post.id)), "", body]
    if more:
        lines += ["", t(lang, "reveal_more")]
    lines += [
        "",
        t(lang, "answered_by", names=join_list(lang, map(escape, names)))
        if names
        else t(lang, "answered_by_nobody"),
    ]
    reference = await lookup.post_reference(core, post, shown_in)
    buttons: tuple[tuple[Button, ...], ...] = (
        (Button(t(lang, "button_full"), f"/full {reference}"),),
        grade_buttons(lang, reference),
    )
    if core.reviewer is not None:
        post_chat = await core.store.chat(post.chat_key)
        if core.settings_of(post_chat).feedback:
            in_group = post_chat is not None and post_chat.is_group
            buttons += ((await feedback_button(core, lang, post, shown_in, in_group=in_group),),)
    # Quoting the question links the reveal to it (and, on Discord, finds the post's thread
    # after a restart); a reveal asked for from another chat has nothing there to quote.
    return Reply(
        "\n".join(lines),
        buttons=buttons,
        chat=chat,
        lang=lang,
        kind="reveal",
        question=question,
        post_id=post.id,
        reply_to=post.message_id if quote else None,
    )


def number(lang: str, post_id: int) -> str:
    """How a question's number shows after its title, where /reveal, /full and /grade find it."""
    return t(lang, "post_number", number=post_id)


def grade_buttons(lang: str, reference: str, suggested: str | None = None) -> tuple[Button, ...]:
    """The four grade buttons of a post (named by `reference`: lookup.post_reference); the one a
    review suggests marked."""
    return tuple(
        Button(
            ("✓ " if grade == suggested else "") + t(lang, f"grade_{grade}"), f"/grade {grade} {reference}"
        )
        for grade in srs.GRADES
    )


async def feedback_button(core: Core, lang: str, post: Post, shown_in: ChatRef, *, in_group: bool) -> Button:
    # In a group, a `/start …` payload: Telegram makes it a deep link to the member's private chat,
    # and elsewhere it reaches the core as `/start feedback-N-<token>`, answered privately like
    # /feedback N (the token, as on every link, lets it be asked for outside the group).
    if in_group:
        payload = f"/start feedback-{post.id}-{await lookup.post_token(core, post.id)}"
    else:
        payload = f"/feedback {await lookup.post_reference(core, post, shown_in)}"
    return Button(t(lang, "button_feedback"), payload)


def some_tags(core: Core, lang: str) -> str:
    return join_list(lang, (escape(tag) for tag, _ in core.bank.tag_counts().most_common(8)))


def excerpt(markdown: str, limit: int = EXCERPT_CHARS) -> tuple[str, bool]:
    """The answer's start, whole blocks up to about `limit` characters, never cut inside a code fence.

    Returns the text and whether anything was left out.
    """
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in markdown.strip().splitlines():
        marker = line.lstrip()[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
        if not line.strip() and fence is None:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    taken: list[str] = []
    size = 0
    for block in blocks:
        if taken and size + len(block) > limit:
            break
        taken.append(block)
        size += len(block) + 2
    return "\n\n".join(taken), len(taken) < len(blocks)
