"""The bot's own overhead per update: the real Dispatcher against bare aiogram, same stub.

    .venv/bin/python bench/dispatch.py [--quick] [--updates 2000] [--rounds 5] [--concurrency 10]
                                       [--users 300] [--new-share 0.02] [--profile SCENARIO]

The real side is the Dispatcher `bot.app.build_app()` builds (every middleware, i18n, the user
record, the real routers and handlers) on a new SQLite file, once with the demo catalog and once
with a 5sim-sized one (bench/catalog.py `generate_price_list()`, ~9 MB, parsed and indexed as a
refresh does). The baseline is bare aiogram in the same process: a Dispatcher whose one Router
answers any callback by editing the message into a 10-button page (and a /start with the same
page), the way a minimal aiogram bot does.

Both Bots get the same stubbed Bot API session: an AiohttpSession that builds each request's
form (what it would send) and parses a canned answer, without a network (`StubSession`). Updates
are parsed and fed as long polling feeds them, `concurrency` at a time. They come from `users`
customers known to the database (repeated) and, for `new-share` of them, from customers never
seen before (each one registered by the user middleware). Throttling stays on, at a rate these
users never reach, so its code runs but drops nothing.

Figures (updates/s, median of the rounds; bare and real rounds alternate, and the ratio is the
median of each back-to-back pair's, so a busy moment of a shared machine hits both alike): the
OTP country page, the service page (demo and 5sim catalogs), /start, the Balance screen; each
against the goal >= 0.5x bare aiogram. The ratio by CPU time of this process is printed beside
it (less sensitive to other processes). `--profile country` (or service, start, balance)
prints a cProfile of the real side for that scenario instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiogram import Bot, Dispatcher, Router  # noqa: E402
from aiogram.client.default import DefaultBotProperties  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.enums import ParseMode  # noqa: E402
from aiogram.filters import CommandStart  # noqa: E402
from aiogram.methods import TelegramMethod  # noqa: E402
from aiogram.types import (  # noqa: E402
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)

from bench.figures import report  # noqa: E402
from bot.app import App, build_app  # noqa: E402
from bot.settings import Settings  # noqa: E402
from db import repositories as repo  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from handlers.menu import MenuAction, MenuCb  # noqa: E402
from handlers.otp_views import PER_PAGE, OtpNav, encode_key  # noqa: E402
from services import wallet  # noqa: E402

TOKEN = "123456:BENCH-dispatch-token"
GOAL = 0.5  # x bare aiogram
KNOWN_IDS = 1_000_000  # known customers: 1_000_000 + n
NEW_IDS = 5_000_000  # never seen before: 5_000_000 + n
BOT_MESSAGE = {
    "message_id": 77,
    "date": 1_700_000_000,
    "chat": {"id": 1, "type": "private"},
    "from": {"id": 123456, "is_bot": True, "first_name": "Shop"},
    "text": "page",
}
_MESSAGE_ANSWER = '{"ok":true,"result":' + json.dumps(BOT_MESSAGE) + "}"
_TRUE_ANSWER = '{"ok":true,"result":true}'


class StubSession(AiohttpSession):
    """The Bot API without a network: each request's form is built as for sending, and a canned
    answer (the edited or sent message, or `true`) is parsed as Telegram's would be."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        self.calls[method.__api_method__] += 1
        self.build_form_data(bot=bot, method=method)
        returns_message = "Message" in str(method.__returning__)
        answer = _MESSAGE_ANSWER if returns_message else _TRUE_ANSWER
        response = self.check_response(bot=bot, method=method, status_code=200, content=answer)
        return response.result


# --- the two dispatchers ---------------------------------------------------------------------


