"""The metadata field patterns cannot backtrack, and long adversarial lines are read right
(issue 12, item 6). How long they take is measured by `bench/regex.py`, not here."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import bank
from bot.core.bank import _metadata_fields, parse_text

LONG = 10_000
FIELD_SEPARATORS = " \t|｜"

# Lines that are not metadata however long they run: a bold opening with no field after it.
NOT_METADATA = [
    "> **" + " " * LONG,
    "> **" + " \t" * (LONG // 2) + ":",
    "> **a" + " " * LONG + "*",
    "> " + "**" * (LONG // 2),
    "> **Company" + "：" * LONG,
]
# One field whose value is everything after it.
ONE_FIELD = [
    "**Company**: " + "** :" * (LONG // 4),
    "**Company**: x" + "| **" * (LONG // 4),
]
# Every line the bench times; a long run of each character the patterns look for.
ADVERSARIAL = [*NOT_METADATA, *ONE_FIELD, "**Company**: x | " + "**Tags" * (LONG // 6)]


@pytest.mark.parametrize("pattern", [bank._FIELD, bank._FIELD_WITHOUT_COLON], ids=["field", "colonless"])
def test_the_field_patterns_have_no_lazy_or_backtracking_quantifier(pattern: re.Pattern[str]) -> None:
    """Linear by construction: every repetition is possessive (`*+`, `++`), none lazy or nested."""
    bare = re.sub(r"\\.|\[[^\]]*\]|\(\?:", "", pattern.pattern)  # escapes, classes, groups
    quantifiers = re.findall(r"[*+?{](\+?)", bare)
    assert quantifiers and all(possessive == "+" for possessive in quantifiers), pattern.pattern


@pytest.mark.parametrize("line", NOT_METADATA, ids=range(len(NOT_METADATA)))
def test_long_lines_without_a_field_are_not_metadata(line: str) -> None:
    assert _metadata_fields(line) is None


@pytest.mark.parametrize("line", ONE_FIELD, ids=range(len(ONE_FIELD)))
def test_a_long_value_is_kept_whole(line: str) -> None:
    assert _metadata_fields(line) == [("Company", line.split(":", 1)[1].strip(FIELD_SEPARATORS))]


def test_a_long_run_of_colonless_fields_leaves_the_value_before_it() -> None:
    (question,), problems = parse_text(f"### Q. t\n{ADVERSARIAL[-1]}\nthe answer <mark>s</mark>\n", "bank.md")
    assert question.company == "x" and question.tags == ()
    assert [p.line for p in problems if "needs a colon" in p.message] == [2]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(["**", "*", " ", "\t", ":", "：", ">", "|", "a", "Tags"]), min_size=1, max_size=40
    ),
    st.integers(min_value=1, max_value=LONG),
)
def test_long_lines_of_metadata_characters_give_fields_taken_from_the_line(pieces: list[str], length: int) -> None:
    unit = "".join(pieces)
    line = (unit * (length // len(unit) + 1))[:length]
    for name, value in _metadata_fields(line) or ():
        assert f"{name}" in line and value in line and "\n" not in value
