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
killed. Also: /audit is clean, the bot stops cleanly, and it logged no unexpected error.

Used by tests/e2e/test_chaos.py (a short seeded run) and bench/chaos.py (long runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from db.engine import Database
from db.models import Activation, LedgerEntry, Notification, OutboxMessage, SmmOrder, User
from services.money import format_money
from tests.e2e.test_process import BotProcess, bot_env, start_process
from tests.fakes.smmpanel import FINAL as PANEL_FINAL
from tests.fakes.smmpanel import FakeSmmPanel
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.telegram import CallbackAnswer, FakeTelegram, Msg

T = TypeVar("T")

ADMIN_ID = 900_001
GROUP_ID = -1_000_777  # the notification group
FIRST_USER = 5_000_001
OTP_PROVIDER, SMM_PROVIDER = "hero", "panel"

# Fault types a run must show: the upstreams' (reads and buys) and the Bot API's.
REQUIRED_FAULTS = ("500", "hang", "html", "empty", "drop-after-buy", "tg-429", "tg-403")
READ_FAULTS = ("500", "html", "empty", "hang", "drop", "429")
BUY_FAULTS = ("drop", "hang", "500", "html", "empty")
BUY_ACTIONS = frozenset({"getNumber", "getNumberV2", "add"})

OTP_OPEN = ("buying", "unknown", "waiting", "received")
OTP_REFUNDED = ("cancelled", "expired", "failed")
SMM_OPEN = ("placing", "pending", "in_progress")
FAKE_ACTIVE = ("waiting", "ready", "code", "retry")

# How often each operation is drawn (users' actions and the upstreams' events).
OPS: dict[str, int] = {
    "topup": 7,
    "otp_buy": 22,
    "code": 16,
    "otp_cancel": 8,
    "otp_another": 6,
    "otp_finish": 6,
    "otp_refresh": 3,
    "upstream_expire": 3,
    "smm_order": 13,
    "smm_progress": 12,
    "smm_cancel": 4,
    "browse": 3,
}
TOPUPS = ("0.50", "1", "2", "2.50", "5")
_DIGITS = r"(?<![\d.]){}(?!\d)"


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


@dataclass
class ChaosReport:
    config: ChaosConfig
    elapsed_s: float = 0.0
    ops: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    activations: Counter[str] = field(default_factory=Counter)
    smm_orders: Counter[str] = field(default_factory=Counter)
    codes: int = 0
    codes_to_blocked: int = 0
    lost_and_refunded_upstream: int = 0  # lost buys the upstream ended (and refunded) itself
    resolved: Counter[str] = field(default_factory=Counter)  # lost SMM orders: adopt / refund
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
            f"activations: {sum(self.activations.values())} ({_counts(self.activations)})",
            f"SMM orders: {sum(self.smm_orders.values())} ({_counts(self.smm_orders)})",
            f"codes produced upstream: {self.codes} ({self.codes_to_blocked} to blocked chats)",
            f"upstream activations lost by the bot: {self.lost_and_refunded_upstream}, each "
            "ended and refunded by the upstream itself (none still open or delivered)",
            f"lost SMM orders resolved by the admin: {_counts(self.resolved)}",
            f"refunds: {self.refunds} ({format_money(self.refunded, 'USD')})",
            f"handler errors: {len(self.handler_errors)}, other errors logged: "
            f"{len(self.errors_logged)}",
            f"mismatches: {len(self.mismatches)}",
        ]
        lines += [f"  {line}" for line in (self.handler_errors + self.errors_logged)[:10]]
        lines += [f"  MISMATCH {line}" for line in self.mismatches[:30]]
        if self.missing_faults:
            lines.append(f"fault types that never fired: {', '.join(self.missing_faults)}")
        return "\n".join(lines)


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


# --- players ------------------------------------------------------------------------------------


