"""The core depends on nothing outside it: no platform library, no adapter, no ops module, and only the
store speaks to a database driver. Every platform and every backend is a translation of the core."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"
CORE = BOT / "core"
STORE = CORE / "store"
FORBIDDEN_IN_CORE = ("telegram", "discord", "bot.adapters", "bot.ops")
DATABASE_DRIVERS = ("aiosqlite", "sqlite3", "asyncpg")


def imported_modules(source: str) -> set[str]:
    """Every module an import statement names, anywhere in the file (`from a import b` gives a and a.b)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def forbidden_imports(core: Path) -> dict[str, list[str]]:
    """The core's modules (relative path) that import something they must not, and what."""
    offenders = {}
    for path in sorted(core.rglob("*.py")):
        forbidden = (
            FORBIDDEN_IN_CORE if path.is_relative_to(core / "store") else FORBIDDEN_IN_CORE + DATABASE_DRIVERS
        )
        found = sorted(
            module
            for module in imported_modules(path.read_text(encoding="utf-8"))
            if any(module == name or module.startswith(f"{name}.") for name in forbidden)
        )
        if found:
            offenders[str(path.relative_to(core))] = found
    return offenders


def test_no_core_module_imports_a_platform_an_adapter_ops_or_outside_the_store_a_driver() -> None:
    assert len(list(CORE.rglob("*.py"))) >= 20, "the core modules were not found"
    assert forbidden_imports(CORE) == {}


def test_the_check_sees_each_kind_of_forbidden_import_in_any_form(tmp_path: Path) -> None:
    core = tmp_path / "core"
    (core / "store").mkdir(parents=True)
    (core / "commands").mkdir()
    (core / "scheduler.py").write_text("import os\nfrom bot.core.ports import Adapter\nimport aiosqlite\n")
    (core / "render.py").write_text("if True:\n    import telegram.ext\nfrom discord import app_commands\n")
    (core / "commands" / "talk.py").write_text("from bot.adapters.base import Core\nfrom bot import ops\n")
    (core / "health.py").write_text("def f():\n    from bot.ops.health import Health\n    import sqlite3\n")
    (core / "store" / "sqlite.py").write_text("import sqlite3\nimport aiosqlite\nimport asyncpg\n")
    (core / "store" / "bad.py").write_text("from bot.adapters import telegram\n")
    assert forbidden_imports(core) == {
        "commands/talk.py": ["bot.adapters.base", "bot.adapters.base.Core", "bot.ops"],
        "health.py": ["bot.ops.health", "bot.ops.health.Health", "sqlite3"],
        "render.py": ["discord", "discord.app_commands", "telegram.ext"],
        "scheduler.py": ["aiosqlite"],
        "store/bad.py": ["bot.adapters", "bot.adapters.telegram"],
    }


# A string that starts as a statement does: SQL, or a SQLite pragma.
SQL_STATEMENT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|BEGIN|COMMIT|PRAGMA) ")


def sql_outside_the_store(package: Path) -> dict[str, list[str]]:
    """Modules outside `core/store` with a string literal that is a SQL statement, and those strings."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        if path.is_relative_to(package / "core" / "store"):
            continue
        statements = [
            node.value
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_STATEMENT.match(node.value)
        ]
        if statements:
            found[str(path.relative_to(package))] = statements
    return found


def test_only_the_store_speaks_sql() -> None:
    assert sql_outside_the_store(BOT) == {}


def test_the_sql_check_sees_statements_and_pragmas(tmp_path: Path) -> None:
    (tmp_path / "core" / "store").mkdir(parents=True)
    (tmp_path / "core" / "store" / "sqlite.py").write_text('q = "SELECT 1"\n')
    (tmp_path / "backup.py").write_text('"""Checked with PRAGMA integrity_check."""\ndb.execute("PRAGMA integrity_check")\n')
    assert sql_outside_the_store(tmp_path) == {"backup.py": ["PRAGMA integrity_check"]}
