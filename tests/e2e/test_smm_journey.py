"""A customer orders SMM services and never pays for what was not delivered. The real bot, the
fake Bot API and fake SMM panels of all three protocols (form, JSON, Toolvico), all over HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from db import repositories as repo
from db.models import SmmOrder, utcnow
from services import pricing
from services.smm import SmmDraft
from services.smm_catalog import SmmItem
from tests.conftest import ADMIN_ID, eventually
from tests.fakes.smmpanel import ERR_FUNDS, ERR_LINK_BUSY, FakeSmmPanel
from tests.fakes.toolvico import FakeToolvico

ALICE = 1001
FUNDS = 10_000_000  # $10.00
LINK = "https://instagram.com/p/abc123"
# 0.917 x 1.2 = 1.1004 per 1000 -> 1_100_400 micro; 777 of them: ceil(855_010.8) = 855_011.
RATE = 1_100_400
PRICE_777 = 855_011
FAST = {"poll_interval_s": 0.2, "outbox_interval_s": 0.1, "reconcile_grace_s": 0.5}
MANUAL_POLL = {**FAST, "poll_interval_s": 3600}  # one poll at start-up, then only by hand

FORM, JSON, TOOLVICO = "smmpanel", "smmpanel_json", "toolvico"


@dataclass
class Upstream:
    """One fake panel behind a protocol-neutral face."""

    kind: str
    fake: Any

    def entry(self, **extra: Any) -> dict[str, Any]:
        entry = {
            "name": "panel",
            "kind": self.kind,
            "base_url": self.fake.url,
            "api_key": self.fake.api_key,
            "currency": "USD",
            "rate": "1",
            "timeout_s": 0.5,
            **extra,
        }
        if self.kind == TOOLVICO:
            entry["rate_limit_per_min"] = 6000  # the real 60/min would pace a test to 1/s
        return entry

    def offer_followers(self, *, refill: bool = True, cancel: bool = True, **more: Any) -> None:
        """Instagram / Followers at 0.917 per 1000, 10-5000, flags as the panel says them."""
        if self.kind == TOOLVICO:
            self.fake.smm_services = [
                {
                    "service_id": "1",
                    "name": "Followers",
                    "category": "Instagram",
                    "rate_usd_per_1000": Decimal("0.917"),
                    "min": 10,
                    "max": 5000,
                }
            ]
            return
        form = self.kind == FORM
        self.fake.set_services(
            [
                {
                    "service": 1,
                    "name": "Followers",
                    "type": "Default",
                    "category": "Instagram",
                    "rate": "0.917" if form else Decimal("0.917"),
                    "min": "10" if form else 10,
                    "max": "5000" if form else 5000,
                    "refill": refill,
                    "cancel": cancel,
                    **more,
                }
            ]
        )

    @property
    def adds(self) -> int:
        if self.kind == TOOLVICO:
            return self.fake.calls["smm:place_order"]
        return self.fake.requests["add"]

    @property
    def orders(self) -> dict[str, Any]:
        return self.fake.smm_orders if self.kind == TOOLVICO else self.fake.orders

    def set_status(self, order_id: str, status: str, **values: int) -> None:
        if self.kind == TOOLVICO:
            self.fake.set_smm_order(order_id, status=status, **values)
        else:
            self.fake.set_order(order_id, status=status, **values)

    def refuse_add(self) -> None:
        if self.kind == FORM:
            self.fake.error_for("add", ERR_LINK_BUSY)
        elif self.kind == JSON:
            self.fake.error_for("add", ERR_FUNDS, status=400)
        else:
            self.fake.fail(402, action="place_order", api="smm")

    def hang_add(self) -> None:
        """The order is made upstream, the answer never arrives."""
        if self.kind == TOOLVICO:
            self.fake.add_fault("hang", api="smm", action="place_order", after=True)
        else:
            self.fake.inject("hang", action="add")


@pytest.fixture(params=[FORM, JSON, TOOLVICO])
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[Upstream]:
    async with _fake(request.param) as fake:
        yield Upstream(request.param, fake)


@pytest.fixture(params=[FORM, JSON])
async def panel(request: pytest.FixtureRequest) -> AsyncIterator[Upstream]:
    """The protocols with batch status and cancel."""
    async with _fake(request.param) as fake:
        yield Upstream(request.param, fake)


@pytest.fixture
async def form() -> AsyncIterator[Upstream]:
    async with _fake(FORM) as fake:
        yield Upstream(FORM, fake)


def _fake(kind: str) -> Any:
    if kind == TOOLVICO:
        return FakeToolvico(hang_s=5)
    return FakeSmmPanel(json_api=kind == JSON, hang_s=5)


async def open_shop(start_bot, tg, up: Upstream, funds: int = FUNDS, **settings: Any):
    bot = await start_bot(providers=[up.entry()], **{**FAST, **settings})
    await eventually(lambda: bot.app.smm_catalog.service_count() > 0)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, funds)
    return bot, alice


def followers(bot) -> SmmItem:
    return next(
        item
        for category in bot.app.smm_catalog.categories()
        for item in bot.app.smm_catalog.services(category.key)
        if item.name == "Followers"
    )


def dollars(micro: int) -> str:
    return f"${Decimal(micro) / 1_000_000}"


async def browse_to_followers(alice) -> None:
    """Menu -> Instagram -> Followers: the service card."""
    await alice.press("📈 SMM services")
    await alice.press("Instagram · 1")
    assert "Followers · $1.1004 / 1000" in alice.last().button_texts
    await alice.press("Followers · $1.1004 / 1000")
    card = alice.last().text
    assert "Price: $1.1004 / 1000" in card and "Quantity: from 10 to 5000" in card


async def fill_and_confirm(alice, quantity: str = "777", link: str = LINK) -> None:
    """In the form: link -> quantity -> confirm."""
    assert "Send the link" in alice.last().text
    reply = await alice.send(link)
    assert "Send the quantity: a whole number from 10 to 5000." in reply.text
    confirm = await alice.send(quantity)
    total = dollars(pricing.smm_total(RATE, int(quantity)))
    assert f"Price: {total}" in confirm.text
    await alice.press(f"✅ Order for {total}")
    await eventually(lambda: "⏳ Placing" not in alice.last().text)


async def quick_order(bot, alice, quantity: str = "777", item: SmmItem | None = None) -> None:
    """The form straight away (its Order button's callback), without browsing."""
    item = item or followers(bot)
    await alice.press_data(f"sn:o:{item.key}:0")
    await fill_and_confirm(alice, quantity)


async def place_direct(bot, count: int, quantity: int = 777, first: int = 0) -> None:
    """Orders through the service layer, as the Confirm button does."""
    smm, item = bot.app.smm, followers(bot)
    price = pricing.smm_total(RATE, quantity)
    created = []
    for n in range(first, first + count):
        draft = SmmDraft(service=item.key, link=f"{LINK}{n}", quantity=quantity)
        created.append(await smm.create(ALICE, draft, price, f"tok{n}"))
    for order in created:  # in order, so that upstream ids follow ours
        await smm.execute(order.id)


async def smm_rows(bot) -> list[SmmOrder]:
    async with bot.db.read() as session:
        return list((await session.execute(select(SmmOrder).order_by(SmmOrder.id))).scalars())


def orders_screen(alice):
    """The "My SMM orders" message (pushed notices may have arrived after it)."""
    return alice.find_button("🔄 Refresh")[0]


async def pushed(alice, needle: str, timeout: float = 10.0):
    return await eventually(lambda: [m for m in alice.messages if needle in m.text], timeout)


# --- the lifecycle on every protocol ------------------------------------------------------------

# (refill, cancel) each protocol offers; the fake panel claims both for the service.
FEATURES = {FORM: (True, True), JSON: (False, True), TOOLVICO: (False, False)}


async def test_completed_partial_and_cancelled_orders(start_bot, tg, upstream) -> None:
    upstream.offer_followers(refill=True, cancel=True)
    refill, cancel = FEATURES[upstream.kind]
    bot, alice = await open_shop(start_bot, tg, upstream)
    await browse_to_followers(alice)
    card = alice.last().text
    assert ("Refill: available" in card) is refill  # what the protocol lacks is not offered
    assert ("Cancelling an order: possible" in card) is cancel
    await alice.press("🛒 Order")
    await fill_and_confirm(alice)
    assert "✅ Order #1 placed: Followers · $0.855011" in alice.last().text
    assert "Status: pending" in alice.last().text
    await place_direct(bot, 2)
    assert upstream.adds == 3
    assert await bot.balance(ALICE) == FUNDS - 3 * PRICE_777
    await alice.press("📋 My SMM orders")
    assert ("🚫 Cancel order #1" in alice.last().button_texts) is cancel
    assert "♻️ Refill #1" not in alice.last().button_texts  # not before it is delivered

    first, second, third = upstream.orders
    upstream.set_status(first, "Completed", remains=0, start_count=3572)
    upstream.set_status(second, "Partial", remains=123, start_count=10)
    upstream.set_status(third, "Canceled")
    await pushed(alice, "#1 (Followers) is completed")
    partial_refund = PRICE_777 * 123 // 777  # floor(855_011 x 123 / 777)
    assert partial_refund == 135_349
    (notice,) = await pushed(alice, "#2 (Followers) was delivered partly")
    assert "123 of 777 were not delivered. $0.135349 was returned" in notice.text
    (notice,) = await pushed(alice, "#3 (Followers) was cancelled")
    assert "$0.855011 was returned to your balance" in notice.text

    assert await bot.balance(ALICE) == FUNDS - 2 * PRICE_777 + partial_refund
    rows = await smm_rows(bot)
    assert [(r.status, r.refunded) for r in rows] == [
        ("completed", 0),
        ("partial", partial_refund),
        ("cancelled", PRICE_777),
    ]
    refunds = [e for e in await bot.ledger(ALICE) if e.reason == "refund"]
    assert sorted((e.idempotency_key, e.delta) for e in refunds) == [
        ("refund:smm:2", partial_refund),
        ("refund:smm:3", PRICE_777),
    ]
    await alice.press("🔄 Refresh", message=orders_screen(alice))
    screen = orders_screen(alice)
    assert "#1 · Followers · 777 · $0.855011 · completed" in screen.text
    assert "start count 3572 · remains 0" in screen.text
    assert "#2 · Followers · 777 · $0.855011 · partly delivered" in screen.text
    assert "start count 10 · remains 123" in screen.text and "returned $0.135349" in screen.text
    assert "#3 · Followers · 777 · $0.855011 · cancelled" in screen.text
    assert ("♻️ Refill #1" in screen.button_texts) is refill
    assert not any(b.startswith("🚫 Cancel order #") for b in screen.button_texts)  # all ended
    if not refill:  # a forged press of the missing button is refused, nothing is sent
        answer = await alice.press_data("sa:r:1:0", message=screen)
        assert answer.text == "This service does not offer that."
    assert (upstream.fake.requests.get("refill", 0) if upstream.kind != TOOLVICO else 0) == 0
    assert await bot.balance(ALICE) == FUNDS - 2 * PRICE_777 + partial_refund  # still once
    await bot.assert_ledger_invariant()


async def test_a_refusal_refunds_at_once_and_a_lost_answer_is_never_resent(
    start_bot, tg, upstream, caplog
) -> None:
    upstream.offer_followers()
    bot, alice = await open_shop(start_bot, tg, upstream)
    upstream.refuse_add()
    await quick_order(bot, alice)
    text = alice.last().text
    assert "Order #1 (Followers) failed:" in text
    assert "$0.855011 was returned to your balance" in text
    if upstream.kind == FORM:
        assert "an order for this link is still running" in text
    assert upstream.adds == 1 and not upstream.orders
    assert await bot.balance(ALICE) == FUNDS
    keys = [e.idempotency_key for e in await bot.ledger(ALICE)]
    assert keys[-2:] == ["charge:smm:1", "refund:smm:1"]
    if upstream.kind != FORM:
        # "Not enough funds" also stops selling from the panel until a balance check finds
        # money (services/auto_switch.py); the admin's on brings it back at once.
        await eventually(lambda: "panel" in bot.app.smm_catalog.excluded)
        await bot.app.console.set_provider_enabled("panel", True)

    upstream.hang_add()  # the order is made upstream, its answer never arrives
    with caplog.at_level(logging.ERROR, logger="services.smm"):
        await quick_order(bot, alice)
        await eventually(lambda: "did not answer in time" in alice.last().text)
    assert "order #2" in alice.last().text
    assert any("an admin must resolve it" in r.getMessage() for r in caplog.records)
    await bot.app.smm.poll()
    await bot.app.smm.reconcile()
    assert upstream.adds == 2 and len(upstream.orders) == 1  # sent once, never again
    first, second = await smm_rows(bot)
    assert (first.status, first.refunded) == ("failed", PRICE_777)
    assert (second.status, second.provider_order_id, second.refunded) == ("unknown", None, 0)
    assert await bot.balance(ALICE) == FUNDS - PRICE_777  # an admin decides, not a guess
    await bot.assert_ledger_invariant()

    # The admin finds it on the panel and takes it over; the poller follows it from then on.
    (upstream_id,) = upstream.orders
    admin = tg.user(ADMIN_ID, "Owner")
    reply = await admin.send(f"/adopt smm:{second.id} {upstream_id}")
    assert f"now follows the provider's order {upstream_id}" in reply.text
    upstream.set_status(str(upstream_id), "Completed", remains=0)
    await pushed(alice, "#2 (Followers) is completed")
    assert await bot.balance(ALICE) == FUNDS - PRICE_777
    await bot.assert_ledger_invariant()


# --- input ------------------------------------------------------------------------------------


async def test_bad_input_and_too_little_money_never_reach_the_panel(start_bot, tg, form) -> None:
    form.offer_followers()
    bot, alice = await open_shop(start_bot, tg, form, funds=500_000)
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    for bad, error in [
        ("instagram.com/p/abc", "That is not a link"),
        ("ftp://instagram.com/p/abc", "That is not a link"),
        ("https://", "That is not a link"),
        ("https://instagram.com/p/a b", "That is not a link"),
        ("@someone", "That is not a link"),
        ("https://instagram.com/" + "a" * 2000, "The link is too long: at most 2000 characters"),
        ("   ", "The link is empty"),
    ]:
        reply = await alice.send(bad)
        assert error in reply.text, bad
        assert "Send the link" in reply.text  # asked again
    await alice.send(LINK)
    for bad, error in [
        ("abc", "must be a whole number from 10 to 5000"),
        ("12.5", "must be a whole number from 10 to 5000"),
        ("-20", "must be a whole number from 10 to 5000"),
        ("9", "The quantity must be from 10 to 5000"),
        ("5001", "The quantity must be from 10 to 5000"),
        ("99999999999999999999", "must be a whole number from 10 to 5000"),
    ]:
        reply = await alice.send(bad)
        assert error in reply.text, bad
        assert "Send the quantity" in reply.text
    confirm = await alice.send("777")  # valid, but $0.855011 is more than the $0.50 she has
    assert "Your balance: $0.50. You need $0.355011 more." in confirm.text
    assert not any(b.startswith("✅ Order for") for b in confirm.button_texts)
    await alice.press("✖️ Close form")
    assert "nothing was ordered or charged" in alice.last().text
    reply = await alice.send("500")  # the form is gone: not a quantity any more
    assert "Send the quantity" not in reply.text
    assert form.adds == 0 and await smm_rows(bot) == []
    assert await bot.balance(ALICE) == 500_000
    await bot.assert_ledger_invariant()


async def test_a_double_click_on_confirm_orders_once(start_bot, tg, form) -> None:
    form.offer_followers()
    bot, alice = await open_shop(start_bot, tg, form)
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    await alice.send(LINK)
    confirm = await alice.send("777")
    data = alice.find_button("✅ Order for", confirm)[1]["callback_data"]
    answers = await asyncio.gather(
        alice.press_data(data, message=confirm), alice.press_data(data, message=confirm)
    )
    assert any(a.text == "This order was already placed." for a in answers)
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    assert form.adds == 1 and len(await smm_rows(bot)) == 1
    assert await bot.balance(ALICE) == FUNDS - PRICE_777
    answer = await alice.press_data(data, message=confirm)  # much later: still once
    assert answer.text == "This order was already placed."
    assert form.adds == 1 and await bot.balance(ALICE) == FUNDS - PRICE_777
    await bot.assert_ledger_invariant()


async def test_custom_comments_on_the_seed_service(start_bot, tg, form) -> None:
    bot, alice = await open_shop(start_bot, tg, form)  # the seed's services as they are
    await alice.press("📈 SMM services")
    await alice.press("Second Category · 1")
    await alice.press("Comments · $9.60 / 1000")  # 8 x 1.2
    await alice.press("🛒 Order")
    await alice.send(LINK)
    reply = await alice.send("nice\ncool\nwow")
    assert "You sent 3 comments; this service takes from 10 to 1500" in reply.text
    comments = "\n".join(f"comment {n}" for n in range(1, 11))
    confirm = await alice.send(comments)
    assert "Comments: 10" in confirm.text and "Price: $0.096" in confirm.text
    await alice.press("✅ Order for $0.096")
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    (order,) = form.orders.values()
    assert order.params["comments"] == comments and order.quantity == 10
    assert "quantity" not in order.params
    assert await bot.balance(ALICE) == FUNDS - 96_000
    await bot.assert_ledger_invariant()


async def test_drip_feed_charges_quantity_times_runs(start_bot, tg, form) -> None:
    form.offer_followers(dripfeed=True)
    bot, alice = await open_shop(start_bot, tg, form)
    await alice.press_data(f"sn:i:{followers(bot).key}:0")
    assert "Drip-feed: available" in alice.last().text
    await alice.press("🛒 Order")
    await alice.send(LINK)
    reply = await alice.send("100")
    assert "➡️ No drip-feed, order at once" in reply.button_texts
    reply = await alice.send("1")
    assert "The number of runs must be from 2 to 100" in reply.text
    await alice.send("3")
    confirm = await alice.send("15")
    total = pricing.smm_total(RATE, 100, 3)  # ceil(1_100_400 x 300 / 1000)
    assert total == 330_120
    assert "Drip-feed: 3 runs, every 15 min" in confirm.text
    assert "Price: $0.33012" in confirm.text
    await alice.press("✅ Order for $0.33012")
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    (order,) = form.orders.values()
    params = order.params
    assert (params["quantity"], params["runs"], params["interval"]) == ("100", "3", "15")
    assert await bot.balance(ALICE) == FUNDS - total
    await bot.assert_ledger_invariant()


# --- polling many orders ----------------------------------------------------------------------


async def test_150_open_orders_take_two_status_calls(start_bot, tg, panel) -> None:
    panel.offer_followers()
    bot, _alice = await open_shop(start_bot, tg, panel, **MANUAL_POLL)
    await place_direct(bot, 150, quantity=10)
    assert panel.adds == 150
    before = len(panel.fake.status_ids)
    await bot.app.smm.poll()
    assert panel.fake.status_ids[before:] == [100, 50]
    ids = list(panel.orders)
    for order_id in ids[:10]:
        panel.set_status(order_id, "Completed", remains=0)
    for order_id in ids[10:15]:
        panel.set_status(order_id, "Partial", remains=3)
    for order_id in ids[15:20]:
        panel.set_status(order_id, "Canceled")
    await bot.app.smm.poll()
    assert panel.fake.status_ids[before:] == [100, 50, 100, 50]
    statuses = [row.status for row in await smm_rows(bot)]
    assert statuses == ["completed"] * 10 + ["partial"] * 5 + ["cancelled"] * 5 + ["pending"] * 130
    price = pricing.smm_total(RATE, 10)  # 11_004
    partial = price * 3 // 10  # floor(3_301.2)
    expected = FUNDS - 150 * price + 5 * partial + 5 * price
    assert await bot.balance(ALICE) == expected
    await bot.app.smm.poll()  # 130 still open: 2 calls again, no second refund
    assert panel.fake.status_ids[before:] == [100, 50, 100, 50, 100, 30]
    assert await bot.balance(ALICE) == expected
    await bot.assert_ledger_invariant()


# --- refill and cancel ------------------------------------------------------------------------


async def test_refill_and_its_status_are_shown(start_bot, tg, form) -> None:
    form.offer_followers(refill=True, cancel=False)
    bot, alice = await open_shop(start_bot, tg, form)
    await place_direct(bot, 1)
    (upstream_id,) = form.orders
    form.set_status(upstream_id, "Completed", remains=0, start_count=100)
    await pushed(alice, "is completed")
    await alice.send("/start")
    await alice.press("📈 SMM services")
    await alice.press("📋 My SMM orders")
    assert "🚫 Cancel order #1" not in alice.last().button_texts  # the service has no cancel
    answer = await alice.press("♻️ Refill #1")
    assert answer.text == "♻️ Refill requested. Its status is shown in your orders."
    assert "♻️ refill: pending" in orders_screen(alice).text
    assert "♻️ Refill #1" not in orders_screen(alice).button_texts  # one refill at a time
    (refill_id,) = form.fake.refills
    form.fake.set_refill(refill_id, "Completed")

    async def refill_done() -> bool:
        await alice.press("🔄 Refresh")
        return "♻️ refill: completed" in orders_screen(alice).text

    await eventually(refill_done)
    assert "♻️ Refill #1" in orders_screen(alice).button_texts  # may be asked again
    assert await bot.balance(ALICE) == FUNDS - PRICE_777  # a refill is free
    await bot.assert_ledger_invariant()


async def test_cancel_refunds_only_when_the_status_says_canceled(start_bot, tg, panel) -> None:
    panel.offer_followers(refill=False, cancel=True)
    bot, alice = await open_shop(start_bot, tg, panel, **MANUAL_POLL)
    await place_direct(bot, 1)
    await alice.press("📈 SMM services")
    await alice.press("📋 My SMM orders")
    answer = await alice.press("🚫 Cancel order #1")
    assert answer.text.startswith("🚫 Cancellation requested.")
    assert "cancellation requested" in alice.last().text
    assert "🚫 Cancel order #1" not in alice.last().button_texts
    assert panel.fake.requests["cancel"] == 1
    (row,) = await smm_rows(bot)
    assert row.status == "pending" and row.cancel_requested_at is not None
    assert await bot.balance(ALICE) == FUNDS - PRICE_777  # not from the cancel answer

    await bot.app.smm.poll()  # the panel now says Canceled
    (notice,) = await pushed(alice, "#1 (Followers) was cancelled")
    assert "$0.855011 was returned" in notice.text
    assert await bot.balance(ALICE) == FUNDS
    (row,) = await smm_rows(bot)
    assert (row.status, row.refunded) == ("cancelled", PRICE_777)
    await bot.assert_ledger_invariant()


# --- demo, bans, forged callbacks -------------------------------------------------------------


async def test_demo_orders_progress_and_say_demo(start_bot, tg) -> None:
    bot = await start_bot(**FAST, demo_smm_step_s=0.3)
    await eventually(lambda: bot.app.smm_catalog.service_count() > 0)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await alice.press("📈 SMM services")
    assert "DEMO" in alice.last().text
    await alice.press("Instagram")
    await alice.press("Likes · DEMO · $0.36 / 1000")  # 0.30 x 1.2
    assert "DEMO" in alice.last().text
    await alice.press("🛒 Order")
    await alice.send(LINK)
    confirm = await alice.send("100")
    assert "DEMO" in confirm.text and "Price: $0.036" in confirm.text
    await alice.press("✅ Order for $0.036")
    await pushed(alice, "#1 (Likes · DEMO) is completed")
    assert await bot.balance(ALICE) == FUNDS - 36_000
    await alice.press("📋 My SMM orders", message=alice.find_button("📋 My SMM orders")[0])
    screen = orders_screen(alice)
    assert "DEMO" in screen.text and "completed" in screen.text

    poll = next(
        item
        for category in bot.app.smm_catalog.categories()
        for item in bot.app.smm_catalog.services(category.key)
        if item.name == "Poll votes · DEMO"
    )
    await alice.press_data(f"sn:o:{poll.key}:0")
    await alice.send("https://t.me/channel/42")
    reply = await alice.send("10")
    assert "Send the number of the poll answer" in reply.text
    reply = await alice.send("0")
    assert "Send the answer's number: a whole number from 1 to 100." in reply.text
    confirm = await alice.send("2")
    assert "Answer: 2" in confirm.text and "Price: $0.006" in confirm.text  # 0.50 x 1.2 x 10
    await alice.press("✅ Order for $0.006")
    await eventually(lambda: "Order #2 placed" in alice.last().text)
    second = (await smm_rows(bot))[1]
    assert (second.type, second.quantity, second.extra) == ("poll", 10, "2")
    assert await bot.balance(ALICE) == FUNDS - 36_000 - 6_000
    await bot.assert_ledger_invariant()


async def test_a_banned_user_cannot_order_but_sees_their_orders(start_bot, tg) -> None:
    bot = await start_bot(**FAST)
    await eventually(lambda: bot.app.smm_catalog.service_count() > 0)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await alice.press("📈 SMM services")
    await alice.press("Instagram")
    await alice.press("Likes")
    order_data = alice.find_button("🛒 Order")[1]["callback_data"]
    async with bot.db.write() as session:
        await repo.set_banned(session, ALICE, True)  # as /ban does: this process sees it at once
    answer = await alice.press_data(order_data)
    assert answer.text.startswith("⛔")
    await alice.send("/start")
    answer = await alice.press("📈 SMM services")
    assert answer.text.startswith("⛔")
    assert "You have no SMM orders yet" in alice.last().text
    assert await smm_rows(bot) == [] and await bot.balance(ALICE) == FUNDS


async def test_forged_callbacks_change_nothing(start_bot, tg, form) -> None:
    form.offer_followers()
    bot, _alice = await open_shop(start_bot, tg, form)
    await place_direct(bot, 1)
    mallory = tg.user(2002, "Mallory")
    await mallory.send("/start")
    for data in ("sa:r:1:0", "sa:c:1:0"):
        answer = await mallory.press_data(data)
        assert answer.text == "This order was not found."
    for data in ("sn:i:deadbeef00:0", "sn:o:zz:0", "sn:s:nope:0", "sc:whatever", "sd", "sa:x:1:0"):
        answer = await mallory.press_data(data)
        assert answer.text
    await mallory.press_data("so:-3")
    assert "You have no SMM orders yet" in mallory.last().text
    assert form.adds == 1 and form.fake.requests["cancel"] == 0
    assert await bot.balance(ALICE) == FUNDS - PRICE_777
    assert await bot.balance(2002) == 0
    assert not bot.app.errors


async def test_orders_left_placing_by_a_crash_are_settled(start_bot, tg, form) -> None:
    """A crash between the debit and the `add`: never sent -> refunded with a message; sent
    (maybe) -> 'unknown' for an admin. Neither is ever sent (again)."""
    form.offer_followers()
    bot, alice = await open_shop(start_bot, tg, form, **MANUAL_POLL)
    smm, item = bot.app.smm, followers(bot)
    for n in range(2):
        draft = SmmDraft(service=item.key, link=f"{LINK}{n}", quantity=777)
        await smm.create(ALICE, draft, PRICE_777, f"crash{n}")
    await smm._mark_submitted(2)  # the second one got as far as sending
    async with bot.db.write() as session:  # unclaimed: only the grace period holds them
        await session.execute(update(SmmOrder).values(claimed_until=None))
    await smm.reconcile()
    assert [r.status for r in await smm_rows(bot)] == ["placing", "placing"]  # grace period
    async with bot.db.write() as session:  # claimed again, as by a process still sending
        await session.execute(update(SmmOrder).values(claimed_until=utcnow() + timedelta(1)))
    await asyncio.sleep(0.6)
    await smm.reconcile()  # past the grace period, but claimed: an `add` in flight (anywhere)
    assert [r.status for r in await smm_rows(bot)] == ["placing", "placing"]
    async with bot.db.write() as session:  # the process that claimed them died: time passes
        await session.execute(update(SmmOrder).values(claimed_until=utcnow()))
    await smm.reconcile()
    first, second = await smm_rows(bot)
    assert (first.status, first.fail_reason, first.refunded) == ("failed", "not_sent", PRICE_777)
    assert (second.status, second.refunded) == ("unknown", 0)
    (notice,) = await pushed(alice, "#1 (Followers) could not be placed")
    assert "$0.855011 was returned to your balance" in notice.text
    assert form.adds == 0
    assert await bot.balance(ALICE) == FUNDS - PRICE_777
    await bot.assert_ledger_invariant()


async def test_the_notification_group_hears_about_smm_orders(start_bot, tg, form) -> None:
    group = -100321
    form.offer_followers()
    bot, alice = await open_shop(start_bot, tg, form, notify_chat_id=group)
    await quick_order(bot, alice, "1000")
    (order,) = await smm_rows(bot)
    form.set_status(order.provider_order_id, "Partial", remains=250)
    text = await eventually(
        lambda: (
            "Refund" in "\n".join(m.text for m in tg.chats[group])
            and "\n".join(m.text for m in tg.chats[group])
        )
    )
    assert f"🛒 Alice ({ALICE}) bought 📈 Followers × 1,000: price $1.1004" in text
    assert (
        f"Refund $0.2751 to Alice ({ALICE}) for smm:{order.id}: "
        "delivered in part, the rest refunded"
    ) in text
