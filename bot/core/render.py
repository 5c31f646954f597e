"""Markdown → Telegram HTML, Discord markdown or console text: the one place that formats and escapes.

The input is the bank's markdown (CommonMark, GFM tables and strikethrough, inline HTML, TeX math
between `$…$`, `$$…$$`, `\\(…\\)` and `\\[…\\]`) plus `||…||` for a hidden (spoiler) part.

Three layers, each written once:
- a walker turns markdown-it's syntax tree into a flat list of events: open a `Frame` (bold, link,
  list item, preformatted block…), a `Leaf` of text or inline code, `CLOSE`, a line `BREAK`, and
  `BOUNDARY` between top-level blocks;
- a `_Target` per platform says what a frame's markup, a leaf's escaping and a line's prefix
  (quote marks, list indentation) look like there;
- a `_Writer` lays the events out into messages no longer than a limit: whole blocks where they
  fit, else cut at the last line break, else inside a line; frames open at a cut are closed at the
  end of one message and reopened at the start of the next.
"""

from __future__ import annotations

import html
import posixpath
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cache, lru_cache
from typing import Literal, NamedTuple

from markdown_it import MarkdownIt
from markdown_it.common.utils import isMdAsciiPunct, isPunctChar, isWhiteSpace
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore, inline, text_join
from markdown_it.rules_inline import StateInline, emphasis, strikethrough
from markdown_it.rules_inline.state_inline import Delimiter
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from bot.core.mathtext import to_unicode

TELEGRAM_LIMIT = 4096  # visible UTF-16 code units of one message
DISCORD_LIMIT = 2000  # characters of one message; embed descriptions take 4096
# Telegram counts visible text only; markup (long link targets, many `&amp;`) is capped separately
# so a request never balloons.
TELEGRAM_RAW_PER_VISIBLE = 4
MAX_LINK_URL = 2048  # a longer target is shown as text: it could not be split across messages
HORIZONTAL_RULE = "─" * 10
IMAGE_MARK = "🖼 "

FrameKind = Literal["b", "i", "s", "spoiler", "link", "heading", "quote", "item", "pre"]


@dataclass(frozen=True)
class Frame:
    """Something that wraps the events up to its `CLOSE`."""

    kind: FrameKind
    arg: str = ""  # link: the URL; item: its marker ("• ", "3. "); pre: the language


@dataclass(frozen=True)
class Leaf:
    text: str  # never contains a newline: lines are separated by BREAK
    code: bool = False  # an inline code span


class Mark(Enum):
    CLOSE = "close"
    BREAK = "break"
    BOUNDARY = "boundary"


CLOSE, BREAK, BOUNDARY = Mark.CLOSE, Mark.BREAK, Mark.BOUNDARY
Event = Frame | Leaf | Mark


# ---------------------------------------------------------------- public API


def escape(text: str) -> str:
    """Markdown that renders as exactly `text` (up to whitespace), on every target.

    The result is one paragraph, so it can sit inside a sentence or inside `||…||`: line breaks
    stay line breaks, empty lines and leading indentation become no-break spaces.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(_escape_line(line) for line in lines)


def to_telegram_html(md: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Messages for `parse_mode=HTML`, each at most `limit` visible UTF-16 code units."""
    return _rendered(md, _Telegram, limit, limit * TELEGRAM_RAW_PER_VISIBLE)


