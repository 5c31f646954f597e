"""The time rules: settings parsing, and post/reveal instants checked day by day for whole years."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.core.timing import (
    KEYS,
    ChatSettings,
    RevealRule,
    due_post,
    next_post,
    parse_days,
    parse_duration,
    parse_reveal,
    parse_time,
    parse_zone,
    post_instant,
    reveal_instant,
    validate,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def reference_instant(local_date: date, at: time, zone: ZoneInfo) -> datetime:
    """The rule computed another way: the earliest UTC minute whose wall time is at or after the target.

    Only converts UTC to local time (which is never ambiguous) and scans minute by minute over
    the few hours the zone's offsets allow.
    """
    target = datetime.combine(local_date, at)
    as_utc = target.replace(tzinfo=UTC)
    offsets = {(as_utc + timedelta(hours=h)).astimezone(zone).utcoffset() for h in range(-16, 17)}
    candidate = as_utc - max(offsets)
    while wall(candidate, zone) < target:
        candidate += timedelta(minutes=1)
    return candidate


def days_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("09:30", time(9, 30)), ("9:05", time(9, 5)), ("00:00", time(0)), ("23:59", time(23, 59))],
)
def test_parse_time_accepts_24_hour_times(text: str, expected: time) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["25:99", "24:00", "12:60", "9", "noon", "", "9:5"])
def test_parse_time_rejects_with_the_value_and_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=rf'"{re.escape(text)}" is not a time of day.*e\.g\. 09:30'):
        parse_time(text)


def test_parse_zone_finds_iana_names_in_any_case() -> None:
    assert parse_zone("Europe/Berlin") == BERLIN
    assert parse_zone("america/new_york") == NEW_YORK
    assert parse_zone(" utc ").key == "UTC"


@pytest.mark.parametrize("text", ["Mars/Phobos", "", "localtime", "../../etc/passwd", "+05:30"])
def test_parse_zone_rejects_what_is_not_a_place(text: str) -> None:
    with pytest.raises(ValueError, match=rf'"{re.escape(text)}" is not a time zone I know: .*Europe/Berlin'):
        parse_zone(text)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("daily", {0, 1, 2, 3, 4, 5, 6}),
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("weekdays", {0, 1, 2, 3, 4}),
        ("Mon, Wed, Fri", {0, 2, 4}),
        ("sat-mon", {5, 6, 0}),
        ("tuesday,thurs", {1, 3}),
        ("sundays", {6}),
    ],
)
def test_parse_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize("text", ["", "funday", "m", "mon-xyz", ",,"])
def test_parse_days_rejects_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="mon-fri"):
        parse_days(text)


def test_parse_reveal_and_duration() -> None:
    assert parse_reveal("4h") == RevealRule(after=timedelta(hours=4))
    assert parse_reveal("18:00") == RevealRule(at=time(18))
    assert parse_reveal("Next") == RevealRule(before_next=True)
    assert parse_duration("90m") == parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    for bad in ("soon", "0h", "8d", "-3h"):
        with pytest.raises(ValueError, match=f'"{bad}"'):
            parse_reveal(bad)
    with pytest.raises(ValueError, match='"3 hours" is not a duration.*3h'):
        parse_duration("3 hours")


@pytest.mark.parametrize(
    ("key", "value", "normalised"),
    [
        ("time", "9:00", "09:00"),
        ("zone", "asia/kolkata", "Asia/Kolkata"),
        ("days", "Fri, Mon, tue, wed, Thu", "mon-fri"),
        ("days", "mon,wed,fri", "mon,wed,fri"),
        ("days", "sat-sun", "sat,sun"),
        ("reveal", "240m", "4h"),
        ("reveal", "next", "next"),
        ("tags", " python , sql ", "python,sql"),
        ("tags", "none", ""),
        ("answers", "Private", "private"),
        ("lang", "ZH", "zh"),
        ("lang", "auto", ""),
        ("role", "Study Group", "Study Group"),
        ("paused", "yes", "on"),
        ("paused", "off", "off"),
    ],
)
def test_validate_normalises(key: str, value: str, normalised: str) -> None:
    assert validate(key, value) == normalised


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("time", "25:99", '"25:99".*09:30'),
        ("zone", "Mars/Phobos", '"Mars/Phobos".*Europe/Berlin'),
        ("answers", "loud", '"loud".*spoiler or private'),
        ("lang", "fr", '"fr".*en or zh'),
        ("paused", "maybe", '"maybe".*on'),
        ("tags", "", "tags needs a value"),
        ("colour", "red", '"colour" is not a setting'),
    ],
)
def test_validate_explains_bad_input(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate(key, value)


def test_chat_settings_defaults_and_json_round_trip() -> None:
    defaults = Settings(post_time="7:30", timezone="asia/kathmandu")
    fresh = ChatSettings.from_json({}, defaults)
    assert (fresh.time, fresh.zone, fresh.days, fresh.reveal, fresh.answers, fresh.paused) == (
        "07:30",
        "Asia/Kathmandu",
        "daily",
        "8h",
        "spoiler",
        False,
    )
    changed = fresh.updated("days", "mon-fri").updated("paused", "on").updated("tags", "sql")
    assert ChatSettings.from_json(changed.to_json(), defaults) == changed
    assert changed.updated("tags", "none").tags is None
    assert set(changed.to_json()) == set(KEYS)


def test_a_stored_value_that_no_longer_validates_falls_back_to_the_default() -> None:
    stored = {"time": "08:15", "zone": "Atlantis/Capital", "days": "mon", "unknown": 1}
    loaded = ChatSettings.from_json(stored, Settings(timezone="Europe/Berlin"))
    assert (loaded.time, loaded.zone, loaded.days) == ("08:15", "Europe/Berlin", "mon")


# --- the post instant -----------------------------------------------------------------------


def test_spring_forward_gap_posts_at_the_end_of_the_gap() -> None:
    # Berlin, 2025-03-30: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    assert post_instant(date(2025, 3, 30), time(2, 30), BERLIN) == utc(2025, 3, 30, 1, 0)
    assert wall(post_instant(date(2025, 3, 30), time(2, 30), BERLIN), BERLIN) == datetime(2025, 3, 30, 3, 0)
    # New York, 2025-03-09: 02:00 EST becomes 03:00 EDT.
    assert post_instant(date(2025, 3, 9), time(2, 59), NEW_YORK) == utc(2025, 3, 9, 7, 0)


def test_fall_back_repeated_time_posts_at_its_first_occurrence() -> None:
    # Berlin, 2025-10-26: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
    assert post_instant(date(2025, 10, 26), time(2, 30), BERLIN) == utc(2025, 10, 26, 0, 30)
    # New York, 2025-11-02: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    assert post_instant(date(2025, 11, 2), time(1, 30), NEW_YORK) == utc(2025, 11, 2, 5, 30)


YEAR_CASES = [
    ("Europe/Berlin", time(2, 30)),  # inside the March gap and the October repeat
    ("Europe/Berlin", time(9, 0)),
    ("America/New_York", time(2, 30)),  # inside the March gap
    ("America/New_York", time(1, 30)),  # inside the November repeat
    ("America/New_York", time(0, 0)),
    ("Asia/Kolkata", time(9, 0)),
    ("Asia/Kolkata", time(0, 15)),
    ("Asia/Kathmandu", time(9, 0)),
    ("Asia/Kathmandu", time(23, 45)),
]


@pytest.mark.parametrize(("zone_name", "at"), YEAR_CASES)
def test_every_day_of_a_year_has_exactly_one_post_at_the_right_instant(zone_name: str, at: time) -> None:
    zone = ZoneInfo(zone_name)
    chat = ChatSettings(time=f"{at:%H:%M}", zone=zone_name)
    days = days_of(2025)
    expected = {day: reference_instant(day, at, zone) for day in days}
    assert all(post_instant(day, at, zone) == expected[day] for day in days)

    # Ask "what is due now?" every three hours of the year and around every post instant; a post
    # must first be due exactly at its instant, never for another day, never twice per day.
    subscribed = reference_instant(date(2024, 12, 31), at, zone)  # right after last year's last post
    probes = {subscribed + timedelta(hours=h) for h in range(0, 24 * 367, 3)}
    for instant in expected.values():
        probes |= {instant - timedelta(seconds=1), instant, instant + timedelta(seconds=1)}
    next_year = reference_instant(date(2026, 1, 1), at, zone)
    first_due: dict[date, datetime] = {}
    for now in sorted(p for p in probes if p < next_year):
        due = due_post(chat, subscribed, now, None)
        if due is None:
            continue
        day, instant = due
        assert instant == expected[day] <= now
        assert wall(now, zone).date() == day  # grace None: the rest of that local day only
        first_due.setdefault(day, now)
    assert first_due == expected


@pytest.mark.parametrize(("zone_name", "at"), YEAR_CASES)
def test_next_post_steps_through_the_year_one_day_at_a_time(zone_name: str, at: time) -> None:
    zone = ZoneInfo(zone_name)
    chat = ChatSettings(time=f"{at:%H:%M}", zone=zone_name)
    instants = [reference_instant(day, at, zone) for day in days_of(2025)]
    for today, tomorrow in zip(instants, instants[1:], strict=False):
        assert next_post(chat, today - timedelta(seconds=1)) == today
        assert next_post(chat, today) == tomorrow


def test_only_scheduled_weekdays_are_due() -> None:
    chat = ChatSettings(time="09:00", zone="America/New_York", days="mon,wed,fri")
    subscribed = utc(2024, 12, 31)
    due_days = set()
    for day in days_of(2025):
        instant = reference_instant(day, time(9), NEW_YORK)
        due = due_post(chat, subscribed, instant, None)
        if due is not None:
            due_days.add(due[0])
        assert (due is not None) == (day.weekday() in (0, 2, 4))
    assert len(due_days) == 157  # Mondays, Wednesdays and Fridays of 2025


# --- due_post: subscription time and grace --------------------------------------------------


def test_subscribing_after_todays_time_means_tomorrow() -> None:
    chat = ChatSettings(time="09:00", zone="Europe/Berlin")
    subscribed = utc(2025, 6, 2, 8)  # 10:00 in Berlin
    assert due_post(chat, subscribed, utc(2025, 6, 2, 8, 1), None) is None
    assert due_post(chat, subscribed, utc(2025, 6, 2, 21), None) is None
    assert due_post(chat, subscribed, utc(2025, 6, 3, 6, 59), None) is None
    assert due_post(chat, subscribed, utc(2025, 6, 3, 7), None) == (date(2025, 6, 3), utc(2025, 6, 3, 7))


def test_grace_window_limits_how_late_a_post_is_still_due() -> None:
    chat = ChatSettings(time="09:00", zone="Asia/Kolkata")  # 03:30 UTC
    subscribed = utc(2025, 1, 1)
    three_hours = timedelta(hours=3)
    assert due_post(chat, subscribed, utc(2025, 6, 2, 6, 29), three_hours) == (
        date(2025, 6, 2),
        utc(2025, 6, 2, 3, 30),
    )
    assert due_post(chat, subscribed, utc(2025, 6, 2, 6, 30), three_hours) is None
    # No grace given: until midnight in Kolkata (18:30 UTC).
    assert due_post(chat, subscribed, utc(2025, 6, 2, 18, 29), None) is not None
    assert due_post(chat, subscribed, utc(2025, 6, 2, 18, 30), None) is None


def test_after_two_days_down_only_the_latest_post_is_due() -> None:
    chat = ChatSettings(time="09:00", zone="UTC")
    last_seen = utc(2025, 6, 1, 9, 30)
    assert due_post(chat, last_seen, utc(2025, 6, 3, 9, 10), None) == (date(2025, 6, 3), utc(2025, 6, 3, 9))
    assert due_post(chat, last_seen, utc(2025, 6, 3, 8, 59), None) is None
    # A grace longer than a day reaches back to the latest scheduled post, never to older ones.
    assert due_post(chat, last_seen, utc(2025, 6, 3, 8, 59), timedelta(days=2)) == (
        date(2025, 6, 2),
        utc(2025, 6, 2, 9),
    )


def test_weekly_post_with_long_grace_reaches_back_across_the_week() -> None:
    chat = ChatSettings(time="09:00", zone="UTC", days="mon")
    assert due_post(chat, utc(2025, 6, 1), utc(2025, 6, 4, 12), timedelta(days=3)) == (
        date(2025, 6, 2),
        utc(2025, 6, 2, 9),
    )
    assert due_post(chat, utc(2025, 6, 1), utc(2025, 6, 5, 12), timedelta(days=3)) is None


# --- reveals --------------------------------------------------------------------------------


def test_reveal_after_hours_counts_elapsed_time_across_a_clock_change() -> None:
    chat = ChatSettings(time="00:30", zone="Europe/Berlin", reveal="4h")
    posted = post_instant(date(2025, 3, 30), time(0, 30), BERLIN)
    assert wall(reveal_instant(chat, posted), BERLIN) == datetime(2025, 3, 30, 5, 30)  # 4 real hours


def test_reveal_at_a_local_time_is_that_day_or_the_next() -> None:
    chat = ChatSettings(time="09:00", zone="America/New_York", reveal="18:00")
    posted = post_instant(date(2025, 11, 2), time(9), NEW_YORK)
    assert wall(reveal_instant(chat, posted), NEW_YORK) == datetime(2025, 11, 2, 18)
    late = ChatSettings(time="20:00", zone="America/New_York", reveal="08:00")
    posted = post_instant(date(2025, 11, 1), time(20), NEW_YORK)
    assert wall(reveal_instant(late, posted), NEW_YORK) == datetime(2025, 11, 2, 8)


def test_reveal_next_is_a_minute_before_the_next_scheduled_post() -> None:
    chat = ChatSettings(time="09:00", zone="Asia/Kathmandu", days="mon-fri", reveal="next")
    friday = post_instant(date(2025, 6, 6), time(9), ZoneInfo("Asia/Kathmandu"))
    monday = post_instant(date(2025, 6, 9), time(9), ZoneInfo("Asia/Kathmandu"))
    assert reveal_instant(chat, friday) == monday - timedelta(minutes=1)


# --- every zone -----------------------------------------------------------------------------

ZONES = sorted(available_timezones() - {"localtime", "Factory"})


@settings(max_examples=150, deadline=None)
@example(zone_name="Europe/Berlin", day=date(2025, 3, 30), minute=2 * 60 + 30)  # inside the gap
@example(zone_name="Australia/Lord_Howe", day=date(2025, 10, 5), minute=2 * 60 + 15)  # a 30-minute gap
@example(zone_name="America/Santiago", day=date(2025, 9, 7), minute=30)  # the gap is at midnight
@example(zone_name="Pacific/Apia", day=date(2011, 12, 30), minute=9 * 60)  # the day that never was
@given(
    zone_name=st.sampled_from(ZONES),
    day=st.dates(min_value=date(1990, 1, 1), max_value=date(2037, 12, 31)),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
)
def test_post_instant_is_the_earliest_instant_at_or_after_the_wall_time(
    zone_name: str, day: date, minute: int
) -> None:
    zone = ZoneInfo(zone_name)
    at = time(minute // 60, minute % 60)
    instant = post_instant(day, at, zone)
    target = datetime.combine(day, at)
    assert wall(instant, zone) >= target
    assert wall(instant - timedelta(seconds=1), zone) < target
