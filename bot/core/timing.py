"""When each chat's daily post and its reveal are due: chat settings and pure time functions.

Everything here is a pure function of the settings and instants handed in (timezone-aware UTC
datetimes); the loop that acts on it is `bot.core.scheduler`.

Time rules: a post is due only for a scheduled instant after the subscription or
the last settings change; a local time that occurs twice (fall-back) posts at its first
occurrence; a local time that does not exist (spring-forward) posts at the first instant after
the gap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, cached_property, lru_cache
from zoneinfo import ZoneInfo, available_timezones

from bot.config import Settings
from bot.core.messages import LANGUAGES

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ALL_DAYS = frozenset(range(7))
_DAY_GROUPS = {
    "daily": ALL_DAYS,
    "everyday": ALL_DAYS,
    "all": ALL_DAYS,
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}
# Nothing is ever scanned past this many local days: every weekday occurs within a week.
_WEEK = 8


# --- parsing one setting ------------------------------------------------------------------


def parse_time(text: str) -> time:
    match = re.fullmatch(r"\s*(\d{1,2})[:.](\d{2})\s*", text)
    if match:
        hour, minute = int(match[1]), int(match[2])
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise ValueError(f'"{text}" is not a time of day: use HH:MM on a 24-hour clock, e.g. 09:30 or 18:00')


def format_time(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


@cache
def _zones_by_folded_name() -> dict[str, str]:
    # "localtime" is this machine's zone, "Factory" a placeholder: neither is a place.
    return {name.casefold(): name for name in available_timezones() - {"localtime", "Factory"}}


def parse_zone(text: str) -> ZoneInfo:
    """An IANA zone; the name's case does not matter ("europe/berlin" is Europe/Berlin)."""
    canonical = _zones_by_folded_name().get(text.strip().casefold())
    if canonical is None:
        raise ValueError(
            f'"{text}" is not a time zone I know: use an IANA name such as Europe/Berlin, '
            "America/New_York, Asia/Kolkata or UTC"
        )
    return ZoneInfo(canonical)


def _day_number(name: str, whole: str) -> int:
    word = name.strip().casefold()
    word = word[:-1] if word.endswith("days") else word  # "mondays"
    if len(word) >= 2:  # "tu", "thu", "thurs", "monday": a prefix of one full name
        for number, full in enumerate(_FULL_DAY_NAMES):
            if full.startswith(word):
                return number
    raise ValueError(
        f'"{whole}" is not a list of days: "{name.strip()}" is not a weekday; '
        "use e.g. mon-fri, mon,wed,fri, weekends or daily"
    )


def parse_days(text: str) -> frozenset[int]:
    """Weekday numbers (0 = Monday) from "daily", "weekdays", "mon-fri", "mon,wed,fri", "fri-mon"."""
    folded = re.sub(r"\s+", "", text.casefold())
    if folded in _DAY_GROUPS:
        return _DAY_GROUPS[folded]
    days: set[int] = set()
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        first, dash, last = part.partition("-")
        start = _day_number(first, text)
        if not dash:
            days.add(start)
            continue
        end = _day_number(last, text)
        days.update((start + step) % 7 for step in range((end - start) % 7 + 1))  # fri-mon wraps
    if not days:
        raise ValueError(f'"{text}" names no days: use e.g. mon-fri, mon,wed,fri, weekends or daily')
    return frozenset(days)


def format_days(days: frozenset[int]) -> str:
    """The shortest usual spelling: "daily", "mon-fri", "mon,wed,fri", "mon-wed,sat"."""
    if days == ALL_DAYS:
        return "daily"
    parts: list[str] = []
    ordered = sorted(days)
    run_start = previous = ordered[0]
    for day in [*ordered[1:], None]:
        if day is not None and day == previous + 1:
            previous = day
            continue
        if previous - run_start >= 2:
            parts.append(f"{DAY_NAMES[run_start]}-{DAY_NAMES[previous]}")
        else:
            parts.extend(DAY_NAMES[d] for d in range(run_start, previous + 1))
        if day is not None:
            run_start = previous = day
    return ",".join(parts)


def parse_duration(text: str) -> timedelta:
    """A duration such as 3h, 90m, 1h30m or 2d; at least a minute."""
    match = re.fullmatch(r"\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*", text.casefold())
    if match and any(match.groups()):
        days, hours, minutes = (int(group or 0) for group in match.groups())
        duration = timedelta(days=days, hours=hours, minutes=minutes)
        if duration >= timedelta(minutes=1):
            return duration
    raise ValueError(f'"{text}" is not a duration: use hours and/or minutes, e.g. 3h, 90m or 1h30m')


