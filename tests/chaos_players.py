"""The chaos run's simulated users (tests/chaos.py): what each one says and presses, and the
upstreams' own events (an SMS arrives, a number expires, the panel works on an order), drawn at
random by weight. `ChaosPlayers` is a part of `ChaosRun`: it uses the run's fakes and state."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from tests.fakes.smmpanel import FINAL as PANEL_FINAL
from tests.fakes.telegram import CallbackAnswer, FakeTelegram, Msg

if TYPE_CHECKING:
    from tests.chaos import ChaosConfig, ChaosReport, ChaosSmmPanel, ChaosSmsActivate

T = TypeVar("T")

ADMIN_ID = 900_001
FIRST_USER = 5_000_001


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


@dataclass
class Player:
    id: int
    name: str
    block_at: int | None = None  # blocks the bot once this many ops have started
    blocked: bool = False
    activations: dict[int, Msg] = field(default_factory=dict)  # bot id -> its card
    smm_orders: dict[int, Msg] = field(default_factory=dict)
    links: int = 0
    last_update: int = 0  # the update_id of what this user sent or pressed last
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


class ChaosPlayers:
    """The players' side of ChaosRun (which sets all of this up): talking to the bot as a user
    would, and the operations. A kill makes every pending wait give up (`until()`)."""

    cfg: ChaosConfig
    report: ChaosReport
    rng: random.Random
    tg: FakeTelegram
    sa: ChaosSmsActivate
    panel: ChaosSmmPanel
    admin: Player
    players: list[Player]
    generation: int  # one more at every kill
    up: asyncio.Event  # some process of the bot is serving
    buy_pressed: asyncio.Event
    op_tick: asyncio.Event  # an op started, or the players are done
    ops_started: int
    players_done: bool
    topups: dict[str, tuple[int, int]]  # ledger key -> (user, micro)
    forms: list[list[int]]  # the update ids of each SMM order form that got to its price
    busy_phones: set[str]  # Finish / Another SMS presses on their way
    _query_ids: itertools.count[int]
    _codes: itertools.count[int]

    def say_progress(self, text: str) -> None:
        raise NotImplementedError

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
        player.last_update = await self.tg.push_update({"message": message})
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
        player.last_update = await self.tg.push_update({"callback_query": callback})
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
        form = [player.last_update]  # the form's steps: Order, link, quantity, confirm
        player.links += 1
        link = f"https://instagram.com/p/chaos-{player.id}-{player.links}"
        if await self.say_and_wait(player, link, lambda m: "Send the quantity" in m.text) is None:
            return "form lost"
        form.append(player.last_update)
        quantity = str(self.rng.randrange(10, 5001))
        confirm = await self.say_and_wait(player, quantity, lambda m: "Price:" in m.text)
        if confirm is None:
            return "form lost"
        form.append(player.last_update)
        self.forms.append(form)  # the form's state was found at every step so far
        order = button_data(confirm, prefix="sc:")
        if not order:
            return "refused: no money"
        before = confirm.text
        answer = await self.press(player, confirm, order[0])
        self.buy_pressed.set()
        if answer is None:
            return "no answer"
        form.append(player.last_update)
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

    async def form_across_replicas(self) -> None:
        """Replicas, after the storm: one more SMM order, alone on the line, so that the
        forwarder's turns put its steps (Order, link, quantity, confirm) on different
        processes: the form's state goes from one to the other through Redis."""
        player = next(p for p in self.players if not p.blocked)
        await self.topup(player, "10")
        self.report.outcomes[f"form across replicas: {await self.op_smm_order(player)}"] += 1

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
