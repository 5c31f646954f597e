"""Which question a message is about: the one it replies to, the one named by an id, or the
user's current one."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.core.model import ChatRef
from bot.core.store import Post

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Call, Core

POST_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits that fit a 64-bit integer


async def replied_post(core: Core, call: Call) -> Post | None:
    reply_to = call.incoming.reply_to
    if reply_to is None:
        return None
    chat = call.incoming.chat
    keys = (chat.key, ChatRef(chat.platform, chat.chat_id).key) if chat.thread_id else (chat.key,)
    return await core.store.post_by_message(keys, reply_to)


async def current_post(core: Core, call: Call) -> Post | None:
    """The question a bare /answer or /reveal is about: the one replied to, else the newer of the
    user's open question in this chat and the chat's latest daily post."""
    replied = await replied_post(core, call)
    return replied or await core.store.current_post(call.user, call.incoming.chat.key)


async def post_by_argument(core: Core, argument: str) -> Post | str:
    """The post named by an id argument, or a message key saying why there is none."""
    if not POST_ID.fullmatch(argument):
        return "bad_post_id"
    post = await core.store.post(int(argument))
    return post if post is not None else "no_such_post"