@dataclass
class Player:
    id: int
    name: str
    block_at: int | None = None  # blocks the bot once this many ops have started
    blocked: bool = False
    activations: dict[int, Msg] = field(default_factory=dict)  # bot id -> its card
    smm_orders: dict[int, Msg] = field(default_factory=dict)
    links: int = 0
    message_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def as_api(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": False, "first_name": self.name, "language_code": "en"}


def button_data(message: Msg, *, text: str | None = None, prefix: str | None = None) -> list[str]:
    found = []
    for row in message.buttons:
        for button in row:
            data = button.get("callback_data") or ""
            if (text is None or button["text"] == text) and data.startswith(prefix or ""):
                found.append(data)
    return found


def ids_in(message: Msg, prefix: str) -> list[int]:
    return [int(data.rsplit(":", 1)[1]) for data in button_data(message, prefix=prefix)]


# --- the run ------------------------------------------------------------------------------------


class ChaosRun:
    tg: FakeTelegram
    sa: ChaosSmsActivate
    panel: ChaosSmmPanel
    env: dict[str, str]

    def __init__(self, config: ChaosConfig) -> None:
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
        self.busy_phones: set[str] = set()  # Finish / Another SMS presses on their way
        self.resolved: dict[int, str] = {}  # lost SMM orders -> what the admin did
        self.process: BotProcess | None = None
        self.logs: list[Path] = []
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
        async with (
            FakeTelegram() as tg,
            ChaosSmsActivate(self.dice, hang_s=2.0) as sa,
            ChaosSmmPanel(self.dice, hang_s=2.0) as panel,
        ):
            self.tg, self.sa, self.panel = tg, sa, panel
            self._stock_up()
            self.env = self._env()
            try:
                await self._start_bot()
                await self._warm_up()
                self.dice.on = True
                tg.chaos(self.cfg.tg_429_rate, self.tg_rng)
                await asyncio.gather(self._killer(), self._play_all())
                self.dice.on = False
                tg.chaos(0)
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
        self._read_logs()
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
        return bot_env(
            self.tg,
            self.cfg.workdir,
            self.db_url,
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

    # --- the bot process ------------------------------------------------------------------

    async def _start_bot(self) -> None:
        before = self.tg.get_updates_calls
        process = await start_process(self.env, self.cfg.workdir)
        self.process = process
        self.logs.append(process.log_path)
        deadline = time.monotonic() + 90
        while self.tg.get_updates_calls <= before:
            if process.returncode is not None or time.monotonic() > deadline:
                tail = process.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the bot did not start (rc {process.returncode}):\n{tail}")
            await asyncio.sleep(0.05)
        self.up.set()

    async def _kill_and_restart(self) -> None:
        assert self.process is not None
        self.up.clear()
        self.generation += 1
        self.process.send_signal(signal.SIGKILL)
        await self.process.communicate()
        self.report.kills += 1
        self.say_progress(f"kill {self.report.kills} at op {self.ops_started}")
        await self._start_bot()

    async def _stop_bot(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.communicate(), 60)
        except TimeoutError:
            process.send_signal(signal.SIGKILL)
            await process.communicate()
        if process.returncode != 0:
            self.report.mismatches.append(f"the bot did not stop cleanly: rc {process.returncode}")

    async def _killer(self) -> None:
        """SIGKILL at spread-out moments; half of them right after a Buy / Order press, while
        the purchase is on its way upstream."""
        for n in range(self.cfg.kills):
            mark = (n + 1) * self.cfg.ops // (self.cfg.kills + 1)
            while self.ops_started < mark and not self.players_done:
                self.op_tick.clear()
                await self.op_tick.wait()
            if self.rng.random() < 0.5 and not self.players_done:
                self.buy_pressed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.buy_pressed.wait(), 10)
            await asyncio.sleep(self.rng.uniform(0, 0.4))
            await self._kill_and_restart()

    # --- talking to the bot ---------------------------------------------------------------

    async def until(self, predicate: Callable[[], T], timeout: float | None = None) -> T | None:
        """The predicate's first truthy value; None on timeout or when the bot was killed."""
        generation = self.generation
        deadline = time.monotonic() + (timeout or self.cfg.op_timeout_s)
        while True:
            value = predicate()
            if value:
                return value
            if self.generation != generation or time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)

    async def say(self, player: Player, text: str) -> tuple[int, int]:
        """Send a text; returns (messages in the chat before, the message id)."""
        seen = len(self.tg.chats[player.id])
        message_id = next(player.message_ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": player.as_api(),
            "chat": {"id": player.id, "type": "private", "first_name": player.name},
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        await self.tg.push_update({"message": message})
        return seen, message_id

    async def say_and_wait(
        self, player: Player, text: str, wanted: Callable[[Msg], bool]
    ) -> Msg | None:
        seen, _ = await self.say(player, text)
        chat = self.tg.chats[player.id]
        return await self.until(lambda: next((m for m in chat[seen:] if wanted(m)), None))

    async def press(self, player: Player, message: Msg, data: str) -> CallbackAnswer | None:
        query_id = f"chaos-{next(self._query_ids)}"
        callback = {
            "id": query_id,
            "from": player.as_api(),
            "message": message.as_api(),
            "chat_instance": f"ci{player.id}",
            "data": data,
        }
        await self.tg.push_update({"callback_query": callback})
        return await self.until(lambda: self.tg.callback_answers.get(query_id))

    async def press_first(self, player: Player, message: Msg, prefix: str) -> bool:
        """Press a random button whose data starts with `prefix`."""
        choices = button_data(message, prefix=prefix)
        if not choices:
            return False
        return await self.press(player, message, self.rng.choice(choices)) is not None

    async def menu(self, player: Player) -> Msg | None:
        return await self.say_and_wait(
            player, "/start", lambda m: bool(button_data(m, text="📱 Buy a number"))
        )

    async def topup(self, player: Player, amount: str) -> str:
        seen, message_id = await self.say(self.admin, f"/topup {player.id} {amount}")
        micro = int(Decimal(amount) * 1_000_000)
        self.topups[f"admin:{ADMIN_ID}:{message_id}"] = (player.id, micro)
        chat = self.tg.chats[ADMIN_ID]
        done = await self.until(
            lambda: any("Topped up" in m.text and str(player.id) in m.text for m in chat[seen:])
        )
        return "done" if done else "no answer"

    # --- the players ----------------------------------------------------------------------

    async def _play_all(self) -> None:
        try:
            await asyncio.gather(*(self._play(player) for player in self.players))
        finally:
            self.players_done = True
            self.op_tick.set()

    async def _play(self, player: Player) -> None:
        kinds, weights = list(OPS), list(OPS.values())
        while self.ops_started < self.cfg.ops:
            await self.up.wait()
            if player.block_at is not None and self.ops_started >= player.block_at:
                await self._block(player)
                return
            self.ops_started += 1
            self.op_tick.set()
            kind = self.rng.choices(kinds, weights)[0]
            generation = self.generation
            outcome = await getattr(self, f"op_{kind}")(player)
            if self.generation != generation:
                outcome = "interrupted by a kill"
            self.report.ops[kind] += 1
            self.report.outcomes[outcome] += 1
            done = sum(self.report.ops.values())
            if done % 500 == 0:
                self.say_progress(f"{done} ops done")

    async def _block(self, player: Player) -> None:
        """A last purchase, then the block, then a top-up: the bot has things to tell this
        user (the number's end, the top-up) and Telegram answers 403."""
        self.ops_started += 1
        self.report.outcomes[await self.op_otp_buy(player)] += 1
        self.report.ops["otp_buy"] += 1
        self.tg.block(player.id)
        player.blocked = True
        self.report.outcomes[await self.topup(player, "1")] += 1
        self.report.ops["topup"] += 1

    async def op_topup(self, player: Player) -> str:
        return await self.topup(player, self.rng.choice(TOPUPS))

    async def op_browse(self, player: Player) -> str:
        command = self.rng.choice(("/balance", "/history"))
        reply = await self.say_and_wait(player, command, lambda m: True)
        return "done" if reply else "no answer"

    async def op_otp_buy(self, player: Player) -> str:
        screen = await self.menu(player)
        if screen is None:
            return "no menu"
        buy = button_data(screen, text="📱 Buy a number")[0]
        if await self.press(player, screen, buy) is None:
            return "no answer"
        if not await self.press_first(player, screen, "on:s:"):  # a country
            return "no countries"
        if not await self.press_first(player, screen, "on:q:"):  # a service
            return "no services"
        confirm = button_data(screen, prefix="ob:")
        if not confirm:
            return "refused: " + screen.text.split("\n")[0][:40]
        before = screen.text
        answer = await self.press(player, screen, confirm[0])
        self.buy_pressed.set()
        if answer is None:
            return "no answer"
        if "Buying" not in (answer.text or ""):
            return "refused: " + (answer.text or "")[:40]
        card = await self.until(
            lambda: screen.text != before and "Buying your number" not in screen.text
        )
        if not card:
            return "no card"
        for activation_id in ids_in(screen, "oa:")[:1]:
            player.activations[activation_id] = screen
        return "bought" if ids_in(screen, "oa:") else "failed"

    async def _card_action(self, player: Player, action: str) -> str:
        if not player.activations:
            return "nothing to do"
        activation_id = self.rng.choice(list(player.activations)[-5:])  # recent ones, mostly
        card = player.activations[activation_id]
        phone = re.search(r"\d{7,}", card.text)
        busy = phone.group() if action in ("finish", "again") and phone else ""
        self.busy_phones.add(busy)
        try:
            answer = await self.press(player, card, f"oa:{action}:{activation_id}")
        finally:
            self.busy_phones.discard(busy)
        return "answered" if answer is not None else "no answer"

    async def op_otp_cancel(self, player: Player) -> str:
        return await self._card_action(player, "cancel")

    async def op_otp_another(self, player: Player) -> str:
        return await self._card_action(player, "again")

    async def op_otp_finish(self, player: Player) -> str:
        return await self._card_action(player, "finish")

    async def op_otp_refresh(self, player: Player) -> str:
        return await self._card_action(player, "refresh")

    async def op_code(self, player: Player) -> str:
        """The upstream receives an SMS for a number that is waiting for one. Not in the very
        instant the number is being finished (by its user or its deadline) or asked for another
        SMS: an SMS landing between the bot's last look and that request is a race no shop can
        win."""
        young = time.monotonic() - self.cfg.activation_timeout_s + 1.5
        waiting = [
            a
            for a in self.sa.active()
            if a.state in ("waiting", "ready", "retry")
            and a.created > young
            and a.phone not in self.busy_phones
        ]
        if not waiting:
            return "nothing to do"
        activation = self.rng.choice(waiting)
        code = str(next(self._codes))
        self.sa.deliver_sms(activation.id, code, f"Your verification code is {code}")
        return "code sent"

    async def op_upstream_expire(self, player: Player) -> str:
        """The upstream ends a number that got no SMS on its own (and refunds the shop)."""
        idle = [a for a in self.sa.active() if not a.codes]
        if not idle:
            return "nothing to do"
        self.sa.expire(self.rng.choice(idle).id)
        return "expired upstream"

    async def op_smm_order(self, player: Player) -> str:
        screen = await self.menu(player)
        if screen is None:
            return "no menu"
        smm = button_data(screen, text="📈 SMM services")[0]
        if await self.press(player, screen, smm) is None:
            return "no answer"
        for prefix in ("sn:s:", "sn:i:", "sn:o:"):  # category, service, Order
            if not await self.press_first(player, screen, prefix):
                return "no " + prefix
        player.links += 1
        link = f"https://instagram.com/p/chaos-{player.id}-{player.links}"
        if await self.say_and_wait(player, link, lambda m: "Send the quantity" in m.text) is None:
            return "form lost"
        quantity = str(self.rng.randrange(10, 5001))
        confirm = await self.say_and_wait(player, quantity, lambda m: "Price:" in m.text)
        if confirm is None:
            return "form lost"
        order = button_data(confirm, prefix="sc:")
        if not order:
            return "refused: no money"
        before = confirm.text
        answer = await self.press(player, confirm, order[0])
        self.buy_pressed.set()
        if answer is None:
            return "no answer"
        if "Placing" not in (answer.text or ""):
            return "refused: " + (answer.text or "")[:40]
        placed = await self.until(
            lambda: confirm.text != before and "Placing your order" not in confirm.text
        )
        found = re.search(r"#(\d+)", confirm.text) if placed else None
        if found is None:
            return "no answer"
        player.smm_orders[int(found.group(1))] = confirm
        return "placed" if "placed" in confirm.text else "not placed"

    async def op_smm_progress(self, player: Player) -> str:
        """The panel works on an order: progress, completion, partial delivery or cancel."""
        live = [o for o in self.panel.orders.values() if o.status.lower() not in PANEL_FINAL]
        if not live:
            return "nothing to do"
        order = self.rng.choice(live)
        self._panel_step(order, final=self.rng.random() < 0.75)
        return "panel moved"

    def _panel_step(self, order: Any, *, final: bool) -> None:
        if not final:
            remains = self.rng.randrange(0, order.quantity + 1)
            start = self.rng.randrange(0, 5000)
            self.panel.set_order(
                order.order_id, status="In progress", remains=remains, start_count=start
            )
            return
        roll = self.rng.random()
        if roll < 0.5:
            self.panel.set_order(order.order_id, status="Completed", remains=0)
        elif roll < 0.8:
            remains = self.rng.randrange(1, order.quantity)
            self.panel.set_order(order.order_id, status="Partial", remains=remains)
        else:
            self.panel.set_order(order.order_id, status="Canceled")

    async def op_smm_cancel(self, player: Player) -> str:
        if not player.smm_orders:
            return "nothing to do"
        order_id = self.rng.choice(list(player.smm_orders)[-5:])
        answer = await self.press(player, player.smm_orders[order_id], f"sa:c:{order_id}:0")
        return "answered" if answer is not None else "no answer"

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

    def _read_logs(self) -> None:
        """The catch-all handler's firings, and every other error the bot logged (a lost SMM
        order's alert to the admins excepted: that one is expected)."""
        for path in self.logs:
            for line in path.read_text(errors="replace").splitlines():
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    self.report.errors_logged.append(line[:200])  # printed around the logging
                    continue
                exc = (record.get("exc") or "").strip()
                last = exc.splitlines()[-1][:200] if exc else ""
                if record.get("msg") == "unhandled error in a handler":
                    self.report.handler_errors.append(last)
                elif record.get("level") in ("ERROR", "CRITICAL") and not str(
                    record.get("msg")
                ).startswith("smm order outcome unknown"):
                    self.report.errors_logged.append(f"{record.get('msg')} {last}"[:200])

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


@dataclass
class BookState:
    users: list[User]
    ledger: list[LedgerEntry]
    activations: list[Activation]
    orders: list[SmmOrder]
    notifications: list[Notification]
    outbox: list[OutboxMessage]


class Checker:
    """The end-of-run checks; every failure is one line in `mismatches`."""

    def __init__(self, state: BookState, chaos: ChaosRun) -> None:
        self.state = state
        self.chaos = chaos
        self.mismatches: list[str] = []
        self.codes_to_blocked = 0
        self.lost_and_refunded_upstream = 0
        self.owners: dict[str, Activation] = {}
        self.by_ref: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
        for row in state.ledger:
            self.by_ref[(row.reason, row.ref or "")].append(row)

    def fail(self, text: str) -> None:
        self.mismatches.append(text)

    def run(self) -> None:
        self.owners = self._owners()
        self.check_balances()
        self.check_ledger_rows()
        self.check_charges()
        self.check_activations()
        self.check_smm_orders()
        self.check_codes()
        self.check_upstream_orders()

    # (a)
    def check_balances(self) -> None:
        sums: Counter[int] = Counter()
        for row in self.state.ledger:
            sums[row.user_id] += row.delta
        for user in self.state.users:
            if user.balance != sums[user.id] or user.balance < 0:
                self.fail(f"user {user.id}: balance {user.balance}, ledger {sums[user.id]}")

    def check_ledger_rows(self) -> None:
        """Every row is explained: a top-up the admin sent, a purchase, or a refund."""
        topups = self.chaos.topups
        for row in self.state.ledger:
            if row.reason == "topup":
                if topups.get(row.idempotency_key) != (row.user_id, row.delta):
                    self.fail(f"unexplained top-up {row.idempotency_key} {row.delta}")
            elif row.reason not in ("purchase", "refund"):
                self.fail(f"unexplained ledger row {row.reason} {row.idempotency_key}")

    # (c)
    def check_charges(self) -> None:
        orders = [("otp", a.id, a.user_id, a.price) for a in self.state.activations]
        orders += [("smm", o.id, o.user_id, o.price) for o in self.state.orders]
        charged = set()
        for kind, order_id, user_id, price in orders:
            ref = f"{kind}:{order_id}"
            charged.add(ref)
            rows = self.by_ref[("purchase", ref)]
            if [(r.user_id, r.delta, r.idempotency_key) for r in rows] != [
                (user_id, -price, f"charge:{ref}")
            ]:
                self.fail(f"{ref} charged {[r.delta for r in rows]} instead of once {-price}")
        for reason, ref in self.by_ref:
            if reason == "purchase" and ref not in charged:
                self.fail(f"a charge for an order that does not exist: {ref}")

    # (b), OTP
    def check_activations(self) -> None:
        for activation in self.state.activations:
            ref = f"otp:{activation.id}"
            rows = self.by_ref[("refund", ref)]
            back = sum(row.delta for row in rows)
            if activation.status in OTP_OPEN:
                self.fail(f"{ref} still {activation.status}")
            elif activation.code:
                if activation.status != "finished" or rows:
                    self.fail(f"{ref} got a code but is {activation.status}, refunded {back}")
            elif activation.status not in OTP_REFUNDED or [r.delta for r in rows] != [
                activation.price
            ]:
                self.fail(
                    f"{ref} delivered nothing, is {activation.status}, refunds "
                    f"{[r.delta for r in rows]} of {activation.price}"
                )
            elif rows[0].idempotency_key != f"refund:{ref}":
                self.fail(f"{ref} refunded under {rows[0].idempotency_key}")

    # (b), SMM
    def check_smm_orders(self) -> None:
        panel = self.chaos.panel.orders
        links = Counter(order.link for order in panel.values())
        for link, count in links.items():
            if count > 1:
                self.fail(f"the panel got {count} orders for {link}: an add was sent twice")
        for order in self.state.orders:
            ref = f"smm:{order.id}"
            back = sum(row.delta for row in self.by_ref[("refund", ref)])
            if back != order.refunded:
                self.fail(f"{ref}: refunded column {order.refunded}, ledger {back}")
            expected = self._smm_due(order, panel.get(order.provider_order_id or ""), links)
            if expected is None:
                continue
            if back != expected:
                self.fail(f"{ref} ({order.status}): refunded {back}, due {expected}")

    def _smm_due(self, order: SmmOrder, upstream: Any, links: Counter[str]) -> int | None:
        ref, status = f"smm:{order.id}", order.status
        if status in SMM_OPEN:
            self.fail(f"{ref} still {status}")
            return None
        if status == "unknown":
            self.fail(f"{ref} still unknown after the admin's decision")
            return None
        if status == "failed" or order.fail_reason == "admin":
            if links[order.link]:
                self.fail(f"{ref} refunded as never placed, but the panel has {order.link}")
            return order.price
        if upstream is None:
            self.fail(f"{ref} is {status} but the panel has no order {order.provider_order_id}")
            return None
        word = upstream.status.lower()
        if status == "completed" and word == "completed":
            return 0
        if status == "partial" and word == "partial":
            return order.price * upstream.remains // order.quantity
        if status == "cancelled" and word in ("canceled", "cancelled", "refunded"):
            return order.price
        self.fail(f"{ref} is {status}, the panel says {upstream.status}")
        return None

    # (d)
    def check_codes(self) -> None:
        sent: dict[int, list[str]] = defaultdict(list)
        for call in self.chaos.tg.calls:
            if call.method == "sendMessage" and call.error is None:
                sent[int(call.params["chat_id"])].append(str(call.params.get("text", "")))
        owners = self.owners
        blocked = self.chaos.tg.blocked
        for upstream in self.chaos.sa.activations.values():
            activation = owners.get(upstream.id)
            if activation is None or not upstream.codes:
                continue
            user = activation.user_id
            if activation.code != upstream.codes[-1]:
                self.fail(
                    f"otp:{activation.id}: last code {activation.code}, upstream sent "
                    f"{upstream.codes[-1]}"
                )
            if user in blocked:
                self.codes_to_blocked += len(upstream.codes)
            for code in upstream.codes:
                pattern = re.compile(_DIGITS.format(code))
                if user not in blocked and not any(pattern.search(t) for t in sent[user]):
                    self.fail(f"otp:{activation.id}: code {code} never reached chat {user}")
                for chat, texts in sent.items():
                    leaked = chat not in (user, GROUP_ID) and any(
                        "code for" in t and pattern.search(t) for t in texts
                    )
                    if leaked:
                        self.fail(f"otp:{activation.id}: code {code} reached chat {chat}")

    def _owners(self) -> dict[str, Activation]:
        owners: dict[str, Activation] = {}
        for activation in self.state.activations:
            order_id = activation.provider_order_id
            if activation.provider != OTP_PROVIDER or order_id is None:
                continue
            if order_id in owners:
                self.fail(
                    f"upstream order {order_id} belongs to otp:{owners[order_id].id} and "
                    f"otp:{activation.id}"
                )
            owners[order_id] = activation
        return owners

    # (e)
    def check_upstream_orders(self) -> None:
        owners = self.owners
        for upstream in self.chaos.sa.activations.values():
            if upstream.id not in owners:
                if upstream.state in ("expired", "cancelled") and not upstream.codes:
                    # Lost, then ended by the upstream itself with the money back to the shop
                    # (the bot refunded its user when the order list no longer had it).
                    self.lost_and_refunded_upstream += 1
                    continue
                self.fail(
                    f"upstream activation {upstream.id} (orderId {upstream.order_id}, "
                    f"{upstream.state}, codes {upstream.codes}) is unknown to the bot"
                )
            elif upstream.state in FAKE_ACTIVE:
                self.fail(f"upstream activation {upstream.id} was left {upstream.state}")
        known = {o.provider_order_id for o in self.state.orders if o.provider_order_id}
        for upstream in self.chaos.panel.orders.values():
            if upstream.order_id not in known:  # not even after the admin's /adopt
                self.fail(f"panel order {upstream.order_id} ({upstream.link}) unknown to the bot")
        flagged = " ".join(n.text for n in self.state.notifications if n.kind == "unknown-order")
        for order_id in self.chaos.resolved:
            if not re.search(rf"smm:{order_id}(?!\d)", flagged):
                self.fail(f"smm:{order_id} was lost but never flagged to the admins")
        for order in self.state.orders:
            if order.fail_reason == "admin" and self.chaos.resolved.get(order.id) != "refund":
                self.fail(f"smm:{order.id} refunded by an admin nobody asked")


async def run_chaos(config: ChaosConfig) -> ChaosReport:
    return await ChaosRun(config).run()
