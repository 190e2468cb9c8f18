"""Chaos run, long form: the bot as its own process against faulty fake upstreams and a flooding
fake Bot API, SIGKILLed and restarted again and again, then every balance, refund, charge, code
and upstream order checked (tests/chaos.py has the driver and the checks; tests/e2e/test_chaos.py
runs a short one in CI).

    .venv/bin/python bench/chaos.py --ops 10000 --kills 20 [--seed N] [--users 30]

Several bot processes behind one webhook (a round-robin forwarder in front of them), sharing an
empty PostgreSQL database and a Redis server; each kill takes one of them down:

    .venv/bin/python bench/chaos.py --replicas 2 --database-url postgresql+asyncpg://... \
        [--redis-url redis://127.0.0.1:6379/14]

Prints the figures (ops done, faults injected by type, kills, refunds, messages sent twice after
a kill, updates each replica took, mismatches) and exits 1 when anything does not add up, a
fault type never fired, or no kill happened.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chaos import ChaosConfig, run_chaos

REDIS_URL = "redis://127.0.0.1:6379/14"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=10_000, help="operations in all")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs (each one restarts)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, default=30, help="simulated users at once")
    parser.add_argument("--blockers", type=int, default=3, help="users who block the bot")
    parser.add_argument("--read-faults", type=float, default=0.06, help="share of reads failing")
    parser.add_argument("--buy-faults", type=float, default=0.25, help="share of buys failing")
    parser.add_argument("--tg-429", type=float, default=0.02, help="share of Bot API calls 429")
    parser.add_argument("--keep", action="store_true", help="keep the database and bot logs")
    parser.add_argument(
        "--database-url", help="an empty database, e.g. PostgreSQL (default: SQLite in a temp dir)"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="bot processes behind one webhook (2+: webhook "
        "mode; needs a PostgreSQL --database-url and Redis)",
    )
    parser.add_argument(
        "--redis-url",
        help=f"Redis for the conversation state, with --replicas 2+ (default: {REDIS_URL}); the "
        "run's keys are deleted at the end",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.replicas > 1 and not (args.database_url or "").startswith("postgresql"):
        print("--replicas 2+ needs a PostgreSQL --database-url", file=sys.stderr)
        return 2
    # The fake servers' complaints about a client that vanished mid-request: that is the kill.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    started = time.monotonic()

    def progress(text: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {text}", flush=True)

    config = ChaosConfig(
        workdir=workdir,
        seed=args.seed,
        users=args.users,
        ops=args.ops,
        kills=args.kills,
        read_fault_rate=args.read_faults,
        buy_fault_rate=args.buy_faults,
        tg_429_rate=args.tg_429,
        blockers=args.blockers,
        settle_timeout_s=180,
        progress=progress,
        database_url=args.database_url,
        replicas=args.replicas,
        redis_url=args.redis_url or (REDIS_URL if args.replicas > 1 else None),
    )
    try:
        report = asyncio.run(run_chaos(config))
    finally:
        if args.keep:
            print(f"database and bot logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report.figures())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
