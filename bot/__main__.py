"""`python -m bot`: start the bot (settings from the environment and .env): long polling, or
serving the webhook when WEBHOOK_URL is set (bot/webhook.py).

`python -m bot backup <file>`: a consistent copy of the SQLite database, safe while the bot runs.

`python -m bot restore <file>`: a backup in place of the SQLite database, once it passed its
checks (integrity, migrations, audit), refused while the bot runs (bot/restore.py).

`python -m bot migrate-data <sqlite-url> <postgresql-url>`: copy a stopped SQLite shop into an
empty PostgreSQL database (db/transfer.py), checked row by row and audited.

`python -m bot api`: the reseller API alone (RESELLER_API_LISTEN), against the bot's database
(bot/reseller_api.py); the bot process keeps polling the orders and sending the codes.
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
    if args and args[0] == "migrate-data":
        return run_migrate_data(args[1:])
    if args and args[0] == "restore":
        return run_restore(args[1:])
    api_only = args == ["api"]
    if args and not api_only:
        print(
            "usage: python -m bot [api | backup <file> | restore <file>"
            " | migrate-data <from> <to>]",
            file=sys.stderr,
        )
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
    if settings.redis_url:
        from bot.storage import RedisUnavailable, check_redis

        try:
            asyncio.run(check_redis(settings.redis_url))
        except RedisUnavailable as exc:
            print(f"REDIS_URL: {exc}", file=sys.stderr)
            return 2
    if api_only:
        return run_api_mode(settings)
    if settings.webhook_url:
        return run_webhook_mode(settings)

    from bot.app import build_app, run

    asyncio.run(run(build_app(settings)))
    return 0


def run_webhook_mode(settings: Settings) -> int:
    """WEBHOOK_URL set: serve updates Telegram posts (bot/webhook.py) instead of long polling."""
    from bot.webhook import WebhookRefused, listen, run_webhook

    try:
        listener = listen(settings.webhook_listen)  # before anything starts (or logs)
    except OSError as exc:
        reason = exc.strerror or " ".join(str(exc).split())
        where = settings.webhook_listen
        print(f"WEBHOOK_LISTEN: cannot listen on {where}: {reason}", file=sys.stderr)
        return 2
    from bot.app import build_app

    try:
        asyncio.run(run_webhook(build_app(settings), listener))
    except WebhookRefused as exc:
        print(f"WEBHOOK_URL: {exc}", file=sys.stderr)
        return 2
    return 0


def run_api_mode(settings: Settings) -> int:
    """`python -m bot api`: only the reseller API, until SIGINT/SIGTERM."""
    if not settings.reseller_api_listen:
        print(
            "RESELLER_API_LISTEN is not set: nothing to serve (e.g. 127.0.0.1:8081)",
            file=sys.stderr,
        )
        return 2
    from bot.app import build_app
    from bot.reseller_api import run_standalone

    try:
        asyncio.run(run_standalone(build_app(settings)))
    except OSError as exc:
        reason = exc.strerror or " ".join(str(exc).split())
        where = settings.reseller_api_listen
        print(f"RESELLER_API_LISTEN: cannot listen on {where}: {reason}", file=sys.stderr)
        return 2
    return 0


class _DatabaseOnly(BaseSettings):
    """Backup and restore need DATABASE_URL only: they work without a BOT_TOKEN."""

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


def run_restore(args: list[str]) -> int:
    """Exit 0: restored; 1: the file failed a check; 2: refused (usage, the bot runs)."""
    if len(args) != 1:
        print("usage: python -m bot restore <file>", file=sys.stderr)
        return 2
    from bot.restore import BotRunning, RestoreRefused, restore

    try:
        done = asyncio.run(restore(_DatabaseOnly().database_url, Path(args[0])))
    except RestoreRefused as exc:
        print(f"restore refused, nothing changed: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, BotRunning) else 1
    print(f"restored {args[0]} into {done.database}: integrity ok, migrations at head,")
    print(f"audit: all {done.users} balances equal their ledger")
    if done.kept is not None:
        print(f"the database as it was is kept in {done.kept}")
    return 0


def run_migrate_data(args: list[str]) -> int:
    """Exit 0: copied and checked; 1: the copy or its check failed (rolled back); 2: refused."""
    if len(args) != 2:
        print("usage: python -m bot migrate-data <sqlite-url> <postgresql-url>", file=sys.stderr)
        return 2
    from db.transfer import TransferFailed, TransferRefused, masked, transfer

    try:
        report = asyncio.run(transfer(args[0], args[1], check=_audit))
    except TransferRefused as exc:
        print(f"migrate-data: {exc}", file=sys.stderr)
        return 2
    except TransferFailed as exc:
        print(f"migrate-data failed: {exc}", file=sys.stderr)
        return 1
    width = max(map(len, report.rows))
    print(
        f"copied {report.total} rows in {len(report.rows)} tables to {masked(args[1])}"
        f" (revision {report.revision}); every row compared with the source"
    )
    for table, rows in report.rows.items():
        after = f"  next id {report.next_ids[table]}" if table in report.next_ids else ""
        print(f"  {table:<{width}} {rows:>9}{after}")
    print(f"audit: all {report.rows.get('users', 0)} balances equal their ledger")
    print("next: set DATABASE_URL to the new database in .env and start the bot")
    return 0


async def _audit(session) -> str | None:
    """The ledger audit on the copy, before it commits: None when it passes."""
    from services.wallet import audit

    report = await audit(session)
    if report.ok:
        return None
    user_id, balance, ledger = report.mismatches[0]
    return (
        f"users/ledger: the audit found {len(report.mismatches)} balance(s) that differ from"
        f" their ledger (user {user_id}: balance {balance}, ledger {ledger}; the source has"
        " the same: run /audit on it)"
    )


if __name__ == "__main__":
    sys.exit(main())