def bare_dispatcher() -> Dispatcher:
    """Bare aiogram: any callback edits the message into a 10-button page; /start sends it.
    The page is built as InlineKeyboardMarkup directly (InlineKeyboardBuilder's copies would
    slow the baseline down and flatter the ratio)."""
    router = Router(name="bare")

    def page() -> tuple[str, InlineKeyboardMarkup]:
        buttons = [
            InlineKeyboardButton(text=f"🏳 Country {n} · from $0.{n + 10}", callback_data=f"c:{n}")
            for n in range(10)
        ]
        rows = [buttons[n : n + 2] for n in range(0, 10, 2)]
        return "<b>Choose a country</b>", InlineKeyboardMarkup(inline_keyboard=rows)

    @router.callback_query()
    async def on_callback(query: CallbackQuery) -> None:
        text, markup = page()
        assert isinstance(query.message, Message)
        await query.message.edit_text(text, reply_markup=markup)
        await query.answer()

    @router.message(CommandStart())
    async def on_start(message: Message) -> None:
        text, markup = page()
        await message.answer(text, reply_markup=markup)

    dp = Dispatcher()
    dp.include_router(router)
    return dp


def stub_bot() -> tuple[Bot, StubSession]:
    session = StubSession()
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    return bot, session


@dataclass
class RealBot:
    app: App
    session: StubSession
    countries: list[str]
    label: str


async def real_bot(
    workdir: Path, label: str, users: int, providers: list[dict[str, Any]]
) -> RealBot:
    """The shop as bot/app.py builds it (start-up's database and catalog steps, no scheduler
    and no polling), its Bot on the stub session, `users` customers with a ledger row each."""
    settings = Settings(
        _env_file=None,
        bot_token=TOKEN,
        database_url=f"sqlite+aiosqlite:///{workdir / label}.db",
        throttle_rate_per_s=100_000,  # on, but never reached: its code runs, nothing dropped
        notify_chat_id=-100123,  # new customers are announced to the group, as in a real shop
        providers=providers,
    )
    app = build_app(settings)
    session = StubSession()
    session.middleware = app.bot.session.middleware  # RetryAfterMiddleware, as make_bot set it
    app.bot.session = session
    await upgrade(app.db)
    await app.i18n.core.startup()
    await app.console.load()
    if label == "5sim":
        _feed_fivesim(app)
    await app.catalog.refresh()
    await app.otp.load_popularity()
    async with app.db.write() as db_session:
        for n in range(users):
            user_id = KNOWN_IDS + n
            await repo.create_user(
                db_session,
                user_id,
                username=f"user{n}",
                first_name=f"User {n}",
                language="ru" if n % 4 == 0 else "en",
            )
            await wallet.credit(
                db_session, user_id, 5_000_000, reason="topup", key=f"bench:{user_id}"
            )
    countries = [item.iso for item in app.catalog.countries()]
    print(f"{label}: {app.catalog.offer_count():,} offers in {len(countries)} countries")
    # Customers in the middle of using the shop, as the measured updates find them: each has
    # opened the menu once (a bot that has been running, not one that just started).
    menu = MenuCb(action=MenuAction.MAIN).pack()
    await feed(app.dp, app.bot, [callback_update(known_sender(n), menu) for n in range(users)], 10)
    session.calls.clear()
    return RealBot(app, session, countries, label)


def _feed_fivesim(app: App) -> None:
    """The 5sim provider answers the 5sim-sized price list (parsed as its refresh would)."""
    from bench.catalog import generate_price_list, parse_prices

    offers = parse_prices(generate_price_list())
    provider = app.providers["5sim"]

    async def price_list(country: str | None = None) -> Any:
        return offers

    provider.offers = price_list  # type: ignore[method-assign]


FIVESIM = {
    "name": "5sim",
    "kind": "fivesim",
    "base_url": "http://127.0.0.1:9/v1",  # never called: offers() is fed above
    "api_key": "bench-key-not-used",
    "currency": "RUB",
    "rate": "0.011",
}


# --- updates ---------------------------------------------------------------------------------


@dataclass
class Senders:
    """Who sends each update: mostly known customers (repeated), some never seen before."""

    users: int
    new_share: float
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    next_new: int = 0

    def pick(self) -> dict[str, Any]:
        if self.rng.random() < self.new_share:
            self.next_new += 1
            user_id, name = NEW_IDS + self.next_new, f"New {self.next_new}"
            username = f"new{self.next_new}"
        else:
            return known_sender(self.rng.randrange(self.users))
        return _sender(user_id, name, username)


@dataclass
class EveryUser:
    """Each known customer in turn: a warm-up that finds every one of them active."""

    users: int
    next: int = 0

    def pick(self) -> dict[str, Any]:
        self.next += 1
        return known_sender(self.next % self.users)


