"""The chaos run: the real bot (`python -m bot`, its own process) against the fake Bot API and
fake upstreams that fail at random, SIGKILLed and restarted several times while simulated users
top up, buy numbers, get codes, ask for another SMS, cancel, finish, and order SMM services that
the panel completes, delivers partly or cancels. Afterwards, with the faults off and everything
reconciled, the books must hold to the micro-unit:

(a) every balance equals its ledger; (b) every activation that delivered no code was refunded
exactly once, one that delivered a code never, and every SMM refund matches the panel's final
state (completed 0, partial floor(price x remains / quantity), cancelled all); (c) every order was
charged exactly once; (d) every code the upstream produced reached its owner's chat (blocked chats
excepted: there the code is in History) and no other chat; (e) every activation the upstream made
is known to the bot (handler_api has an order list; the only exception, counted in the figures,
is a lost buy that the upstream itself ended and refunded before the bot's reconciliation came
round), no upstream activation is left open, and every SMM order the bot lost (panels have no
order list) became `unknown` and was flagged to the admins, and after an admin's /adopt or
/refund every panel order is known to the bot; (f) each fault type fired and the bot was really
killed. Also: /audit is clean, the bot stops cleanly, and it logged no unexpected error. And
nothing reached Telegram twice: every outbox message (a code, a top-up, a closed order) reached
its chat once, and every line of the notification group once (tests/chaos_checks.py says how a
SIGKILL between a send and its "sent" mark may repeat one, and how many of those are allowed).

With `replicas` > 1 the bot runs as that many processes behind one webhook, on one PostgreSQL
database and one Redis (tests/chaos_processes.py); a kill takes one of them down while the others
go on serving, and the same checks hold.

Users, ops and talking to the bot: tests/chaos_players.py. Used by tests/e2e/test_chaos.py
(short seeded runs) and bench/chaos.py (long runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select

from db.engine import Database
from db.models import Activation, LedgerEntry, Notification, OutboxMessage, SmmOrder, User
from services.money import format_money
from tests import redis_server
from tests.chaos_checks import GROUP_ID, OTP_OPEN, OTP_PROVIDER, SMM_OPEN, BookState, Checker
from tests.chaos_players import ADMIN_ID, FIRST_USER, ChaosPlayers, Player
from tests.chaos_processes import BotFleet, catalogs_saved, delete_redis_keys, read_logs
from tests.e2e.test_process import bot_env
from tests.fakes.smmpanel import FINAL as PANEL_FINAL
from tests.fakes.smmpanel import FakeSmmPanel
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.telegram import FakeTelegram

SMM_PROVIDER = "panel"
TOKEN = "123456:TEST-TOKEN-abcdefghijklmnop"

# Fault types a run must show: the upstreams' (reads and buys) and the Bot API's.
REQUIRED_FAULTS = ("500", "hang", "html", "empty", "drop-after-buy", "tg-429", "tg-403")
READ_FAULTS = ("500", "html", "empty", "hang", "drop", "429")
BUY_FAULTS = ("drop", "hang", "500", "html", "empty")
BUY_ACTIONS = frozenset({"getNumber", "getNumberV2", "add"})


@dataclass
class ChaosConfig:
    workdir: Path
    seed: int = 1
    users: int = 10
    ops: int = 150
    kills: int = 3
    read_fault_rate: float = 0.06  # share of upstream reads that fail
    buy_fault_rate: float = 0.25  # share of buys / adds answered badly or not at all
    tg_429_rate: float = 0.02  # share of the bot's Bot API calls answered 429
    blockers: int = 2  # users who block the bot during the run (Telegram answers 403)
    op_timeout_s: float = 10.0
    settle_timeout_s: float = 90.0
    activation_timeout_s: int = 10
    progress: Callable[[str], None] | None = None
    database_url: str | None = None  # None: a SQLite file in workdir
    # Bot processes behind one webhook; more than one needs PostgreSQL and Redis.
    replicas: int = 1
    redis_url: str | None = None  # REDIS_URL (conversation state); None: in memory


@dataclass
class ChaosReport:
    config: ChaosConfig
    elapsed_s: float = 0.0
    ops: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    killed: Counter[str] = field(default_factory=Counter)  # replicas: kills by replica
    handled: Counter[str] = field(default_factory=Counter)  # replicas: updates each one took
    forwarded: Counter[str] = field(default_factory=Counter)  # replicas: statuses passed back
    forms: tuple[int, int] = (0, 0)  # replicas: SMM forms priced, those spread over 2+
    # Sent twice because a SIGKILL fell between the send and its "sent" mark (outbox
    # messages, group lines, codes among the outbox messages): allowed, one per kill at most.
    resent: Counter[str] = field(default_factory=Counter)
    sends: Counter[str] = field(default_factory=Counter)  # outbox messages, group messages
    activations: Counter[str] = field(default_factory=Counter)
    smm_orders: Counter[str] = field(default_factory=Counter)
    codes: int = 0
    codes_to_blocked: int = 0
    lost_and_refunded_upstream: int = 0  # lost buys the upstream ended (and refunded) itself
    resolved: Counter[str] = field(default_factory=Counter)  # lost SMM orders: adopt / refund
    alerts: Counter[str] = field(default_factory=Counter)  # errors logged that faults call for
    refunds: int = 0
    refunded: int = 0
    handler_errors: list[str] = field(default_factory=list)
    errors_logged: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def missing_faults(self) -> list[str]:
        return [kind for kind in REQUIRED_FAULTS if not self.faults[kind]]

    @property
    def ok(self) -> bool:
        clean = not (self.mismatches or self.handler_errors or self.errors_logged)
        return clean and not self.missing_faults and self.kills > 0

    def figures(self) -> str:
        cfg = self.config
        lines = [
            f"chaos run: seed {cfg.seed}, {cfg.users} users, {sum(self.ops.values())} ops "
            f"in {self.elapsed_s:.1f} s",
            f"ops done: {sum(self.ops.values())} ({_counts(self.ops)})",
            f"op outcomes: {_counts(self.outcomes)}",
            f"faults injected: {sum(self.faults.values())} ({_counts(self.faults)})",
            f"kills: {self.kills} (SIGKILL, each followed by a restart on the same database)",
            *self._replica_lines(),
            f"activations: {sum(self.activations.values())} ({_counts(self.activations)})",
            f"SMM orders: {sum(self.smm_orders.values())} ({_counts(self.smm_orders)})",
            f"codes produced upstream: {self.codes} ({self.codes_to_blocked} to blocked chats)",
            f"upstream activations lost by the bot: {self.lost_and_refunded_upstream}, each "
            "ended and refunded by the upstream itself (none still open or delivered)",
            f"lost SMM orders resolved by the admin: {_counts(self.resolved)}",
            f"refunds: {self.refunds} ({format_money(self.refunded, 'USD')})",
            f"sent: {_counts(self.sends)}; sent again after a kill (in flight when it "
            f"fell): {_counts(self.resent)}",
            f"handler errors: {len(self.handler_errors)}, other errors logged: "
            f"{len(self.errors_logged)} (and as the faults call for: {_counts(self.alerts)})",
            f"mismatches: {len(self.mismatches)}",
        ]
        lines += [f"  {line}" for line in (self.handler_errors + self.errors_logged)[:10]]
        lines += [f"  MISMATCH {line}" for line in self.mismatches[:30]]
        if self.missing_faults:
            lines.append(f"fault types that never fired: {', '.join(self.missing_faults)}")
        return "\n".join(lines)

    def _replica_lines(self) -> list[str]:
        replicas = self.config.replicas
        if replicas < 2:
            return []
        return [
            f"replicas: {replicas} behind one webhook; kills by replica: {_counts(self.killed)}",
            f"updates taken by replica: {_counts(self.handled)}; forwarder answers by status: "
            f"{_counts(self.forwarded)}",
            f"SMM order forms that got to their price: {self.forms[0]}, their steps taken by "
            f"two replicas or more: {self.forms[1]}",
        ]


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"


# --- faults -------------------------------------------------------------------------------------


class FaultDice:
    """Per upstream request: fail or not, and how. Kinds that have not fired yet go first, so
    that even a short run sees every one."""

    def __init__(self, rng: random.Random, read_rate: float, buy_rate: float) -> None:
        self.rng = rng
        self.read_rate = read_rate
        self.buy_rate = buy_rate
        self.on = False
        self.fired: Counter[str] = Counter()

    def roll(self, action: str) -> str | None:
        if not self.on:
            return None
        buy = action in BUY_ACTIONS
        if self.rng.random() >= (self.buy_rate if buy else self.read_rate):
            return None
        kinds = BUY_FAULTS if buy else READ_FAULTS

        def label(kind: str) -> str:
            return "drop-after-buy" if buy and kind == "drop" else kind

        fresh = [kind for kind in kinds if not self.fired[label(kind)]]
        kind = fresh[0] if fresh else self.rng.choice(kinds)
        self.fired[label(kind)] += 1
        return kind


class ChaosSmsActivate(FakeSmsActivate):
    """The handler_api fake, failing at random when the dice say so."""

    def __init__(self, dice: FaultDice, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dice = dice

    def _take(self, queue: list, action: str) -> Any:
        if queue is self._faults and (kind := self.dice.roll(action)) is not None:
            self.inject(kind, action=action)
        return super()._take(queue, action)


class ChaosSmmPanel(FakeSmmPanel):
    """The SMM panel fake (form protocol), failing at random when the dice say so."""

    def __init__(self, dice: FaultDice, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dice = dice

    def _take(self, queue: list, action: str) -> Any:  # type: ignore[override]
        if queue is self._faults and (kind := self.dice.roll(action)) is not None:
            self.inject(kind, action=action)
        return FakeSmmPanel._take(queue, action)


# --- the run ------------------------------------------------------------------------------------


class ChaosRun(ChaosPlayers):
    fleet: BotFleet

    def __init__(self, config: ChaosConfig) -> None:
        if config.replicas > 1 and not (
            config.redis_url and (config.database_url or "").startswith("postgresql")
        ):
            raise ValueError("replicas share a PostgreSQL database_url and a redis_url")
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.dice = FaultDice(
            random.Random(config.seed + 1), config.read_fault_rate, config.buy_fault_rate
        )
        self.tg_rng = random.Random(config.seed + 2)
        self.report = ChaosReport(config)
        self.ops_started = 0
        self.generation = 0
        self.up = asyncio.Event()
        self.buy_pressed = asyncio.Event()
        self.op_tick = asyncio.Event()  # an op started, or the players are done
        self.players_done = False
        self.topups: dict[str, tuple[int, int]] = {}  # ledger key -> (user, micro)
        self.forms: list[list[int]] = []
        self.busy_phones: set[str] = set()  # Finish / Another SMS presses on their way
        self.resolved: dict[int, str] = {}  # lost SMM orders -> what the admin did
        self._query_ids = itertools.count(1)
        self._codes = itertools.count(self.rng.randrange(100_000, 300_000))
        self.admin = Player(ADMIN_ID, "Admin")
        self.players = [Player(FIRST_USER + n, f"User{n}") for n in range(config.users)]
        for player in self.rng.sample(self.players, min(config.blockers, config.users)):
            player.block_at = int(config.ops * self.rng.uniform(0.2, 0.7))

    @property
    def db_url(self) -> str:
        return self.cfg.database_url or f"sqlite+aiosqlite:///{self.cfg.workdir / 'bot.db'}"

    def say_progress(self, text: str) -> None:
        if self.cfg.progress is not None:
            self.cfg.progress(text)

    async def run(self) -> ChaosReport:
        started = time.monotonic()
        self.cfg.workdir.mkdir(parents=True, exist_ok=True)
        # A bot id of its own when the state is in Redis: its keys (`fsm:<bot id>:...`) are
        # this run's, deleted at the end.
        token = redis_server.unique_token() if self.cfg.redis_url else TOKEN
        async with (
            FakeTelegram(token=token) as tg,
            ChaosSmsActivate(self.dice, hang_s=2.0) as sa,
            ChaosSmmPanel(self.dice, hang_s=2.0) as panel,
        ):
            self.tg, self.sa, self.panel = tg, sa, panel
            self._stock_up()
            self.fleet = BotFleet(tg, self.cfg.workdir, self._env(), self.cfg.replicas)
            try:
                await self.fleet.start(first_ready=partial(catalogs_saved, self.db_url))
                self.up.set()
                await self._warm_up()
                self.dice.on = True
                tg.chaos(self.cfg.tg_429_rate, self.tg_rng)
                await asyncio.gather(self._killer(), self._play_all())
                self.dice.on = False
                tg.chaos(0)
                if self.cfg.replicas > 1:
                    await self.form_across_replicas()
                self.say_progress("ops done, faults off: reconciling")
                await self._settle()
                await self._resolve_lost_smm_orders()
                await self._settle()
                await self._audit_command()
            finally:
                await self._stop_bot()
            self.report.faults.update(self.dice.fired)
            self.report.faults["tg-429"] = tg.error_counts[429]
            self.report.faults["tg-403"] = tg.error_counts[403]
            await self._check()
        logged = read_logs(self.fleet.logs)
        self.report.handler_errors += logged.handler_errors
        self.report.errors_logged += logged.errors
        self.report.alerts = logged.alerts
        self.report.elapsed_s = time.monotonic() - started
        return self.report

    # --- set-up ---------------------------------------------------------------------------

    def _stock_up(self) -> None:
        self.sa.balance = Decimal(1_000_000)
        for entry in self.sa.prices.values():
            entry[1] = 1_000_000
        self.panel.balance = Decimal(1_000_000)
        self.panel.set_services(
            [
                {
                    "service": 1,
                    "name": "Followers",
                    "type": "Default",
                    "category": "Instagram",
                    "rate": "0.917",
                    "min": "10",
                    "max": "5000",
                    "refill": True,
                    "cancel": True,
                }
            ]
        )

    def _env(self) -> dict[str, str]:
        providers = [
            {
                "name": OTP_PROVIDER,
                "kind": "smsactivate",
                "base_url": self.sa.url,
                "api_key": self.sa.api_key,
                "currency": "USD",
                "rate": "1",
                "timeout_s": 1,
            },
            {
                "name": SMM_PROVIDER,
                "kind": "smmpanel",
                "base_url": self.panel.url,
                "api_key": self.panel.api_key,
                "currency": "USD",
                "rate": "1",
                "timeout_s": 1,
            },
        ]
        redis = {"REDIS_URL": self.cfg.redis_url} if self.cfg.redis_url else {}
        return bot_env(
            self.tg,
            self.cfg.workdir,
            self.db_url,
            **redis,
            PROVIDERS=json.dumps(providers),
            POLL_INTERVAL_S="0.5",
            MIN_CANCEL_DELAY_S="0",
            ACTIVATION_TIMEOUT_S=str(self.cfg.activation_timeout_s),
            RECONCILE_GRACE_S="1",
            THROTTLE_RATE_PER_S="0",
            OUTBOX_INTERVAL_S="0.2",
            CATALOG_REFRESH_S="15",
            MAX_ACTIVE_ACTIVATIONS="20",
            ADMIN_IDS=str(ADMIN_ID),
            NOTIFY_CHAT_ID=str(GROUP_ID),
        )

    async def _warm_up(self) -> None:
        """Both catalogs loaded, every user registered and given $5, before any fault."""
        loaded = await self.until(
            lambda: self.sa.requests["getPrices"] and self.panel.requests["services"], 60
        )
        if not loaded:
            raise RuntimeError("the bot never asked for its catalogs")
        for player in self.players:
            if await self.menu(player) is None:
                raise RuntimeError(f"user {player.id} got no menu")
            await self.topup(player, "5")

    # --- the bot's processes --------------------------------------------------------------

    async def _kill_and_restart(self) -> None:
        """SIGKILL (one replica of several: the others go on serving), then start it again.
        Every op waiting for the bot at that moment counts as interrupted (`until()`)."""
        single = self.cfg.replicas == 1
        if single:
            self.up.clear()
        self.generation += 1
        index = await self.fleet.kill(self.rng)
        self.report.kills += 1
        self.report.killed[f"#{index}"] += 1
        which = "" if single else f" (replica {index})"
        self.say_progress(f"kill {self.report.kills}{which} at op {self.ops_started}")
        await self.fleet.restart(index)
        self.up.set()

    async def _stop_bot(self) -> None:
        self.report.mismatches += await self.fleet.stop()
        handled = self.fleet.handled()
        self.report.handled.update({f"#{index}": count for index, count in handled.items()})
        if self.fleet.forwarder is not None:
            forwarder = self.fleet.forwarder
            self.report.forwarded.update({str(code): n for code, n in forwarder.statuses.items()})
            if skipped := sum(forwarder.skipped.values()):  # then tried on the next replica
                self.report.forwarded["no answer"] = skipped
            spread = [len({forwarder.taken_by.get(u) for u in form}) > 1 for form in self.forms]
            self.report.forms = (len(self.forms), sum(spread))
        if self.cfg.redis_url:
            await delete_redis_keys(self.cfg.redis_url, int(self.tg.token.split(":")[0]))

    async def _killer(self) -> None:
        """SIGKILL at spread-out moments; half of them right after a Buy / Order press, while
        the purchase is on its way upstream."""
        gap = self.cfg.ops // (self.cfg.kills + 1)
        restarted_at = 0
        for n in range(self.cfg.kills):
            # Not before the process killed last has been serving for half a gap: with
            # replicas the others go on while it restarts, and the marks may have passed.
            mark = max((n + 1) * gap, restarted_at + gap // 2)
            while self.ops_started < mark and not self.players_done:
                self.op_tick.clear()
                await self.op_tick.wait()
            if self.rng.random() < 0.5 and not self.players_done:
                self.buy_pressed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.buy_pressed.wait(), 10)
            await asyncio.sleep(self.rng.uniform(0, 0.4))
            await self._kill_and_restart()
            restarted_at = self.ops_started

    # --- after the storm ------------------------------------------------------------------

    async def _settle(self) -> None:
        """Faults off: the panel finishes what it has; wait until the bot has closed every
        activation (its own timeout cancels or finishes them), settled every SMM order it
        knows, and sent everything in its outbox."""
        await self.up.wait()
        db = Database(self.db_url)
        try:
            deadline = time.monotonic() + self.cfg.settle_timeout_s
            while True:
                for order in list(self.panel.orders.values()):
                    if order.status.lower() not in PANEL_FINAL:
                        self._panel_step(order, final=True)
                left = await _unsettled(db)
                if not any(left.values()):
                    return
                if time.monotonic() > deadline:
                    self.report.mismatches.append(f"never settled: {dict(left)}")
                    return
                await asyncio.sleep(0.5)
        finally:
            await db.dispose()

    async def _resolve_lost_smm_orders(self) -> None:
        """What an admin does with each `unknown` SMM order (panels have no order list): finds
        it on the panel by its link and /adopt's it, or /refund's it when the panel never got
        it. The bot then settles the adopted ones like any other."""
        db = Database(self.db_url)
        try:
            async with db.read() as session:
                rows = await session.execute(select(SmmOrder).where(SmmOrder.status == "unknown"))
                unknown = list(rows.scalars())
        finally:
            await db.dispose()
        on_panel = {order.link: order.order_id for order in self.panel.orders.values()}
        chat = self.tg.chats[ADMIN_ID]
        for order in unknown:
            ref = f"smm:{order.id}"
            if order.link in on_panel:
                self.resolved[order.id] = "adopt"
                command = f"/adopt {ref} {on_panel[order.link]}"
            else:
                self.resolved[order.id] = "refund"
                command = f"/refund {ref} never reached the panel"
            seen, _ = await self.say(self.admin, command)
            if not await self.until(lambda: any(ref in m.text for m in chat[seen:])):  # noqa: B023
                self.report.mismatches.append(f"{command}: no answer")

    async def _audit_command(self) -> None:
        reply = await self.say_and_wait(self.admin, "/audit", lambda m: "Audit:" in m.text)
        if reply is None or "every balance equals its ledger" not in reply.text:
            self.report.mismatches.append(f"/audit: {reply.text if reply else 'no answer'}")

    # --- the checks -----------------------------------------------------------------------

    async def _check(self) -> None:
        db = Database(self.db_url)
        try:
            async with db.read() as session:
                state = BookState(
                    users=list((await session.execute(select(User))).scalars()),
                    ledger=list((await session.execute(select(LedgerEntry))).scalars()),
                    activations=list((await session.execute(select(Activation))).scalars()),
                    orders=list((await session.execute(select(SmmOrder))).scalars()),
                    notifications=list((await session.execute(select(Notification))).scalars()),
                    outbox=list((await session.execute(select(OutboxMessage))).scalars()),
                )
        finally:
            await db.dispose()
        checker = Checker(state, self)
        checker.run()
        report = self.report
        report.mismatches += checker.mismatches
        report.activations = Counter(a.status for a in state.activations)
        report.smm_orders = Counter(o.status for o in state.orders)
        refunds = [row for row in state.ledger if row.reason == "refund"]
        report.refunds, report.refunded = len(refunds), sum(row.delta for row in refunds)
        report.codes = sum(len(a.codes) for a in self.sa.activations.values())
        report.codes_to_blocked = checker.codes_to_blocked
        report.lost_and_refunded_upstream = checker.lost_and_refunded_upstream
        report.resent, report.sends = checker.resent, checker.sends
        report.resolved = Counter(self.resolved.values())


async def _unsettled(db: Database) -> Counter[str]:
    async with db.read() as session:
        activations = await session.execute(
            select(Activation.status).where(Activation.status.in_(OTP_OPEN))
        )
        orders = await session.execute(
            select(SmmOrder.status).where(SmmOrder.status.in_(SMM_OPEN))
        )
        outbox = await session.execute(
            select(OutboxMessage.id).where(
                OutboxMessage.sent_at.is_(None), OutboxMessage.failed.is_(None)
            )
        )
        left = Counter(f"otp {status}" for status in activations.scalars())
        left.update(f"smm {status}" for status in orders.scalars())
        left["outbox"] = len(outbox.all())
    return left


async def run_chaos(config: ChaosConfig) -> ChaosReport:
    return await ChaosRun(config).run()
