"""OTP poller benchmark: code-delivery latency, upstream load, CPU and memory of the real poller.

    .venv/bin/python bench/poller.py [--quick] [--duration 45] [--interval 5] [--only 1k,10k,rl]
        [--hero | --no-list] [--upstream-latency-ms 0] [--tg-latency-ms 0] [--no-cards]

Scenarios: 1k and 10k active activations on an unlimited provider, and `rl`: 1,000 active on a
provider with rate_limit_per_min=60 (20 of them reach their deadline during the run, so timeout
cancels are part of the load). Per scenario, four processes:

* *servers*: a simulated handler_api upstream (tests/fakes/smsactivate.py) holding N active
  activations, which hands codes to random activations at random times during the run (N/5 a
  minute by default), and a fake Bot API (tests/fakes/telegram.py) on which every activation
  already has its card message; both record when each request arrives;
* *seed*: writes N 'waiting' rows (users + activations, plain INSERTs) into a fresh SQLite
  database, so that the bot's peak RSS holds only its own work;
* *bot*, the one measured: bot/app.py's build_app() and schedule_jobs() on that database (the real
  ActivationService.poll on its APScheduler interval job, the real OutboxWorker sending through
  aiogram), no Telegram long polling;
* this parent, which imports nothing heavy (a child's ru_maxrss must not inherit a fat parent).

Latency is "the upstream has the code" -> "the fake Bot API received the sendMessage carrying it";
a code never pushed by the end of the drain counts as infinitely late. Goals (issue 4, item 10):
p99 <= POLL_INTERVAL_S + 1 s at 1,000 active with an unlimited provider; peak RSS < 200 MB at
10,000; with a provider allowing 60 requests/min, never more than 60 in any 60-second window
(counted at the simulated upstream over all actions, and per action since the client's limiter
works per endpoint).

Upstream variants: by default getActiveActivations answers every order at once (plain handler_api);
`--hero` pages it by 100 like HeroSMS; `--no-list` answers BAD_ACTION (per-order getStatus only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "123456:BENCH-TOKEN-abcdefghijklmnop"
API_KEY = "bench-sa-key-0123456789abcdef"
PROVIDER = "sim"
CHAT_BASE = 50_000_000  # chat (and user) id of activation i is CHAT_BASE + i
CARD_BASE = 900_000_000  # the activation card's message id (never collides with the fake's ids)
PRICE_MICRO = 180_000
WINDOW_S = 60.0


@dataclass(frozen=True)
class Scenario:
    label: str
    n: int
    rate_limit: int | None
    duration_s: float
    expiring: int  # the oldest rows whose own deadline falls inside the run


# --- small helpers ------------------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; values sorted, may end in inf (codes never delivered)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1]


def window_max(times: list[float], limit: int | None = None) -> tuple[int, int]:
    """(most requests in any 60-second window, requests that arrived over the limit):
    for each request, how many arrived in the 60 s up to and including it."""
    best = over = 0
    start = 0
    for end, moment in enumerate(times):
        while times[start] <= moment - WINDOW_S:
            start += 1
        count = end - start + 1
        best = max(best, count)
        if limit is not None and count > limit:
            over += 1
    return best, over


# --- the servers process: simulated upstream + fake Bot API ------------------------------------


def _fakes() -> tuple[type, type, type]:
    from tests.fakes.telegram import Msg

    return _upstream_class(), _telegram_class(), Msg


def _upstream_class() -> type:
    from aiohttp import web

    from tests.fakes.smsactivate import ACTIVE, FakeSmsActivate

    class _Discard(list):
        def append(self, item: object) -> None:  # the fake's call log: not kept (memory)
            pass

    class Upstream(FakeSmsActivate):
        """Records the arrival time and action of every request; optional answer latency."""

        def __init__(self, latency_s: float, no_list: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.latency_s = latency_s
            self.no_list = no_list
            self.hits: list[tuple[float, str]] = []
            self.calls = _Discard()

        async def _handle(self, request: web.Request) -> web.StreamResponse:
            self.hits.append((time.monotonic(), request.query.get("action", "")))
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return await super()._handle(request)

        def _get_active(self, params: dict[str, str]) -> web.Response:
            """The fake's answers, but only the requested page is rendered (the fake renders
            every order for every page: at 10,000 the simulator, not the bot, would be slow)."""
            if self.no_list:
                return self._error("BAD_ACTION")
            for act in self.activations.values():
                self._refresh(act)
            active = [act for act in self.activations.values() if act.state in ACTIVE]
            if self.hero:
                start = int(params.get("start") or 0)
                page = active[start : start + min(int(params.get("limit") or 100), 100)]
                items = [self._active_item(act) for act in page]
                return self._json({"status": "success", "data": items})
            if not active:
                return self._text("NO_ACTIVATIONS")
            items = [self._active_item(act) for act in active]
            return self._json({"status": "success", "activeActivations": items})

    return Upstream


def _telegram_class() -> type:
    from aiohttp import web

    from tests.fakes.telegram import FakeTelegram

    class Telegram(FakeTelegram):
        """The fake Bot API, answering after `latency_s` (calls are recorded on arrival)."""

        def __init__(self, latency_s: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.latency_s = latency_s

        async def _handle(self, request: web.Request) -> web.Response:
            response = await super()._handle(request)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return response

    return Telegram


class Servers:
    def __init__(self, args: argparse.Namespace) -> None:
        upstream_cls, telegram_cls, self._msg = _fakes()
        self.args = args
        self.rng = random.Random(args.seed)
        self.upstream = upstream_cls(
            args.upstream_latency_ms / 1000,
            args.no_list,
            api_key=API_KEY,
            balance="1000000000",
            hero=args.hero,
        )
        self.upstream.set_price("0", "tg", "0.1453", 10**9)
        self.telegram = telegram_cls(args.tg_latency_ms / 1000, token=TOKEN)
        self.orders: list[tuple[str, str, int]] = []  # (upstream id, phone, chat id)
        self.codes: list[tuple[int, str, float]] = []  # (chat id, code, monotonic)
        self.refused = 0  # codes for activations the bot had already closed upstream
        self.go_at = 0.0
        self.duration_s = 0.0
        self._delivery: asyncio.Task[None] | None = None

    async def start(self) -> dict[str, Any]:
        await self.upstream.start()
        await self.telegram.start()
        lines = []
        for i in range(self.args.n):
            act = self.upstream.create("tg", "0")
            chat = CHAT_BASE + i
            card = self._msg(CARD_BASE + i, chat, "card", "card", None, True, int(time.time()))
            self.telegram.chats[chat].append(card)
            self.orders.append((act.id, act.phone, chat))
            lines.append(f"{act.id}\t{act.phone}\t{chat}\t{CARD_BASE + i}\n")
        orders = Path(self.args.dir) / "orders.tsv"
        orders.write_text("".join(lines), encoding="utf-8")
        urls = {"upstream": self.upstream.url, "telegram": self.telegram.url}
        return {**urls, "orders": str(orders)}

    def go(self, duration_s: float, codes_per_min: float) -> None:
        self.go_at = time.monotonic()
        self.duration_s = duration_s
        count = min(self.args.n, round(codes_per_min * duration_s / 60))
        picks = self.rng.sample(range(self.args.n), count)
        moments = sorted(self.rng.uniform(0, duration_s) for _ in picks)
        self._delivery = asyncio.create_task(self._deliver(list(zip(moments, picks, strict=True))))

    async def _deliver(self, plan: list[tuple[float, int]]) -> None:
        for offset, index in plan:
            await asyncio.sleep(max(0.0, self.go_at + offset - time.monotonic()))
            order_id, _, chat = self.orders[index]
            code = str(self.rng.randrange(100_000, 1_000_000))
            moment = time.monotonic()
            try:
                self.upstream.deliver_sms(order_id, code, f"Telegram code {code}")
            except ValueError:  # already cancelled/expired upstream
                self.refused += 1
                continue
            self.codes.append((chat, code, moment))

    def report(self) -> dict[str, Any]:
        if self._delivery is not None:
            self._delivery.cancel()
        wall_offset = time.time() - time.monotonic()
        sends: dict[int, list[tuple[float, str]]] = defaultdict(list)
        edits: dict[int, list[tuple[float, str]]] = defaultdict(list)
        methods: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for call in self.telegram.calls:
            methods[call.method] += 1
            if call.error is not None:
                errors[f"{call.method}: {call.error[:60]}"] += 1
            if call.method in ("sendMessage", "editMessageText") and call.error is None:
                target = sends if call.method == "sendMessage" else edits
                target[int(call.params["chat_id"])].append((call.at, str(call.params["text"])))
        events = []
        stale_cards = 0  # the card showed the code, then was edited back to a view without it
        with_code = 0
        trace: list[str] = []
        for chat, code, moment in self.codes:
            card = self._card(chat)
            with_code += code in card.text
            if code not in card.text and any(code in text for _, text in edits[chat]):
                stale_cards += 1
                trace = trace or self._trace(chat, code, moment)
            sent = next((at for at, text in sends[chat] if at >= moment and code in text), None)
            events.append(
                {
                    "chat": chat,
                    "code_at": moment + wall_offset,
                    "sent_at": None if sent is None else sent + wall_offset,
                }
            )
        return {
            "cpu_s": time.process_time(),
            "codes": events,
            "refused": self.refused,
            "stale_cards": stale_cards,
            "cards_with_code": with_code,
            "stale_trace": trace,
            "telegram_calls": dict(methods),
            "telegram_errors": dict(errors),
            **self._requests(),
        }

    def _card(self, chat: int) -> Any:
        return next(m for m in self.telegram.chats[chat] if m.message_id >= CARD_BASE)

    def _trace(self, chat: int, code: str, moment: float) -> list[str]:
        """What the Bot API saw for one chat, relative to the code's arrival upstream."""
        lines = [f"chat {chat}: code {code} upstream at t=0"]
        for call in self.telegram.calls:
            if str(call.params.get("chat_id")) == str(chat):
                text = " ".join(str(call.params.get("text", "")).split())[:90]
                lines.append(f"t={call.at - moment:+.2f} s {call.method}: {text}")
        return lines

    def _requests(self) -> dict[str, Any]:
        hits = self.upstream.hits
        limit = self.args.rate_limit or None
        run_end = self.go_at + self.duration_s
        in_run = [action for moment, action in hits if self.go_at <= moment <= run_end]
        per_action: dict[str, list[float]] = defaultdict(list)
        for moment, action in hits:
            per_action[action].append(moment)
        every = [moment for moment, _ in hits]
        peak, over = window_max(every, limit)
        by_action = {name: window_max(times, limit) for name, times in per_action.items()}
        span = (hits[-1][0] - hits[0][0]) if hits else 0.0
        return {
            "requests_total": len(hits),
            "requests_span_s": span,
            "requests_in_run": len(in_run),
            "requests_in_run_by_action": dict(Counter(in_run)),
            "window_max": peak,
            "window_over": over,
            "window_by_action": {name: list(value) for name, value in by_action.items()},
        }

    async def close(self) -> None:
        await self.upstream.close()
        await self.telegram.close()


