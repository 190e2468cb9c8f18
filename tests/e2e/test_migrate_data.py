"""`python -m bot migrate-data <sqlite-url> <postgresql-url>`: a shop that ran on SQLite moves to
PostgreSQL with every row, its money checked, its ids continuing, and the bot runs on the copy.
The PostgreSQL target is a fresh, never migrated database of the test's own (PG_ONLY: without a
server these tests are left out with the rest of the PostgreSQL half)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from db.engine import Database
from db.migrate import upgrade
from db.models import Base, Broadcast, LedgerEntry, User
from db.transfer import tables
from services import wallet
from tests.conftest import ADMIN_ID, PG_ONLY, eventually
from tests.e2e.test_broadcast import start_broadcast, status
from tests.e2e.test_smm_journey import LINK, pushed

ALICE = 1001
GROUP = -100777
FAST = {
    "poll_interval_s": 0.2,
    "min_cancel_delay_s": 0,
    "outbox_interval_s": 0.1,
    "demo_code_delay_s": 0.3,
    "demo_smm_step_s": 0.3,
    "notify_chat_id": GROUP,
}
# What the shop below writes: a row or more in each (a table added later is compared too).
FILLED = {
    "users",
    "ledger",
    "outbox",
    "notifications",
    "activations",
    "otp_quotes",
    "smm_orders",
    "catalog_snapshots",
    "markup_settings",
    "provider_settings",
    "broadcasts",
    "broadcast_deliveries",
}


async def migrate_data(*args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "DATABASE_URL"}}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate-data",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


async def run_the_shop(start_bot, tg) -> None:
    """The demo shop on SQLite: a top-up, a number with its code, an SMM order, an admin's
    markup and provider switch, a broadcast, and the notification group hearing of it all."""
    bot = await start_bot(**FAST)
    await bot.wait_catalog()
    await eventually(lambda: bot.app.smm_catalog.service_count() > 0)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    alice = tg.user(ALICE, "Alice", username="alice")
    await alice.send("/start")
    reply = await admin.send(f"/topup {ALICE} 10 welcome")
    assert "New balance: $10.00" in reply.text
    await eventually(lambda: [m for m in alice.messages if "topped up by $10.00" in m.text])
    await alice.send("/start")  # the menu, below the top-up notice
    await alice.press("📱 Buy a number")
    await alice.press(alice.last().button_texts[0])
    await alice.press(alice.last().button_texts[0])
    await alice.press(next(b for b in alice.last().button_texts if b.startswith("✅ Buy for")))
    await eventually(lambda: [m for m in alice.messages if "code for" in m.text])

    await alice.send("/start")
    await alice.press("📈 SMM services")
    await alice.press("Instagram")
    await alice.press("Likes · DEMO · $0.36 / 1000")
    await alice.press("🛒 Order")
    await alice.send(LINK)
    await alice.send("100")
    await alice.press("✅ Order for $0.036")
    await pushed(alice, "#1 (Likes · DEMO) is completed")

    await admin.send("/markup global 50")
    await admin.send("/provider demo off")
    await start_broadcast(admin, tg, "We are moving house", 1)
    await eventually(lambda: _is(status(bot.db, 1), "done"), timeout=30)
    await bot.assert_ledger_invariant()
    await bot.stop()


async def _is(value: Any, expected: Any) -> bool:
    return await value == expected


async def everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read through the models' types, sorted in Python."""
    database = Database(url)
    try:
        async with database.read() as session:
            return {
                table.name: sorted(map(tuple, await session.execute(select(table))), key=repr)
                for table in Base.metadata.sorted_tables
            }
    finally:
        await database.dispose()


