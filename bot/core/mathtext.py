"""TeX math → Unicode text a chat can show: `\\frac{QK^\\top}{\\sqrt{d_k}}` → `QKᵀ/√dₖ`.

pylatexenc's `LatexWalker` parses the source into a node tree (with an empty macro table, so every
macro is a bare name and its arguments are the nodes after it); we render that tree with our own
rules. Whatever the rules do not know (an unknown macro, an environment other than the row-based
ones, unbalanced braces) makes the whole formula unconvertible: `to_unicode` returns None and the
caller shows the source as it is, never half-converted text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pylatexenc import macrospec
from pylatexenc.latexwalker import (
    LatexCharsNode,
    LatexCommentNode,
    LatexEnvironmentNode,
    LatexGroupNode,
    LatexMacroNode,
    LatexWalker,
    LatexWalkerError,
)

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "varpi": "ϖ", "rho": "ρ",
    "varrho": "ϱ", "sigma": "σ", "varsigma": "ς", "tau": "τ", "upsilon": "υ", "phi": "ϕ",
    "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π",
    "Sigma": "Σ", "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}  # fmt: skip
# Operators and relations: set apart by spaces, as TeX sets them.
SPACED = {
    "times": "×", "cdot": "·", "pm": "±", "mp": "∓", "div": "÷", "le": "≤", "leq": "≤",
    "ge": "≥", "geq": "≥", "neq": "≠", "ne": "≠", "approx": "≈", "sim": "∼", "simeq": "≃",
    "equiv": "≡", "propto": "∝", "in": "∈", "notin": "∉", "subset": "⊂", "subseteq": "⊆",
    "cup": "∪", "cap": "∩", "to": "→", "rightarrow": "→", "leftarrow": "←", "Rightarrow": "⇒",
    "Leftarrow": "⇐", "iff": "⟺", "implies": "⟹", "mapsto": "↦", "ll": "≪", "gg": "≫",
    "succ": "≻", "prec": "≺", "mid": "|", "parallel": "‖", "Vert": "‖", "|": "‖",
    "otimes": "⊗", "oplus": "⊕", "odot": "⊙", "circ": "∘", "land": "∧", "lor": "∨",
}  # fmt: skip
SYMBOLS = {
    "infty": "∞", "nabla": "∇", "partial": "∂", "sum": "∑", "prod": "∏", "int": "∫",
    "forall": "∀", "exists": "∃", "neg": "¬", "emptyset": "∅", "star": "⋆", "ast": "∗",
    "dots": "…", "ldots": "…", "cdots": "⋯", "vdots": "⋮", "top": "⊤", "bot": "⊥",
    "prime": "′", "dagger": "†", "langle": "⟨", "rangle": "⟩", "lfloor": "⌊", "rfloor": "⌋",
    "lceil": "⌈", "rceil": "⌉", "ell": "ℓ", "hbar": "ℏ",
    "{": "{", "}": "}", "$": "$", "_": "_", "%": "%", "#": "#", "&": "&",
    "lvert": "|", "rvert": "|", "vert": "|", "lVert": "‖", "rVert": "‖",
}  # fmt: skip
FUNCTIONS = frozenset({
    "log", "ln", "exp", "min", "max", "sin", "cos", "tan", "tanh", "sigmoid", "arg", "argmax", "argmin",
    "lim", "sup", "inf", "det", "dim", "ker", "Pr",
})  # fmt: skip
SPACES = {",": " ", ":": " ", ";": " ", " ": " ", "quad": " ", "qquad": " ", "!": ""}
DROPPED = frozenset({
    "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr",
    "Biggl", "Biggr", "displaystyle", "textstyle", "limits", "nolimits", "rm", "it", "bf", "mathstrut",
})  # fmt: skip
PLAIN = frozenset({
    "text", "mathrm", "textrm", "operatorname", "mathit", "textit", "mathbf", "textbf", "boldsymbol", "bm",
    "mathsf",
})  # fmt: skip
FRACTIONS = frozenset(("frac", "tfrac", "dfrac"))
ACCENTS = {
    "hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "overline": "\u0305", "tilde": "\u0303",
    "widetilde": "\u0303", "vec": "\u20d7", "dot": "\u0307", "ddot": "\u0308",
}  # fmt: skip
ROWS = frozenset(("cases", "aligned", "align", "align*", "gathered", "split", "gather", "gather*"))

SUPERSCRIPTS = dict(
    zip(
        "0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVWβγδεθιφχ*′'ᵀ",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵝᵞᵟᵋᶿᶥᵠᵡ*′′ᵀ",
        strict=True,
    )
)
SUBSCRIPTS = dict(
    zip("0123456789+-=()aehijklmnoprstuvxβγρφχ", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ", strict=True)
)
# A superscript ⊤ or T is a transpose.
SUPERSCRIPTS["⊤"] = "ᵀ"

_BLACKBOARD_EXCEPTIONS = {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"}
_SCRIPT_EXCEPTIONS = {"B": "ℬ", "E": "ℰ", "F": "ℱ", "H": "ℋ", "I": "ℐ", "L": "ℒ", "M": "ℳ", "R": "ℛ"}
_OPERATORS = frozenset("+-=<>/,|×·±∓÷≤≥≠≈∼≃≡∝∈∉⊂⊆∪∩→←⇒⇐⟺⟹↦≪≫≻≺‖⊗⊕⊙∘∧∨")
_SPACE_RUN = re.compile(r" +")
_SPACE_INSIDE_BRACKETS = re.compile(r"(?<=[(\[{⟨]) | (?=[)\]}⟩,;])")
CELL_GAP = "\u2003"
# The space after a macro name (`\alpha = 1`, `\Delta W`), as parsed.
_POST_SPACE = "\x00"
# The edges of a fraction become a space only between two things that would otherwise run
# together: `1/n ∑xᵢ`, but `=a/b` and `(a/b)`.
_EDGE = "\x01"
_NO_SPACE_AFTER = _OPERATORS | frozenset("([⟨")
_NO_SPACE_BEFORE = _OPERATORS | frozenset(")]⟩,;")


class Unconvertible(Exception):
    """The formula uses something the rules cannot show as text."""


@lru_cache(maxsize=4096)
def to_unicode(latex: str) -> str | None:
    """The formula as Unicode text (rows on lines of their own), or None when not fully convertible."""
    try:
        nodes = _parse(latex)
        text = _Renderer().sequence(_Items(nodes))
    except (Unconvertible, LatexWalkerError, RecursionError):
        return None
    lines = [_tidy(line) for line in text.split("\n")]
    result = "\n".join(line for line in lines if line)
    return result or None


def _context() -> macrospec.LatexContextDb:
    # No macro takes arguments at parse time: the renderer takes them from the nodes that follow,
    # which handles `\frac12` and `\frac{a}{b}` alike.
    context = macrospec.LatexContextDb()
    context.set_unknown_macro_spec(macrospec.MacroSpec(""))
    context.set_unknown_environment_spec(macrospec.EnvironmentSpec(""))
    return context


_CONTEXT = _context()


def _parse(latex: str) -> list:
    walker = LatexWalker(latex, latex_context=_CONTEXT, tolerant_parsing=False)
    nodes, _, _ = walker.get_latex_nodes()
    return nodes


# ---------------------------------------------------------------- items: the node tree, one character at a time


@dataclass(frozen=True)
class _Char:
    char: str


@dataclass(frozen=True)
class _Macro:
    name: str


@dataclass(frozen=True)
class _Group:
    items: tuple


@dataclass(frozen=True)
class _Environment:
    name: str
    items: tuple


def _flatten(nodes: list) -> tuple:
    items: list = []
    for node in nodes or ():
        if isinstance(node, LatexCharsNode):
            items += [_Char(char) for char in node.chars]
        elif isinstance(node, LatexMacroNode):
            items.append(_Macro(node.macroname))
            if node.macro_post_space:
                items.append(_Char(_POST_SPACE))
        elif isinstance(node, LatexGroupNode):
            items.append(_Group(_flatten(node.nodelist)))
        elif isinstance(node, LatexEnvironmentNode):
            items.append(_Environment(node.environmentname, _flatten(node.nodelist)))
        elif not isinstance(node, LatexCommentNode):
            raise Unconvertible(type(node).__name__)  # nested math, specials
    return tuple(items)


def _is_blank(item: object) -> bool:
    return isinstance(item, _Char) and (item.char.isspace() or item.char == _POST_SPACE)


def _is_invisible(item: object) -> bool:
    """Sizing and spacing macros: `\\log\\big(` is `log(`."""
    return isinstance(item, _Macro) and (item.name in DROPPED or item.name in SPACES)


class _Items:
    """A cursor over items: arguments are taken from what follows a macro."""

    def __init__(self, items: list | tuple) -> None:
        self.items = items if isinstance(items, tuple) else _flatten(items)
        self.position = 0

    def more(self) -> bool:
        return self.position < len(self.items)

    def peek(self) -> object | None:
        return self.items[self.position] if self.more() else None

    def take(self) -> object:
        if not self.more():
            raise Unconvertible("an argument is missing")
        item = self.items[self.position]
        self.position += 1
        return item

    def argument(self) -> object:
        """The next item that is not a space (TeX skips spaces before an argument)."""
        while _is_blank(self.peek()):
            self.position += 1
        return self.take()

    def argument_ahead(self, skip_invisible: bool = False) -> object | None:
        """The item `argument()` would take, without taking it (or the next visible one)."""
        ahead = self.position
        while ahead < len(self.items) and (
            _is_blank(self.items[ahead]) or (skip_invisible and _is_invisible(self.items[ahead]))
        ):
            ahead += 1
        return self.items[ahead] if ahead < len(self.items) else None

    def optional(self) -> tuple | None:
        """The items of a `[…]` argument right here, if there is one."""
        if self.peek() != _Char("["):
            return None
        start = self.position + 1
        for end in range(start, len(self.items)):
            if self.items[end] == _Char("]"):
                self.position = end + 1
                return self.items[start:end]
        raise Unconvertible("an optional argument is not closed")


# ---------------------------------------------------------------- rendering


class _Renderer:
    def sequence(self, items: _Items) -> str:
        out: list[str] = []
        while items.more():
            item = items.take()
            if item == _Char(_POST_SPACE):
                # Kept before `=` or another macro, dropped where it only ended the name: `\Delta W`.
                following = items.argument_ahead(skip_invisible=True)
                ends_name = isinstance(following, _Char) and following.char.isalnum()
                out.append("" if ends_name else " ")
            elif item in (_Char("^"), _Char("_")):
                out.append(self.script(item.char, self.argument(items)))
            else:
                out.append(self.item(item, items))
        return "".join(out)

    def argument(self, items: _Items) -> str:
        """The next argument rendered: a group, one character, or a macro with its own arguments."""
        return self.item(items.argument(), items)

    def item(self, item: object, items: _Items) -> str:
        if isinstance(item, _Char):
            return self.char(item.char)
        if isinstance(item, _Group):
            return self.sequence(_Items(item.items))
        if isinstance(item, _Environment):
            return self.environment(item)
        assert isinstance(item, _Macro)
        return self.macro(item.name, items)

    def char(self, char: str) -> str:
        if char in "\n\r~":
            return " "

        if char == "&":
            raise Unconvertible("& outside a row environment")
        return char

    def macro(self, name: str, items: _Items) -> str:
        if name in GREEK:
            return GREEK[name]
        if name in SYMBOLS:
            return SYMBOLS[name]
        if name in SPACED:
            return f" {SPACED[name]} "
        if name in SPACES:
            return SPACES[name]
        if name in FUNCTIONS:
            if isinstance(following := items.argument_ahead(), _Macro) and following.name in FRACTIONS:
                return f"{name}({self.argument(items).strip()})"  # `log a/b` would read as (log a)/b
            following = items.argument_ahead(skip_invisible=True)
            if isinstance(following, _Char) and following.char in "(^_[|":
                while items.more() and (_is_blank(items.peek()) or _is_invisible(items.peek())):
                    items.take()  # `\\exp \\left(` is `exp(`
                return name
            return name if following is None else name + " "
        if name in DROPPED:
            if name in ("left", "right") and items.peek() == _Char("."):
                items.take()  # `\left.` is an invisible delimiter
            return ""
        if name in PLAIN:
            return self.argument(items)
        if name in FRACTIONS:
            numerator = self.argument(items)
            denominator = self.argument(items)
            # Spaced apart from what is around it: `1/n ∑xᵢ`, not `1/n∑xᵢ`.
            return f"{_EDGE}{_operand(numerator, juxtaposed=True)}/{_operand(denominator)}{_EDGE}"
        if name == "sqrt":
            return self.root(items)
        if name in ACCENTS:
            return _accented(self.argument(items), ACCENTS[name])
        if name == "mathbb":
            return _letters(self.argument(items), _blackboard)
        if name == "mathcal":
            return _letters(self.argument(items), _calligraphic)
        if name in ("underbrace", "overbrace"):
            return self.brace(name, items)
        raise Unconvertible(f"\\{name}")

    def root(self, items: _Items) -> str:
        degree = items.optional()
        radicand = self.argument(items)
        sign = "√"
        if degree is not None:
            sign = {"2": "√", "3": "∛", "4": "∜"}.get(self.sequence(_Items(degree)).strip())
            if sign is None:
                raise Unconvertible("a root other than square, cube or fourth")
        return sign + _operand(radicand)

    def brace(self, name: str, items: _Items) -> str:
        """`\\underbrace{x}_{label}`: the expression, then its label in brackets."""
        body = self.argument(items)
        script = "_" if name == "underbrace" else "^"
        following = items.position
        while _is_blank(items.peek()):
            items.position += 1
        if items.peek() == _Char(script):
            items.take()
            return f"{body} [{self.argument(items).strip()}]"
        items.position = following
        return body

    def environment(self, environment: _Environment) -> str:
        if environment.name not in ROWS:
            raise Unconvertible(f"the {environment.name} environment")
        rows: list[list[str]] = [[]]
        cell: list = []
        for item in environment.items:
            if item == _Char("&"):
                rows[-1].append(self.sequence(_Items(tuple(cell))))
                cell = []
            elif item == _Macro("\\"):
                rows[-1].append(self.sequence(_Items(tuple(cell))))
                rows.append([])
                cell = []
            else:
                cell.append(item)
        rows[-1].append(self.sequence(_Items(tuple(cell))))
        # Cells apart by an em space, which survives the clean-up of ordinary spaces; the rows of
        # `cases` indented by one, under the expression they define.
        lines = [CELL_GAP.join(cell.strip(" ") for cell in row if cell.strip(" ")) for row in rows]
        indent = CELL_GAP if environment.name == "cases" else ""
        return "\n" + "\n".join(indent + line for line in lines if line) + "\n"

    def script(self, kind: str, text: str) -> str:
        table = SUPERSCRIPTS if kind == "^" else SUBSCRIPTS
        text = text.strip()
        if not text:
            return ""
        if "\n" in text:
            raise Unconvertible("a script with rows")
        if all(char in table for char in text):
            return "".join(table[char] for char in text)
        if len(text) == 1 or text.isalnum():
            return kind + text
        return f"{kind}({text})"


def _tidy(line: str) -> str:
    """One space where several were, none just inside brackets or before a comma."""
    line = _resolve_edges(line)
    return _SPACE_INSIDE_BRACKETS.sub("", _SPACE_RUN.sub(" ", line)).strip(" ")


def _resolve_edges(line: str) -> str:
    if _EDGE not in line:
        return line
    out: list[str] = []
    for index, char in enumerate(line):
        if char != _EDGE:
            out.append(char)
            continue
        following = line[index + 1 : index + 2]
        previous = out[-1] if out else ""
        if previous and following and following != _EDGE and _run_together(previous, following):
            out.append(" ")
    return "".join(out)


def _run_together(previous: str, following: str) -> bool:
    """Whether two characters would read as one word without a space between them."""
    if previous.isspace() or following.isspace():
        return False
    return previous not in _NO_SPACE_AFTER and following not in _NO_SPACE_BEFORE


def _operand(text: str, juxtaposed: bool = False) -> str:
    """`text` as one operand of `/` or `√`: in parentheses unless it is one already.

    A numerator may be a product written with spaces (`Q K/√d` is `(Q K)/√d` either way).
    """
    text = text.strip()
    if not text or "\n" in text:
        raise Unconvertible("an empty or multi-line operand")
    if len(text) > 1 and text[0] == text[-1] and text[0] in "|‖" and text.count(text[0]) == 2:
        return text  # |x| and ‖x‖ are one operand already
    depth = 0
    for index, char in enumerate(text):
        if char in "([{⟨":
            depth += 1
        elif char in ")]}⟩":
            depth -= 1
        elif depth == 0 and (char in _OPERATORS or (char.isspace() and not juxtaposed)) and index > 0:
            return f"({text})"
    return text


def _accented(text: str, mark: str) -> str:
    text = text.strip()
    if not text:
        raise Unconvertible("an accent on nothing")
    return "".join(char + mark for char in text)


def _letters(text: str, font) -> str:
    text = text.strip()
    if not text.isascii() or not text.isalnum():
        raise Unconvertible("a font for something other than letters")
    return "".join(font(char) for char in text)


def _blackboard(char: str) -> str:
    if char == "1":
        return "𝟙"
    if char.isdigit():
        return chr(ord("𝟘") + int(char))
    return _BLACKBOARD_EXCEPTIONS.get(char) or unicodedata.lookup(
        f"MATHEMATICAL DOUBLE-STRUCK {'CAPITAL' if char.isupper() else 'SMALL'} {char.upper()}"
    )


def _calligraphic(char: str) -> str:
    if not char.isupper():
        raise Unconvertible("\\mathcal of a lower-case letter")
    return _SCRIPT_EXCEPTIONS.get(char) or unicodedata.lookup(f"MATHEMATICAL SCRIPT CAPITAL {char}")
