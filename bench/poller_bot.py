"""The seed and bot processes of bench/poller.py.

* seed_main writes N 'waiting' rows (users + activations, plain INSERTs) into a fresh SQLite
  database, so that the bot's peak RSS holds only its own work;
* bot_main, the one measured: bot/app.py's build_app() and schedule_jobs() on that database (the
  real ActivationService.poll on its APScheduler interval job, the real OutboxWorker sending
  through aiogram), no Telegram long polling. It answers the parent's "stop" with its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.poller_common import API_KEY, PRICE_MICRO, PROVIDER, TOKEN, rss_mb

TIMEOUT_S = 1200  # an activation's lifetime (expires_at - created_at)


class _SkipCounter:
    """Counts APScheduler's 'skipped: maximum number of running instances reached'."""

    def __init__(self) -> None:
        import logging

        self.skipped = 0
        counter = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "maximum number of running instances" in record.getMessage():
                    counter.skipped += 1

        logging.getLogger("apscheduler").addHandler(Handler(logging.WARNING))


def _settings(args: argparse.Namespace) -> Any:
    from bot.settings import Settings

    entry: dict[str, Any] = {
        "name": PROVIDER,
        "kind": "smsactivate",
        "base_url": args.upstream,
        "api_key": API_KEY,
        "currency": "USD",
        "rate": "1",
    }
    if args.rate_limit:
        entry["rate_limit_per_min"] = args.rate_limit
    return Settings(
        _env_file=None,
        bot_token=TOKEN,
        telegram_api_url=args.telegram,
        database_url=f"sqlite+aiosqlite:///{args.dir}/bench.db",
        poll_interval_s=args.interval,
        poll_rate_share=args.share,
        providers=[entry],
        log_level=args.log_level,
    )


# --- the seed process ----------------------------------------------------------------------------


def _rows(args: argparse.Namespace, orders: list[list[str]], service: str, country: str):
    """Users and 'waiting' activations as plain dicts for two executemany INSERTs."""
    from datetime import timedelta

    from db.models import utcnow

    now = utcnow()
    max_age = max(0.0, min(600.0, TIMEOUT_S - args.duration - 180))
    users, activations = [], []
    n = len(orders)
    for i, order in enumerate(orders):
        created = now - timedelta(seconds=max_age * (n - i) / n)  # row 0 is the oldest
        expires = created + timedelta(seconds=TIMEOUT_S)
        if i < args.expiring:  # the oldest ones reach their deadline during the run
            expires = now + timedelta(seconds=5 + args.duration * (i + 1) / (args.expiring + 1))
        users.append(_user_row(int(order[2]), now))
        activations.append(_activation_row(args, order, (service, country), now, created, expires))
    return users, activations


def _user_row(chat: int, now: datetime) -> dict[str, Any]:
    return {
        "id": chat,
        "username": None,
        "first_name": None,
        "language": "en",
        "balance": 0,
        "banned": False,
        "blocked_bot": False,
        "created_at": now,
    }


def _activation_row(
    args: argparse.Namespace,
    order: list[str],
    offer: tuple[str, str],
    now: datetime,
    created: datetime,
    expires: datetime,
) -> dict[str, Any]:
    """A 'waiting' activation of (service, country): order is the servers' orders.tsv line."""
    from datetime import timedelta

    order_id, phone, chat, card = order
    service, country = offer
    return {
        "user_id": int(chat),
        "confirm_key": f"{chat}:bench",
        "status": "waiting",
        "country": country,
        "service": service,
        "price": PRICE_MICRO,
        "provider": PROVIDER,
        "provider_order_id": order_id,
        "phone": f"+{phone}",
        "upstream_price": "0.1453",
        "upstream_currency": "USD",
        "rate": "1",
        "markup_percent": "20",
        "codes": 0,
        "card_chat_id": int(chat) if args.cards else None,
        "card_message_id": int(card) if args.cards else None,
        "card_updated_at": now if args.cards else None,
        "created_at": created,
        "updated_at": created,
        "cancel_after": created + timedelta(seconds=120),
        "expires_at": expires,
    }


async def _seed(db: Any, args: argparse.Namespace, service: str, country: str) -> int:
    from sqlalchemy import insert

    from db.models import Activation, User

    text = Path(args.orders).read_text(encoding="utf-8")  # noqa: ASYNC240 - before the run
    orders = [line.split("\t") for line in text.splitlines() if line]
    users, activations = _rows(args, orders, service, country)
    async with db.write() as session:
        await session.execute(insert(User), users)
        await session.execute(insert(Activation), activations)
    return len(activations)


