"""The metadata field pattern stays linear on long adversarial lines (issue 12, item 6)."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import bank
from bot.core.bank import _metadata_fields

# A generous bound: a linear scan of 10,000 characters takes about a millisecond; the cubic pattern
# this replaces took ~50 s for 3,000 spaces. The alarm ends a regression instead of hanging the suite.
BOUND_SECONDS = 1.0
LONG = 10_000


@contextmanager
def at_most(seconds: float) -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


ADVERSARIAL = [
    "> **" + " " * LONG,
    "> **" + " \t" * (LONG // 2) + ":",
    "> **a" + " " * LONG + "*",
    "> " + "**" * (LONG // 2),
    "**Company**: " + "** :" * (LONG // 4),
    "**Company**: x | " + "**Tags" * (LONG // 6),
    "> **Company" + "：" * LONG,
]


def test_the_field_pattern_has_no_lazy_or_backtracking_quantifier() -> None:
    """Linear by construction: every repetition is possessive (`*+`), none lazy or nested."""
    bare = re.sub(r"\\.|\[[^\]]*\]|\(\?:", "", bank._FIELD.pattern)  # escapes, classes, groups
    quantifiers = re.findall(r"[*+?{](\+?)", bare)
    assert quantifiers and all(possessive == "+" for possessive in quantifiers), bank._FIELD.pattern


def test_known_adversarial_lines_are_read_quickly() -> None:
    for line in ADVERSARIAL:
        with at_most(BOUND_SECONDS):
            _metadata_fields(line)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(["**", "*", " ", "\t", ":", "：", ">", "|", "a", "Tags"]), min_size=1, max_size=40
    ),
    st.integers(min_value=1, max_value=LONG),
)
def test_long_lines_of_metadata_characters_are_read_quickly(pieces: list[str], length: int) -> None:
    unit = "".join(pieces)
    line = (unit * (length // len(unit) + 1))[:length]
    with at_most(BOUND_SECONDS):
        _metadata_fields(line)