async def servers_main(args: argparse.Namespace) -> None:
    servers = Servers(args)
    print(json.dumps(await servers.start()), flush=True)
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            break
        if line[0] == "go":
            servers.go(float(line[1]), float(line[2]))
            print(json.dumps({"go": True}), flush=True)
        elif line[0] == "report":
            print(json.dumps(servers.report()), flush=True)
    await servers.close()


# --- the bot process (measured) ----------------------------------------------------------------


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


def _rows(args: argparse.Namespace, orders: list[list[str]], service: str, country: str):
    """Users and 'waiting' activations as plain dicts for two executemany INSERTs."""
    from datetime import timedelta

    from db.models import utcnow

    now = utcnow()
    timeout = 1200
    max_age = max(0.0, min(600.0, timeout - args.duration - 180))
    users, activations = [], []
    n = len(orders)
    for i, (order_id, phone, chat, card) in enumerate(orders):
        created = now - timedelta(seconds=max_age * (n - i) / n)  # row 0 is the oldest
        expires = created + timedelta(seconds=timeout)
        if i < args.expiring:  # the oldest ones reach their deadline during the run
            expires = now + timedelta(seconds=5 + args.duration * (i + 1) / (args.expiring + 1))
        users.append(
            {
                "id": int(chat),
                "username": None,
                "first_name": None,
                "language": "en",
                "balance": 0,
                "banned": False,
                "blocked_bot": False,
                "created_at": now,
            }
        )
        activations.append(
            {
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
        )
    return users, activations


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
        providers=[entry],
        log_level=args.log_level,
    )