async def seed_main(args: argparse.Namespace) -> None:
    """The rows, written into the running bot's database by a separate process so that the
    bot's peak RSS holds only its own work. Started beside the bot (its imports take a while),
    it writes when the parent says "seed"."""
    from db.engine import Database
    from db.migrate import upgrade
    from services.providers.smsactivate import SmsActivateProvider

    print(json.dumps({"ready": True}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "seed"
    started = time.perf_counter()
    settings = _settings(args)
    db = Database(settings.database_url)
    await upgrade(db)
    provider = SmsActivateProvider(settings.providers[0])
    rows = await _seed(db, args, provider.service_key("tg"), provider.country_key("0"))
    await provider.aclose()
    await db.dispose()
    print(json.dumps({"rows": rows, "seed_s": time.perf_counter() - started}), flush=True)


# --- the bot process (measured) ----------------------------------------------------------------


async def _db_figures(db: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from db.models import Activation, OutboxMessage

    async with db.read() as session:
        by_status = select(Activation.status, func.count()).group_by("status")
        states = dict((await session.execute(by_status)).all())
        rows = await session.execute(
            select(OutboxMessage.chat_id, OutboxMessage.created_at, OutboxMessage.sent_at).where(
                OutboxMessage.kind == "otp:code"
            )
        )
        enqueued = {
            str(chat): [created.timestamp(), sent.timestamp() if sent else None]
            for chat, created, sent in rows
        }
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
        )
    return {"states": states, "enqueued": enqueued, "outbox_pending": pending}


class Rounds(list[float]):
    """The duration of each full poll round over waiting orders; `ended` is set after each."""

    def __init__(self) -> None:
        super().__init__()
        self.ended = asyncio.Event()

    async def next(self) -> None:
        """Until a round over waiting orders has ended (after the rows were seeded)."""
        self.ended.clear()
        await self.ended.wait()


def _time_rounds(app: Any) -> Rounds:
    """Wraps app.otp._round (before schedule_jobs picks up poll): the duration of each full
    round over waiting orders (not the idle ones before the rows are seeded), without the
    order-list readings that follow it until the next round is due."""
    rounds = Rounds()
    full_round = app.otp._round

    async def timed_round() -> set[str]:
        begin = time.perf_counter()
        waiting: set[str] = await full_round()
        if waiting:
            rounds.append(time.perf_counter() - begin)
            rounds.ended.set()
        return waiting

    app.otp._round = timed_round
    return rounds


def rss_now_mb() -> float:
    """The resident set now (not the peak): /proc/self/statm, in pages."""
    import os

    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _run_until_stop(
    app: Any, args: argparse.Namespace, rounds: Rounds
) -> tuple[float, float]:
    """Jobs and outbox running until the parent says "stop" (before, it asks "rss", then
    "round": answered once a round has seen the seeded rows): (CPU s, wall s) of that
    stretch, profiled into `--profile`.<N>.prof if asked."""
    from bot.app import stop_background
    from bot.jobs import schedule_jobs

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    schedule_jobs(app)  # catalog refresh, otp-poll, otp-reconcile, as on_startup does
    app.scheduler.start()
    app.outbox.start()
    print(json.dumps({"started": True}), flush=True)

    while (command := (await asyncio.to_thread(sys.stdin.readline)).strip()) != "stop":
        if command == "round":  # the rows are seeded: poll now rather than at the next tick
            app.scheduler.get_job("otp-poll").modify(next_run_time=datetime.now(UTC))
            await rounds.next()
        print(json.dumps({"rss_now_mb": rss_now_mb(), "rss_peak_mb": rss_mb()}), flush=True)
    await stop_background(app)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{args.profile}.{args.n}.prof")
    return cpu, wall


async def _close(app: Any) -> None:
    for each in app.providers.values():
        await each.aclose()
    await app.bot.session.close()
    await app.db.dispose()


async def bot_main(args: argparse.Namespace) -> None:
    from bot.app import build_app
    from bot.logging_setup import setup_logging
    from db.migrate import upgrade

    rss_imports = rss_mb()
    settings = _settings(args)
    setup_logging(settings.log_level)  # what `python -m bot` does; stderr goes to a file
    skips = _SkipCounter()

    app = build_app(settings)  # the production wiring: presenter, outbox sender, providers
    await upgrade(app.db)  # already done by the seeding process: a no-op, as on a restart
    await app.i18n.core.startup()
    rss_built = rss_mb()
    provider = app.providers[PROVIDER]
    rounds = _time_rounds(app)
    cpu, wall = await _run_until_stop(app, args, rounds)
    figures = await _db_figures(app.db)
    result = {
        "cpu_s": cpu,
        "wall_s": wall,
        "rss_imports_mb": rss_imports,
        "rss_built_mb": rss_built,
        "rss_peak_mb": rss_mb(),
        "rss_end_mb": rss_now_mb(),
        "rounds": rounds,
        "skipped": skips.skipped,
        "http_requests": provider.http.requests,
        "http_errors": provider.http.errors,
        "poll_budget": app.otp._poll_budget(PROVIDER),
        **figures,
    }
    await _close(app)
    print(json.dumps(result), flush=True)
