"""`python -m bot backup <file>` while the bot is writing, and the README's restore steps."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from services import wallet


async def _writer(db: Database, stop: asyncio.Event) -> int:
    n = 0
    while not stop.is_set():
        async with db.write() as session:
            await wallet.credit(session, 1, 1_000, reason="topup", key=f"k{n}")
        n += 1
        await asyncio.sleep(0)
    return n


async def test_backup_while_writing_then_restore(tmp_path: Path) -> None:
    live = tmp_path / "data" / "bot.db"
    url = f"sqlite+aiosqlite:///{live}"
    db = Database(url)
    await upgrade(db)
    async with db.write() as session:
        await repo.create_user(session, 1, username="a", first_name="A", language="en")
    stop = asyncio.Event()
    writer = asyncio.create_task(_writer(db, stop))
    await asyncio.sleep(0.3)

    target = tmp_path / "backups" / "copy.db"
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("BOT_TOKEN", None)  # backup needs no token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "backup",
        str(target),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    stop.set()
    writes = await writer
    await db.dispose()
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith(f"backup written to {target}")
    assert writes > 0

    # Restore (README): stop the bot, replace data/bot.db with the copy, drop -wal/-shm, start.
    restored_dir = tmp_path / "restored" / "data"
    restored_dir.mkdir(parents=True)
    shutil.copy(target, restored_dir / "bot.db")
    restored = Database(f"sqlite+aiosqlite:///{restored_dir / 'bot.db'}")
    await upgrade(restored)  # a restored copy starts like any database
    async with restored.read() as session:
        report = await wallet.audit(session)
        balance = await wallet.balance(session, 1)
        rows = await wallet.history(session, 1, limit=100_000)
    await restored.dispose()
    assert report.ok and report.users_checked == 1
    assert balance == len(rows) * 1_000 and 0 < len(rows) <= writes


async def test_backup_refuses_to_overwrite_and_explains(tmp_path: Path) -> None:
    target = tmp_path / "exists.db"
    target.write_text("x")
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "backup",
        str(target),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 1
    assert err.decode().startswith("backup failed: no database at")