async def _db_figures(db: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from db.models import Activation, OutboxMessage

    async with db.read() as session:
        states = dict(
            (await session.execute(select(Activation.status, func.count()).group_by("status")))
            .tuples()
            .all()
        )
        rows = await session.execute(
            select(OutboxMessage.chat_id, OutboxMessage.created_at, OutboxMessage.sent_at).where(
                OutboxMessage.kind == "otp:code"
            )
        )
        enqueued = {
            str(chat): [created.timestamp(), sent.timestamp() if sent else None]
            for chat, created, sent in rows.tuples()
        }
        pending = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
        )
    return {"states": states, "enqueued": enqueued, "outbox_pending": pending}


async def seed_main(args: argparse.Namespace) -> None:
    """The database the bot starts on, written by a separate process so that the bot's
    peak RSS holds only its own work."""
    from db.engine import Database
    from db.migrate import upgrade
    from services.providers.smsactivate import SmsActivateProvider

    started = time.perf_counter()
    settings = _settings(args)
    db = Database(settings.database_url)
    await upgrade(db)
    provider = SmsActivateProvider(settings.providers[0])
    rows = await _seed(db, args, provider.service_key("tg"), provider.country_key("0"))
    await provider.aclose()
    await db.dispose()
    print(json.dumps({"rows": rows, "seed_s": time.perf_counter() - started}), flush=True)