@PG_ONLY
async def test_a_sqlite_shop_moves_to_postgresql(
    empty_database_url: str, start_bot, tg, tmp_path: Path
) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    target = empty_database_url
    await run_the_shop(lambda **kw: start_bot(database_url=source, **kw), tg)

    code, out, err = await migrate_data(source, target, cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("copied ") and "every row compared with the source" in out
    assert "audit: all 2 balances equal their ledger" in out
    before, after = await everything(source), await everything(target)
    assert {name for name, rows in before.items() if rows} >= FILLED
    for name in before:
        assert after[name] == before[name], name
    for name, rows in before.items():
        assert f"  {name} " in out and f" {len(rows)}" in out

    database = Database(target)
    try:
        await ids_continue(database, before)
    finally:
        await database.dispose()

    code, out, err = await migrate_data(source, target, cwd=tmp_path)
    assert code == 2 and out == ""
    assert one_line(err).startswith("migrate-data: target is not empty (users has rows)")
    await the_bot_runs_on_the_copy(start_bot, tg, target)


async def ids_continue(database: Database, before: dict[str, list[tuple[Any, ...]]]) -> None:
    """The audit passes on the copy, and every id sequence hands out max(id) + 1."""
    async with database.write() as session:
        assert (await wallet.audit(session)).ok
        applied = await wallet.credit(session, ALICE, 1, reason="topup", key="after-the-move")
        assert applied.applied
        newest = await session.scalar(select(func.max(LedgerEntry.id)))
        assert newest == len(before["ledger"]) + 1
        for table in tables():
            column = table.autoincrement_column
            if column is None or table.name == "ledger":
                continue
            largest = max((row[0] for row in before[table.name]), default=0)
            sequence = func.pg_get_serial_sequence(table.name, column.name)
            assert await session.scalar(select(func.nextval(sequence))) == largest + 1, table


async def the_bot_runs_on_the_copy(start_bot, tg, target: str) -> None:
    bot = await start_bot(database_url=target, **FAST)
    alice = tg.user(ALICE, "Alice", username="alice")
    admin = tg.user(ADMIN_ID, "Owner")
    balance = await bot.balance(ALICE)
    reply = await admin.send(f"/topup {ALICE} 1 after the move")
    assert "New balance" in reply.text
    await eventually(lambda: [m for m in alice.messages if "topped up by $1.00" in m.text])
    assert await bot.balance(ALICE) == balance + 1_000_000
    await bot.assert_ledger_invariant()
    async with bot.db.read() as session:
        broadcasts = await session.scalar(select(func.count()).select_from(Broadcast))
    assert broadcasts == 1
    await bot.stop()  # before the target is dropped


async def a_small_shop(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database)
        async with database.write() as session:
            for user_id in (1, 2, 3):
                await session.merge(User(id=user_id, language="en", balance=0))
                await session.flush()
                await wallet.credit(session, user_id, 5_000_000, reason="topup", key=f"t{user_id}")
    finally:
        await database.dispose()


@PG_ONLY
async def test_a_broken_ledger_is_not_copied(tmp_path: Path, empty_database_url: str) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await a_small_shop(source)
    database = Database(source)
    async with database.write() as session:
        await session.execute(update(User).where(User.id == 2).values(balance=User.balance + 1))
    await database.dispose()

    code, out, err = await migrate_data(source, empty_database_url, cwd=tmp_path)
    assert (code, out) == (1, "")
    line = one_line(err)
    assert line.startswith("migrate-data failed: users/ledger: the audit found 1 balance(s)")
    assert "user 2: balance 5000001, ledger 5000000" in line
    assert "nothing was written to the target" in line
    after = await everything(empty_database_url)
    assert all(rows == [] for rows in after.values())  # rolled back: migrated, no rows


@PG_ONLY
async def test_a_source_behind_the_migrations_is_refused(
    tmp_path: Path, empty_database_url: str
) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    database = Database(source)
    await upgrade(database, "0008")
    await database.dispose()
    code, _, err = await migrate_data(source, empty_database_url, cwd=tmp_path)
    assert code == 2
    assert "start the bot once on the source" in one_line(err)


async def test_bad_arguments_are_refused_in_one_line(tmp_path: Path) -> None:
    pg = "postgresql+asyncpg://shop:s3cret@127.0.0.1:1/shop"
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await a_small_shop(sqlite)
    cases = {
        ("nonsense", pg): "source: is not a database URL",
        (sqlite, "postgresql://shop@h/shop"): "target: postgresql:// is not supported",
        (pg, sqlite): "source: must be a sqlite URL",
        (f"sqlite+aiosqlite:///{tmp_path / 'nope.db'}", pg): "source: no database at",
        (sqlite, pg): "target: cannot connect to postgresql+asyncpg://shop:***@127.0.0.1:1",
        (sqlite,): "usage: python -m bot migrate-data <sqlite-url> <postgresql-url>",
    }
    results = await asyncio.gather(*(migrate_data(*args, cwd=tmp_path) for args in cases))
    for expected, (code, out, err) in zip(cases.values(), results, strict=True):
        assert (code, out) == (2, ""), err
        line = one_line(err)
        assert expected in line, line
        assert "s3cret" not in line
