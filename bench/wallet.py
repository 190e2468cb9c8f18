"""Wallet throughput: debits per second and their latency with 50 concurrent tasks.

    .venv/bin/python bench/wallet.py [--quick] [--debits 20000] [--concurrency 50]
                                     [--database-url postgresql+asyncpg://user@host/db]

Each debit is the production path: `db.write()` (its own unit of work), `wallet.debit()` (one
conditional UPDATE ... WHERE balance >= amount RETURNING, one ledger INSERT with its unique
idempotency key), committed before the task starts its next one. Then `/audit` (every balance
equals its ledger sum) and the exact balances are checked.

On SQLite (the default, new files in a temporary folder) the baseline runs in the same process
first: raw aiosqlite, the same schema, the same statements and PRAGMAs, the same concurrency, one
connection, each debit its own BEGIN IMMEDIATE ... COMMIT. The machine is shared, so compare the
two figures of one run, not figures of different runs.

With `--database-url` (PostgreSQL) the bench creates two databases of its own on that server
(`bench_wallet_<pid>_raw` and `_production`, dropped at the end), so the URL may name any
database the user can connect to, e.g. `postgres`. Its baseline is raw asyncpg, the same
statements, a pool of 10 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.engine import make_url

from bench.figures import report
from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from services import wallet

USERS = 1000
SEED = 10**12
AMOUNT = 1_000_000
GOAL = 2_000
QUICK_DEBITS = 4_000
# The statements SQLAlchemy sends for wallet.debit(), as its echo shows them.
DEBIT_SQL = (
    "UPDATE users SET balance=(users.balance - ?) WHERE users.id = ? AND users.balance >= ? "
    "RETURNING balance"
)
LEDGER_SQL = (
    "INSERT INTO ledger (user_id, delta, reason, ref, idempotency_key, admin_id, comment, "
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING"
)
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


@dataclass(frozen=True)
class Run:
    debits: int
    seconds: float
    cpu: float
    latencies: list[float]  # seconds, sorted

    @property
    def rate(self) -> float:
        return self.debits / self.seconds

    def percentile(self, share: float) -> float:
        if share == 0.5:
            return statistics.median(self.latencies) * 1000
        return self.latencies[max(0, int(len(self.latencies) * share) - 1)] * 1000

    def line(self, label: str) -> str:
        return (
            f"{label:<28} {self.rate:>7,.0f} debits/s  p50 {self.percentile(0.5):7.2f} ms  "
            f"p99 {self.percentile(0.99):7.2f} ms  "
            f"cpu {self.cpu / self.debits * 1e6:5.0f} µs/debit"
        )


def user_of(n: int) -> int:
    return n % USERS + 1


async def measure(debits: int, concurrency: int, debit: Callable[[int], Awaitable[None]]) -> Run:
    """`concurrency` tasks taking debit numbers from one counter until `debits` are done."""
    latencies: list[float] = []
    counter = iter(range(debits))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            await debit(n)
            latencies.append(time.perf_counter() - started)

    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Run(debits, elapsed, time.process_time() - cpu_before, latencies)


async def seeded_database(url: str) -> Database:
    """A migrated database with USERS users holding SEED each."""
    db = Database(url)
    await upgrade(db)
    async with db.write() as session:
        for user_id in range(1, USERS + 1):
            await repo.create_user(session, user_id, username=None, first_name=None, language="en")
            await wallet.credit(session, user_id, SEED, reason="topup", key=f"seed:{user_id}")
    return db


async def production(db: Database, debits: int, concurrency: int) -> tuple[Run, list[str]]:
    """The production path, then what /audit and the exact balances say (empty: all good)."""

    async def debit(n: int) -> None:
        async with db.write() as session:
            await wallet.debit(session, user_of(n), AMOUNT, reason="purchase", key=f"bench:{n}")

    run = await measure(debits, concurrency, debit)
    return run, await check(db, debits)


async def check(db: Database, debits: int) -> list[str]:
    problems: list[str] = []
    async with db.read() as session:
        audit = await wallet.audit(session)
        if not audit.ok:
            problems.append(f"audit: {audit.mismatches[:3]}")
        for user_id in (1, USERS // 2, USERS):
            expected = SEED - AMOUNT * sum(1 for n in range(debits) if user_of(n) == user_id)
            actual = await wallet.balance(session, user_id)
            if actual != expected:
                problems.append(f"user {user_id}: balance {actual}, expected {expected}")
    return problems


async def raw_aiosqlite(path: str, debits: int, concurrency: int) -> Run:
    """The baseline: the same statements on one aiosqlite connection, a lock around each
    transaction (SQLite has one writer), no SQLAlchemy."""
    import aiosqlite

    connection = await aiosqlite.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        await connection.execute(pragma)
    lock = asyncio.Lock()

    async def debit(n: int) -> None:
        user_id = user_of(n)
        ledger = (user_id, -AMOUNT, "purchase", None, f"raw:{n}", None, None, _now())
        async with lock:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                if not await connection.execute_fetchall(DEBIT_SQL, (AMOUNT, user_id, AMOUNT)):
                    raise RuntimeError("insufficient funds")
                cursor = await connection.execute(LEDGER_SQL, ledger)
                if cursor.rowcount != 1:
                    raise RuntimeError("duplicate key")
                await connection.execute("COMMIT")
            except BaseException:
                await connection.execute("ROLLBACK")
                raise

    try:
        return await measure(debits, concurrency, debit)
    finally:
        await connection.close()


async def raw_asyncpg(url: str, debits: int, concurrency: int) -> Run:
    """The PostgreSQL baseline: the same statements through asyncpg, a pool of 10."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    debit_sql = _numbered(DEBIT_SQL)
    ledger_sql = _numbered(LEDGER_SQL)

    async def debit(n: int) -> None:
        user_id = user_of(n)
        async with pool.acquire() as connection, connection.transaction():
            if await connection.fetchval(debit_sql, AMOUNT, user_id, AMOUNT) is None:
                raise RuntimeError("insufficient funds")
            status = await connection.execute(
                ledger_sql, user_id, -AMOUNT, "purchase", None, f"raw:{n}", None, None, _now()
            )
            if status != "INSERT 0 1":
                raise RuntimeError("duplicate key")

    try:
        return await measure(debits, concurrency, debit)
    finally:
        await pool.close()


