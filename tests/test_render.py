"""The renderer: what each construct looks like on each platform, escaping, and splitting."""

from __future__ import annotations

import random
import re
import unicodedata
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import BUNDLED_CONTENT
from bot.core import render
from bot.core.bank import load
from bot.core.render import escape, to_discord, to_plain, to_telegram_html, utf16_len

TELEGRAM_TAGS = {"b", "i", "u", "s", "code", "pre", "a", "tg-spoiler", "blockquote"}


class TelegramChunk(HTMLParser):
    """Parses one message the way Telegram's HTML mode must accept it, or fails the test."""

    def __init__(self, chunk: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.parts: list[str] = []
        self.feed(chunk)
        self.close()
        assert not self.open, f"unclosed {self.open} in {chunk!r}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in TELEGRAM_TAGS, tag
        if tag == "a":
            assert re.match(r"(https?|tg)://", dict(attrs)["href"] or "")
        # Telegram's nesting rules: nothing inside code, no code in a link, no quote in a quote.
        inside_code = bool({"code", "pre"} & set(self.open))
        assert not inside_code or (tag == "code" and self.open[-1:] == ["pre"]), (self.open, tag)
        assert not (tag in ("code", "pre") and "a" in self.open)
        assert not (tag == "blockquote" and "blockquote" in self.open)
        self.open.append(tag)
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (self.open, tag)
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def telegram_texts(chunks: list[str], limit: int = 4096) -> list[str]:
    """The visible text of each chunk, after checking that Telegram would take the chunk."""
    texts = []
    for chunk in chunks:
        text = TelegramChunk(chunk).text
        assert text.strip(), chunk
        assert utf16_len(text) <= limit, (utf16_len(text), limit)
        assert len(chunk) <= 4 * limit
        texts.append(text)
    return texts


def squeeze(text: str) -> str:
    return " ".join(text.split())


def solid(text: str) -> str:
    return "".join(text.split())


def columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


# ---------------------------------------------------------------- one construct at a time

ANSWER = """\
## Encoder 与 Decoder

**核心区别**：Encoder 是*双向*的，Decoder 是~~单向~~因果的；见 [论文](https://arxiv.org/abs/1706.03762)。
分数为 $QK^T/\\sqrt{d_k}$，若 \\(n_{kv}\\le H\\) 则更省。<br>下一行 5 < 6 & 7 > 2

1. 第一步
2. 第二步
   - 子项 `x<y`

> 引用一行

| 特性 | Encoder | Decoder |
|------|:-------:|--------:|
| 输入 | 源序列 | 已生成序列 |
| Self-Attention | 双向 | 单向 |

```python
def f(x):
    return x ** 2  # ``` in code
```

$$
\\text{Attention}(Q,K,V) = \\text{softmax}(QK^T)V
$$

答案：||藏起来的 **重点** 和 `a||b`||

![GRPO](./imgs/GRPO.png)
"""


def test_telegram_html_of_each_construct() -> None:
    [html] = to_telegram_html(ANSWER)
    assert "<b>Encoder 与 Decoder</b>" in html  # heading → bold line
    assert "<b>核心区别</b>" in html and "<i>双向</i>" in html and "<s>单向</s>" in html
    assert '<a href="https://arxiv.org/abs/1706.03762">论文</a>' in html
    assert "分数为 QKᵀ/√dₖ，若 nₖᵥ ≤ H 则更省。" in html  # inline math as Unicode text in the sentence
    assert "下一行 5 &lt; 6 &amp; 7 &gt; 2" in html  # <br> is a line break, text escaped
    assert "1. 第一步\n2. 第二步\n   • 子项 <code>x&lt;y</code>" in html
    assert "<blockquote>引用一行</blockquote>" in html
    assert (
        '<pre><code class="language-python">def f(x):\n    return x ** 2  # ``` in code</code></pre>' in html
    )
    assert "<pre>Attention(Q,K,V) = softmax(QKᵀ)V</pre>" in html  # display math: its own block
    assert "<tg-spoiler>藏起来的 <b>重点</b> 和 <code>a||b</code></tg-spoiler>" in html
    assert "🖼 GRPO" in html and "imgs/GRPO.png" not in html  # local images are sent as photos
    telegram_texts([html])


def test_table_is_aligned_preformatted_text_counting_wide_characters() -> None:
    [html] = to_telegram_html(ANSWER)
    table = re.search(r"<pre>(特性.*?)</pre>", html, re.DOTALL)
    assert table, html
    lines = table[1].split("\n")
    assert lines[0] == "特性           | Encoder |    Decoder"
    assert set(lines[1]) == {"-", "+"}
    assert "|  双向   |" in lines[3]  # centred
    assert lines[2].endswith("已生成序列") and lines[3].endswith("      单向")  # right-aligned
    assert {columns(line) for line in lines} == {columns(lines[1])}
    [discord] = to_discord(ANSWER, limit=4096)
    assert "```\n" + "\n".join(lines) + "\n```" in discord
    plain = to_plain(ANSWER)
    assert "\n".join("  " + line for line in lines) in plain


def test_discord_markdown_of_each_construct() -> None:
    [text] = to_discord(ANSWER, limit=4096)
    assert "**Encoder 与 Decoder**" in text  # headings as bold lines, not Discord's large # headings
    assert "**核心区别**" in text and "*双向*" in text and "~~单向~~" in text
    assert "[论文](https://arxiv.org/abs/1706.03762)" in text
    assert "分数为 QKᵀ/√dₖ，若 nₖᵥ ≤ H 则更省。" in text
    assert "下一行 5 \\< 6 & 7 \\> 2" in text
    assert "1\\. 第一步\n2\\. 第二步\n   • 子项 `x<y`" in text
    assert "> 引用一行" in text
    assert "```python\ndef f(x):\n    return x ** 2  # `\u200b`` in code\n```" in text
    assert "```\nAttention(Q,K,V) = softmax(QKᵀ)V\n```" in text
    # `||` inside code inside a spoiler would close the spoiler early on Discord.
    assert "||藏起来的 **重点** 和 `a|\u200b|b`||" in text


def test_plain_text_keeps_no_markup_but_bullets_and_hidden_marks() -> None:
    plain = to_plain(ANSWER)
    assert plain.startswith("Encoder 与 Decoder\n\n核心区别：Encoder 是双向的")
    assert "论文 (https://arxiv.org/abs/1706.03762)" in plain
    assert "1. 第一步\n2. 第二步\n   • 子项 x<y" in plain
    assert "│ 引用一行" in plain
    assert "||藏起来的 重点 和 a||b||" in plain
    assert "  def f(x):\n      return x ** 2" in plain
    prose = plain.replace(re.search(r"  def f.*in code\n", plain, re.DOTALL)[0], "")  # code stays code
    for markup in ("**", "~~", "`", "<b>", "<br>", "$$", "##", "](", "&amp;"):
        assert markup not in prose, markup


def test_links_only_for_web_and_telegram_urls() -> None:
    [html] = to_telegram_html(
        '[a](javascript:alert(1)) [b](./local.md) [c](tg://user?id=1) <https://x.org/?a=1&b="2">'
    )
    assert html == '[a](javascript:alert(1)) b <a href="tg://user?id=1">c</a> https://x.org/?a=1&amp;b="2"'
    TelegramChunk(html)
    [html] = to_telegram_html('[q](https://x.org/?a="1"&b=<2>)')
    assert html == '<a href="https://x.org/?a=%221%22&amp;b=%3C2%3E">q</a>'


def test_hidden_parts_nest_with_other_markup_and_never_open_inside_code() -> None:
    assert to_telegram_html("||*a* [b](https://x.y)|| and ||c||") == [
        '<tg-spoiler><i>a</i> <a href="https://x.y">b</a></tg-spoiler> and <tg-spoiler>c</tg-spoiler>'
    ]
    assert to_telegram_html("`||not hidden||` and\n```\n||nor this||\n```") == [
        "<code>||not hidden||</code> and\n\n<pre>||nor this||</pre>"
    ]
    assert to_telegram_html("|| spaced out ||") == ["<tg-spoiler> spaced out </tg-spoiler>"]
    assert to_telegram_html("a ||open only") == ["a ||open only"]
    assert to_discord("a ||open only") == ["a \\|\\|open only"]


def test_telegram_nesting_rules_are_kept() -> None:
    [html] = to_telegram_html("> outer\n> > inner\n\n[`code` link](https://a.b) **bold `code`**")
    assert html == (
        '<blockquote>outer\n\ninner</blockquote>\n\n<a href="https://a.b">code link</a> <b>bold <code>code</code></b>'
    )
    TelegramChunk(html)


def test_the_bundled_bank_renders_to_valid_messages() -> None:
    """Every question's title, answer and summary (math converted): valid Telegram HTML within the
    split limit, entities escaped; Discord within 2,000 (messages) and 4,096 (embeds)."""
    for question in load(BUNDLED_CONTENT).bank.questions:
        for text in (question.title, question.answer, question.summary or ""):
            if not text:
                continue
            for chunk in to_telegram_html(text):
                assert not BARE_AMPERSAND.search(chunk), chunk
            telegram_texts(to_telegram_html(text))
            assert all(len(chunk) <= 2000 for chunk in to_discord(text))
            assert all(len(chunk) <= 4096 for chunk in to_discord(text, limit=4096))
        assert "**" not in to_plain(question.summary or "")


BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;|quot;|#\d+;|#x[0-9a-f]+;)", re.IGNORECASE)


def test_dollar_amounts_are_not_math() -> None:
    assert to_plain("costs $5 and $6, *really*") == "costs $5 and $6, really"
    assert to_plain("a $x_1 *y*$ b") == "a x₁ *y* b"  # no emphasis inside math


def test_math_block_may_interrupt_a_paragraph_inside_a_list() -> None:
    md = "- 计算公式：\n    $$\n    a_{i} * b_{j}\n    $$\n- 之后"
    assert to_plain(md) == "• 计算公式：\n    aᵢ * bⱼ\n• 之后"
    assert to_telegram_html("\\[\nx^2\n\\]") == ["<pre>x²</pre>"]


# ---------------------------------------------------------------- escaping user text

# Markdown's own characters, CJK, emoji and every kind of space: the text most likely to go wrong.
USER_TEXT = st.lists(
    st.one_of(
        st.sampled_from(
            list("\\`*_~|<>#+-=$&[]()!.:1 \t\n\r\u00a0\u3000") + ["||", "1. ", "&amp;", "<b>", "$$", "\\("]
        ),
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=120, deadline=None)
@given(USER_TEXT)
def test_escaped_text_renders_literally_everywhere(text: str) -> None:
    md = escape(text)
    assert squeeze(to_plain(md)) == squeeze(text)
    telegram = telegram_texts(to_telegram_html(md)) if text.strip() else []
    assert squeeze(" ".join(telegram)) == squeeze(text)
    assert not any(TelegramChunk(chunk).tags for chunk in to_telegram_html(md))
    for chunk in to_discord(md):
        # Every character Discord could read as markup is backslash-escaped.
        assert not re.search(r"(?<!\\)(?:\\\\)*[*_~`|<\[\]]", chunk), chunk


def test_escaped_text_stays_one_paragraph_so_it_can_be_hidden() -> None:
    answer = "line one\n\n    indented <code>\n- not a list"
    md = f"answer: ||{escape(answer)}||"
    [html] = to_telegram_html(md)
    assert html == (
        "answer: <tg-spoiler>line one\n\u00a0\n\u00a0\u00a0\u00a0\u00a0indented &lt;code&gt;\n- not a list</tg-spoiler>"
    )


def test_discord_escapes_mentions_and_line_starts() -> None:
    [text] = to_discord(escape("# not a heading\n1. not a list\n@everyone look"))
    assert text == "\\# not a heading\n1\\. not a list\n@\u200beveryone look"


# ---------------------------------------------------------------- splitting


def synthetic_answer(size: int, seed: int) -> str:
    """A long reference answer: paragraphs with inline markup, lists, tables and code blocks."""
    rng = random.Random(seed)

    def words(n: int) -> str:
        return "".join(
            rng.choice(["模型", "训练", " loss ", "**粗体**", "*斜体*", "`x<y`", " a & b ", "||藏||", "😀"])
            for _ in range(n)
        )

    blocks: list[str] = []
    while sum(map(len, blocks)) < size:
        kind = len(blocks) % 4
        if kind == 0:
            blocks.append(f"### 第 {len(blocks)} 节\n\n{words(80)}")
        elif kind == 1:
            blocks.append("\n".join(f"{n}. {words(15)}" for n in range(1, 7)))
        elif kind == 2:
            rows = "\n".join(f"| {words(3)} | {words(6)} |" for _ in range(8))
            blocks.append(f"| 项 | 说明 |\n|---|---|\n{rows}")
        else:
            lines = "\n".join(f"y{n} = x[{n}] < {n} && ok  # 注释" for n in range(40))
            blocks.append(f"```python\n{lines}\n```")
    return "\n\n".join(blocks)


def test_long_answer_splits_at_block_boundaries_into_valid_messages() -> None:
    md = synthetic_answer(9000, seed=1)
    assert len(md) >= 9000
    chunks = to_telegram_html(md)
    texts = telegram_texts(chunks)
    assert len(chunks) >= 2
    [whole] = to_telegram_html(md, limit=100_000)
    assert solid("".join(texts)) == solid(TelegramChunk(whole).text)  # nothing lost or doubled
    blocks = TelegramChunk(whole).text.split("\n\n")
    for text in texts:  # every message is a run of whole blocks
        assert text.split("\n\n")[0] in blocks and text.split("\n\n")[-1] in blocks


def test_a_heading_moves_to_the_next_message_with_its_section() -> None:
    chunks = to_telegram_html("a" * 3000 + "\n\n## Section\n\n" + "b" * 3000)
    assert chunks == ["a" * 3000, "<b>Section</b>\n\n" + "b" * 3000]


def test_one_huge_paragraph_is_split_inside_its_lines_with_markup_reopened() -> None:
    md = "**" + "重要 " * 3000 + "||秘密||" * 500 + "**"  # 10,000 visible characters in one bold paragraph
    chunks = to_telegram_html(md)
    texts = telegram_texts(chunks)
    assert len(chunks) >= 3
    assert all(chunk.startswith("<b>") and chunk.endswith("</b>") for chunk in chunks)
    assert max(utf16_len(text) for text in texts) > 4000  # the messages are filled, not trickled
    assert solid("".join(texts)) == solid("重要" * 3000 + "秘密" * 500)
    for chunk in to_discord(md):
        assert len(chunk) <= 2000 and chunk.startswith("**") and chunk.endswith("**")
        assert chunk.count("||") % 2 == 0


def test_code_block_larger_than_a_message_is_split_at_lines_and_reopened() -> None:
    code = "\n".join(f"line_{n:04d} = '<&>'  # 注释" for n in range(220))  # about 5,000 characters
    md = f"前言\n\n```python\n{code}\n```\n\n结语"
    chunks = to_telegram_html(md)
    texts = telegram_texts(chunks)
    code_chunks = [chunk for chunk in chunks if "line_" in chunk]
    assert len(code_chunks) >= 2
    for chunk in code_chunks:
        assert re.fullmatch(
            r'(?:前言\n\n)?<pre><code class="language-python">line_\d{4}[^<]*</code></pre>(?:\n\n结语)?',
            chunk,
            re.DOTALL,
        )
    assert [line for text in texts for line in text.split("\n") if line.startswith("line_")] == code.split(
        "\n"
    )

    discord = to_discord(md)
    for chunk in discord:
        assert len(chunk) <= 2000
        assert chunk.count("```") % 2 == 0
    code_lines = [line for chunk in discord for line in chunk.split("\n") if line.startswith("line_")]
    assert code_lines == code.split("\n")
    assert all(chunk.startswith("```python\n") for chunk in discord if chunk.startswith("```"))


def test_a_single_line_longer_than_the_limit_is_cut_but_never_inside_an_entity() -> None:
    md = "```\n" + "&<>" * 3000 + "\n```"
    chunks = to_telegram_html(md)
    texts = telegram_texts(chunks)
    assert "".join(texts) == "&<>" * 3000
    assert all(not re.search(r"&[a-z]*$", chunk.removesuffix("</pre>")) for chunk in chunks)


def test_embed_descriptions_take_a_larger_limit() -> None:
    md = synthetic_answer(9000, seed=2)
    assert len(to_discord(md, limit=4096)) < len(to_discord(md))
    assert all(len(chunk) <= 4096 for chunk in to_discord(md, limit=4096))


MARKDOWN_PIECES = st.sampled_from(
    [
        "# 标题 *斜*", "段落 **粗 ||藏 `c||d`||**", "- a\n- b\n  - c", "1. x\n2. y", "> 引用\n> > 更深",
        "| a | 宽字 |\n|---|---|\n| 1 | 二 |", "```py\nx = 1 < 2\n\n\ny = 3\n```", "$$\nx^2\n$$", "<br>",
        "[链接](https://e.x/路径)", "![图](./i.png)", "a & b < c", "😀" * 30, "长" * 150, "---", "    indented code",
    ]
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(MARKDOWN_PIECES, min_size=1, max_size=8), st.integers(min_value=60, max_value=400))
def test_any_mix_of_blocks_splits_into_valid_messages_under_any_limit(pieces: list[str], limit: int) -> None:
    md = "\n\n".join(pieces)
    texts = telegram_texts(to_telegram_html(md, limit=limit), limit=limit)
    whole = "".join(to_telegram_html(md, limit=100_000))
    assert solid("".join(texts)) == solid(TelegramChunk(whole).text)
    for chunk in to_discord(md, limit=limit):
        assert len(chunk) <= limit
        assert chunk.count("```") % 2 == 0


def test_empty_input_gives_no_messages() -> None:
    assert to_telegram_html("") == [] and to_discord("  \n") == [] and to_plain("") == ""


def test_a_text_rendered_again_is_not_laid_out_again_and_each_caller_gets_its_own_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    laid_out: list[str] = []
    layout = render._layout

    def counting_layout(md: str, *args: object) -> list[str]:
        laid_out.append(md)
        return layout(md, *args)

    monkeypatch.setattr(render, "_layout", counting_layout)
    render._remembered.cache_clear()
    text = "**Why** does `attention` scale by √d? (a fan-out renders this once)"
    first = to_telegram_html(text)
    first.append("changed by a caller")
    assert to_telegram_html(text) == first[:-1]
    assert to_discord(text) and to_plain(text)  # another target is its own rendering
    assert laid_out == [text, text, text]
    long = "x" * (render.RENDERED_TEXT_LIMIT + 1)  # too long to keep: laid out each time
    to_discord(long)
    to_discord(long)
    assert laid_out.count(long) == 2


def test_a_reveal_for_new_names_parses_only_the_paragraphs_that_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    inline = render._parser().inline
    parse = inline.parse
    monkeypatch.setattr(inline, "parse", lambda src, *args: parsed.append(src) or parse(src, *args))
    summary = "Keep the **keys** and `values` of earlier tokens ||so they are not computed again||."

    def reveal(number: int, names: str) -> str:
        return f"💡 **Why a KV cache?** · No. {number}\n\n{summary}\n\nAnswered by: {names}"

    first = to_telegram_html(reveal(7, "alice"))
    parsed.clear()
    second = to_telegram_html(reveal(8, "bob, carol"))
    assert parsed == ["💡 **Why a KV cache?** · No. 8", "Answered by: bob, carol"]
    assert first[0].split("\n\n")[1] == second[0].split("\n\n")[1]  # the summary, rendered alike
    # The remembered tokens are shared: a second rendering of a text is the same as its first.
    render._remembered.cache_clear()
    assert to_telegram_html(reveal(8, "bob, carol")) == second
    # A text with link reference definitions is parsed with them, not from what is remembered.
    assert to_telegram_html("[cache][kv]\n\n[kv]: https://example.com/kv") == [
        '<a href="https://example.com/kv">cache</a>'
    ]
