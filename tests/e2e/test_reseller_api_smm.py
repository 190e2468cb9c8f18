"""The reseller API's SMM panel v2 (`/api/v2`) and Toolvico (`/api/v1/otp`, `/api/v1/smm`)
protocols, as a customer's script uses them: plain httpx calls against the real bot with
RESELLER_API_LISTEN, a fake SMM panel and a fake handler_api upstream, all on 127.0.0.1. Every
action, every bad input; wallets and ledgers exact, nothing charged for a refusal."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest

from bot import reseller_api
from services import pricing
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_reseller_api import FAST, TG_RU, free_port, sa_entry
from tests.fakes.smmpanel import FakeSmmPanel
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001
BOB = 1002
FUNDS = 10_000_000  # $10.00
LINK = "https://instagram.com/p/abc123"
RATE = 1_100_400  # 0.917 x 1.2 per 1000
PRICE_777 = 855_011  # ceil(1_100_400 x 777 / 1000)
V2 = "/api/v2"


@pytest.fixture
async def sa() -> Any:
    async with FakeSmsActivate() as fake:
        yield fake


@pytest.fixture
async def panel() -> Any:
    async with FakeSmmPanel(hang_s=5) as fake:
        offer_followers(fake)
        yield fake


def offer_followers(fake: FakeSmmPanel) -> None:
    """Instagram / Followers at 0.917 per 1000, 10-5000, refill and cancel."""
    fake.set_services(
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


def panel_entry(fake: FakeSmmPanel) -> dict[str, Any]:
    return {
        "name": "panel",
        "kind": "smmpanel",
        "base_url": fake.url,
        "api_key": fake.api_key,
        "currency": "USD",
        "rate": "1",
        "timeout_s": 2,
    }


async def start_shop(start_bot, panel, sa=None, **overrides):
    port = free_port()
    providers = [panel_entry(panel)] + ([sa_entry(sa)] if sa is not None else [])
    values = {**FAST, "reseller_api_listen": f"127.0.0.1:{port}", **overrides}
    bot = await start_bot(providers=providers, **values)
    await eventually(lambda: bot.app.smm_catalog.service_count() > 0)
    if sa is not None:
        await bot.wait_catalog()
    return bot, port


class V2Api:
    """An SMM panel client's script: form POSTs to /api/v2."""

    def __init__(self, port: int, key: str) -> None:
        self.url = f"http://127.0.0.1:{port}{V2}"
        self.key = key

    async def call(self, action: str | None, key: str | None = None, **params: Any):
        form = {"key": self.key if key is None else key, **params}
        if action is not None:
            form["action"] = action
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(self.url, data=form)

    async def json(self, action: str | None, **params: Any) -> Any:
        return (await self.call(action, **params)).json()


class ToolvicoApi:
    """A Toolvico client's script: X-API-Key, GET reads, POST JSON purchases."""

    def __init__(self, port: int, key: str) -> None:
        self.root = f"http://127.0.0.1:{port}/api/v1"
        self.key = key

    async def get(self, api: str, action: str, key: str | None = None, **params: Any):
        headers = {"X-API-Key": self.key if key is None else key}
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(
                f"{self.root}/{api}", params={"action": action, **params}, headers=headers
            )

    async def post(self, api: str, action: str, body: Any = None, content: bytes | None = None):
        headers = {"X-API-Key": self.key, "Content-Type": "application/json"}
        data = content if content is not None else json.dumps(body or {}).encode()
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(
                f"{self.root}/{api}", params={"action": action}, headers=headers, content=data
            )


def followers_id(bot) -> int:
    (category,) = bot.app.smm_catalog.categories()
    (item,) = bot.app.smm_catalog.services(category.key)
    return int(item.key, 16)


async def smm_rows(bot) -> list:
    from sqlalchemy import select

    from db.models import SmmOrder

    async with bot.db.read() as session:
        return list((await session.execute(select(SmmOrder).order_by(SmmOrder.id))).scalars())


def status_of(api: V2Api, order_id: int, word: str):
    async def check():
        answer = await api.json("status", order=str(order_id))
        return answer if answer.get("status") == word else None

    return check