async def _stop_background(app: Any) -> None:
    """Like bot/app.py's stop_background, but the scheduler is paused rather than shut down
    first: AsyncIOExecutor.shutdown() cancels a running round (logged as an ERROR)."""
    app.scheduler.pause()
    for service in (app.otp, getattr(app, "smm", None)):
        settle = getattr(service, "stop", None) or getattr(service, "wait_idle", None)
        if settle is not None:
            await settle()
    app.scheduler.shutdown(wait=False)
    await app.outbox.stop()


async def bot_main(args: argparse.Namespace) -> None:
    from bot.app import build_app, schedule_jobs
    from bot.logging_setup import setup_logging
    from db.migrate import upgrade

    rss_imports = _rss_mb()
    settings = _settings(args)
    setup_logging(settings.log_level)  # what `python -m bot` does; stderr goes to a file
    skips = _SkipCounter()

    app = build_app(settings)  # the production wiring: presenter, outbox sender, providers
    await upgrade(app.db)  # already done by the seeding process: a no-op, as on a restart
    await app.i18n.core.startup()
    rss_built = _rss_mb()
    provider = app.providers[PROVIDER]

    rounds: list[float] = []
    poll = app.otp.poll

    async def timed_poll() -> None:
        begin = time.perf_counter()
        await poll()
        rounds.append(time.perf_counter() - begin)

    app.otp.poll = timed_poll  # type: ignore[method-assign]  # picked up by schedule_jobs
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

    await asyncio.to_thread(sys.stdin.readline)  # "stop"
    await _stop_background(app)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{args.profile}.{args.n}.prof")
    figures = await _db_figures(app.db)
    result = {
        "cpu_s": cpu,
        "wall_s": wall,
        "rss_imports_mb": rss_imports,
        "rss_built_mb": rss_built,
        "rss_peak_mb": _rss_mb(),
        "rounds": rounds,
        "skipped": skips.skipped,
        "http_requests": provider.http.requests,
        "http_errors": provider.http.errors,
        "poll_budget": app.otp._poll_budget(PROVIDER),
        **figures,
    }
    for each in app.providers.values():
        await each.aclose()
    await app.bot.session.close()
    await app.db.dispose()
    print(json.dumps(result), flush=True)


# --- the parent ----------------------------------------------------------------------------------


class ChildFailed(RuntimeError):
    pass


def _spawn(role: str, args: list[str], log: Path) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "--role", role, *args]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log.open("w", encoding="utf-8"),
        text=True,
    )


def _ask(child: subprocess.Popen[str], command: str | None, log: Path) -> dict[str, Any]:
    assert child.stdin is not None and child.stdout is not None
    if command is not None:
        child.stdin.write(command + "\n")
        child.stdin.flush()
    line = child.stdout.readline()
    if not line:
        child.wait(timeout=30)
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise ChildFailed(f"child exited with {child.returncode}\n{tail}")
    return json.loads(line)


def _log_figures(log: Path) -> tuple[int, int, int, str | None]:
    """(bytes, lines, ERROR lines, first ERROR line) of the bot's log."""
    size = lines = errors = 0
    first: str | None = None
    with log.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            size += len(line.encode())
            lines += 1
            if '"level": "ERROR"' in line or "Traceback" in line:
                errors += 1
                first = first or line.strip()[:300]
    return size, lines, errors, first


