"""Emphasis next to CJK text (the CommonMark CJK-friendly amendment) without changing Latin parsing."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from bot.config import BUNDLED_CONTENT
from bot.core.bank import load
from bot.core.render import _parser, to_discord, to_plain, to_telegram_html

# The two questions of the bundled bank whose bold touches CJK punctuation and a CJK letter.
BANK_BOLD = {
    "Attention中双向掩码单向掩码的区别？": ("编码器（Encoder）", "结构"),
    "导致 LLMs 产生幻觉的主要原因有哪些？": ("“加拿大–多伦多”", "会"),
}


def test_the_bank_questions_with_cjk_emphasis_render_bold_on_every_target() -> None:
    questions = {q.title: q for q in load(BUNDLED_CONTENT).bank.questions}
    for title, (bold, after) in BANK_BOLD.items():
        answer = questions[title].answer
        assert f"**{bold}**{after}" in answer  # as the bank writes it
        assert f"<b>{html.escape(bold, quote=False)}</b>{after}" in "".join(to_telegram_html(answer))
        assert f"**{bold}**{after}" in "".join(to_discord(answer, limit=4096))  # Discord markup
        plain = to_plain(answer)  # the console shows no styling: emphasis is parsed, not literal
        assert f"{bold}{after}" in plain and f"**{bold}" not in plain


def test_cjk_emphasis_cases() -> None:
    assert to_telegram_html("**编码器（Encoder）**结构") == ["<b>编码器（Encoder）</b>结构"]
    assert to_telegram_html("中文**（英文）**中文") == ["中文<b>（英文）</b>中文"]
    assert to_telegram_html("这是*「强调」*的") == ["这是<i>「强调」</i>的"]
    assert to_telegram_html("删除~~（旧）~~了") == ["删除<s>（旧）</s>了"]
    assert to_telegram_html("a**(b)**c") == ["a**(b)**c"]  # Latin: CommonMark's rules, unchanged


LATIN = st.text(alphabet="ab ,.!?()*~_-", max_size=30)
LETTER = st.sampled_from("abcXYZ")
CJK = st.text(alphabet="中文字编码器结构。，、（）「」！？：", min_size=1, max_size=6)


def _stock_parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _inline_tokens(md: MarkdownIt, text: str) -> list[tuple[str, str]]:
    return [(t.type, t.content) for block in md.parse(text) for t in block.children or ()]


@settings(max_examples=300, deadline=None)
@given(LATIN)
def test_latin_text_parses_exactly_as_commonmark(text: str) -> None:
    assert _inline_tokens(_parser(), text) == _inline_tokens(_stock_parser(), text)


@settings(max_examples=300, deadline=None)
@given(CJK, LETTER, LATIN, LETTER, CJK)
def test_adding_cjk_text_around_never_changes_latin_emphasis(
    before: str, first: str, middle: str, last: str, after: str
) -> None:
    latin = first + middle + last  # starts and ends with a letter: no delimiter touches the CJK text
    [alone] = to_telegram_html(latin)
    assert to_telegram_html(before + latin + after) == [html.escape(before) + alone + html.escape(after)]