def format_duration(duration: timedelta) -> str:
    minutes = int(duration.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text


@dataclass(frozen=True)
class RevealRule:
    """Exactly one of: a delay after the post, a local time of day, or just before the next post."""

    after: timedelta | None = None
    at: time | None = None
    before_next: bool = False

    def __str__(self) -> str:
        if self.after is not None:
            return format_duration(self.after)
        if self.at is not None:
            return format_time(self.at)
        return "next"


MAX_REVEAL_DELAY = timedelta(days=7)


def parse_reveal(text: str) -> RevealRule:
    word = text.strip().casefold()
    if word in ("next", "before next", "before-next"):
        return RevealRule(before_next=True)
    if ":" in word:
        return RevealRule(at=parse_time(word))
    try:
        delay = parse_duration(word)
    except ValueError:
        raise ValueError(
            f'"{text}" is not a reveal rule: use a delay (4h, 90m), a local time (18:00) '
            "or next (just before the next post)"
        ) from None
    if delay > MAX_REVEAL_DELAY:
        raise ValueError(
            f'"{text}" is too long a wait: reveal within {format_duration(MAX_REVEAL_DELAY)}, e.g. 8h'
        )
    return RevealRule(after=delay)


# --- a chat's settings ----------------------------------------------------------------------

ANSWER_MODES = ("spoiler", "private")
_ON = ("on", "yes", "true", "1", "paused")
_OFF = ("off", "no", "false", "0", "resume", "resumed")
_CLEAR = ("none", "off", "-", "all", "any", "default", "auto")

_EXAMPLES = {"tags": "python,sql", "role": "Study"}

KEYS = ("time", "zone", "days", "reveal", "tags", "answers", "lang", "role", "paused", "feedback")
SWITCHES = ("paused", "feedback")  # on or off


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> str:
    word = value.strip().casefold()
    if word in allowed:
        return word
    raise ValueError(f'"{value}" is not a choice for {key}: use ' + " or ".join(allowed))


def validate(key: str, value: str) -> str:
    """The normalised text of one setting (`""` clears an optional one), or ValueError saying why not."""
    key = key.strip().casefold()
    value = value.strip()
    if key == "time":
        return format_time(parse_time(value))
    if key == "zone":
        return parse_zone(value).key
    if key == "days":
        return format_days(parse_days(value))
    if key == "reveal":
        return str(parse_reveal(value))
    if key == "answers":
        return _one_of("answers", value, ANSWER_MODES)
    if key in SWITCHES:
        word = value.casefold()
        if word in _ON or word in _OFF:
            return "on" if word in _ON else "off"
        raise ValueError(f'"{value}" is not on or off: use /settings {key} on (or off)')
    if key == "lang":
        return "" if value.casefold() in _CLEAR else _one_of("lang", value, LANGUAGES)
    if key in ("tags", "role"):
        if not value:
            raise ValueError(f"{key} needs a value, e.g. /settings {key} {_EXAMPLES[key]} (none clears it)")
        if key == "tags":
            value = ",".join(tag.strip() for tag in value.split(",") if tag.strip())
        return "" if value.casefold() in _CLEAR else value
    raise ValueError(f'"{key}" is not a setting: use one of ' + ", ".join(KEYS))


@dataclass(frozen=True)
class ChatSettings:
    """A chat's schedule and preferences, stored as JSON in chats.settings; values are normalised text."""

    time: str
    zone: str
    days: str = "daily"
    reveal: str = "8h"
    tags: str | None = None  # comma-separated tags or companies the daily question is drawn from
    answers: str = "spoiler"
    lang: str | None = None  # None: the platform's language, else DAILYQ_LANG
    role: str | None = None  # Discord: members with this role (id or name) count as the chat's admins
    paused: bool = False
    feedback: bool = False  # members may ask the configured model to review their answers

    @classmethod
    def default(cls, defaults: Settings) -> ChatSettings:
        return cls(time=validate("time", defaults.post_time), zone=validate("zone", defaults.timezone))

    @classmethod
    def from_json(cls, data: dict, defaults: Settings) -> ChatSettings:
        """Stored settings over the defaults; a stored value that no longer validates keeps the default.

        (A zone can disappear from tzdata, a rule can tighten: one stale value must not stop a chat.)
        """
        stored = tuple((key, data[key]) for key in KEYS if data.get(key) is not None)
        return _from_stored(stored, defaults.post_time, defaults.timezone)

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def updated(self, key: str, value: str) -> ChatSettings:
        """These settings with one key set from user text; ValueError (a message for the user) if bad."""
        return replace(self, **{key.strip().casefold(): _field_value(key, validate(key, value))})

    # Parsed once per instance: the scheduler asks for them every minute for every chat.
    @cached_property
    def post_time(self) -> time:
        return parse_time(self.time)

    @cached_property
    def zone_info(self) -> ZoneInfo:
        return parse_zone(self.zone)

    @cached_property
    def weekdays(self) -> frozenset[int]:
        return parse_days(self.days)

    @cached_property
    def reveal_rule(self) -> RevealRule:
        return parse_reveal(self.reveal)


def _field_value(key: str, normalised: str) -> str | bool | None:
    """A validated setting as its ChatSettings field: paused is a bool, "" clears an optional one."""
    key = key.strip().casefold()
    if key in SWITCHES:
        return normalised == "on"
    if key in ("tags", "lang", "role"):
        return normalised or None
    return normalised


@lru_cache(maxsize=4096)  # chats mostly share a few distinct settings; instances are immutable
def _from_stored(stored: tuple[tuple[str, object], ...], post_time: str, timezone: str) -> ChatSettings:
    values: dict[str, object] = {"time": validate("time", post_time), "zone": validate("zone", timezone)}
    for key, value in stored:
        text = ("on" if value else "off") if isinstance(value, bool) else str(value)
        try:
            values[key] = _field_value(key, validate(key, text))
        except ValueError:
            continue
    return ChatSettings(**values)  # type: ignore[arg-type]


# --- time -----------------------------------------------------------------------------------


def post_instant(local_date: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of `at` on `local_date` in `zone`.

    A repeated wall time (fall-back) is its first occurrence (fold=0). A wall time inside a
    spring-forward gap is the first instant after the gap (02:30 on a 02:00→03:00 day is 03:00).
    """
    wall = datetime.combine(local_date, at)
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Inside a gap: fold=0 reads `wall` with the offset before the gap, fold=1 with the one
    # after; the gap's end lies between the two readings. Bisect to the second.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = first
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return after.replace(microsecond=0)


def _start_of_day(local_date: date, zone: ZoneInfo) -> datetime:
    return post_instant(local_date, time(0, 0), zone)


def latest_post(settings: ChatSettings, now: datetime) -> tuple[date, datetime] | None:
    """The chat's latest scheduled (local date, post instant) at or before `now`."""
    zone, at, days = settings.zone_info, settings.post_time, settings.weekdays
    today = now.astimezone(zone).date()
    for back in range(_WEEK):
        local_date = today - timedelta(days=back)
        if local_date.weekday() in days and (instant := post_instant(local_date, at, zone)) <= now:
            return local_date, instant
    return None


def due_post(
    settings: ChatSettings, schedule_from: datetime, now: datetime, grace: timedelta | None
) -> tuple[date, datetime] | None:
    """The chat's latest scheduled post, if after `schedule_from` and still inside the grace window.

    `grace` None means until the end of that post's local day. Only the latest scheduled
    instant counts, so a long downtime yields at most one late post and none for older days.
    """
    latest = latest_post(settings, now)
    if latest is None or latest[1] <= schedule_from:
        return None
    return latest if now < end_of_grace(latest[1], settings.zone_info, grace) else None


def next_post(settings: ChatSettings, after: datetime) -> datetime:
    """The first scheduled post instant strictly after `after`."""
    zone, at, days = settings.zone_info, settings.post_time, settings.weekdays
    start = after.astimezone(zone).date()
    for ahead in range(_WEEK + 1):
        local_date = start + timedelta(days=ahead)
        if local_date.weekday() in days and (instant := post_instant(local_date, at, zone)) > after:
            return instant
    raise AssertionError(f"no scheduled day within a week for days={settings.days!r}")


def reveal_instant(settings: ChatSettings, posted: datetime) -> datetime:
    """When the answer to a daily question posted at `posted` is revealed."""
    rule, zone = settings.reveal_rule, settings.zone_info
    if rule.after is not None:
        return posted + rule.after
    if rule.at is not None:
        local_date = posted.astimezone(zone).date()
        same_day = post_instant(local_date, rule.at, zone)
        return same_day if same_day > posted else post_instant(local_date + timedelta(days=1), rule.at, zone)
    return next_post(settings, posted) - timedelta(minutes=1)


def end_of_grace(instant: datetime, zone: ZoneInfo, grace: timedelta | None) -> datetime:
    """Until when something due at `instant` is still worth doing (reveals use the posts' grace)."""
    if grace is not None:
        return instant + grace
    return _start_of_day(instant.astimezone(zone).date() + timedelta(days=1), zone)
