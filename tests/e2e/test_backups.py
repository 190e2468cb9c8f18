"""Scheduled backups (BACKUP_DIR, BACKUP_EVERY_H, BACKUP_KEEP) and `python -m bot restore`: a
backup restored and audited, refused while the bot runs or when the file fails a check."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings
from db.backup import backup, backup_if_due, scheduled_backups
from tests.conftest import BACKENDS, eventually

SQLITE_ONLY = pytest.mark.parametrize("database_backend", [BACKENDS[0]])
ALICE = 1001
GROUP = -100999


async def restore_cli(database_url: str, file: Path, cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("BOT_TOKEN", None)  # restore needs no token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "restore",
        str(file),
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


@SQLITE_ONLY
async def test_a_backup_is_made_at_start_then_when_due_keeping_the_newest(
    start_bot, tg, tmp_path
) -> None:
    backups = tmp_path / "backups"
    bot = await start_bot(backup_dir=str(backups), backup_keep=2, backup_every_h=1)
    await eventually(lambda: len(scheduled_backups(backups)) == 1)
    url = bot.app.settings.database_url
    now = datetime.now(UTC)
    assert backup_if_due(url, backups, 2, 3600, now) is None  # the newest is fresh
    for hours in (2, 3, 4):  # each time the newest is made older than the interval
        newest = scheduled_backups(backups)[-1]
        old = (now - timedelta(hours=1, seconds=1)).timestamp()
        os.utime(newest, (old, old))
        assert backup_if_due(url, backups, 2, 3600, now + timedelta(hours=hours)) is not None
    kept = scheduled_backups(backups)
    assert len(kept) == 2  # the oldest beyond BACKUP_KEEP removed
    assert kept[-1].name == f"bot-{now + timedelta(hours=4):%Y%m%dT%H%M%SZ}.db"
    (backups / "notes.txt").write_text("mine")  # not a scheduled backup: never removed
    backup_if_due(url, backups, 1, 0, now + timedelta(hours=5))
    assert (backups / "notes.txt").exists() and len(scheduled_backups(backups)) == 1
    with sqlite3.connect(kept[-1]) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@SQLITE_ONLY
async def test_a_failed_backup_is_announced_in_the_group(start_bot, tg, tmp_path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory should be")
    await start_bot(backup_dir=str(blocker), notify_chat_id=GROUP)
    line = await eventually(
        lambda: next((m.text for m in tg.chats[GROUP] if "backup failed" in m.text), None)
    )
    assert "not-a-directory" in line


def test_backup_dir_with_postgresql_is_refused_pointing_to_pg_dump() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(
            _env_file=None,
            bot_token="123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            database_url="postgresql+asyncpg://shop@127.0.0.1/shop",
            backup_dir="/var/backups/shop",
        )
    assert "pg_dump" in str(caught.value) and "backup_dir" in str(caught.value)


@SQLITE_ONLY
async def test_restore_checks_then_replaces_and_is_refused_while_the_bot_runs(
    start_bot, tg, tmp_path
) -> None:
    bot = await start_bot()
    url = bot.app.settings.database_url
    await tg.user(ALICE, "Alice").send("/start")
    await bot.fund(ALICE, 5_000_000)
    saved = tmp_path / "saved.db"
    await asyncio.to_thread(backup, url, saved)
    await bot.fund(ALICE, 1_000_000)  # after the backup

    code, _, err = await restore_cli(url, saved, tmp_path)
    assert code == 2 and "the bot is running" in err
    assert await bot.balance(ALICE) == 6_000_000  # nothing changed
    await bot.stop()

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database at all" * 100)
    code, _, err = await restore_cli(url, broken, tmp_path)
    assert code == 1 and "not a SQLite database" in err

    tampered = tmp_path / "tampered.db"
    await asyncio.to_thread(backup, url, tampered)
    with sqlite3.connect(tampered) as db:
        db.execute("UPDATE users SET balance = balance + 1 WHERE id = ?", (ALICE,))
    code, _, err = await restore_cli(url, tampered, tmp_path)
    assert code == 1 and "audit" in err

    code, out, err = await restore_cli(url, saved, tmp_path)
    assert code == 0, err
    assert "audit: all" in out and "kept in" in out
    kept = next(tmp_path.glob("bot.db.before-restore-*"))
    with sqlite3.connect(kept) as before:
        assert before.execute("SELECT balance FROM users WHERE id = ?", (ALICE,)).fetchone() == (
            6_000_000,
        )
    bot = await start_bot()
    assert await bot.balance(ALICE) == 5_000_000  # as in the backup
    await bot.assert_ledger_invariant()


@SQLITE_ONLY
async def test_a_backup_stopped_by_shutdown_leaves_nothing_and_is_made_next_time(
    start_bot, tg, tmp_path
) -> None:
    import threading

    from db.backup import BackupInterrupted

    bot = await start_bot()
    url = bot.app.settings.database_url
    backups = tmp_path / "stopped"
    stop = threading.Event()
    stop.set()
    with pytest.raises(BackupInterrupted):
        backup_if_due(url, backups, 3, 3600, datetime.now(UTC), stop)
    assert list(backups.iterdir()) == []  # no half copy, no .partial
    made = backup_if_due(url, backups, 3, 3600, datetime.now(UTC), threading.Event())
    assert made is not None and scheduled_backups(backups) == [made]  # still due: made now
