"""Start-up validation, through the real `dailyq` command: a setting or a database path dailyq cannot
use stops it at once, with one line naming it and exit status 2, instead of failing every command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DAILYQ = str(Path(sys.executable).parent / "dailyq")
BANK = """# Bank
### Q. What is attention?
> **Tags**: [basics]

Weights over values.

<mark>Summary: weights over values.</mark>
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The working directory of the command: a bank, and no .env."""
    (tmp_path / "bank.md").write_text(BANK, encoding="utf-8")
    return tmp_path


def dailyq(home: Path, *args: str, stdin: str = "", **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAILYQ_", "TELEGRAM_", "DISCORD_"))}
    env |= {"DAILYQ_CONTENT": str(home / "bank.md"), "DAILYQ_DB": str(home / "data" / "q.sqlite3")}
    return subprocess.run(
        [DAILYQ, *args], input=stdin, cwd=home, env=env | variables, capture_output=True, text=True, timeout=60
    )


def assert_refused(done: subprocess.CompletedProcess[str], *named: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""  # nothing started: no banner, no reply
    (line,) = done.stderr.splitlines()
    assert line.startswith("dailyq: ") and all(name in line for name in named), line


@pytest.mark.parametrize("command", ["console", "run"])
@pytest.mark.parametrize(
    ("variable", "value"), [("DAILYQ_TIMEZONE", "Europe/Berln"), ("DAILYQ_POST_TIME", "9am")]
)
def test_a_bad_chat_default_stops_the_start(home: Path, command: str, variable: str, value: str) -> None:
    done = dailyq(home, command, stdin="/start\n", **{variable: value})
    assert_refused(done, variable, value)
    assert not (home / "data").exists()


def test_good_chat_defaults_start_the_console(home: Path) -> None:
    done = dailyq(home, "console", stdin="/settings\n", DAILYQ_TIMEZONE="europe/berlin", DAILYQ_POST_TIME="7:30")
    assert done.returncode == 0, done.stderr
    assert "Europe/Berlin" in done.stdout and "07:30" in done.stdout


def unusable_databases(home: Path) -> dict[str, Path]:
    (home / "a-file").write_text("not a folder")
    (home / "a-folder.sqlite3").mkdir()
    return {
        "under a file": home / "a-file" / "q.sqlite3",
        "a folder that cannot be made": Path("/proc/dailyq-test/q.sqlite3"),
        "permission denied": Path("/sys/dailyq-test.sqlite3"),  # sysfs takes no new file, not even root's
        "a folder in its place": home / "a-folder.sqlite3",
    }


@pytest.mark.parametrize("command", ["console", "run", "reload", "restore"])
def test_a_database_that_cannot_be_created_is_named_in_one_line(home: Path, command: str) -> None:
    args = [command, str(home / "backup.sqlite3")] if command == "restore" else [command]
    for case, db in unusable_databases(home).items():
        done = dailyq(home, *args, stdin="/start\n", DAILYQ_DB=str(db))
        assert "Traceback" not in done.stderr, case
        assert_refused(done, str(db))


@pytest.fixture
def no_zone_data(tmp_path: Path) -> dict[str, str]:
    """A machine without time zone data: no system zoneinfo, and no tzdata package to import."""
    shadow = tmp_path / "no-tzdata"
    (shadow / "tzdata").mkdir(parents=True)
    (shadow / "tzdata" / "__init__.py").write_text("raise ImportError('no time zone data here')\n")
    (tmp_path / "empty").mkdir()
    return {"PYTHONPATH": str(shadow), "PYTHONTZPATH": str(tmp_path / "empty")}


def test_without_time_zone_data_utc_still_works(home: Path, no_zone_data: dict[str, str]) -> None:
    done = dailyq(home, "console", stdin="/settings\n/quiz\n", **no_zone_data)
    assert done.returncode == 0, done.stderr
    assert "UTC" in done.stdout and "What is attention?" in done.stdout
    assert "went wrong" not in done.stdout

    elsewhere = dailyq(home, "console", stdin="/start\n", DAILYQ_TIMEZONE="Europe/Berlin", **no_zone_data)
    assert_refused(elsewhere, "DAILYQ_TIMEZONE", "Europe/Berlin")