def _numbered(sql: str) -> str:
    """qmark placeholders as asyncpg's $1, $2..."""
    parts = sql.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


def _now() -> datetime:
    return datetime.now(UTC)


async def on_sqlite(debits: int, concurrency: int) -> bool:
    folder = Path(tempfile.mkdtemp(prefix="bench-wallet-"))
    await (await seeded_database(f"sqlite+aiosqlite:///{folder / 'raw.db'}")).dispose()
    db = await seeded_database(f"sqlite+aiosqlite:///{folder / 'production.db'}")
    try:
        baseline = await raw_aiosqlite(str(folder / "raw.db"), debits, concurrency)
        run, problems = await production(db, debits, concurrency)
    finally:
        await db.dispose()
    print(f"debits: {debits} with {concurrency} concurrent tasks over {USERS} users, SQLite")
    print(baseline.line("raw aiosqlite (baseline)"))
    print(run.line("production (db + wallet)"))
    ratio = run.rate / baseline.rate
    print(f"ratio: {ratio:.2f}x the raw baseline; audit and balances: {problems or 'OK'}")
    ok = run.rate >= GOAL and not problems
    report(
        f"wallet debits/s, SQLite, {concurrency} tasks",
        f"{run.rate:,.0f}/s (p50 {run.percentile(0.5):.1f} ms, p99 {run.percentile(0.99):.1f} ms)",
        f">= {GOAL:,}/s, audit clean",
        ok,
        baseline=f"raw aiosqlite {baseline.rate:,.0f}/s ({ratio:.2f}x)",
    )
    return not problems


async def on_postgresql(url: str, debits: int, concurrency: int) -> bool:
    import asyncpg

    admin_dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    names = [f"bench_wallet_{os.getpid()}_{part}" for part in ("raw", "production")]
    raw_url, production_url = (
        make_url(url).set(database=name).render_as_string(hide_password=False) for name in names
    )
    admin = await asyncpg.connect(admin_dsn)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
        await (await seeded_database(raw_url)).dispose()
        db = await seeded_database(production_url)
        try:
            baseline = await raw_asyncpg(raw_url, debits, concurrency)
            run, problems = await production(db, debits, concurrency)
        finally:
            await db.dispose()
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()
    print(f"debits: {debits} with {concurrency} concurrent tasks over {USERS} users, PostgreSQL")
    print(baseline.line("raw asyncpg (baseline)"))
    print(run.line("production (db + wallet)"))
    ratio = run.rate / baseline.rate
    print(f"ratio: {ratio:.2f}x the raw baseline; audit and balances: {problems or 'OK'}")
    report(
        f"wallet debits/s, PostgreSQL, {concurrency} tasks",
        f"{run.rate:,.0f}/s (p50 {run.percentile(0.5):.1f} ms, p99 {run.percentile(0.99):.1f} ms)",
        "no goal (shown beside SQLite), audit clean",
        not problems,
        baseline=f"raw asyncpg {baseline.rate:,.0f}/s ({ratio:.2f}x)",
    )
    return not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--debits", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DEBITS:,} debits")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: SQLite files)")
    args = parser.parse_args()
    debits = QUICK_DEBITS if args.quick else args.debits
    if args.database_url and make_url(args.database_url).get_backend_name() == "postgresql":
        clean = asyncio.run(on_postgresql(args.database_url, debits, args.concurrency))
    elif args.database_url:
        parser.error("--database-url takes a postgresql+asyncpg:// URL (SQLite is the default)")
    else:
        clean = asyncio.run(on_sqlite(debits, args.concurrency))
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
