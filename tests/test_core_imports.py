"""The core imports no platform library: every platform is a translation of it, never inside it."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "bot" / "core"
PLATFORM_LIBRARIES = {"telegram", "discord"}


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_core_module_imports_a_platform_library() -> None:
    offenders = {
        path.name: sorted(imported_roots(path.read_text(encoding="utf-8")) & PLATFORM_LIBRARIES)
        for path in sorted(CORE.glob("*.py"))
    }
    assert len(offenders) >= 8, "the core modules were not found"
    assert {name: libs for name, libs in offenders.items() if libs} == {}


def test_the_check_sees_an_import_in_any_form() -> None:
    source = "import os\nimport telegram.ext\nfrom discord import app_commands\nif True:\n    import json\n"
    assert imported_roots(source) & PLATFORM_LIBRARIES == {"telegram", "discord"}
