"""What the scheduler asks of the core: the chat's next daily question, the post's text, its reveal."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.core.bank import Bank
from bot.core.commands import texts
from bot.core.model import ChatRef, Question, Reply

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Core


async def choose_daily_question(core: Core, chat_key: str) -> tuple[Question, int]:
    """The chat's next daily question and its cycle; read only (the scheduler claims it).

    No question repeats within a cycle (a pass through the bank, or through the chat's tags);
    the order within a cycle is a fixed shuffle of (chat, cycle), so restarts don't change it.
    """
    settings = await core.chat_settings(chat_key)
    pool = _pool_for_tags(core.bank, settings.tags) or core.bank.questions
    cycle, used, last = await core.store.daily_cycle(chat_key)
    hashes = core.question_hashes
    remaining = [hashes[q.id] for q in pool if q.id not in used]
    if not remaining:
        cycle += 1
        remaining = [hashes[q.id] for q in pool if q.id != last] or [hashes[q.id] for q in pool]
    # The cycle's order: questions sorted by (question hash XOR (chat, cycle) hash), a keyed
    # shuffle that restarts and reloads don't change. Hashes are computed once per bank and
    # the XOR runs in C, so a choice over 10,000 questions takes about a millisecond.
    key = hash64(f"{chat_key}|{cycle}")
    return core.question_by_hash[min(map(key.__xor__, remaining)) ^ key], cycle


async def daily_post_reply(core: Core, post_id: int) -> Reply:
    post = await core.existing_post(post_id)
    chat = await core.store.chat(post.chat_key)
    settings = core.settings_of(chat)
    lang = core.chat_language(settings, chat, None)
    return await texts.question_reply(
        core, lang, post, ChatRef.from_key(post.chat_key), chat.is_group if chat else False, settings
    )


async def reveal_replies(core: Core, post_id: int) -> list[Reply]:
    post = await core.existing_post(post_id)
    chat = await core.store.chat(post.chat_key)
    lang = core.chat_language(core.settings_of(chat), chat, None)
    home = ChatRef.from_key(post.chat_key)
    return [await texts.reveal_reply(core, lang, post, home, shown_in=home, quote=True)]


def hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big")


def _pool_for_tags(bank: Bank, tags: str | None) -> Sequence[Question]:
    """Questions having one of the comma-separated tags or companies; the whole bank for none."""
    wanted = [tag.strip() for tag in (tags or "").split(",") if tag.strip()]
    return bank.with_labels(wanted) if wanted else bank.questions