def known_sender(n: int) -> dict[str, Any]:
    return _sender(KNOWN_IDS + n, f"User {n}", f"user{n}")


def _sender(user_id: int, name: str, username: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": name,
        "username": username,
        "language_code": "ru" if user_id % 4 == 0 else "en",
    }


_update_ids = iter(range(1, 10**9))


def callback_update(sender: dict[str, Any], data: str) -> dict[str, Any]:
    chat = {"id": sender["id"], "type": "private"}
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_update_ids)),
            "from": sender,
            "chat_instance": "1",
            "data": data,
            "message": {**BOT_MESSAGE, "chat": chat},
        },
    }


def start_update(sender: dict[str, Any]) -> dict[str, Any]:
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_update_ids),
            "date": 1_700_000_000,
            "chat": {"id": sender["id"], "type": "private"},
            "from": sender,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


def scenario_updates(
    scenario: str, count: int, senders: Senders | EveryUser, countries: list[str]
) -> list[dict[str, Any]]:
    pages = max(1, -(-len(countries) // PER_PAGE))
    rng = random.Random(len(countries))
    updates = []
    for n in range(count):
        sender = senders.pick()
        if scenario == "country":
            # "Buy a number" from the menu, or a page of countries further on
            data = (
                MenuCb(action=MenuAction.BUY).pack()
                if n % 2 == 0
                else OtpNav(v="c", p=rng.randrange(pages)).pack()
            )
            updates.append(callback_update(sender, data))
        elif scenario == "service":
            iso = countries[rng.randrange(len(countries))]
            updates.append(callback_update(sender, OtpNav(v="s", c=encode_key(iso)).pack()))
        elif scenario == "balance":
            updates.append(callback_update(sender, MenuCb(action=MenuAction.BALANCE).pack()))
        elif scenario == "start":
            updates.append(start_update(sender))
        else:
            raise ValueError(scenario)
    return updates


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    wall: float  # updates/s
    cpu: float  # updates per CPU second of this process (every thread)


async def feed(dp: Dispatcher, bot: Bot, raw: list[dict[str, Any]], concurrency: int) -> Rate:
    """Each update parsed and fed as long polling does, `concurrency` at a time."""
    pending: Iterator[dict[str, Any]] = iter(raw)

    async def worker() -> None:
        for item in pending:
            await dp.feed_update(bot, Update.model_validate(item, context={"bot": bot}))

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Rate(len(raw) / wall, len(raw) / max(cpu, 1e-9))


def expected_calls(scenario: str, count: int) -> dict[str, int]:
    if scenario == "start":
        return {"sendMessage": count}
    return {"editMessageText": count, "answerCallbackQuery": count}


def check_calls(session: StubSession, scenario: str, count: int, who: str) -> None:
    """Every update did its work: a fast run that dropped or failed updates proves nothing."""
    for method, expected in expected_calls(scenario, count).items():
        if session.calls[method] != expected:
            raise SystemExit(
                f"{who} {scenario}: {session.calls[method]} {method} for {count} updates "
                f"(calls: {dict(session.calls)})"
            )
    session.calls.clear()


@dataclass
class Result:
    name: str
    bare: list[Rate] = field(default_factory=list)
    real: list[Rate] = field(default_factory=list)


async def measure(
    name: str,
    scenario: str,
    shop: RealBot,
    bare: tuple[Dispatcher, Bot, StubSession],
    args: argparse.Namespace,
    senders: Senders,
) -> Result:
    result = Result(name)
    bare_dp, bare_bot, bare_session = bare
    app = shop.app
    # warm-up: first-time imports, caches, the first page of each kind, and every customer
    # active again (a running bot's state; the previous scenarios took longer than a record's
    # lifetime in the user cache)
    warm = scenario_updates(scenario, args.users, EveryUser(args.users), shop.countries)
    await feed(bare_dp, bare_bot, warm, args.concurrency)
    await feed(app.dp, app.bot, warm, args.concurrency)
    bare_session.calls.clear()
    shop.session.calls.clear()
    for _ in range(args.rounds):
        raw = scenario_updates(scenario, args.updates, senders, shop.countries)
        result.bare.append(await feed(bare_dp, bare_bot, raw, args.concurrency))
        check_calls(bare_session, scenario, len(raw), "bare aiogram")
        result.real.append(await feed(app.dp, app.bot, raw, args.concurrency))
        check_calls(shop.session, scenario, len(raw), f"real ({shop.label})")
    if app.errors:
        raise SystemExit(f"the error handler fired for {len(app.errors)} updates: {name}")
    return result


def print_result(result: Result) -> None:
    """Rates are medians over the rounds; the ratio is the median of each round's real/bare
    (each pair measured back to back, so a busy moment of the machine hits both)."""
    bare = statistics.median(r.wall for r in result.bare)
    real = statistics.median(r.wall for r in result.real)
    pairs = list(zip(result.real, result.bare, strict=True))
    ratio = statistics.median(r.wall / b.wall for r, b in pairs)
    cpu_ratio = statistics.median(r.cpu / b.cpu for r, b in pairs)
    print(
        f"{result.name}: real {real:,.0f}/s (rounds {_rounds(result.real)}), "
        f"bare aiogram {bare:,.0f}/s (rounds {_rounds(result.bare)}); "
        f"{ratio:.2f}x, by CPU time {cpu_ratio:.2f}x"
    )
    report(
        f"dispatcher {result.name}, updates/s",
        f"{real:,.0f}/s ({ratio:.2f}x)",
        f">= {GOAL}x bare aiogram",
        ratio >= GOAL,
        baseline=f"bare aiogram {bare:,.0f}/s",
    )


def _rounds(rates: list[Rate]) -> str:
    return " ".join(f"{r.wall:,.0f}" for r in rates)


SCENARIOS = (
    # (figure name, scenario, catalog)
    ("OTP country page (demo catalog)", "country", "demo"),
    ("OTP country page (5sim-sized catalog)", "country", "5sim"),
    ("OTP service page (demo catalog)", "service", "demo"),
    ("OTP service page (5sim-sized catalog)", "service", "5sim"),
    ("/start", "start", "5sim"),
    ("Balance screen", "balance", "5sim"),
)


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    shops = {
        "demo": await real_bot(workdir, "demo", args.users, []),
        "5sim": await real_bot(workdir, "5sim", args.users, [FIVESIM]),
    }
    bare_dp, (bare_bot, bare_session) = bare_dispatcher(), stub_bot()
    senders = Senders(args.users, args.new_share)
    print(
        f"{args.updates} updates a round, {args.rounds} rounds, {args.concurrency} at a time, "
        f"{args.users} known customers, {args.new_share:.0%} new"
    )
    try:
        if args.profile:
            await profile(args, shops, senders)
            return
        for name, scenario, catalog in SCENARIOS:
            result = await measure(
                name, scenario, shops[catalog], (bare_dp, bare_bot, bare_session), args, senders
            )
            print_result(result)
    finally:
        for shop in shops.values():
            await shop.app.db.dispose()
            for provider in shop.app.providers.values():
                await provider.aclose()


async def profile(args: argparse.Namespace, shops: dict[str, RealBot], senders: Senders) -> None:
    shop = shops["5sim"] if args.profile in ("start", "balance") else shops[args.catalog]
    warm = scenario_updates(args.profile, 100, senders, shop.countries)
    await feed(shop.app.dp, shop.app.bot, warm, args.concurrency)
    raw = scenario_updates(args.profile, args.updates, senders, shop.countries)
    profiler = cProfile.Profile()
    profiler.enable()
    rate = await feed(shop.app.dp, shop.app.bot, raw, args.concurrency)
    profiler.disable()
    print(f"{args.profile} ({shop.label}): {rate.wall:,.0f}/s under the profiler")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (under 40 s)")
    parser.add_argument("--updates", type=int, default=2000, help="updates a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--users", type=int, default=300, help="known customers")
    parser.add_argument("--new-share", type=float, default=0.02, help="share of new customers")
    parser.add_argument(
        "--profile", choices=("country", "service", "start", "balance"), default=None
    )
    parser.add_argument("--catalog", choices=("demo", "5sim"), default="5sim")
    args = parser.parse_args()
    if args.quick:
        args.updates, args.rounds = 150, 3
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
