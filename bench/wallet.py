"""Wallet throughput on SQLite: debits per second and latency with 50 concurrent tasks.

    .venv/bin/python bench/wallet.py [--debits 20000] [--concurrency 50] [--database-url URL]

`--database-url` runs it on another database (an empty one: it creates its users), e.g.
`postgresql+asyncpg://postgres@127.0.0.1:5432/bench`; the default is a new SQLite file.

Each debit is the production path: its own BEGIN IMMEDIATE transaction, one conditional UPDATE
... RETURNING and one ledger INSERT, then COMMIT, through SQLAlchemy over aiosqlite.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from services import wallet

USERS = 1000


async def run(debits: int, concurrency: int, database_url: str | None = None) -> None:
    if database_url is None:
        database_url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-wallet-')}/bench.db"
    db = Database(database_url)
    await upgrade(db)
    async with db.write() as session:
        for user_id in range(1, USERS + 1):
            await repo.create_user(session, user_id, username=None, first_name=None, language="en")
            await wallet.credit(session, user_id, 10**12, reason="topup", key=f"seed:{user_id}")

    latencies: list[float] = []
    counter = iter(range(debits))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            async with db.write() as session:
                await wallet.debit(
                    session, n % USERS + 1, 1_000_000, reason="purchase", key=f"bench:{n}"
                )
            latencies.append(time.perf_counter() - started)

    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before

    async with db.read() as session:
        report = await wallet.audit(session)
    await db.dispose()

    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"debits:            {debits} with {concurrency} concurrent tasks, {USERS} users")
    print(f"throughput:        {debits / elapsed:,.0f} debits/s  ({elapsed:.2f} s wall)")
    print(f"latency:           p50 {p50:.2f} ms   p99 {p99:.2f} ms")
    print(f"cpu:               {cpu:.2f} s   peak RSS {rss_mb:.0f} MB")
    print(f"ledger invariant:  {'OK' if report.ok else report.mismatches[:5]}")
    print("goal:              >= 2,000 debits/s on a 2-core machine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--debits", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args()
    asyncio.run(run(args.debits, args.concurrency, args.database_url))


if __name__ == "__main__":
    main()