def _servers_args(scenario: Scenario, opts: argparse.Namespace) -> list[str]:
    return [
        "--rate-limit",
        str(scenario.rate_limit or 0),
        "--upstream-latency-ms",
        str(opts.upstream_latency_ms),
        "--tg-latency-ms",
        str(opts.tg_latency_ms),
        *(["--hero"] if opts.hero else []),
        *(["--no-list"] if opts.no_list else []),
    ]


def _bot_args(scenario: Scenario, opts: argparse.Namespace, where: dict[str, str]) -> list[str]:
    return [
        "--upstream",
        where["upstream"],
        "--telegram",
        where["telegram"],
        "--orders",
        where["orders"],
        "--interval",
        str(opts.interval),
        "--duration",
        str(scenario.duration_s),
        "--expiring",
        str(scenario.expiring),
        "--log-level",
        opts.log_level,
        "--rate-limit",
        str(scenario.rate_limit or 0),
        *([] if opts.cards else ["--no-cards"]),
        *(["--profile", opts.profile] if opts.profile else []),
    ]


def run_scenario(scenario: Scenario, opts: argparse.Namespace) -> dict[str, Any]:
    """servers up -> seed the database -> bot up -> codes for `duration` -> drain -> reports."""
    drain = 2 * opts.interval + 5
    codes_per_min = opts.codes_per_min or scenario.n / 5
    children: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-poller-") as tmp:
        folder = Path(tmp)
        common = ["--dir", tmp, "--n", str(scenario.n), "--seed", str(opts.seed)]
        logs = {name: folder / f"{name}.log" for name in ("servers", "seed", "bot")}
        try:
            servers = _spawn("servers", [*common, *_servers_args(scenario, opts)], logs["servers"])
            children.append(servers)
            where = _ask(servers, None, logs["servers"])
            bot_args = [*common, *_bot_args(scenario, opts, where)]
            seeder = _spawn("seed", bot_args, logs["seed"])
            children.append(seeder)
            seeded = _ask(seeder, None, logs["seed"])
            seeder.wait(timeout=60)
            bot = _spawn("bot", bot_args, logs["bot"])
            children.append(bot)
            _ask(bot, None, logs["bot"])
            _ask(servers, f"go {scenario.duration_s} {codes_per_min}", logs["servers"])
            time.sleep(scenario.duration_s + drain)
            measured = _ask(bot, "stop", logs["bot"])
            bot.wait(timeout=60)
            upstream = _ask(servers, "report", logs["servers"])
            _ask_quit(servers)
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            _keep_logs(opts, scenario, logs.values())
        log = _log_figures(logs["bot"])
    return {
        "seeded": seeded,
        "bot": measured,
        "upstream": upstream,
        "log": log,
        "drain": drain,
        "codes_per_min": codes_per_min,
    }


def _keep_logs(opts: argparse.Namespace, scenario: Scenario, logs: Any) -> None:
    if not opts.keep_logs:
        return
    kept = Path(opts.keep_logs)
    kept.mkdir(parents=True, exist_ok=True)
    for path in logs:
        if path.exists():
            (kept / f"{scenario.label}-{path.name}").write_bytes(path.read_bytes())