def to_discord(md: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Discord messages (or embed descriptions with `limit=4096`), each at most `limit` long."""
    return _rendered(md, _Discord, limit, None)


def to_plain(md: str) -> str:
    """Console text: no markup left but list bullets, hidden parts shown as `||…||`."""
    whole = _rendered(md, _Plain, None, None)  # without a limit: one chunk, or none for no text
    return whole[0] if whole else ""


# A fan-out renders the same question (its title, tags, hints) for chat after chat, and rendering
# is a good part of what a post costs: the renderings of texts up to RENDERED_TEXT_LIMIT long are
# remembered, the RENDERED_TEXTS most recent of them (a few MB at worst).
RENDERED_TEXTS = 512
RENDERED_TEXT_LIMIT = 8192


def _rendered(md: str, target: type[_Target], limit: int | None, raw_limit: int | None) -> list[str]:
    if len(md) > RENDERED_TEXT_LIMIT:
        return _layout(md, target(), limit, raw_limit)
    return list(_remembered(md, target, limit, raw_limit))  # a list of its own for the caller


@lru_cache(maxsize=RENDERED_TEXTS)
def _remembered(md: str, target: type[_Target], limit: int | None, raw_limit: int | None) -> tuple[str, ...]:
    return tuple(_layout(md, target(), limit, raw_limit))


@dataclass(frozen=True)
class Formula:
    """A math span of a markdown text, as the renderers see it."""

    line: int  # 1-based, in the text given
    source: str  # as written, delimiters included
    text: str | None  # what the reader sees; None when it is shown as its source



def formulas(md: str) -> list[Formula]:
    """Every formula of `md` (inline, display, fenced math) with its line, in order."""
    found: list[Formula] = []
    for token in _parser().parse(md):
        first = token.map[0] + 1 if token.map else 1
        if token.type == "math_block" or (token.type == "fence" and _is_math_fence(token.info)):
            source = token.content.removesuffix("\n")
            found.append(Formula(first, source, to_unicode(source)))
        elif token.type == "inline":
            searched = 0
            for child in token.children or ():
                if child.type == "math_inline":
                    at = token.content.find(child.content, searched)
                    searched = max(at, searched)
                    line = first + token.content.count("\n", 0, searched)
                    found.append(Formula(line, child.content, to_unicode(_math_body(child.content)[1])))
    return found


def utf16_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------- escaping

_ALWAYS_ESCAPED = re.compile(r"([\\`*_~|<>#+\-=$&])")
_LIST_NUMBER = re.compile(r"^(\d+)([.)])")
_LEADING_SPACE = re.compile(r"^[ \t]+")


def _escape_line(line: str) -> str:
    # A no-break space is text to markdown, so indentation cannot start a code block and an
    # empty line cannot end the paragraph.
    line = _LEADING_SPACE.sub(lambda m: "\u00a0" * len(m[0].expandtabs(4)), line) or "\u00a0"
    line = _ALWAYS_ESCAPED.sub(r"\\\1", line)
    # `\[` would open display math, so `[` (links, images, references) becomes a character reference.
    line = line.replace("[", "&#91;")
    return _LIST_NUMBER.sub(r"\1\\\2", line)


# ---------------------------------------------------------------- parser: markdown-it + math + ||spoilers||


@cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.block.ruler.before(
        "fence", "math_block", _math_block, {"alt": ["paragraph", "reference", "blockquote", "list"]}
    )
    md.inline.ruler.before("escape", "math_inline", _math_inline)  # `\(` is math, not an escaped `(`
    md.inline.ruler.before("emphasis", "spoiler", _spoiler_delimiters)
    md.inline.ruler.at("emphasis", _cjk_friendly(emphasis.tokenize))
    md.inline.ruler.at("strikethrough", _cjk_friendly(strikethrough.tokenize))
    md.inline.ruler2.before("emphasis", "spoiler", _spoiler_pairs)
    md.inline.add_terminator_char("|")
    md.core.ruler.at("inline", _remembered_inlines)
    return md


# A reply repeats paragraphs around the parts that change: a question's text and summary are the
# same for every user and every reveal, only a number or the names of those who answered differ.
# A paragraph's inline parse (emphasis, spoilers, math, code: most of a parse) is remembered by
# its text, the INLINE_PARSES most recent, so only the changing paragraphs are parsed again.
INLINE_PARSES = 4096


def _remembered_inlines(state: StateCore) -> None:
    if state.env:  # link reference definitions: the inline parse depends on them, not only the text
        inline(state)
        return
    for token in state.tokens:
        if token.type == "inline":
            token.children = list(_inline_parse(token.content))


@lru_cache(maxsize=INLINE_PARSES)
def _inline_parse(text: str) -> tuple[Token, ...]:
    """The inline tokens of `text`, their text already joined: the later text_join pass, which
    would otherwise change tokens in place, finds nothing left to change in shared tokens."""
    paragraph = Token("inline", "", 0, content=text, children=[])
    state = StateCore(text, _parser(), {}, [paragraph])
    inline(state)
    text_join(state)
    return tuple(paragraph.children or ())


_MATH_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"))
# Pandoc's rule for single dollars: no space just inside, no digit just after (so "$5 and $6" is
# money). Bounded so a text full of lone dollars stays linear.
_MATH_INLINE = re.compile(
    r"\$\$(?:.{1,2000}?)\$\$|\$(?=\S)(?:.{0,2000}?\S)?\$(?!\d)|\\\((?:.{1,2000}?)\\\)|\\\[(?:.{1,2000}?)\\\]",
    re.DOTALL,
)


def _math_inline(state: StateInline, silent: bool) -> bool:
    if state.src[state.pos] not in "$\\":
        return False
    match = _MATH_INLINE.match(state.src, state.pos, state.posMax)
    if not match:
        return False
    if not silent:
        state.push("math_inline", "", 0).content = match[0]
    state.pos = match.end()
    return True


def _math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """`$$` or `\\[` starting a line, up to a line ending with `$$` or `\\]` (no blank line between)."""
    if state.is_code_block(start):
        return False
    first = state.src[state.bMarks[start] + state.tShift[start] : state.eMarks[start]].rstrip()
    delimiters = next(((o, c) for o, c in _MATH_DELIMITERS if first.startswith(o)), None)
    if delimiters is None:
        return False
    opener, closer = delimiters
    last = start
    if not (len(first) >= len(opener) + len(closer) and first.endswith(closer)):
        last = start + 1
        while True:
            if last >= end or state.isEmpty(last) or state.sCount[last] < state.blkIndent:
                return False
            line = state.src[state.bMarks[last] + state.tShift[last] : state.eMarks[last]].rstrip()
            if line.endswith(closer):
                break
            last += 1
    if silent:
        return True
    source = state.getLines(start, last + 1, state.sCount[start], False).strip()
    token = state.push("math_block", "math", 0)
    token.content = source[len(opener) : -len(closer)].strip("\n")
    token.map = [start, last + 1]
    state.line = last + 1
    return True


def _cjk_friendly(tokenize: Callable[[StateInline, bool], bool]) -> Callable[[StateInline, bool], bool]:
    """markdown-it's `*`/`~` delimiter rule, with CommonMark's flanking rules widened for CJK text.

    CommonMark refuses `**编码器（Encoder）**结构`: the closing run follows punctuation and precedes
    a letter, so it is not right-flanking. The CJK-friendly amendment
    (github.com/tats-u/markdown-cjk-friendly) lets a CJK character on the far side count as
    punctuation does. When neither neighbour of a run is CJK the flags are CommonMark's own, so
    Latin text parses as before.
    """

    def rule(state: StateInline, silent: bool) -> bool:
        start, known = state.pos, len(state.delimiters)
        if not tokenize(state, silent):
            return False
        if not silent and state.src[start] in "*~":
            can_open, can_close = _cjk_flanking(state.src, start, state.pos, state.posMax)
            for delimiter in state.delimiters[known:]:
                delimiter.open, delimiter.close = can_open, can_close
        return True

    return rule


def _cjk_flanking(src: str, start: int, end: int, maximum: int) -> tuple[bool, bool]:
    """(can open, can close) for the `*` or `~` run src[start:end]; both split words, as `*` does."""
    before = src[start - 1] if start > 0 else " "
    after = src[end] if end < maximum else " "
    before_space, after_space = isWhiteSpace(ord(before)), isWhiteSpace(ord(after))
    before_punct = isMdAsciiPunct(ord(before)) or isPunctChar(before)
    after_punct = isMdAsciiPunct(ord(after)) or isPunctChar(after)
    left_flanking = not after_space and (not after_punct or before_space or before_punct or _is_cjk(before))
    right_flanking = not before_space and (not before_punct or after_space or after_punct or _is_cjk(after))
    return left_flanking, right_flanking


def _is_cjk(char: str) -> bool:
    """Wide or fullwidth text (Han, kana, Hangul, CJK punctuation), not emoji."""
    return unicodedata.east_asian_width(char) in "WFH" and unicodedata.category(char) != "So"


_PIPE = ord("|")


def _spoiler_delimiters(state: StateInline, silent: bool) -> bool:
    """Each `||` becomes a delimiter that may open or close, as `~~` does for strikethrough.

    Unlike emphasis there are no flanking rules: `|| spaced ||` hides like on Discord.
    """
    if silent or not state.src.startswith("||", state.pos):
        return False
    end = state.pos
    while end < state.posMax and state.src[end] == "|":
        end += 1
    run = end - state.pos
    if run % 2:
        state.push("text", "", 0).content = "|"
    for _ in range(run // 2):
        state.push("text", "", 0).content = "||"
        state.delimiters.append(
            Delimiter(marker=_PIPE, length=0, token=len(state.tokens) - 1, end=-1, open=True, close=True)
        )
    state.pos = end
    return True


def _spoiler_pairs(state: StateInline) -> None:
    nested = [meta["delimiters"] for meta in state.tokens_meta if meta and "delimiters" in meta]
    for delimiters in [state.delimiters, *nested]:
        for opener in delimiters:
            if opener.marker != _PIPE or opener.end < 0:
                continue
            closer = delimiters[opener.end]
            if closer.token == opener.token + 1:
                continue  # `||||` hides nothing: leave it as text
            for index, kind, nesting in (
                (opener.token, "spoiler_open", 1),
                (closer.token, "spoiler_close", -1),
            ):
                token = state.tokens[index]
                token.type, token.nesting = kind, nesting
                token.tag, token.markup, token.content = "span", "||", ""


# ---------------------------------------------------------------- walker: syntax tree → events

_INLINE_FRAMES: dict[str, FrameKind] = {"strong": "b", "em": "i", "s": "s", "spoiler": "spoiler"}
_LINKABLE = re.compile(r"(?:https?|tg)://\S+", re.IGNORECASE)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def _events(md: str) -> list[Event]:
    out: list[Event] = []
    for index, node in enumerate(SyntaxTreeNode(_parser().parse(md)).children):
        if index:
            out.append(BOUNDARY)
        _block(node, out)
    return out


def _blocks(nodes: list[SyntaxTreeNode], out: list[Event], tight: bool) -> None:
    for index, node in enumerate(nodes):
        if index:
            out.extend((BREAK,) if tight else (BREAK, BREAK))
        _block(node, out)


def _block(node: SyntaxTreeNode, out: list[Event]) -> None:
    kind = node.type
    if kind == "paragraph":
        _inline(node.children[0].children, out)
    elif kind == "heading":
        out.append(Frame("heading"))
        _inline(node.children[0].children, out)
        out.append(CLOSE)
    elif kind in ("bullet_list", "ordered_list"):
        tight = any(child.hidden for item in node.children for child in item.children)
        for index, item in enumerate(node.children):
            if index:
                out.extend((BREAK,) if tight else (BREAK, BREAK))
            marker = f"{item.info}{item.markup} " if kind == "ordered_list" else "• "
            # The marker goes before the frame: the item's indentation is for its later lines.
            out += [Leaf(marker), Frame("item", marker)]
            _blocks(item.children, out, tight)
            out.append(CLOSE)
    elif kind == "blockquote":
        out.append(Frame("quote"))
        _blocks(node.children, out, tight=False)
        out.append(CLOSE)
    elif kind == "fence" and _is_math_fence(node.info):
        _display_math(node.content.removesuffix("\n"), out)
    elif kind in ("fence", "code_block"):
        _preformatted(
            node.content.removesuffix("\n"), node.info.split(maxsplit=1)[0] if node.info else "", out
        )
    elif kind == "math_block":
        _display_math(node.content, out)
    elif kind == "table":
        _preformatted("\n".join(_table_lines(node)), "", out)
    elif kind == "hr":
        out.append(Leaf(HORIZONTAL_RULE))
    elif kind == "html_block":
        text = html.unescape(_TAG.sub("", _BR.sub("\n", node.content))).strip()
        _lines(text, out)


def _display_math(source: str, out: list[Event]) -> None:
    """A formula on lines of its own, preformatted; its TeX source when it cannot be converted."""
    text = to_unicode(source)
    _preformatted(source if text is None else text, "tex" if text is None else "", out)


def _is_math_fence(info: str) -> bool:
    return info.split(maxsplit=1)[:1] in (["math"], ["latex"], ["tex"])


def _preformatted(text: str, language: str, out: list[Event]) -> None:
    out.append(Frame("pre", language))
    _lines(text, out)
    out.append(CLOSE)


def _lines(text: str, out: list[Event]) -> None:
    for index, line in enumerate(text.split("\n")):
        if index:
            out.append(BREAK)
        if line:
            out.append(Leaf(line))


def _inline(nodes: list[SyntaxTreeNode], out: list[Event]) -> None:
    after_display = False  # a formula set on its own line: what follows starts a new one
    for node in nodes:
        kind = node.type
        if after_display and kind not in ("softbreak", "hardbreak"):
            out.append(BREAK)
        after_display = False
        if kind == "math_inline":
            after_display = _inline_math(node.content, out)
        elif kind == "text":
            # After a <br> the source's own line break or space is not wanted.
            out.append(Leaf(node.content.lstrip(" ") if out and out[-1] is BREAK else node.content))
        elif kind in ("softbreak", "hardbreak"):
            out.append(BREAK)
        elif kind == "code_inline":
            out.append(Leaf(node.content, code=True))
        elif kind in _INLINE_FRAMES:
            out.append(Frame(_INLINE_FRAMES[kind]))
            _inline(node.children, out)
            out.append(CLOSE)
        elif kind == "link" and node.markup == "autolink":
            _inline(node.children, out)  # a bare URL: every platform links it by itself
        elif kind == "link":
            _link(str(node.attrs.get("href", "")), node.children, out)
        elif kind == "image":
            source = str(node.attrs.get("src", ""))
            alt = _flat_text(node.children) or posixpath.basename(source)
            _link(source, [], out, label=IMAGE_MARK + alt)
        elif kind == "html_inline" and _BR.fullmatch(node.content):
            out.append(BREAK)
        # other inline HTML (<sup>, <mark>…): the tags go, the text between them stays


def _inline_math(source: str, out: list[Event]) -> bool:
    """A formula inside a paragraph: text in the sentence, or (`$$…$$`, `\\[…\\]`, rows) on lines
    of its own in monospace; unconvertible, its source as inline code. True when on its own lines."""
    display, body = _math_body(source)
    text = to_unicode(body)
    if text is None:
        out.append(Leaf(source.replace("\n", " "), code=True))
        return False
    if not display and "\n" not in text:
        out.append(Leaf(text))
        return False
    if out and isinstance(out[-1], Leaf) and not out[-1].code:
        out[-1] = Leaf(out[-1].text.rstrip(" "))  # no space left dangling at the end of the line
    if out and out[-1] is not BREAK:
        out.append(BREAK)
    for index, line in enumerate(text.split("\n")):
        if index:
            out.append(BREAK)
        out.append(Leaf(line, code=True))
    return True


_MATH_SPANS = (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False), ("$", "$", False))


def _math_body(source: str) -> tuple[bool, str]:
    """(display or not, the TeX between the delimiters) of an inline math token."""
    for opener, closer, display in _MATH_SPANS:
        if source.startswith(opener) and source.endswith(closer) and len(source) >= len(opener) + len(closer):
            return display, source[len(opener) : -len(closer)]
    return False, source


def _link(url: str, children: list[SyntaxTreeNode], out: list[Event], label: str = "") -> None:
    content: list[Event] = [Leaf(label)] if label else []
    _inline(children, content)
    text_is_url = [event for event in content if event != Leaf(url)] == []
    if _LINKABLE.fullmatch(url) and len(url) <= MAX_LINK_URL and not text_is_url:
        out += [Frame("link", url), *content, CLOSE]
    else:
        out += content


def _flat_text(nodes: list[SyntaxTreeNode]) -> str:
    """Inline content as text: spoilers as `||…||`, line breaks as newlines (tables, alt texts)."""
    events: list[Event] = []
    _inline(nodes, events)
    parts: list[str] = []
    stack: list[Frame] = []
    for event in events:
        if isinstance(event, Leaf):
            parts.append(event.text)
        elif event is BREAK:
            parts.append("\n")
        elif isinstance(event, Frame):
            stack.append(event)
            parts.append("||" if event.kind == "spoiler" else "")
        elif event is CLOSE:
            parts.append("||" if stack.pop().kind == "spoiler" else "")
    return "".join(parts).strip()


def _table_lines(table: SyntaxTreeNode) -> list[str]:
    rows: list[list[list[str]]] = []  # row → cell → lines
    aligns: list[str] = []
    header_rows = 0
    for section in table.children:
        for row in section.children:
            rows.append(
                [
                    _flat_text(cell.children[0].children if cell.children else []).split("\n")
                    for cell in row.children
                ]
            )
            if not aligns:
                aligns = [
                    str(cell.attrs.get("style", "")).removeprefix("text-align:") for cell in row.children
                ]
        if section.type == "thead":
            header_rows = len(rows)
    columns = max(len(row) for row in rows)
    widths = [
        max((_width(line) for row in rows if col < len(row) for line in row[col]), default=0)
        for col in range(columns)
    ]
    lines: list[str] = []
    for number, row in enumerate(rows):
        for depth in range(max(len(cell) for cell in row)):
            cells = [
                _pad(
                    row[col][depth] if col < len(row) and depth < len(row[col]) else "",
                    widths[col],
                    aligns[col] if col < len(aligns) else "",
                )
                for col in range(columns)
            ]
            lines.append(" | ".join(cells).rstrip())
        if number + 1 == header_rows:
            lines.append("-+-".join("-" * width for width in widths))
    return lines


def _width(text: str) -> int:
    """Terminal columns: East Asian wide and fullwidth characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def _pad(text: str, width: int, align: str) -> str:
    room = width - _width(text)
    if align == "right":
        return " " * room + text
    if align == "center":
        return " " * (room // 2) + text + " " * (room - room // 2)
    return text + " " * room


# ---------------------------------------------------------------- targets


class _Target:
    """How one platform shows each frame, leaf and line prefix."""

    markup_is_visible = True  # does markup count towards the limit (Discord, plain) or not (Telegram)

    def wrap(self, frame: Frame, outer: tuple[Frame, ...]) -> tuple[str, str]:
        """The markup before and after a frame's content, given the frames around it."""
        raise NotImplementedError

    def leaf(self, leaf: Leaf, stack: tuple[Frame, ...], line_start: bool) -> tuple[str, str]:
        """The markup for a leaf and the text a reader sees of it."""
        raise NotImplementedError

    def prefix(self, stack: tuple[Frame, ...]) -> str:
        """What starts every line inside these frames."""
        raise NotImplementedError


def _kinds(stack: tuple[Frame, ...]) -> set[str]:
    return {frame.kind for frame in stack}


def _indent(stack: tuple[Frame, ...]) -> str:
    return "".join(" " * len(frame.arg) for frame in stack if frame.kind == "item")


def _language(frame: Frame) -> str:
    return re.sub(r"[^\w+#.-]", "", frame.arg)


class _Telegram(_Target):
    markup_is_visible = False
    TAGS = {"b": "b", "heading": "b", "i": "i", "s": "s", "spoiler": "tg-spoiler", "quote": "blockquote"}

    def wrap(self, frame: Frame, outer: tuple[Frame, ...]) -> tuple[str, str]:
        if frame.kind == "item":
            return "", ""
        if frame.kind == "link":
            return f'<a href="{html.escape(frame.arg, quote=True)}">', "</a>"
        if frame.kind == "pre":
            language = _language(frame)
            if language:
                return f'<pre><code class="language-{language}">', "</code></pre>"
            return "<pre>", "</pre>"
        tag = self.TAGS[frame.kind]
        return f"<{tag}>", f"</{tag}>"

    def leaf(self, leaf: Leaf, stack: tuple[Frame, ...], line_start: bool) -> tuple[str, str]:
        text = html.escape(leaf.text, quote=False)
        # Telegram lets no link contain code (and nothing goes inside pre): there it is plain text.
        if leaf.code and not _kinds(stack) & {"link", "pre"}:
            text = f"<code>{text}</code>"
        return text, leaf.text

    def prefix(self, stack: tuple[Frame, ...]) -> str:
        return "" if "pre" in _kinds(stack) else _indent(stack)


class _Discord(_Target):
    MARKS = {"b": "**", "heading": "**", "i": "*", "s": "~~", "spoiler": "||"}
    SPECIAL = re.compile(r"([\\*_~`|<>\[\]])")
    LINE_START = re.compile(r"^(\s*)(?:([#+\-])|(\d+)([.)]))")
    URL = re.compile(r"https?://[^\s<>|]+")
    MENTION = re.compile(r"@(everyone|here)")

    def wrap(self, frame: Frame, outer: tuple[Frame, ...]) -> tuple[str, str]:
        if frame.kind in ("item", "quote"):
            return "", ""  # these are line prefixes
        if frame.kind == "link":
            return "[", f"]({re.sub(r'[()<> ]', lambda m: f'%{ord(m[0]):02X}', frame.arg)})"
        if frame.kind == "pre":
            return f"```{_language(frame)}\n", "\n" + self.prefix((*outer, frame)) + "```"
        mark = self.MARKS[frame.kind]
        return mark, mark

    def leaf(self, leaf: Leaf, stack: tuple[Frame, ...], line_start: bool) -> tuple[str, str]:
        kinds = _kinds(stack)
        if "pre" in kinds:
            text = leaf.text.replace("```", "`\u200b``")
        elif leaf.code:
            body = leaf.text.replace("||", "|\u200b|") if "spoiler" in kinds else leaf.text
            ticks = "`" * (max(map(len, re.findall("`+", body)), default=0) + 1)
            pad = " " if body.startswith("`") or body.endswith("`") else ""
            text = f"{ticks}{pad}{body}{pad}{ticks}"
        else:
            text = self._escape(leaf.text, line_start)
        return text, text

    def _escape(self, text: str, line_start: bool) -> str:
        # URLs stay as typed so Discord still links them.
        pieces = self.URL.split(text)
        urls = self.URL.findall(text)
        escaped = [self.SPECIAL.sub(r"\\\1", piece) for piece in pieces]
        out = "".join(part for pair in zip(escaped, [*urls, ""], strict=True) for part in pair)
        if line_start:
            out = self.LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}", out)
        return self.MENTION.sub("@\u200b\\1", out)

    def prefix(self, stack: tuple[Frame, ...]) -> str:
        quote = "> " if "quote" in _kinds(stack) else ""  # Discord quotes do not nest
        return quote + ("" if "pre" in _kinds(stack) else _indent(stack))


class _Plain(_Target):
    def wrap(self, frame: Frame, outer: tuple[Frame, ...]) -> tuple[str, str]:
        if frame.kind == "spoiler":
            return "||", "||"
        if frame.kind == "link":
            return "", f" ({frame.arg})"
        return "", ""

    def leaf(self, leaf: Leaf, stack: tuple[Frame, ...], line_start: bool) -> tuple[str, str]:
        return leaf.text, leaf.text

    def prefix(self, stack: tuple[Frame, ...]) -> str:
        pieces = {"quote": "│ ", "pre": "  "}
        return "".join(
            " " * len(frame.arg) if frame.kind == "item" else pieces.get(frame.kind, "") for frame in stack
        )


# ---------------------------------------------------------------- writer: events → messages
#
# The writer makes an _OpenFrame, a _State and a _Piece or more for every event it lays out: named
# tuples, which Python builds several times faster than frozen dataclasses.


class _OpenFrame(NamedTuple):
    """A frame being written, with its markup and the markup that closes it and all around it."""

    frame: Frame
    opener: str
    closer: str
    closing_shown: int  # of this closer and every outer one
    closing_raw: int


class _State(NamedTuple):
    stack: tuple[_OpenFrame, ...] = ()
    frames: tuple[Frame, ...] = ()
    line_start: bool = True  # nothing yet on this line, not even its prefix

    def at(self, line_start: bool) -> _State:
        return _State(self.stack, self.frames, line_start)

    def pushed(self, entry: _OpenFrame) -> _State:
        return _State((*self.stack, entry), (*self.frames, entry.frame), self.line_start)

    def popped(self, line_start: bool) -> _State:
        return _State(self.stack[:-1], self.frames[:-1], line_start)


class _Piece(NamedTuple):
    markup: str
    shown: int  # UTF-16 units a reader sees of it
    raw: int  # UTF-16 units of the markup


@dataclass(frozen=True)
class _Block:
    """A top-level block rendered on its own; it renders the same way after a blank line."""

    events: list[Event]
    pieces: list[_Piece]
    shown: int
    raw: int
    has_text: bool


@dataclass(frozen=True)
class _CutPoint:
    """The writer just before a line break: where a message can be cut."""

    parts: int
    shown: int
    raw: int
    state: _State
    has_text: bool
    event: int  # index of the break in the events being streamed


def _layout(md: str, target: _Target, limit: int | None, raw_limit: int | None) -> list[str]:
    writer = _Writer(target, limit, raw_limit)
    groups: list[list[Event]] = [[]]
    for event in _events(md):
        if event is BOUNDARY:
            groups.append([])
        else:
            groups[-1].append(event)
    blocks = [writer.measure(group) for group in groups]
    for index, block in enumerate(blocks):
        # A heading goes with the block after it.
        heading = block.events[:1] == [Frame("heading")]
        writer.block(block, blocks[index + 1] if heading and index + 1 < len(blocks) else None)
    return writer.finish()


def _has_text(event: Event) -> bool:
    return isinstance(event, Leaf) and not event.text.isspace() and event.text != ""


class _Writer:
    def __init__(self, target: _Target, limit: int | None, raw_limit: int | None) -> None:
        self.target = target
        self.limit = limit
        self.raw_limit = raw_limit
        self.separator = [self._piece("\n", "\n")] * 2
        self.chunks: list[str] = []
        self._start(())

    # ---- the message being written

    def _start(self, reopen: tuple[_OpenFrame, ...]) -> None:
        self.parts: list[str] = []
        self.shown = 0
        self.raw = 0
        self.state = _State()
        self.cut: _CutPoint | None = None
        self.has_text = False
        for entry in reopen:
            self._commit(*self._open(entry.frame, self.state, entry))
        self.content_start = len(self.parts)

    def _commit(self, pieces: list[_Piece], state: _State) -> None:
        for piece in pieces:
            self.parts.append(piece.markup)
            self.shown += piece.shown
            self.raw += piece.raw
        self.state = state

    def _fits(self, shown: int, raw: int, state: _State) -> bool:
        """Whether `shown` and `raw` more, and then closing every frame of `state`, stay in the limits."""
        if state.stack:
            shown += state.stack[-1].closing_shown
            raw += state.stack[-1].closing_raw
        return (self.limit is None or self.shown + shown <= self.limit) and (
            self.raw_limit is None or self.raw + raw <= self.raw_limit
        )

    def _fits_pieces(self, pieces: list[_Piece], state: _State) -> bool:
        return self._fits(sum(piece.shown for piece in pieces), sum(piece.raw for piece in pieces), state)

    def _flush(self) -> None:
        if self.has_text:
            self.chunks.append(
                "".join(self.parts) + "".join(entry.closer for entry in reversed(self.state.stack))
            )
        self._start(self.state.stack)

    # ---- rendering

    def _piece(self, markup: str, seen: str) -> _Piece:
        return _Piece(markup, utf16_len(seen), utf16_len(markup))

    def _markup(self, markup: str) -> _Piece:
        return self._piece(markup, markup if self.target.markup_is_visible else "")

    def _render(self, event: Event, state: _State) -> tuple[list[_Piece], _State]:
        if event is BREAK:
            return self.separator[:1], state.at(True)
        if event is CLOSE:
            closer = state.stack[-1].closer
            return [self._markup(closer)], state.popped(state.line_start and not closer)
        if isinstance(event, Frame):
            return self._open(event, state)
        assert isinstance(event, Leaf)
        pieces = self._line_prefix(state, state.frames)
        pieces.append(self._piece(*self.target.leaf(event, state.frames, state.line_start)))
        return pieces, state.at(False)

    def _open(self, frame: Frame, state: _State, known: _OpenFrame | None = None) -> tuple[list[_Piece], _State]:
        if known is None:
            opener, closer = self.target.wrap(frame, state.frames)
            if opener and any(entry.opener == opener for entry in state.stack):
                opener = closer = ""  # already bold, already quoted…: nesting adds nothing
            closing = self._markup(closer)
            outer_shown, outer_raw = (
                (state.stack[-1].closing_shown, state.stack[-1].closing_raw) if state.stack else (0, 0)
            )
            known = _OpenFrame(frame, opener, closer, outer_shown + closing.shown, outer_raw + closing.raw)
        inner = state.pushed(known)
        if not known.opener:
            return [], inner
        pieces = self._line_prefix(state, inner.frames)
        pieces.append(self._markup(known.opener))
        return pieces, inner.at(known.opener.endswith("\n"))

    def _line_prefix(self, state: _State, frames: tuple[Frame, ...]) -> list[_Piece]:
        prefix = self.target.prefix(frames) if state.line_start else ""
        return [self._piece(prefix, prefix)] if prefix else []

    def measure(self, events: list[Event]) -> _Block:
        pieces: list[_Piece] = []
        state = _State()
        for event in events:
            more, state = self._render(event, state)
            pieces += more
        shown, raw = sum(piece.shown for piece in pieces), sum(piece.raw for piece in pieces)
        return _Block(events, pieces, shown, raw, any(map(_has_text, events)))

    # ---- layout

    def block(self, block: _Block, following: _Block | None) -> None:
        """Whole blocks while they fit; a block too large for any message is streamed and cut."""
        if self.has_text:
            shown, raw = 2 + block.shown, 2 + block.raw
            if following:
                shown, raw = shown + 2 + following.shown, raw + 2 + following.raw
            if self._fits(shown, raw, self.state):
                self._commit([*self.separator, *block.pieces], _State())
                return
            self._flush()
        if self._fits(block.shown, block.raw, self.state):
            self._commit(block.pieces, _State())
            self.has_text = self.has_text or block.has_text
        else:
            self._stream(block.events)

    def _stream(self, events: list[Event]) -> None:
        events = list(events)
        self.cut = None
        index = 0
        while index < len(events):
            event = events[index]
            if event is BREAK and len(self.parts) == self.content_start:
                index += 1  # a message does not start with an empty line
                continue
            pieces, state = self._render(event, self.state)
            if self._fits_pieces(pieces, state):
                if event is BREAK:
                    self.cut = _CutPoint(
                        len(self.parts), self.shown, self.raw, self.state, self.has_text, index
                    )
                self._commit(pieces, state)
                self.has_text = self.has_text or _has_text(event)
                index += 1
            elif self.cut is not None:
                mark = self.cut
                del self.parts[mark.parts :]
                self.shown, self.raw, self.state, self.has_text = (
                    mark.shown,
                    mark.raw,
                    mark.state,
                    mark.has_text,
                )
                self._flush()
                index = mark.event + 1
            elif isinstance(event, Leaf) and (split := self._split(event)):
                head, rest = split
                self._commit(*self._render(head, self.state))
                self.has_text = True
                self._flush()
                events[index] = rest
            elif len(self.parts) > self.content_start:
                self._flush()
            else:  # cannot be split and does not fit an empty message: send it over the limit
                self._commit(pieces, state)
                self.has_text = True
                index += 1

    def _split(self, leaf: Leaf) -> tuple[Leaf, Leaf] | None:
        """The longest head of `leaf` that fits, preferring to cut at a space (which is dropped)."""

        def fits(length: int) -> bool:
            return self._fits_pieces(*self._render(Leaf(leaf.text[:length], leaf.code), self.state))

        low, high = 0, len(leaf.text) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if fits(middle):
                low = middle
            else:
                high = middle - 1
        if low == 0:
            return None
        space = leaf.text.rfind(" ", low // 2, low)
        if space > 0:
            return Leaf(leaf.text[:space], leaf.code), Leaf(leaf.text[space + 1 :], leaf.code)
        return Leaf(leaf.text[:low], leaf.code), Leaf(leaf.text[low:], leaf.code)

    def finish(self) -> list[str]:
        self._flush()
        return self.chunks