# --- SMM panel v2 ---------------------------------------------------------------------------


async def test_v2_every_action_through_the_shop(start_bot, panel, tg) -> None:
    bot, port = await start_shop(start_bot, panel)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    key = await bot.app.api_keys.create(ALICE)
    api = V2Api(port, key)
    sid = followers_id(bot)

    balance = await api.call("balance")
    assert balance.text == '{"balance": "10.00", "currency": "USD"}'
    assert balance.headers["content-type"].startswith("application/json")
    assert await api.json("services") == [
        {
            "service": sid,
            "name": "Followers",
            "type": "Default",
            "category": "Instagram",
            "rate": "1.1004",
            "min": "10",
            "max": "5000",
            "refill": True,
            "cancel": True,
            "dripfeed": False,
        }
    ]

    # add -> status -> the panel delivers partly -> refunded the undelivered share, once.
    added = await api.call("add", service=str(sid), link=LINK, quantity="777")
    assert added.text == '{"order": 1}'
    (upstream_id,) = panel.orders
    assert panel.orders[upstream_id].quantity == 777
    assert await api.json("status", order="1") == {
        "charge": "0.855011",
        "start_count": "0",
        "status": "Pending",
        "remains": "777",
        "currency": "USD",
    }
    assert await api.json("balance") == {"balance": "9.144989", "currency": "USD"}
    panel.set_order(upstream_id, status="Partial", remains=123, start_count=10)
    partial = await eventually(status_of(api, 1, "Partial"))
    assert partial == {
        "charge": "0.855011",
        "start_count": "10",
        "status": "Partial",
        "remains": "123",
        "currency": "USD",
    }
    refund = pricing.partial_refund(PRICE_777, 123, 777)
    assert refund == 135_349
    assert await bot.balance(ALICE) == FUNDS - PRICE_777 + refund

    # Multi-status: ours, a stranger's/none, junk.
    multi = await api.json("status", orders="1, 999,abc")
    assert multi == {
        "1": partial,
        "999": {"error": "Incorrect order ID"},
        "abc": {"error": "Incorrect order ID"},
    }

    # Refill: the refill id is the order's; its status follows the panel's.
    assert (await api.call("refill", order="1")).text == '{"refill": "1"}'
    assert await api.json("refill_status", refill="1") == {"status": "Pending"}
    assert await api.json("refill", order="1") == {
        "error": "Refill is already in progress for this order"
    }
    (refill_id,) = panel.refills
    panel.set_refill(refill_id, "Completed")

    async def refill_done():
        answer = await api.json("refill_status", refill="1")
        return answer if answer == {"status": "Completed"} else None

    await eventually(refill_done)
    assert await api.json("refill_status", refills="1,77") == [
        {"refill": 1, "status": "Completed"},
        {"refill": 77, "status": {"error": "Incorrect refill ID"}},
    ]
    assert await api.json("refill", orders="1,77") == [
        {"order": 1, "refill": 1},
        {"order": 77, "refill": {"error": "Incorrect order ID"}},
    ]

    # Cancel: accepted upstream; the refund comes from the status (Canceled), in full.
    second = (await api.json("add", service=str(sid), link=f"{LINK}2", quantity="1000"))["order"]
    price_1000 = pricing.smm_total(RATE, 1000)
    assert await api.json("cancel", orders=f"{second},999") == [
        {"order": second, "cancel": 1},
        {"order": 999, "cancel": {"error": "Incorrect order ID"}},
    ]
    await eventually(status_of(api, second, "Canceled"))
    assert await api.json("cancel", orders=str(second)) == [
        {"order": second, "cancel": {"error": "Order already completed and cannot be canceled"}}
    ]

    # The client's own reference: the same `ref` again is the same order, charged once.
    first_ref = await api.json("add", service=str(sid), link=f"{LINK}3", quantity="100", ref="r-1")
    again = await api.json("add", service=str(sid), link=f"{LINK}3", quantity="100", ref="r-1")
    assert first_ref == again == {"order": 3}
    assert panel.requests["add"] == 3

    price_100 = pricing.smm_total(RATE, 100)
    expected = FUNDS - PRICE_777 + refund - price_100
    assert await bot.balance(ALICE) == expected
    key_id = (await bot.app.api_keys.info(ALICE)).id
    ledger = [(e.delta, e.reason, e.idempotency_key) for e in await bot.ledger(ALICE)]
    assert ledger == [
        (FUNDS, "topup", f"test-fund:{ALICE}:{FUNDS}"),
        (-PRICE_777, "purchase", "charge:smm:1"),
        (refund, "refund", "refund:smm:1"),
        (-price_1000, "purchase", "charge:smm:2"),
        (price_1000, "refund", "refund:smm:2"),
        (-price_100, "purchase", f"api:{key_id}:r-1"),
    ]
    assert [(r.status, r.quiet) for r in await smm_rows(bot)] == [
        ("partial", True),
        ("cancelled", True),
        ("pending", True),
    ]
    await bot.assert_ledger_invariant()

    # The orders are the customer's own, in the bot; quiet: nothing was pushed to the chat.
    await alice.send("/start")
    await alice.press("📈 SMM services")
    await alice.press("📋 My SMM orders")
    screen = alice.last().text
    assert "#1 · Followers · 777" in screen and "#3 · Followers · 100" in screen
    pushed = ("was delivered partly", "was cancelled", "is completed")
    assert not [m for m in alice.messages if any(word in m.text for word in pushed)]

    # The 🔑 API screen shows the three base URLs.
    await alice.send("/start")
    await alice.press("🔑 API")
    screen = alice.last().text
    for path in ("/stubs/handler_api.php", "/api/v1", "/api/v2"):
        assert f"http://127.0.0.1:{port}{path}" in screen, path


