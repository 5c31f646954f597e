"""A chat's daily posts and their settings: /subscribe, /unsubscribe, /settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core.bank import Bank
from bot.core.commands import texts
from bot.core.commands.inbound import platform_language
from bot.core.messages import format_when, t
from bot.core.model import Reply
from bot.core.render import escape
from bot.core.store import ChatRow
from bot.core.timing import KEYS as SETTING_KEYS
from bot.core.timing import ChatSettings, next_post

if TYPE_CHECKING:
    from bot.core.commands.dispatch import Call, Core


async def subscribe(core: Core, call: Call) -> list[Reply]:
    words = call.args.split()
    if len(words) > 2:
        return [Reply(t(call.lang, "subscribe_usage"))]
    settings = call.settings
    problems: list[str] = []
    for word in words:
        key = "time" if word[0].isdigit() else "zone"  # "25:99" is a bad time, not a bad zone
        try:
            settings = settings.updated(key, word)
        except ValueError:
            problems.append(t(call.lang, f"bad_{key}", value=escape(word)))
    if problems:
        return [Reply("\n".join(problems))]
    settings = replace(settings, paused=False)
    changed = (
        call.chat is None
        or not call.chat.subscribed
        or (settings.time, settings.zone, settings.days)
        != (call.settings.time, call.settings.zone, call.settings.days)
    )
    await core.store.save_chat(
        call.incoming.chat,
        call.in_group,
        settings.to_json(),
        call.now,
        subscribed=True,
        reschedule=changed,
        platform_lang=platform_language(call.incoming.lang),
    )
    first = next_post(settings, call.now)
    return [
        Reply(
            t(
                call.lang,
                "subscribed",
                time=settings.time,
                zone=escape(settings.zone),
                days=settings.days,
                first=format_when(call.lang, first, settings.zone_info, call.now),
            )
        )
    ]


async def unsubscribe(core: Core, call: Call) -> list[Reply]:
    stopped = await core.store.unsubscribe(call.incoming.chat.key)
    return [Reply(t(call.lang, "unsubscribed" if stopped else "not_subscribed"))]


async def settings(core: Core, call: Call) -> list[Reply]:
    if not call.args:
        return [Reply(settings_text(call.lang, call.settings, call.chat, call.now))]
    key, _, value = call.args.partition(" ")
    key, value = key.casefold(), value.strip()
    if key not in SETTING_KEYS:
        return [Reply(t(call.lang, "unknown_setting", key=escape(key), keys=", ".join(SETTING_KEYS)))]
    if not value:
        return [Reply(t(call.lang, "setting_needs_value", key=key, example=t(call.lang, f"example_{key}")))]
    if not await call.is_admin():
        return [Reply(t(call.lang, "admins_only", command="/settings"))]
    try:
        settings = call.settings.updated(key, value)
    except ValueError:
        return [Reply(t(call.lang, f"bad_{key}", value=escape(value)))]
    if key == "tags" and settings.tags:
        unknown = [tag for tag in settings.tags.split(",") if tag.casefold() not in _known_labels(core.bank)]
        if unknown:
            return [
                Reply(
                    t(call.lang, "unknown_tags", tags=escape(", ".join(unknown)), known=texts.some_tags(core))
                )
            ]
    schedule_changed = key in ("time", "zone", "days") and settings != call.settings
    await core.store.save_chat(
        call.incoming.chat,
        call.in_group,
        settings.to_json(),
        call.now,
        reschedule=schedule_changed,
        platform_lang=platform_language(call.incoming.lang),
    )
    lang = core.chat_language(settings, call.chat, call.incoming.lang)
    shown = getattr(settings, key)
    lines = [t(lang, "setting_saved", key=key, value=setting_value(lang, key, shown))]
    if call.chat is not None and call.chat.subscribed and not settings.paused:
        lines.append(
            t(
                lang,
                "next_post",
                when=format_when(lang, next_post(settings, call.now), settings.zone_info, call.now),
            )
        )
    return [Reply("\n".join(lines))]


def settings_text(lang: str, settings: ChatSettings, chat: ChatRow | None, now: datetime) -> str:
    lines = [t(lang, "settings_heading")]
    for key in SETTING_KEYS:
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
        return "on" if value else "off"
    if value is None:
        return t(lang, f"unset_{key}")
    return escape(str(value))


def _known_labels(bank: Bank) -> set[str]:
    return {tag.casefold() for tag in bank.tag_counts()} | {c.casefold() for c in bank.company_counts()}
