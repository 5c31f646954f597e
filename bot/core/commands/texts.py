"""The texts the commands and the scheduler share: a question, its reveal, the tags to suggest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core import srs
from bot.core.commands import lookup
from bot.core.messages import t
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


def question_text(lang: str, question: Question) -> str:
    lines = [t(lang, "question_heading", title=question.title)]
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
        return Reply(t(lang, "question_gone"), chat=chat)
    if not in_group:
        hint = "hint_private"
    elif settings.answers == "private":
        hint = "hint_group_private"
    elif post.chat_key.startswith("discord:"):
        hint = "hint_group_thread"  # Discord opens a thread on the post and adds an Answer button
    else:
        hint = "hint_group_spoiler"
    text = question_text(lang, question) + "\n\n" + t(lang, hint)
    buttons = [Button(t(lang, "button_reveal"), f"/reveal {post.id}")]
    if post.kind == PostKind.QUIZ:
        buttons.append(Button(t(lang, "button_skip"), "/skip"))
    elif in_group and settings.answers == "private":
        # Telegram turns a `/start …` payload into a deep link to the bot's private chat; the token
        # lets those who saw the post here, and only them, answer it there.
        link = f"answer-{post.id}-{await lookup.post_token(core, post.id)}"
        buttons.append(Button(t(lang, "button_answer_privately"), f"/start {link}"))
    return Reply(
        text, buttons=(tuple(buttons),), chat=chat, kind="question", question=question, post_id=post.id
    )


async def reveal_reply(
    core: Core, lang: str, post: Post, chat: ChatRef | None, *, shown_in: ChatRef, quote: bool
) -> Reply:
    question = core.bank.get(post.question_id)
    if question is None:
        return Reply(t(lang, "question_gone"), chat=chat)
    if question.summary:
        body, more = question.summary, True
    else:
        body, more = excerpt(question.answer)
    names = await core.store.answerers(post.id)
    lines = [t(lang, "reveal_heading", title=question.title), "", body]
    if more:
        lines += ["", t(lang, "reveal_more")]
    lines += [
        "",
        t(lang, "answered_by", names=", ".join(escape(n) for n in names))
        if names
        else t(lang, "answered_by_nobody"),
    ]
    reference = await lookup.post_reference(core, post, shown_in)
    buttons = (
        (Button(t(lang, "button_full"), f"/full {reference}"),),
        tuple(Button(t(lang, f"grade_{g}"), f"/grade {g} {reference}") for g in srs.GRADES),
    )
    # Quoting the question links the reveal to it (and, on Discord, finds the post's thread
    # after a restart); a reveal asked for from another chat has nothing there to quote.
    return Reply(
        "\n".join(lines),
        buttons=buttons,
        chat=chat,
        kind="reveal",
        question=question,
        post_id=post.id,
        reply_to=post.message_id if quote else None,
    )


def some_tags(core: Core) -> str:
    return ", ".join(escape(tag) for tag, _ in core.bank.tag_counts().most_common(8))


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