async def test_v2_bad_input_is_refused_and_charges_nothing(start_bot, panel, tg, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bot, port = await start_shop(start_bot, panel, reseller_api_rate_per_min=40)
    alice, bob = tg.user(ALICE, "Alice", username="alice"), tg.user(BOB, "Bob")
    await alice.send("/start")
    await bob.send("/start")
    await bot.fund(ALICE, FUNDS)
    keys = bot.app.api_keys
    api, bobs = V2Api(port, await keys.create(ALICE)), V2Api(port, await keys.create(BOB))
    sid = str(followers_id(bot))
    bad_key = {"error": "Invalid API key"}
    bad_request = {"error": "Incorrect request"}

    assert await api.json("balance", key="not-a-key") == bad_key
    assert await api.json("balance", key="") == bad_key
    assert await api.json("balance", key="x" * 5000) == bad_key
    assert await api.json(None) == bad_request
    assert await api.json("hackTheShop") == bad_request
    for service in ("", "abc", "99999999999999999999", "-1", "1"):
        answer = await api.json("add", service=service, link=LINK, quantity="100")
        assert answer == {"error": "Incorrect service ID"}, service
    for fields, error in [
        ({"quantity": "100"}, "Bad link"),
        ({"link": "not a link", "quantity": "100"}, "Bad link"),
        ({"link": "ftp://x.com/a", "quantity": "100"}, "Bad link"),
        ({"link": LINK}, "Incorrect request"),
        ({"link": LINK, "quantity": "1e3"}, "Incorrect request"),
        ({"link": LINK, "quantity": "-5"}, "Incorrect request"),
        ({"link": LINK, "quantity": "9"}, "Quantity less than minimal 10"),
        ({"link": LINK, "quantity": "5001"}, "Quantity more than maximum 5000"),
        ({"link": LINK, "quantity": "99999999999999999999"}, "Incorrect request"),
        ({"link": LINK, "quantity": "100", "runs": "x"}, "Incorrect request"),
        ({"link": LINK, "quantity": "100", "ref": "bad ref"}, "Incorrect request"),
    ]:
        assert await api.json("add", service=sid, **fields) == {"error": error}, fields
    # Bob has no money: refused, nothing sent upstream.
    no_money = await bobs.json("add", service=sid, link=LINK, quantity="100")
    assert no_money == {"error": "Not enough funds on balance"}
    assert panel.requests["add"] == 0 and await smm_rows(bot) == []

    # Alice's order is no order of Bob's; neither is a huge, negative or junk id.
    mine = (await api.json("add", service=sid, link=LINK, quantity="100"))["order"]
    for order_id in (str(mine), "99999999999999999999", "-1", "1e3", ""):
        assert await bobs.json("status", order=order_id) == {"error": "Incorrect order ID"}
        assert await bobs.json("refill", order=order_id) == {"error": "Incorrect order ID"}
        assert await bobs.json("refill_status", refill=order_id) == {
            "error": "Incorrect refill ID"
        }
    assert await bobs.json("cancel", orders=str(mine)) == [
        {"order": mine, "cancel": {"error": "Incorrect order ID"}}
    ]
    assert await bobs.json("status", orders=str(mine)) == {
        str(mine): {"error": "Incorrect order ID"}
    }
    assert await api.json("status", orders=",".join(str(n) for n in range(1, 102))) == bad_request
    assert await api.json("cancel") == bad_request
    assert await api.json("refill", order=str(mine)) == {
        "error": "Refill is not available for this order yet"
    }

    # A body over 64 KB: 413, never read, nothing bought.
    big = await api.call("add", service=sid, link=LINK, quantity="100", pad="x" * 70_000)
    assert big.status_code == 413 and big.json() == bad_request

    # A ban stops the key at once.
    admin = tg.user(ADMIN_ID, "Admin")
    await admin.send("/ban 1002")
    assert await bobs.json("balance") == bad_key

    # Over RESELLER_API_RATE_PER_MIN for one action: 429, the other actions still answer.
    answers = [await api.call("services") for _ in range(41)]
    assert [a.status_code for a in answers[:40]] == [200] * 40
    assert answers[40].status_code == 429
    assert answers[40].json() == {"error": "Too many requests"}
    assert int(answers[40].headers["Retry-After"]) >= 1
    assert (await api.call("balance")).status_code == 200

    price_100 = pricing.smm_total(RATE, 100)
    assert await bot.balance(ALICE) == FUNDS - price_100
    assert await bot.balance(BOB) == 0
    assert panel.requests["add"] == 1
    assert bot.app.errors == []
    await bot.assert_ledger_invariant()
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    for key in (api.key, bobs.key):
        assert not [r for r in ours if key in repr(r.__dict__)]


async def test_v2_markup_and_notices_for_a_key_that_pushes(start_bot, panel, tg) -> None:
    """RESELLER_API_MARKUP_PERCENT on top of the shop's rate; with codes pushed to the chat, the
    order's notices reach it too (not quiet)."""
    bot, port = await start_shop(start_bot, panel, reseller_api_markup_percent="10")
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    keys = bot.app.api_keys
    api = V2Api(port, await keys.create(ALICE))
    await keys.set_push_codes(ALICE, True)
    rate = 1_210_440  # 1_100_400 x 1.10
    (service,) = await api.json("services")
    assert service["rate"] == "1.21044"
    price = pricing.smm_total(rate, 777)
    assert price == 940_512
    order = (await api.json("add", service=str(service["service"]), link=LINK, quantity="777"))[
        "order"
    ]
    assert (await api.json("status", order=str(order)))["charge"] == "0.940512"
    (row,) = await smm_rows(bot)
    assert (row.price, row.rate_per_1000, row.quiet) == (price, rate, False)
    (upstream_id,) = panel.orders
    panel.set_order(upstream_id, status="Completed", remains=0, start_count=5)
    await eventually(
        lambda: [m for m in alice.messages if "#1 (Followers) is completed" in m.text]
    )
    assert await bot.balance(ALICE) == FUNDS - price
    await bot.assert_ledger_invariant()


async def test_v2_an_upstream_refusal_is_refunded_at_once(start_bot, panel, tg) -> None:
    bot, port = await start_shop(start_bot, panel)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    api = V2Api(port, await bot.app.api_keys.create(ALICE))
    panel.error_for(
        "add", "You have active order with this link. Please wait until order being completed."
    )
    answer = await api.json("add", service=str(followers_id(bot)), link=LINK, quantity="777")
    assert answer == {
        "error": "You have active order with this link. Please wait until order being completed."
    }
    assert await api.json("status", order="1") == {
        "charge": "0.855011",
        "start_count": "0",
        "status": "Canceled",
        "remains": "777",
        "currency": "USD",
    }
    assert await bot.balance(ALICE) == FUNDS
    keys = [e.idempotency_key for e in await bot.ledger(ALICE)]
    assert keys[-2:] == ["charge:smm:1", "refund:smm:1"]
    await bot.assert_ledger_invariant()


async def test_v2_a_lost_upstream_answer_is_never_a_second_order(start_bot, panel, tg) -> None:
    """The panel makes the order but its answer is lost: the API hands out our order id (the
    price is held, an admin resolves it); the same `ref` again is that order, not a new one."""
    bot, port = await start_shop(start_bot, panel)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    api = V2Api(port, await bot.app.api_keys.create(ALICE))
    sid = str(followers_id(bot))
    panel.inject("hang", action="add")
    fields = {"service": sid, "link": LINK, "quantity": "777", "ref": "lost-1"}
    assert await api.json("add", **fields) == {"order": 1}
    assert await api.json("add", **fields) == {"order": 1}
    assert (await api.json("status", order="1"))["status"] == "Pending"
    assert panel.requests["add"] == 1
    (row,) = await smm_rows(bot)
    assert (row.status, row.provider_order_id) == ("unknown", None)
    assert await bot.balance(ALICE) == FUNDS - PRICE_777
    await bot.assert_ledger_invariant()


@pytest.mark.parametrize(
    ("path", "content_type", "answer"),
    [
        (V2, "application/x-www-form-urlencoded", b'{"error": "Incorrect request"}'),
        (
            "/api/v1/otp?action=buy_number",
            "application/json",
            b'{"success": false, "error": "Request body not received in time"}',
        ),
    ],
)
async def test_a_slow_body_is_cut_off(
    start_bot, panel, tg, monkeypatch, path, content_type, answer
) -> None:
    monkeypatch.setattr(reseller_api, "BODY_TIMEOUT_S", 0.3)
    _, port = await start_shop(start_bot, panel)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: k\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: 100\r\n\r\n"
        "key=".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408")
    assert head.endswith(answer)
    assert panel.requests["add"] == 0


# --- Toolvico -------------------------------------------------------------------------------


async def test_toolvico_otp_and_smm_through_the_shop(start_bot, panel, sa, tg) -> None:
    bot, port = await start_shop(start_bot, panel, sa)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    key = await bot.app.api_keys.create(ALICE)
    api = ToolvicoApi(port, key)

    balance = await api.get("otp", "balance")
    assert balance.status_code == 200
    assert balance.text == (
        '{"success": true, "data": {"wallet_balance": "10.000000", "currency": "USD"}}'
    )
    assert (await api.get("smm", "balance")).json()["data"]["wallet_balance"] == "10.000000"
    countries = (await api.get("otp", "countries", type="1")).json()["data"]["countries"]
    assert {"id": "0", "name": "Russia"} in countries
    services = await api.get("otp", "services", country_id="0", type="1")
    assert '{"service_id": "telegram", "name": "telegram", "your_price_usd": 0.180000}' in (
        services.text
    )

    # Buy, wait, code.
    bought = await api.post(
        "otp", "buy_number", {"service_id": "telegram", "country_id": "0", "type": 1}
    )
    data = bought.json()["data"]
    (upstream,) = sa.activations.values()
    phone = f"+{upstream.phone.lstrip('+')}"
    assert data == {"order_id": data["order_id"], "phone_number": phone, "status": "waiting"}
    first = data["order_id"]
    status = await api.get("otp", "get_status", order_id=first)
    assert status.text == '{"success": true, "data": {"status": "waiting"}}'
    sa.deliver_sms(upstream.id, "123456", "Your code 123456")

    async def received():
        answer = (await api.get("otp", "get_status", order_id=first)).json()["data"]
        return answer if answer["status"] == "received" else None

    assert await eventually(received) == {"status": "received", "code": "123456"}
    refused = await api.post("otp", "cancel", {"order_id": int(first)})
    assert refused.status_code == 400
    assert refused.json() == {
        "success": False,
        "error": "Order already received a code and cannot be cancelled",
    }

    # A second number, cancelled: refunded once.
    second = (
        await api.post("otp", "buy_number", {"service_id": "telegram", "country_id": "0"})
    ).json()["data"]["order_id"]
    cancelled = await api.post("otp", "cancel", {"order_id": int(second)})
    assert cancelled.text == '{"success": true, "data": {"refunded": true, "amount": "0.180000"}}'
    again = await api.post("otp", "cancel", {"order_id": int(second)})
    assert (again.status_code, again.json()["error"]) == (400, "Order is already cancelled")
    status = await api.get("otp", "get_status", order_id=second)
    assert status.json()["data"] == {"status": "cancelled"}

    # SMM: services (Default only), place_order, order_status.
    sid = str(followers_id(bot))
    smm_services = await api.get("smm", "services")
    assert smm_services.text == (
        '{"success": true, "data": {"services": [{"service_id": "' + sid + '", "name": '
        '"Followers", "category": "Instagram", "rate_usd_per_1000": 1.1004, "min": 10, '
        '"max": 5000}]}}'
    )
    placed = await api.post(
        "smm", "place_order", {"service_id": sid, "link": LINK, "quantity": 777}
    )
    order_id = placed.json()["data"]["order_id"]
    assert placed.text == (
        '{"success": true, "data": {"order_id": "' + order_id + '", "charged": 0.855011, '
        '"status": "Pending"}}'
    )
    (upstream_id,) = panel.orders
    panel.set_order(upstream_id, status="Partial", remains=123, start_count=3572)

    async def partial():
        answer = (await api.get("smm", "order_status", order_id=order_id)).json()["data"]
        return answer if answer["status"] == "Partial" else None

    assert await eventually(partial) == {"status": "Partial", "remains": 123, "start_count": 3572}

    refund = pricing.partial_refund(PRICE_777, 123, 777)
    assert await bot.balance(ALICE) == FUNDS - TG_RU - PRICE_777 + refund
    ledger = [(e.delta, e.idempotency_key) for e in await bot.ledger(ALICE)]
    assert ledger[1:] == [
        (-TG_RU, f"charge:otp:{first}"),
        (-TG_RU, f"charge:otp:{second}"),
        (TG_RU, f"refund:otp:{second}"),
        (-PRICE_777, f"charge:smm:{order_id}"),
        (refund, f"refund:smm:{order_id}"),
    ]
    await bot.assert_ledger_invariant()


async def test_toolvico_bad_input_is_refused_and_charges_nothing(
    start_bot, panel, sa, tg, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    bot, port = await start_shop(
        start_bot, panel, sa, min_cancel_delay_s=3600, reseller_api_rate_per_min=40
    )
    alice, bob = tg.user(ALICE, "Alice"), tg.user(BOB, "Bob")
    await alice.send("/start")
    await bob.send("/start")
    await bot.fund(ALICE, FUNDS)
    keys = bot.app.api_keys
    api, bobs = (
        ToolvicoApi(port, await keys.create(ALICE)),
        ToolvicoApi(port, await keys.create(BOB)),
    )
    sid = str(followers_id(bot))

    def error(response: httpx.Response) -> tuple[int, str]:
        body = response.json()
        assert body["success"] is False and set(body) == {"success", "error"}
        return response.status_code, body["error"]

    unauthorized = (401, "Invalid or missing API key")
    assert error(await api.get("otp", "balance", key="")) == unauthorized
    assert error(await api.get("otp", "balance", key="wrong")) == unauthorized
    assert error(await api.get("smm", "balance", key="x" * 5000)) == unauthorized
    assert error(await api.get("otp", "hack")) == (400, "Unknown action")
    assert error(await api.get("smm", "buy_number")) == (400, "Unknown action")
    assert error(await api.get("otp", "buy_number", service_id="telegram", country_id="0")) == (
        405,
        "Use POST for buy_number",
    )
    assert error(await api.get("otp", "services")) == (400, "country_id is required")
    assert error(await api.get("otp", "services", country_id="x")) == (404, "Country not found")
    assert error(await api.get("otp", "countries", type="9")) == (400, "Invalid type")
    buy = {"service_id": "telegram", "country_id": "0"}
    assert error(await api.post("otp", "buy_number", content=b"{not json")) == (
        400,
        "Invalid JSON body",
    )
    assert error(await api.post("otp", "buy_number", content=b"[1, 2]")) == (
        400,
        "Invalid JSON body",
    )
    assert error(await api.post("otp", "buy_number", {"country_id": "0"})) == (
        400,
        "service_id is required",
    )
    assert error(await api.post("otp", "buy_number", {**buy, "service_id": "nope"})) == (
        404,
        "Service not found",
    )
    assert error(await api.post("otp", "buy_number", {**buy, "country_id": "999999999"})) == (
        404,
        "Country not found",
    )
    assert error(await api.post("otp", "buy_number", {**buy, "ref": "bad ref"})) == (
        400,
        "Invalid ref",
    )
    assert error(await bobs.post("otp", "buy_number", buy)) == (402, "Insufficient wallet balance")
    assert error(
        await api.post("smm", "place_order", {"service_id": "1", "link": LINK, "quantity": 100})
    ) == (404, "Service not found")
    for body, expected in [
        ({"service_id": sid, "quantity": 100}, (400, "link is required")),
        ({"service_id": sid, "link": "nope", "quantity": 100}, (400, "link is not a valid URL")),
        ({"service_id": sid, "link": LINK}, (400, "quantity is required")),
        (
            {"service_id": sid, "link": LINK, "quantity": 1.5},
            (400, "quantity must be a whole number"),
        ),
        (
            {"service_id": sid, "link": LINK, "quantity": 9},
            (400, "Quantity must be between 10 and 5000"),
        ),
        (
            {"service_id": sid, "link": LINK, "quantity": 5001},
            (400, "Quantity must be between 10 and 5000"),
        ),
    ]:
        assert error(await api.post("smm", "place_order", body)) == expected, body
    assert error(
        await bobs.post("smm", "place_order", {"service_id": sid, "link": LINK, "quantity": 100})
    ) == (402, "Insufficient wallet balance")
    assert not sa.activations and panel.requests["add"] == 0

    # Alice's orders are no orders of Bob's; neither are huge or junk ids.
    mine = (await api.post("otp", "buy_number", buy)).json()["data"]["order_id"]
    assert error(await api.post("otp", "cancel", {"order_id": int(mine)}))[0] == 400  # too early
    assert "Please wait" in error(await api.post("otp", "cancel", {"order_id": int(mine)}))[1]
    smm_mine = (
        await api.post("smm", "place_order", {"service_id": sid, "link": LINK, "quantity": 100})
    ).json()["data"]["order_id"]
    for order_id in (mine, "99999999999999999999", "-1", "abc"):
        assert error(await bobs.get("otp", "get_status", order_id=order_id)) == (
            404,
            "Order not found",
        )
        assert error(await bobs.post("otp", "cancel", {"order_id": order_id})) == (
            404,
            "Order not found",
        )
    for order_id in (smm_mine, "99999999999999999999"):
        assert error(await bobs.get("smm", "order_status", order_id=order_id)) == (
            404,
            "Order not found",
        )
    assert error(await bobs.get("otp", "get_status")) == (400, "order_id is required")

    # A body over 64 KB: 413, never read.
    big = await api.post(
        "otp", "buy_number", content=json.dumps({**buy, "pad": "x" * 70_000}).encode()
    )
    assert error(big) == (413, "Request body too large")

    # Over RESELLER_API_RATE_PER_MIN for one endpoint: 429 with Retry-After.
    answers = [await api.get("otp", "balance") for _ in range(41)]
    assert [a.status_code for a in answers[:40]] == [200] * 40
    assert error(answers[40]) == (429, "Rate limit exceeded")
    assert int(answers[40].headers["Retry-After"]) >= 1
    assert (await api.get("smm", "balance")).status_code == 200

    price_100 = pricing.smm_total(RATE, 100)
    assert await bot.balance(ALICE) == FUNDS - TG_RU - price_100
    assert await bot.balance(BOB) == 0
    assert len(sa.activations) == 1 and panel.requests["add"] == 1
    assert bot.app.errors == []
    await bot.assert_ledger_invariant()
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    for key in (api.key, bobs.key):
        assert not [r for r in ours if key in repr(r.__dict__)]
