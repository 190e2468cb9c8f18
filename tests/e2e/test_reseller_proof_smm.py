"""The proof that real clients of the SMM panel v2 and Toolvico protocols work: shop B serves
its reseller API, shop A buys from it with this project's own `smmpanel` adapter (its PROVIDERS
entry points at B's `/api/v2`) or its `toolvico` adapter (at B's `/api/v1`), and A's customer
orders in Telegram. An SMM order delivered partly upstream is refunded in part at both shops; a
number's code crosses both shops, and a cancelled number is refunded at both. Both ledgers
exact. Two real bots, two fake Bot APIs, fake upstreams behind B, two databases, 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_app, run
from services import pricing
from tests.conftest import RunningBot, _database, eventually, make_settings
from tests.e2e.test_reseller_api import free_port, sa_entry
from tests.e2e.test_reseller_api_smm import LINK, PRICE_777, offer_followers, panel_entry
from tests.fakes.smmpanel import FakeSmmPanel
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.telegram import FakeTelegram

ALICE = 1001  # shop A's customer, in Telegram
RESELLER = 5001  # shop A's owner, a customer of shop B (through the API)
FUNDS = 10_000_000
FAST = {
    "poll_interval_s": 0.2,
    "min_cancel_delay_s": 0,
    "outbox_interval_s": 0.1,
    "reconcile_grace_s": 0.5,
}
# SMM: B sells Followers at 0.917 x 1.2 = 1.1004 per 1000 (777 of them: $0.855011); A buys them
# at 1.1004 and sells at 1.1004 x 1.2 = 1.32048 per 1000 (777: ceil(1_026_012.96) = $1.026013).
B_SMM = PRICE_777
A_SMM = 1_026_013
# OTP: B sells Telegram/Russia at 0.1453 x 1.2 -> $0.18; A at 0.18 x 1.2 = 0.216 -> $0.22.
B_OTP = 180_000
A_OTP = 220_000


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


@pytest.fixture
async def panel() -> AsyncIterator[FakeSmmPanel]:
    async with FakeSmmPanel(hang_s=5) as fake:
        offer_followers(fake)
        yield fake


@pytest.fixture
def second_database_url(
    request: pytest.FixtureRequest, database_backend: str, tmp_path: Path
) -> Iterator[str]:
    """Shop B's own database, on the same backend as the test's."""
    folder = tmp_path / "shop-b"
    folder.mkdir()
    yield from _database(request, folder, migrated=True)


@pytest.fixture
async def shop_b(
    sa, panel, second_database_url, tmp_path
) -> AsyncIterator[tuple[RunningBot, int, str]]:
    """Shop B with both upstreams and its API on; its customer RESELLER funded, with a key."""
    port = free_port()
    async with FakeTelegram(token="654321:SHOP-B-TOKEN-abcdefghijkl") as tg_b:
        settings = make_settings(
            tg_b,
            tmp_path / "shop-b",
            database_url=second_database_url,
            providers=[sa_entry(sa), panel_entry(panel)],
            reseller_api_listen=f"127.0.0.1:{port}",
            reseller_api_rate_per_min=0,  # shop A's poller asks every 0.2 s here
            **FAST,
        )
        app = build_app(settings)
        calls_before = tg_b.get_updates_calls
        task = asyncio.create_task(run(app, handle_signals=False, polling_timeout=1))
        await tg_b.wait_for(lambda: task.done() or tg_b.get_updates_calls > calls_before, 15)
        bot = RunningBot(app, task, tg_b)
        try:
            await bot.wait_catalog()
            await eventually(lambda: app.smm_catalog.service_count() > 0)
            reseller = tg_b.user(RESELLER, "Reseller")
            await reseller.send("/start")
            await bot.fund(RESELLER, FUNDS)
            key = await app.api_keys.create(RESELLER)
            yield bot, port, key
            assert not app.errors
        finally:
            with contextlib.suppress(Exception):
                await bot.stop()


async def b_smm_rows(bot: RunningBot) -> list[Any]:
    from sqlalchemy import select

    from db.models import SmmOrder

    async with bot.db.read() as session:
        return list((await session.execute(select(SmmOrder).order_by(SmmOrder.id))).scalars())


def dollars(micro: int) -> str:
    from decimal import Decimal

    return f"${Decimal(micro) / 1_000_000}"


@pytest.mark.parametrize("kind", ["smmpanel", "toolvico"])
async def test_shop_a_sells_smm_orders_placed_at_shop_b(
    start_bot, shop_b, panel, tg, kind
) -> None:
    """Shop A's `smmpanel` adapter at B's /api/v2, or its `toolvico` adapter at B's /api/v1."""
    b, port, key = shop_b
    path = "/api/v2" if kind == "smmpanel" else "/api/v1"
    a = await start_bot(
        providers=[
            {
                "name": "shopb",
                "kind": kind,
                "base_url": f"http://127.0.0.1:{port}{path}",
                "api_key": key,
                "currency": "USD",
                "rate": "1",
                "timeout_s": 5,
                "rate_limit_per_min": 6000,  # Toolvico's 60/min would pace a test to 1/s
            }
        ],
        **FAST,
    )
    await eventually(lambda: a.app.smm_catalog.service_count() > 0)
    (category,) = a.app.smm_catalog.categories()
    (item,) = a.app.smm_catalog.services(category.key)
    assert (item.name, item.category, item.rate_per_1000) == ("Followers", "Instagram", 1_320_480)
    features = (True, True) if kind == "smmpanel" else (False, False)  # Toolvico has neither
    assert (item.min, item.max, item.refill, item.cancel) == (10, 5000, *features)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await a.fund(ALICE, FUNDS)

    # Alice orders 777 followers in Telegram at shop A; shop A places them at shop B, which
    # places them at its panel.
    await alice.press("📈 SMM services")
    await alice.press("Instagram · 1")
    await alice.press("Followers · $1.32048 / 1000")
    await alice.press("🛒 Order")
    assert "Send the link" in alice.last().text
    await alice.send(LINK)
    confirm = await alice.send("777")
    assert f"Price: {dollars(A_SMM)}" in confirm.text
    await alice.press(f"✅ Order for {dollars(A_SMM)}")
    await eventually(lambda: "⏳ Placing" not in alice.last().text)
    assert f"✅ Order #1 placed: Followers · {dollars(A_SMM)}" in alice.last().text
    (upstream_id,) = panel.orders
    assert (panel.orders[upstream_id].quantity, panel.orders[upstream_id].link) == (777, LINK)
    (b_order,) = await b_smm_rows(b)
    assert (b_order.quantity, b_order.price, b_order.quiet) == (777, B_SMM, True)

    # The panel delivers 654 of 777: B refunds shop A the undelivered share, A refunds Alice.
    panel.set_order(upstream_id, status="Partial", remains=123, start_count=3572)
    (notice,) = await eventually(
        lambda: [m for m in alice.messages if "#1 (Followers) was delivered partly" in m.text]
    )
    a_refund = pricing.partial_refund(A_SMM, 123, 777)
    b_refund = pricing.partial_refund(B_SMM, 123, 777)
    assert (a_refund, b_refund) == (162_419, 135_349)
    assert f"123 of 777 were not delivered. {dollars(a_refund)} was returned" in notice.text

    # Shop A's books: Alice paid for 654 followers.
    assert await a.balance(ALICE) == FUNDS - A_SMM + a_refund
    a_rows = [(e.delta, e.reason, e.idempotency_key) for e in await a.ledger(ALICE)]
    assert a_rows == [
        (FUNDS, "topup", f"test-fund:{ALICE}:{FUNDS}"),
        (-A_SMM, "purchase", "charge:smm:1"),
        (a_refund, "refund", "refund:smm:1"),
    ]
    # Shop B's books: shop A paid for 654 followers, through the API.
    assert await b.balance(RESELLER) == FUNDS - B_SMM + b_refund
    b_rows = [(e.delta, e.reason, e.idempotency_key) for e in await b.ledger(RESELLER)]
    assert b_rows == [
        (FUNDS, "topup", f"test-fund:{RESELLER}:{FUNDS}"),
        (-B_SMM, "purchase", f"charge:smm:{b_order.id}"),
        (b_refund, "refund", f"refund:smm:{b_order.id}"),
    ]
    (b_order,) = await b_smm_rows(b)
    assert (b_order.status, b_order.remains, b_order.refunded) == ("partial", 123, b_refund)
    # Shop B pushed nothing to its customer's chat: the order was placed through the API.
    assert not [m for m in b.tg.bot_messages(RESELLER) if "Followers" in m.text]
    await a.assert_ledger_invariant()
    await b.assert_ledger_invariant()


