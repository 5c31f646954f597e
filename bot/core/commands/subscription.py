"""A chat's daily posts and their settings: /subscribe, /unsubscribe, /settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core.commands import texts
from bot.core.commands.inbound import platform_language
from bot.core.messages import format_days, format_when, join_list, t
from bot.core.model import Reply
from bot.core.render import escape
from bot.core.store import ChatRow
from bot.core.timing import ChatSettings, next_post

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Call, Core

TAGS_LIMIT = 50  # tags and companies a chat's daily questions may be drawn from
# Rounds of read, change and compare-and-set before a change gives up (others kept changing it).
CHANGE_ATTEMPTS = 5


async def subscribe(core: Core, call: Call) -> list[Reply]:
    words = call.args.split()
    if len(words) > 2:
        return [Reply(t(call.lang, "subscribe_usage"))]
    changes = [("time" if word[0].isdigit() else "zone", word) for word in words]  # "25:99" is a bad time
    problems: list[str] = []
    for key, word in changes:
        try:
            call.settings.updated(key, word)
        except ValueError:
            problems.append(t(call.lang, f"bad_{key}", value=texts.echo(word)))
    if problems:
        return [Reply("\n".join(problems))]

    def subscribed(settings: ChatSettings) -> ChatSettings:
        for key, word in changes:
            settings = settings.updated(key, word)
        return replace(settings, paused=False)

    _, settings = await change_chat(core, call, subscribed, subscribe=True)
    first = next_post(settings, call.now)
    return [
        Reply(
            t(
                call.lang,
                "subscribed",
                time=settings.time,
                zone=escape(settings.zone),
                days=format_days(call.lang, settings.days),
                first=format_when(call.lang, first, settings.zone_info, call.now),
            )
        )
    ]


async def unsubscribe(core: Core, call: Call) -> list[Reply]:
    stopped = await core.store.unsubscribe(call.incoming.chat.key)
    return [Reply(t(call.lang, "unsubscribed" if stopped else "not_subscribed"))]


async def settings(core: Core, call: Call) -> list[Reply]:
    if not call.args:
        return [Reply(settings_text(core.setting_keys, call.lang, call.settings, call.chat, call.now))]
    key, _, value = call.args.partition(" ")
    key, value = key.casefold(), value.strip()
    if key not in core.setting_keys:
        keys = join_list(call.lang, core.setting_keys)
        return [Reply(t(call.lang, "unknown_setting", key=texts.echo(key), keys=keys))]
    if not value:
        return [Reply(t(call.lang, "setting_needs_value", key=key, example=t(call.lang, f"example_{key}")))]
    if key == "tags" and (count := value.count(",") + 1) > TAGS_LIMIT:
        return [Reply(t(call.lang, "too_many_tags", count=count, limit=TAGS_LIMIT))]
    if not await call.is_admin():
        return [Reply(t(call.lang, "admins_only", command="/settings"))]
    if key == "role" and call.incoming.platform != "discord":
        return [Reply(t(call.lang, "role_discord_only"))]
    try:
        checked = call.settings.updated(key, value)
    except ValueError:
        return [Reply(t(call.lang, f"bad_{key}", value=texts.echo(value)))]
    if key == "tags" and checked.tags:
        unknown = [tag for tag in checked.tags.split(",") if not core.bank.knows_label(tag)]
        if unknown:
            tags, known = texts.echo(join_list(call.lang, unknown)), texts.some_tags(core, call.lang)
            return [Reply(t(call.lang, "unknown_tags", tags=tags, known=known))]
    chat, settings = await change_chat(core, call, lambda settings: settings.updated(key, value))
    lang = core.chat_language(settings, chat, call.incoming.lang)
    shown = getattr(settings, key)
    lines = [t(lang, "setting_saved", key=key, value=setting_value(lang, key, shown))]
    if key == "feedback" and settings.feedback and core.reviewer is not None:
        lines.append(t(lang, "feedback_turned_on", model=escape(core.reviewer.model)))
    if chat is not None and chat.subscribed and not settings.paused:
        lines.append(
            t(
                lang,
                "next_post",
                when=format_when(lang, next_post(settings, call.now), settings.zone_info, call.now),
            )
        )
    return [Reply("\n".join(lines))]


async def change_chat(
    core: Core, call: Call, change: Callable[[ChatSettings], ChatSettings], *, subscribe: bool = False
) -> tuple[ChatRow | None, ChatSettings]:
    """Apply `change` to the chat's settings as stored now, and store the result unless another
    change came meanwhile (two admins at once, each past their own admin check): then again, from
    that one, so both are kept. Only instants after now are due when the schedule changes or the
    chat subscribes. Returns the chat as it was, and its new settings."""
    for _ in range(CHANGE_ATTEMPTS):
        chat = await core.store.chat(call.incoming.chat.key)
        before = core.settings_of(chat)
        after = change(before)
        reschedule = (subscribe and not (chat and chat.subscribed)) or (
            (after.time, after.zone, after.days) != (before.time, before.zone, before.days)
        )
        if await core.store.save_chat(
            call.incoming.chat,
            call.in_group,
            after.to_json(),
            call.now,
            revision=chat.revision if chat else 0,
            subscribed=True if subscribe else None,
            reschedule=reschedule,
            platform_lang=platform_language(call.incoming.lang),
        ):
            return chat, after
    raise RuntimeError(f"the settings of {call.incoming.chat.key} kept changing while being saved")


def settings_text(
    keys: tuple[str, ...], lang: str, settings: ChatSettings, chat: ChatRow | None, now: datetime
) -> str:
    lines = [t(lang, "settings_heading")]
    for key in keys:
        lines.append(f"{key}: {setting_value(lang, key, getattr(settings, key))}")
    lines.append("")
    if chat is not None and chat.subscribed:
        if settings.paused:
            lines.append(t(lang, "status_paused"))
        else:
            when = format_when(lang, next_post(settings, now), settings.zone_info, now)
            lines.append(t(lang, "status_subscribed", when=when))
    else:
        lines.append(t(lang, "status_not_subscribed"))
    lines.append(t(lang, "settings_how"))
    return "\n".join(lines)


def setting_value(lang: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        return t(lang, "setting_on" if value else "setting_off")
    if value is None:
        return t(lang, f"unset_{key}")
    if key == "days":
        return format_days(lang, str(value))
    return escape(str(value))
