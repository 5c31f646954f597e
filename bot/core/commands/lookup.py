"""Which question a message is about: the one it replies to, the one named by an id, or the
user's current one; and who may act on a post from where."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING

from bot.core.model import ChatRef
from bot.core.store import Post

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Call, Core

# A post as a command names it: its id, then, when it is shown outside the post's own chat, a dash
# and its token (`12-9f3a…`). Buttons and links carry the token; people type the id.
POST_ARGUMENT = re.compile(r"(?P<id>[0-9]+)(?:-(?P<token>[0-9a-f]+))?")
MAX_POST_ID = 2**63 - 1  # the largest id a database holds: a bigger number names no post
LINK_SECRET = "post-links"  # the name of the database's secret behind the tokens
TOKEN_CHARS = 20  # hex digits of an HMAC-SHA256: 80 bits, never guessed through a chat


async def replied_post(core: Core, call: Call) -> Post | None:
    reply_to = call.incoming.reply_to
    if reply_to is None:
        return None
    chat = call.incoming.chat
    keys = (chat.key, ChatRef(chat.platform, chat.chat_id).key) if chat.thread_id else (chat.key,)
    return await core.store.post_by_message(keys, reply_to)


async def current_post(core: Core, call: Call) -> Post | None:
    """The question a bare /answer or /reveal is about: the one replied to, else the newer of the
    user's open question in this chat and the chat's latest daily post; in a group, a /quiz any
    member asked counts as the group's question too. All are this chat's own, or (an open
    question) were opened here through the post's link: the caller may act on them."""
    replied = await replied_post(core, call)
    return replied or await core.store.current_post(call.user, call.incoming.chat.key, any_kind=call.in_group)


async def post_by_argument(core: Core, call: Call, argument: str) -> Post | str:
    """The post an argument names (`12`, or `12-<token>`), if the caller may act on it from here;
    else a message key saying why not (its messages take the argument as `value`)."""
    named = POST_ARGUMENT.fullmatch(argument)
    if named is None:
        return "bad_post_id"
    number = named["id"].lstrip("0") or "0"
    exists = len(number) <= len(str(MAX_POST_ID)) and int(number) <= MAX_POST_ID
    post = await core.store.post(int(number)) if exists else None
    if post is None:
        return "no_such_post"
    return post if await may_act_on(core, call, post, named["token"]) else "post_elsewhere"


async def may_act_on(core: Core, call: Call, post: Post, token: str | None) -> bool:
    """Who may act on a post from where, for every command that names one (answering through the
    private link, /reveal, /full, /grade, /feedback): anyone in the post's own chat, a thread or
    topic of it included; from anywhere else, only with proof of having seen it there: the post's
    token, which only the buttons and links shown in its chat carry, or an answer to it (given in
    its chat or through its link). An id alone, seen or guessed, opens nothing from elsewhere."""
    if _same_chat(call.incoming.chat, ChatRef.from_key(post.chat_key)):
        return True
    if token is not None and hmac.compare_digest(token, await post_token(core, post.id)):
        return True
    return await core.store.attempt(post.id, call.user) is not None


async def post_token(core: Core, post_id: int) -> str:
    """The post's unguessable token: an HMAC of its id with a secret the database keeps."""
    key = await core.link_key()
    return hmac.new(key, str(post_id).encode(), hashlib.sha256).hexdigest()[:TOKEN_CHARS]


async def post_reference(core: Core, post: Post, shown_in: ChatRef) -> str:
    """How a button shown in `shown_in` names the post: its id, and its token outside its chat."""
    if _same_chat(shown_in, ChatRef.from_key(post.chat_key)):
        return str(post.id)
    return f"{post.id}-{await post_token(core, post.id)}"


def _same_chat(one: ChatRef, other: ChatRef) -> bool:
    """The same chat, whatever thread or topic of it (members of a group see all of them)."""
    return (one.platform, one.chat_id) == (other.platform, other.chat_id)
