"""The command line, through the real `dailyq` command: start-up validation (a setting or a database
path dailyq cannot use stops it at once, with one line naming it and exit status 2, instead of
failing every command), ./.env, help, and output piped into a reader that leaves early."""

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


# ---- ./.env -------------------------------------------------------------------------------------


def test_every_command_reads_dotenv_and_the_environment_wins(home: Path) -> None:
    (home / "other.md").write_text(BANK.replace("attention", "a KV cache"), encoding="utf-8")
    (home / ".env").write_text(
        "# settings for this folder\nDAILYQ_CONTENT=other.md\nDAILYQ_TIMEZONE=Asia/Tokyo\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILYQ_")}

    def run(*args: str, stdin: str = "", **variables: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DAILYQ, *args], input=stdin, cwd=home, env=env | variables, capture_output=True, text=True, timeout=60
        )

    checked = run("check")
    assert checked.returncode == 0, checked.stderr
    assert "other.md" in checked.stdout and "bank.md" not in checked.stdout

    console = run("console", stdin="/settings\n/quiz\n")
    assert "Asia/Tokyo" in console.stdout and "a KV cache" in console.stdout, console.stdout + console.stderr

    overridden = run("console", stdin="/settings\n", DAILYQ_TIMEZONE="Europe/Berlin")
    assert "Europe/Berlin" in overridden.stdout and "Asia/Tokyo" not in overridden.stdout


# ---- help --------------------------------------------------------------------------------------

COMMANDS = ("check", "console", "run", "reload", "backup", "restore")


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_a_description_and_shows_its_defaults(home: Path, command: str) -> None:
    done = dailyq(home, command, "--help")
    assert done.returncode == 0, done.stderr
    usage, description, *sections = done.stdout.split("\n\n")
    assert usage.startswith(f"usage: dailyq {command}")
    assert not description.startswith(("positional arguments", "options")), done.stdout
    assert len(description.split()) >= 8, description
    if "--db" in done.stdout:
        assert "default: DAILYQ_DB, else data/dailyq.sqlite3" in " ".join(done.stdout.split())
    assert "(default: None)" not in done.stdout


def test_the_console_shows_its_defaults(home: Path) -> None:
    text = " ".join(dailyq(home, "console", "--help").stdout.split())
    assert "(default: you)" in text and "(default: console)" in text


@pytest.mark.parametrize("command", ["reload", "backup", "restore"])
def test_options_that_mean_nothing_to_a_command_are_gone(home: Path, command: str) -> None:
    assert "--content" not in dailyq(home, command, "--help").stdout
    refused = dailyq(home, command, "--content", "bank.md", *(["x.sqlite3"] if command != "reload" else []))
    assert refused.returncode == 2 and "unrecognized arguments: --content" in refused.stderr


# ---- a reader that leaves early ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "stdin"), [(["check"], ""), (["check", "--json"], ""), (["console"], "/help\n/quiz\n/stats\n")]
)
def test_output_into_a_closed_pipe_ends_quietly(home: Path, args: list[str], stdin: str) -> None:
    """As `dailyq check | head -1` once head has its line: every write after it fails with EPIPE."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DAILYQ_")}
        env |= {"DAILYQ_CONTENT": str(home / "bank.md"), "DAILYQ_DB": str(home / "q.sqlite3")}
        done = subprocess.run(
            [DAILYQ, *args], input=stdin, stdout=writer, stderr=subprocess.PIPE, cwd=home, env=env,
            text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(writer)
    assert done.stderr == ""
    assert done.returncode == 1