async def test_shop_a_sells_numbers_bought_from_shop_b_over_toolvico(
    start_bot, shop_b, sa, tg
) -> None:
    b, port, key = shop_b
    a = await start_bot(
        providers=[
            {
                "name": "shopb",
                "kind": "toolvico",
                "base_url": f"http://127.0.0.1:{port}/api/v1",
                "api_key": key,
                "currency": "USD",
                "rate": "1",
                "timeout_s": 5,
                "rate_limit_per_min": 6000,  # the real 60/min would pace a test to 1/s
            }
        ],
        **FAST,
    )
    await a.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await a.fund(ALICE, FUNDS)

    # A buy in Telegram at shop A: shop B buys upstream; the code crosses both shops.
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press(f"Telegram · {dollars(A_OTP)}")
    await alice.press(f"✅ Buy for {dollars(A_OTP)}")
    await eventually(lambda: "Buying your number" not in alice.last().text)
    (upstream,) = sa.activations.values()
    assert f"+{upstream.phone.lstrip('+')}" in alice.last().text
    sa.deliver_sms(upstream.id, "123456", "Telegram code 123456")
    pushed = await eventually(
        lambda: [m for m in alice.messages if "code for" in m.text and "123456" in m.text]
    )
    assert len(pushed) == 1

    # A second buy, cancelled by the customer: refunded at A, and A refunded at B.
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press(f"Telegram · {dollars(A_OTP)}")
    await alice.press(f"✅ Buy for {dollars(A_OTP)}")
    await eventually(lambda: "Buying your number" not in alice.last().text)
    card = alice.last()
    await alice.press("❌ Cancel", message=card)
    assert f"Cancelled. {dollars(A_OTP)} was returned to your balance." in alice.last().text
    assert [act.state for act in sa.activations.values()] == ["code", "cancelled"]

    # Shop A's books: its customer paid one number.
    assert await a.balance(ALICE) == FUNDS - A_OTP
    a_rows = [(e.delta, e.reason) for e in await a.ledger(ALICE)]
    assert a_rows == [
        (FUNDS, "topup"),
        (-A_OTP, "purchase"),
        (-A_OTP, "purchase"),
        (A_OTP, "refund"),
    ]
    assert [x.status for x in await a.activations(ALICE)] == ["received", "cancelled"]
    # Shop B's books: shop A paid one number, through the API.
    assert await b.balance(RESELLER) == FUNDS - B_OTP
    b_orders = await b.activations(RESELLER)
    assert [x.status for x in b_orders] == ["received", "cancelled"]
    assert [x.quiet for x in b_orders] == [True, True]
    b_rows = [(e.delta, e.reason, e.idempotency_key) for e in await b.ledger(RESELLER)]
    assert b_rows == [
        (FUNDS, "topup", f"test-fund:{RESELLER}:{FUNDS}"),
        (-B_OTP, "purchase", f"charge:otp:{b_orders[0].id}"),
        (-B_OTP, "purchase", f"charge:otp:{b_orders[1].id}"),
        (B_OTP, "refund", f"refund:otp:{b_orders[1].id}"),
    ]
    assert not [m for m in b.tg.bot_messages(RESELLER) if "code for" in m.text]
    await a.assert_ledger_invariant()
    await b.assert_ledger_invariant()