def _ask_quit(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("quit\n")
    child.stdin.flush()
    child.wait(timeout=30)


# --- the report ----------------------------------------------------------------------------------


def _flag(ok: bool) -> str:
    return "[ok]  " if ok else "[OVER]"


def _seconds(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.2f} s"


def _latencies(result: dict[str, Any]) -> tuple[list[float], list[float], list[float]]:
    """(code -> sendMessage, code -> outbox row, outbox row -> sendMessage) in seconds."""
    enqueued = result["bot"]["enqueued"]
    total, detect, send = [], [], []
    for event in result["upstream"]["codes"]:
        sent = event["sent_at"]
        total.append(math.inf if sent is None else sent - event["code_at"])
        row = enqueued.get(str(event["chat"]))
        if row is not None:
            detect.append(row[0] - event["code_at"])
            if sent is not None:
                send.append(sent - row[0])
    return sorted(total), sorted(detect), sorted(send)


def report(scenario: Scenario, opts: argparse.Namespace, result: dict[str, Any]) -> None:
    bot, upstream = result["bot"], result["upstream"]
    limit = scenario.rate_limit
    print(
        f"\n== {scenario.label}: N = {scenario.n:,} active, "
        f"{f'{limit} requests/min' if limit else 'unlimited'} provider, poll every "
        f"{opts.interval:g} s, {scenario.duration_s:g} s run + {result['drain']:g} s drain"
        + (f", {scenario.expiring} reach their deadline in the run" if scenario.expiring else "")
    )
    _report_latency(scenario, opts, result)
    _report_requests(scenario, result)
    rounds = sorted(bot["rounds"])
    if rounds:
        print(
            f"         poll rounds: {len(rounds)}, duration median "
            f"{_percentile(rounds, 50):.2f} s, "
            f"max {rounds[-1]:.2f} s; runs skipped (previous still running): {bot['skipped']}"
            + (f"; budget {bot['poll_budget']} orders/round" if bot["poll_budget"] else "")
        )
    share = bot["cpu_s"] / bot["wall_s"] * 100 if bot["wall_s"] else 0
    print(
        f"         CPU {bot['cpu_s']:.1f} s over {bot['wall_s']:.0f} s wall ({share:.0f}% of one "
        f"core); simulators used {upstream['cpu_s']:.1f} s CPU; seeding {scenario.n:,} rows "
        f"(another process) {result['seeded']['seed_s']:.1f} s"
    )
    rss_flag = _flag(bot["rss_peak_mb"] < 200) if scenario.n >= 10_000 else "      "
    print(
        f"  {rss_flag} peak RSS {bot['rss_peak_mb']:.0f} MB (after imports "
        f"{bot['rss_imports_mb']:.0f} MB, after build_app + migrations "
        f"{bot['rss_built_mb']:.0f} MB)" + ("   goal < 200 MB" if scenario.n >= 10_000 else "")
    )
    size, lines, errors, first = result["log"]
    print(
        f"         log at {opts.log_level}: {lines:,} lines, {size / 1e6:.1f} MB; "
        f"ERROR lines {errors}" + (f" (first: {first})" if first else "")
    )
    states = ", ".join(f"{k} {v:,}" for k, v in sorted(bot["states"].items()))
    print(
        f"         rows at the end: {states}; outbox unsent {bot['outbox_pending']}; "
        f"Bot API calls {upstream['telegram_calls']}"
    )
    if opts.cards:
        print(
            f"         activation cards showing their code at the end: "
            f"{upstream['cards_with_code']} of {len(upstream['codes'])} "
            f"({upstream['stale_cards']} showed it, then were edited back to a view without it)"
        )
        for line in upstream["stale_trace"]:
            print(f"           {line}")
    for error, count in sorted(upstream["telegram_errors"].items()):
        print(f"         Bot API refused {count}x {error}")


def _report_latency(scenario: Scenario, opts: argparse.Namespace, result: dict[str, Any]) -> None:
    total, detect, send = _latencies(result)
    upstream = result["upstream"]
    missing = sum(math.isinf(x) for x in total)
    print(
        f"         codes: {len(total)} handed out upstream ({result['codes_per_min']:g}/min), "
        f"{len(total) - missing} pushed to Telegram, {missing} never pushed"
        + (f"; {upstream['refused']} refused (already closed)" if upstream["refused"] else "")
    )
    if not total:
        return
    goal = opts.interval + 1
    p99 = _percentile(total, 99)
    flag = _flag(p99 <= goal) if scenario.rate_limit is None and scenario.n <= 1000 else "      "
    print(
        f"  {flag} latency p50 {_seconds(_percentile(total, 50))}, p99 {_seconds(p99)}, "
        f"max {_seconds(total[-1])}" + (f"   goal p99 <= {goal:g} s" if flag.strip() else "")
    )
    if detect and send:
        print(
            f"         of which upstream -> outbox row p50 {_percentile(detect, 50):.2f} s "
            f"p99 {_percentile(detect, 99):.2f} s; outbox row -> sendMessage "
            f"p50 {_percentile(send, 50) * 1000:.0f} ms p99 {_percentile(send, 99) * 1000:.0f} ms"
        )


def _report_requests(scenario: Scenario, result: dict[str, Any]) -> None:
    upstream, bot = result["upstream"], result["bot"]
    per_min = upstream["requests_in_run"] / scenario.duration_s * 60
    actions = ", ".join(
        f"{name} {count / scenario.duration_s * 60:,.0f}"
        for name, count in sorted(upstream["requests_in_run_by_action"].items())
    )
    print(
        f"         upstream requests: {per_min:,.0f}/min during the run ({actions}); "
        f"{upstream['requests_total']:,} in all (client counted {bot['http_requests']:,}, "
        f"{bot['http_errors']} transport errors)"
    )
    limit = scenario.rate_limit
    if limit is None:
        return
    by_action = upstream["window_by_action"]
    detail = ", ".join(f"{name} {peak}" for name, (peak, _) in sorted(by_action.items()))
    print(
        f"         max requests in any 60 s window: {upstream['window_max']} "
        f"({detail}) over {upstream['requests_span_s']:.0f} s of traffic"
        + ("  [run shorter than 60 s]" if upstream["requests_span_s"] < WINDOW_S else "")
    )
    endpoint_over = sum(over for _, over in by_action.values())
    print(
        f"  {_flag(upstream['window_over'] == 0)} rate-limit violations: "
        f"{upstream['window_over']} (all actions together, limit {limit}/min); "
        f"per endpoint: {endpoint_over}"
    )


# --- entry point ---------------------------------------------------------------------------------


def scenarios(opts: argparse.Namespace) -> list[Scenario]:
    duration = 10.0 if opts.quick else opts.duration
    rl_duration = 10.0 if opts.quick else opts.rl_duration
    every = {
        "1k": Scenario("1k", 1_000, None, duration, 0),
        "10k": Scenario("10k", 10_000, None, duration, 0),
        "rl": Scenario("rl", opts.rl_n, opts.rl_limit, rl_duration, opts.rl_expiring),
    }
    return [every[name] for name in opts.only.split(",")]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s per scenario")
    parser.add_argument("--duration", type=float, default=45, help="seconds per N scenario")
    parser.add_argument("--rl-duration", type=float, default=120, help="rate-limited run")
    parser.add_argument("--interval", type=float, default=5, help="POLL_INTERVAL_S")
    parser.add_argument("--only", default="1k,10k,rl", help="scenarios: 1k,10k,rl")
    parser.add_argument("--rl-n", type=int, default=1000, help="active orders, rate-limited run")
    parser.add_argument("--rl-limit", type=int, default=60, help="rate_limit_per_min")
    parser.add_argument("--rl-expiring", type=int, default=20, help="deadlines in that run")
    parser.add_argument("--codes-per-min", type=float, default=None, help="default N/5")
    parser.add_argument("--upstream-latency-ms", type=float, default=0)
    parser.add_argument("--tg-latency-ms", type=float, default=0)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING"))
    parser.add_argument("--no-cards", dest="cards", action="store_false")
    parser.add_argument(
        "--hero", action="store_true", help="HeroSMS-style upstream: order list in pages of 100"
    )
    parser.add_argument(
        "--no-list", action="store_true", help="getActiveActivations answers BAD_ACTION"
    )
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--profile", metavar="PREFIX", help="cProfile the bot process to PREFIX.<N>.prof"
    )
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the children's logs there")
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=("servers", "seed", "bot"), help=hidden)
    for name in ("--dir", "--upstream", "--telegram", "--orders"):
        parser.add_argument(name, help=hidden)
    parser.add_argument("--n", type=int, help=hidden)
    parser.add_argument("--rate-limit", type=int, default=0, help=hidden)
    parser.add_argument("--expiring", type=int, default=0, help=hidden)
    return parser.parse_args(argv)


def main() -> None:
    opts = parse()
    if opts.role == "servers":
        asyncio.run(servers_main(opts))
        return
    if opts.role == "seed":
        asyncio.run(seed_main(opts))
        return
    if opts.role == "bot":
        asyncio.run(bot_main(opts))
        return
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load}; python {sys.version.split()[0]}")
    listing = "none" if opts.no_list else "pages of 100" if opts.hero else "one page"
    print(
        f"upstream order list: {listing}; upstream latency {opts.upstream_latency_ms:g} ms, "
        f"Bot API latency "
        f"{opts.tg_latency_ms:g} ms, activation cards {'on' if opts.cards else 'off'}, "
        f"log level {opts.log_level}"
    )
    for scenario in scenarios(opts):
        try:
            result = run_scenario(scenario, opts)
        except ChildFailed as exc:
            print(f"\n== {scenario.label}: a child process failed\n{exc}")
            continue
        report(scenario, opts, result)


if __name__ == "__main__":
    main()
