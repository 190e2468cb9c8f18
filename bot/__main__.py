"""`python -m bot`: start the bot (settings from the environment and .env).

`python -m bot backup <file>`: a consistent copy of the SQLite database, safe while the bot runs.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pydantic_settings import BaseSettings

from bot.logging_setup import setup_logging
from bot.settings import Settings, SettingsError, load_settings
from db.engine import DatabaseUnavailable, check_database


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "backup":
        return run_backup(args[1:])
    if args:
        print("usage: python -m bot [backup <file>]", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    try:
        # A server that does not answer, a missing database or a wrong password: one line
        # here, not a traceback from the middle of start-up.
        asyncio.run(check_database(settings.database_url))
    except DatabaseUnavailable as exc:
        print(f"DATABASE_URL: {exc}", file=sys.stderr)
        return 2

    from bot.app import build_app, run

    asyncio.run(run(build_app(settings)))
    return 0


class _DatabaseOnly(BaseSettings):
    """Backup needs DATABASE_URL only: it works without a BOT_TOKEN."""

    model_config = Settings.model_config
    database_url: str = Settings.model_fields["database_url"].default


def run_backup(args: list[str]) -> int:
    if len(args) != 1:
        print("usage: python -m bot backup <file>", file=sys.stderr)
        return 2
    from db.backup import backup

    try:
        pages = backup(_DatabaseOnly().database_url, Path(args[0]))
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup written to {args[0]} ({pages} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
