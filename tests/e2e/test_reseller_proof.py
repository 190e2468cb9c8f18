"""The proof that real clients work: shop B serves its reseller API, shop A buys from it with
this project's own `smsactivate` adapter (its PROVIDERS entry points at B's
`/stubs/handler_api.php`), and A's customer buys in Telegram. Code, cancel and refund cross
both shops; both ledgers are exact. Two real bots, two fake Bot APIs, one fake upstream, two
databases, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.app import build_app, run
from tests.conftest import RunningBot, _database, eventually, make_settings
from tests.e2e.test_reseller_api import FAST, PATH, free_port, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.telegram import FakeTelegram

ALICE = 1001  # shop A's customer, in Telegram
RESELLER = 5001  # shop A's owner, a customer of shop B (through the API)
FUNDS = 10_000_000
B_PRICE = 180_000  # B sells Telegram/Russia at 0.1453 x 1.2 -> $0.18
A_PRICE = 220_000  # A buys it at $0.18 and sells it at 0.18 x 1.2 = 0.216 -> $0.22


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
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
async def shop_b(sa, second_database_url, tmp_path) -> AsyncIterator[tuple[RunningBot, int]]:
    port = free_port()
    async with FakeTelegram(token="654321:SHOP-B-TOKEN-abcdefghijkl") as tg_b:
        settings = make_settings(
            tg_b,
            tmp_path / "shop-b",
            database_url=second_database_url,
            providers=[sa_entry(sa)],
            reseller_api_listen=f"127.0.0.1:{port}",
            reseller_api_rate_per_min=0,  # shop A's poller reads the list every 0.2 s here
            **FAST,
        )
        app = build_app(settings)
        calls_before = tg_b.get_updates_calls
        task = asyncio.create_task(run(app, handle_signals=False, polling_timeout=1))
        await tg_b.wait_for(lambda: task.done() or tg_b.get_updates_calls > calls_before, 15)
        bot = RunningBot(app, task, tg_b)
        try:
            await bot.wait_catalog()
            reseller = tg_b.user(RESELLER, "Reseller")
            await reseller.send("/start")
            await bot.fund(RESELLER, FUNDS)
            yield bot, port
            assert not app.errors
        finally:
            with contextlib.suppress(Exception):
                await bot.stop()


async def test_shop_a_sells_numbers_bought_from_shop_b(start_bot, shop_b, sa, tg) -> None:
    b, port = shop_b
    key = await b.app.api_keys.create(RESELLER)
    a = await start_bot(
        providers=[
            {
                "name": "shopb",
                "kind": "smsactivate",
                "base_url": f"http://127.0.0.1:{port}{PATH}",
                "api_key": key,
                "currency": "USD",
                "rate": "1",
                "timeout_s": 5,
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
    await alice.press("Telegram · $0.22")
    await alice.press("✅ Buy for $0.22")
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
    await alice.press("Telegram · $0.22")
    await alice.press("✅ Buy for $0.22")
    await eventually(lambda: "Buying your number" not in alice.last().text)
    card = alice.last()
    await alice.press("❌ Cancel", message=card)
    assert "Cancelled. $0.22 was returned to your balance." in alice.last().text
    assert [act.state for act in sa.activations.values()] == ["code", "cancelled"]

    # Shop A's books: its customer paid one number.
    assert await a.balance(ALICE) == FUNDS - A_PRICE
    a_rows = [(e.delta, e.reason) for e in await a.ledger(ALICE)]
    assert a_rows == [
        (FUNDS, "topup"),
        (-A_PRICE, "purchase"),
        (-A_PRICE, "purchase"),
        (A_PRICE, "refund"),
    ]
    assert [x.status for x in await a.activations(ALICE)] == ["received", "cancelled"]
    # Shop B's books: shop A paid one number, through the API, with A's order ids as refs.
    assert await b.balance(RESELLER) == FUNDS - B_PRICE
    b_orders = await b.activations(RESELLER)
    assert [x.status for x in b_orders] == ["received", "cancelled"]
    assert [x.quiet for x in b_orders] == [True, True]
    key_id = (await b.app.api_keys.info(RESELLER)).id
    b_rows = [(e.delta, e.reason, e.idempotency_key) for e in await b.ledger(RESELLER)]
    assert b_rows == [
        (FUNDS, "topup", f"test-fund:{RESELLER}:{FUNDS}"),
        (-B_PRICE, "purchase", f"api:{key_id}:1"),
        (-B_PRICE, "purchase", f"api:{key_id}:2"),
        (B_PRICE, "refund", f"refund:otp:{b_orders[1].id}"),
    ]
    # Shop B pushed nothing to its customer's chat (codes are not pushed by default).
    assert not [m for m in b.tg.bot_messages(RESELLER) if "code for" in m.text]
    await a.assert_ledger_invariant()
    await b.assert_ledger_invariant()
