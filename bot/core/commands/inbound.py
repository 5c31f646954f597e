"""How the core reads what a platform hands it: command lines, hidden answers, language codes.

Adapters import these too (to decide what to pass along), so this module depends on nothing but
the message catalog.
"""

from __future__ import annotations

import re

from bot.core.messages import LANGUAGES


def platform_language(reported: str | None) -> str | None:
    """The catalog language for a platform's language code ('zh-hans' → zh), if we have it."""
    code = (reported or "").casefold()
    return next((lang for lang in LANGUAGES if code.startswith(lang)), None)


def split_command(text: str) -> tuple[str, str]:
    """'/Grade@dailyq_bot good 12' → ('grade', 'good 12'); the arguments keep their inner lines."""
    match = re.match(r"/(\S*)\s*(.*)", text, re.DOTALL)
    assert match, text
    return match[1].partition("@")[0].casefold(), match[2].strip()


def looks_hidden(text: str) -> bool:
    """Whether every non-whitespace character is inside ||…|| (as typed on Discord or in the console)."""
    outside = re.sub(r"\|\|.+?\|\|", "", text, flags=re.DOTALL)
    return "||" in text and not outside.strip()


def valid_unicode(text: str) -> str:
    """Lone surrogates (JSON accepts "\\ud800") become U+FFFD: they cannot be stored or sent as UTF-8.
    So does NUL, which PostgreSQL cannot store in text (SQLite can): both backends keep the same."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\0", "\ufffd")
