"""`dailyq …` and `python -m bot …`: one command line for every way to run the bot."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.config import ConfigError, Settings, database_location


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dailyq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", type=database_location, help="SQLite file or postgresql:// URL (DAILYQ_DB)")
        p.add_argument("--content", type=Path, help="directory of *.md banks, or one file (DAILYQ_CONTENT)")
        return p

    check = sub.add_parser("check", help="parse banks and report every problem as file:line")
    check.add_argument("paths", nargs="*", type=Path, help="files or directories (default: DAILYQ_CONTENT)")
    check.add_argument("--json", action="store_true", help="one JSON object: questions, warnings, errors")

    console = with_common(sub.add_parser("console", help="chat with the bot in this terminal; no token needed"))
    console.add_argument("--user", default="you", help="your name in the console chat")
    console.add_argument("--chat", default="console", help="the console chat's id")
    console.add_argument("--group", action="store_true", help="make the chat a group")
    console.add_argument("--member", action="store_true", help="in a group: you are not an admin")

    run = with_common(sub.add_parser("run", help="run every platform whose token is set"))
    run.add_argument("--platform", action="append", choices=["telegram", "discord"], help="only these")

    with_common(sub.add_parser("reload", help="make the running bot re-read its bank (SIGHUP)"))
    backup = with_common(sub.add_parser("backup", help="copy the database safely, also while the bot runs"))
    # A string, not a Path: a trailing slash means "a new file in this directory".
    backup.add_argument("dest", help="a file, or a directory (ending in /) for a dated file")
    restore = with_common(sub.add_parser("restore", help="replace the database with a backup (bot stopped)"))
    restore.add_argument("source", type=Path, help="the backup file")
    copy = sub.add_parser("copy-db", help="copy every row from one database to another (SQLite <-> PostgreSQL)")
    copy.add_argument("source", metavar="FROM", type=database_location, help="a SQLite file or a postgresql:// URL")
    copy.add_argument("target", metavar="TO", type=database_location, help="a SQLite file or a postgresql:// URL")
    copy.add_argument("--replace", action="store_true", help="delete what TO already holds, then copy")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        env = Settings.from_env()
    except ConfigError as error:
        print(f"dailyq: {error}", file=sys.stderr)
        return 2
    settings = env.override(db=getattr(args, "db", None), content=getattr(args, "content", None))
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:  # Ctrl-C in the console, or before `run` takes over SIGINT
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "check":
        from bot.check import run_check

        return run_check(args.paths or [settings.content], as_json=args.json)
    if args.command == "console":
        from bot.app import run_console

        return asyncio.run(
            run_console(settings, user=args.user, chat=args.chat, group=args.group, member=args.member)
        )
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
