"""`dailyq …` and `python -m bot …`: one command line for every way to run the bot."""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import tempfile
import zoneinfo
from pathlib import Path

from bot.config import ConfigError, Settings, database_location, is_database_url

DEFAULTS = Settings()
# The commands that open the database (and hold its lock), and those that serve chats.
USES_DATABASE = ("console", "run", "restore", "reload")
SERVES_CHATS = ("console", "run")
FILE_COPIES = ("backup", "restore")  # of a SQLite file
# The chat defaults every command falls back on: (variable, Settings field, ChatSettings key).
CHAT_DEFAULTS = (("DAILYQ_TIMEZONE", "timezone", "zone"), ("DAILYQ_POST_TIME", "post_time", "time"))


CONSOLE_EXAMPLE = """\
example: a study group of three in one console, ann its admin (--admins chooses others):
  $ dailyq console --group --users ann,bob,carol
  ann> /subscribe 09:00 Europe/Berlin
  ann> bob: ||my hidden answer||      bob answers the latest question
  bob> ||another thought||            bob again (the last speaker)
  bob> carol: /top                    carol asks for the leaderboard
"""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has one; None and False mean "not given", not a value."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        """Lines are filled one by one, and indented ones (examples) kept as they are written."""
        fill = super()._fill_text
        return "\n".join(
            indent + line if line.startswith(" ") else fill(line, width, indent) for line in text.splitlines()
        )


def _names(value: str) -> list[str]:
    """`ann,bob,carol` → the names, each once, in order; a name is one word without a colon."""
    names = list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    bad = [name for name in names if ":" in name or "：" in name or len(name.split()) > 1]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give names separated by commas, each one word without ':', e.g. ann,bob,carol"
        )
    # A line `ann: …` picks its speaker ignoring case, so ann and ANN could not be told apart.
    first_spelling: dict[str, str] = {}
    for name in names:
        if (earlier := first_spelling.setdefault(name.casefold(), name)) != name:
            raise argparse.ArgumentTypeError(
                f"{value!r}: {earlier} and {name} are one name to the console (a line '{name}: …' "
                "speaks as either); give each user a different name"
            )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dailyq", description=__doc__, formatter_class=_HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, summary: str, description: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. {description}",
            epilog=epilog, formatter_class=_HelpFormatter,
        )  # fmt: skip

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--db", type=database_location,
            help=f"SQLite file or postgresql:// URL (default: DAILYQ_DB, else {DEFAULTS.db})",
        )  # fmt: skip
        return p

    def with_content(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--content", type=Path,
            help="directory of *.md banks, or one file (default: DAILYQ_CONTENT, else the bundled bank)",
        )  # fmt: skip
        return p

    check = command(
        "check", "parse banks and report every problem as file:line",
        "Exits 1 when a bank has an error or no question.",
    )  # fmt: skip
    check.add_argument(
        "paths", nargs="*", type=Path,
        help="files or directories (default: DAILYQ_CONTENT, else the bundled bank)",
    )  # fmt: skip
    check.add_argument("--json", action="store_true", help="one JSON object: questions, warnings, errors")

    console = with_content(with_db(command(
        "console", "chat with the bot in this terminal; no token needed",
        "Each line is a message; /start begins, /help lists the commands, Ctrl-D quits. A line that "
        "is not a command answers the latest question shown.",
        epilog=CONSOLE_EXAMPLE,
    )))  # fmt: skip
    who = console.add_mutually_exclusive_group()
    who.add_argument("--user", default="you", help="your name in the console chat")
    who.add_argument(
        "--users", type=_names, metavar="NAMES",
        help="play several members of a group (implies --group), e.g. ann,bob,carol; "
        "a line `bob: text` speaks as bob, other lines as the last speaker",
    )  # fmt: skip
    console.add_argument("--chat", default="console", help="the console chat's id")
    console.add_argument("--group", action="store_true", help="make the chat a group")
    admins = console.add_mutually_exclusive_group()
    admins.add_argument("--member", action="store_true", help="in a group: you are not an admin")
    admins.add_argument(
        "--admins", type=_names, metavar="NAMES",
        help="with --users: the group's admins (default: the first user)",
    )  # fmt: skip
    console.set_defaults(usage_error=console.error)
    console.add_argument(
        "--echo", action="store_true",
        help="print each line read after its speaker (a piped script reads as a transcript)",
    )  # fmt: skip

    run = with_content(with_db(command(
        "run", "run every platform whose token is set",
        "Tokens and settings come from the environment or ./.env (see .env.example).",
    )))  # fmt: skip
    run.add_argument(
        "--platform", action="append", choices=["telegram", "discord"],
        help="only this platform; repeat for both (default: every platform with a token)",
    )  # fmt: skip

    with_db(command(
        "reload", "make the running bot re-read its bank (SIGHUP)",
        "The bot re-reads its own DAILYQ_CONTENT; a broken bank keeps the previous one.",
    ))  # fmt: skip
    backup = with_db(command(
        "backup", "copy the database safely, also while the bot runs",
        "The copy is checked before it is kept.",
    ))  # fmt: skip
    # A string, not a Path: a trailing slash means "a new file in this directory".
    backup.add_argument("dest", help="a file, or a directory (ending in /) for a dated file")
    restore = with_db(command(
        "restore", "replace the database with a backup (bot stopped)",
        "The replaced database, if any, is kept beside it.",
    ))  # fmt: skip
    restore.add_argument("source", type=Path, help="the backup file")
    copy = command(
        "copy-db", "copy every row from one database to another (SQLite <-> PostgreSQL)",
        "Refused while a bot runs on either; each table's row count is checked before the copy commits.",
    )  # fmt: skip
    copy.add_argument("source", metavar="FROM", type=database_location, help="a SQLite file or a postgresql:// URL")
    copy.add_argument("target", metavar="TO", type=database_location, help="a SQLite file or a postgresql:// URL")
    copy.add_argument("--replace", action="store_true", help="delete what TO already holds, then copy")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "console" and (problem := _console_problem(args)):
        args.usage_error(problem)  # exits 2 with the console's usage
    try:
        try:
            env = Settings.load()
        except ConfigError as error:
            print(f"dailyq: {error}", file=sys.stderr)
            return 2
        settings = env.override(db=getattr(args, "db", None), content=getattr(args, "content", None))
        if problem := startup_problem(args.command, settings):
            print(f"dailyq: {problem}", file=sys.stderr)
            return 2
        return _dispatch(args, settings)
    except KeyboardInterrupt:  # Ctrl-C in the console, or before `run` takes over SIGINT
        return 130
    except BrokenPipeError:
        # The reader went away (`dailyq check | head`): stop quietly, as other tools do. stdout
        # now points at /dev/null, or Python would report the pipe again when it flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _console_problem(args: argparse.Namespace) -> str | None:
    if args.member and args.users:
        return "--member is for one user; with --users, --admins says who the admins are"
    if args.admins and not args.users:
        return "--admins needs --users (alone, --member makes you a member of the group)"
    if args.admins and (strangers := [name for name in args.admins if name not in args.users]):
        return f"--admins names {', '.join(strangers)}, not in --users {','.join(args.users)}"
    return None


def startup_problem(command: str, settings: Settings) -> str | None:
    """What makes `command` unable to work with these settings, in one line; None when nothing does.

    Checked before anything starts, so a typo in a variable stops the start instead of failing
    every command later.
    """
    if command in SERVES_CHATS:
        _give_zoneinfo_utc()
        from bot.core.timing import validate  # the very rules each chat's settings are read with

        for variable, field, key in CHAT_DEFAULTS:
            try:
                validate(key, getattr(settings, field))
            except ValueError as error:
                return f"{variable}: {error}"
    if command in FILE_COPIES and is_database_url(settings.db):
        return f"{command} copies a SQLite file; for PostgreSQL use pg_dump and pg_restore (README: backups)"
    if command in USES_DATABASE:
        return database_problem(settings.db)
    return None


def database_problem(db: Path | str) -> str | None:
    """Why no database can be created or written at `db`; None when one can (the folder is made).
    A PostgreSQL URL is tried when the store opens, which names what went wrong."""
    if is_database_url(db):
        return None
    db = Path(db)
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        if db.exists():
            with open(db, "r+b"):
                pass
        else:
            with tempfile.TemporaryFile(dir=db.parent):  # what SQLite and the lock file will need
                pass
    except (FileExistsError, NotADirectoryError) as error:
        return f"cannot create the database {db}: {error.filename} is not a folder"
    except OSError as error:
        # Name the path that failed, unless it is the probe's own temporary file.
        where = f"{error.filename}: " if error.filename in (str(db), *map(str, db.parents)) else ""
        return f"cannot create the database {db}: {where}{error.strerror or error}"
    return None


# A TZif file for UTC: no transitions, one local time type (offset 0, named "UTC"), rule "UTC0".
_TZIF_HEADER = b"TZif2" + bytes(15) + struct.pack(">6l", 0, 0, 0, 0, 1, 4)
_TZIF_UTC = (_TZIF_HEADER + struct.pack(">lBB", 0, 0, 0) + b"UTC\0") * 2 + b"\nUTC0\n"
_utc_folder: list[tempfile.TemporaryDirectory[str]] = []  # kept until the process exits


def _give_zoneinfo_utc() -> None:
    """On a machine with no time zone data at all (no system zoneinfo, no tzdata package) zoneinfo
    knows no zone, not even UTC, which needs no data: give it UTC, so the default still works."""
    try:
        zoneinfo.ZoneInfo("UTC")
    except zoneinfo.ZoneInfoNotFoundError:
        folder = tempfile.TemporaryDirectory(prefix="dailyq-zoneinfo-")
        Path(folder.name, "UTC").write_bytes(_TZIF_UTC)
        _utc_folder.append(folder)
        zoneinfo.reset_tzpath([folder.name])


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "check":
        from bot.check import run_check

        return run_check(args.paths or [settings.content], as_json=args.json)
    if args.command == "console":
        from bot.app import run_console

        users = args.users or [args.user]
        admins = args.admins or ([] if args.member else users[:1])
        return asyncio.run(
            run_console(
                settings, users=users, admins=admins, chat=args.chat, group=args.group or bool(args.users),
                echo=args.echo,
            )
        )  # fmt: skip
    if args.command == "run":
        from bot.app import run_platforms

        return asyncio.run(run_platforms(settings, platforms=args.platform))
    if args.command == "copy-db":
        from bot.ops.copydb import run_copy_db

        return asyncio.run(run_copy_db(args.source, args.target, replace=args.replace))
    if args.command == "reload":
        from bot.app import signal_reload

        return signal_reload(settings)
    return asyncio.run(_backup_or_restore(args, settings))


async def _backup_or_restore(args: argparse.Namespace, settings: Settings) -> int:
    from bot.ops.backup import BackupError, backup, restore

    try:
        if args.command == "backup":
            print(f"dailyq backup: wrote {await backup(settings.db, args.dest)}")
        else:
            kept = await restore(args.source, settings.db)
            print(f"dailyq restore: {settings.db} restored from {args.source}")
            if kept:
                print(f"dailyq restore: the replaced database was kept as {kept}")
    except BackupError as error:
        print(f"dailyq {args.command}: {error}", file=sys.stderr)
        return 1
    return 0
