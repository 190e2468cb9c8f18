"""The reseller API (SMS-Activate-compatible `/stubs/handler_api.php`), as a customer's script
uses it: a key made in the bot, then plain HTTP. The real bot with RESELLER_API_LISTEN, a fake
Bot API and a fake handler_api upstream, all on 127.0.0.1; wallets and ledgers exact."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from bot import reseller_api
from bot.reseller_api import ResellerApiServer
from services.api.protocol import Reply
from tests.conftest import ADMIN_ID, eventually
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.telegram import FakeTelegram

ALICE = 1001
BOB = 1002
FUNDS = 10_000_000  # $10.00
TG_RU = 180_000  # 0.1453 x 1.2 = 0.17436 -> $0.18
PATH = "/stubs/handler_api.php"
FAST = {
    "poll_interval_s": 0.2,
    "min_cancel_delay_s": 0,
    "outbox_interval_s": 0.1,
    "reconcile_grace_s": 0.5,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


def sa_entry(fake: FakeSmsActivate) -> dict:
    return {
        "name": "hero",
        "kind": "smsactivate",
        "base_url": fake.url,
        "api_key": fake.api_key,
        "currency": "USD",
        "rate": "1",
        "timeout_s": 2,
    }


class Api:
    """A reseller's script: plain httpx calls."""

    def __init__(self, port: int, key: str) -> None:
        self.url = f"http://127.0.0.1:{port}{PATH}"
        self.key = key

    async def get(self, action: str, key: str | None = None, **params: str) -> httpx.Response:
        query = {"api_key": key or self.key, "action": action, **params}
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(self.url, params=query)

    async def post(self, action: str, **params: str) -> httpx.Response:
        form = {"api_key": self.key, "action": action, **params}
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(self.url, data=form)

    async def text(self, action: str, **params: str) -> str:
        return (await self.get(action, **params)).text


async def start_shop(start_bot, sa, tg, **overrides):
    port = free_port()
    values = {**FAST, "reseller_api_listen": f"127.0.0.1:{port}", **overrides}
    bot = await start_bot(providers=[sa_entry(sa)], **values)
    await bot.wait_catalog()
    return bot, port


async def key_in_the_bot(alice) -> str:
    """🔑 API -> Create a key: the key is shown once, in that message."""
    await alice.press("🔑 API")
    assert "You have no API key yet." in alice.last().text
    await alice.press("🔑 Create a key")
    screen = alice.last().text
    match = re.search(r"copy it now\):\s*([A-Za-z0-9_-]{43})", screen)
    assert match, screen
    assert "http://127.0.0.1:" in screen and PATH in screen
    return match.group(1)


async def test_a_key_from_the_bot_buys_gets_the_code_cancels_once(start_bot, sa, tg) -> None:
    bot, port = await start_shop(start_bot, sa, tg)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    assert "🔑 API" in alice.last().button_texts
    await bot.fund(ALICE, FUNDS)
    api = Api(port, await key_in_the_bot(alice))

    assert await api.text("getBalance") == "ACCESS_BALANCE:10.00"
    prices = (await api.get("getPrices", country="0", service="tg")).json()
    assert prices["0"]["tg"]["cost"] == 0.18 and prices["0"]["tg"]["count"] == 120

    # Buy, wait, code.
    answer = await api.text("getNumber", service="tg", country="0")
    number = re.fullmatch(r"ACCESS_NUMBER:(\d+):(\d+)", answer)
    assert number, answer
    first = number.group(1)
    (upstream,) = sa.activations.values()
    assert number.group(2) == upstream.phone.lstrip("+")
    assert await api.text("getBalance") == "ACCESS_BALANCE:9.82"
    assert await api.text("getStatus", id=first) == "STATUS_WAIT_CODE"
    sa.deliver_sms(upstream.id, "123456", "Your code 123456")
    status = await eventually(lambda: _ok(api.text("getStatus", id=first)), timeout=10)
    assert status == "STATUS_OK:123456"
    assert await api.text("setStatus", id=first, status="6") == "ACCESS_ACTIVATION"
    assert await api.text("getStatus", id=first) == "STATUS_CANCEL"

    # A second number, cancelled: refunded once, however often the cancel is sent.
    answer = await api.text("getNumber", service="tg", country="0")
    second = answer.split(":")[1]
    assert await api.text("getBalance") == "ACCESS_BALANCE:9.64"
    assert await api.text("setStatus", id=second, status="8") == "ACCESS_CANCEL"
    assert await api.text("setStatus", id=second, status="8") == "ACCESS_CANCEL_ALREADY"
    assert await api.text("getBalance") == "ACCESS_BALANCE:9.82"
    assert await api.text("getActiveActivations") == "NO_ACTIVATIONS"

    assert await bot.balance(ALICE) == FUNDS - TG_RU
    ledger = [(e.delta, e.reason, e.idempotency_key) for e in await bot.ledger(ALICE)]
    assert ledger == [
        (FUNDS, "topup", f"test-fund:{ALICE}:{FUNDS}"),
        (-TG_RU, "purchase", f"charge:otp:{first}"),
        (-TG_RU, "purchase", f"charge:otp:{second}"),
        (TG_RU, "refund", f"refund:otp:{second}"),
    ]
    await bot.assert_ledger_invariant()
    # Ordinary activations of the customer, in the history; no code pushed (push is off).
    assert [a.status for a in await bot.activations(ALICE)] == ["finished", "cancelled"]
    await alice.press("« Main menu")
    await alice.press("🧾 History")
    assert alice.last().text.count("Telegram") == 2
    assert not [m for m in alice.messages if "code for" in m.text]


def _ok(pending):
    async def check():
        answer = await pending
        return answer if answer.startswith("STATUS_OK") else None

    return check()


async def test_push_codes_sends_the_code_to_the_chat(start_bot, sa, tg) -> None:
    bot, port = await start_shop(start_bot, sa, tg)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    api = Api(port, await key_in_the_bot(alice))
    await alice.press("🔕 Codes to this chat: off")
    assert "🔔 Codes to this chat: on" in alice.last().button_texts
    v2 = (await api.get("getNumberV2", service="tg", country="0", orderId="r-1")).json()
    assert v2["phoneNumber"] == next(iter(sa.activations.values())).phone.lstrip("+")
    assert (v2["activationCost"], v2["currency"], v2["countryCode"]) == (0.18, 840, "0")
    assert v2["orderId"] == "r-1" and v2["canGetAnotherSms"] is True
    sa.deliver_sms(next(iter(sa.activations)), "654321")
    await eventually(lambda: [m for m in alice.messages if "code for" in m.text])
    assert "654321" in next(m.text for m in alice.messages if "code for" in m.text)
    active = (await api.get("getActiveActivations")).json()["activeActivations"]
    assert [(a["activationId"], a["smsCode"], a["orderId"]) for a in active] == [
        (v2["activationId"], ["654321"], "r-1")
    ]


async def test_bad_input_is_refused_and_charges_nothing(start_bot, sa, tg, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bot, port = await start_shop(
        start_bot, sa, tg, min_cancel_delay_s=3600, reseller_api_rate_per_min=30
    )
    alice, bob = tg.user(ALICE, "Alice", username="alice"), tg.user(BOB, "Bob")
    await alice.send("/start")
    await bob.send("/start")
    await bot.fund(ALICE, FUNDS)
    await bot.fund(BOB, FUNDS)
    keys = bot.app.api_keys
    api, bobs = Api(port, await keys.create(ALICE)), Api(port, await keys.create(BOB))

    assert await api.text("getBalance", key="not-a-key") == "BAD_KEY"
    assert await api.text("getBalance", key="x" * 5000) == "BAD_KEY"
    assert await api.text("hackTheShop") == "BAD_ACTION"
    assert await api.text("getNumber", service="", country="0") == "BAD_SERVICE"
    assert await api.text("getNumber", service="zz-nope", country="0") == "BAD_SERVICE"
    assert await api.text("getNumber", service="tg", country="x1") == "BAD_COUNTRY"
    assert await api.text("getNumber", service="tg", country="0", maxPrice="0.1") == (
        "WRONG_MAX_PRICE:0.18"
    )
    assert await api.text("getNumber", service="tg", country="0", maxPrice="nan") == (
        "WRONG_MAX_PRICE:0.18"
    )
    assert await api.text("getNumber", service="wa", country="2") == "NO_NUMBERS"

    # Bob's activation is no activation of Alice's; neither is a huge or junk id.
    bobs_id = (await bobs.text("getNumber", service="tg", country="0")).split(":")[1]
    for activation_id in (bobs_id, "99999999999999999999", "-1", "1e3", ""):
        assert await api.text("getStatus", id=activation_id) == "NO_ACTIVATION"
        assert await api.text("setStatus", id=activation_id, status="8") == "NO_ACTIVATION"
    assert await bobs.text("setStatus", id=bobs_id, status="8") == "EARLY_CANCEL_DENIED"
    assert await bobs.text("setStatus", id=bobs_id, status="6") == "BAD_STATUS"
    assert await bobs.text("setStatus", id=bobs_id, status="42") == "BAD_STATUS"
    assert await bobs.text("setStatus", id=bobs_id, status="1") == "ACCESS_READY"

    # A body over 64 KB: 413, never read, nothing bought.
    big = await api.post("getNumber", service="tg", country="0", pad="x" * 70_000)
    assert big.status_code == 413
    # The same orderId twice: one order, one debit.
    first = await api.get("getNumberV2", service="tg", country="0", orderId="ref-7")
    again = await api.get("getNumberV2", service="tg", country="0", orderId="ref-7")
    assert first.json()["orderId"] == "ref-7"
    assert again.text == "ORDER_ALREADY_EXISTS"
    assert await api.text("getNumberV2", service="tg", country="0", orderId="bad ref") == (
        "BAD_DATA"
    )
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    charges = [e.idempotency_key for e in await bot.ledger(ALICE) if e.reason == "purchase"]
    assert charges == [f"api:{(await keys.info(ALICE)).id}:ref-7"]

    # POST with the key in the form works as GET does.
    assert (await api.post("getBalance")).text == "ACCESS_BALANCE:9.82"

    # A ban stops the key at once; /api off too.
    admin = tg.user(ADMIN_ID, "Admin")
    await admin.send("/ban 1002")
    assert await bobs.text("getBalance") == "BAD_KEY"
    await admin.send("/api @alice off")
    assert "off for user 1001" in admin.last().text
    assert await api.text("getBalance") == "BAD_KEY"
    await admin.send("/api @alice on")
    assert await api.text("getBalance") == "ACCESS_BALANCE:9.82"

    # Over RESELLER_API_RATE_PER_MIN for one action: 429, the other actions still answer.
    answers = [await api.get("getCountries") for _ in range(31)]
    assert [a.status_code for a in answers[:30]] == [200] * 30
    assert answers[30].status_code == 429 and answers[30].text == "TOO_MANY_REQUESTS"
    assert int(answers[30].headers["Retry-After"]) >= 1
    assert await api.text("getBalance") == "ACCESS_BALANCE:9.82"
    assert bot.app.errors == []
    await bot.assert_ledger_invariant()
    # No log line of the shop holds a key (only this test's own httpx client logs its URLs).
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert ours
    for key in (api.key, bobs.key):
        assert not [r for r in ours if key in repr(r.__dict__)]


class Exploding:
    """A protocol whose every request fails inside."""

    paths = (PATH,)

    async def handle(self, request):
        raise RuntimeError("boom: internal detail")

    def failure(self):
        return Reply(500, "ERROR_SQL")

    def too_large(self):
        return Reply(413, "BAD_DATA")

    def too_slow(self):
        return Reply(408, "BAD_DATA")


@pytest.fixture
async def exploding() -> AsyncIterator[int]:
    port = free_port()
    server = ResellerApiServer([Exploding()], f"127.0.0.1:{port}")
    await server.start()
    yield port
    await server.stop()


async def test_a_failure_inside_is_the_generic_error_and_a_log_line(exploding, caplog) -> None:
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.get(
            f"http://127.0.0.1:{exploding}{PATH}",
            params={"api_key": "secret-key-0123456789", "action": "getBalance"},
        )
    assert (answer.status_code, answer.text) == (500, "ERROR_SQL")
    (record,) = [r for r in caplog.records if r.getMessage() == "reseller API request failed"]
    assert record.exc_info is not None and getattr(record, "action", None) == "getBalance"
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert not [r for r in ours if "secret-key-0123456789" in repr(r.__dict__)]


async def test_a_slow_body_is_cut_off(exploding, monkeypatch) -> None:
    monkeypatch.setattr(reseller_api, "BODY_TIMEOUT_S", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", exploding)
    writer.write(
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        "api_key=".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408")


async def _shop_with_a_key(database_url: str) -> str:
    """A migrated shop with Alice holding $12.30 and an API key (returned)."""
    from db import repositories as repo
    from db.engine import Database
    from db.migrate import upgrade
    from services import wallet
    from services.api.keys import ApiKeys

    db = Database(database_url)
    await upgrade(db)
    async with db.write() as session:
        await repo.create_user(session, ALICE, username=None, first_name="A", language="en")
        await wallet.credit(session, ALICE, 12_300_000, reason="topup", key="t:1")
    key = await ApiKeys(db).create(ALICE)
    await db.dispose()
    return key


@contextlib.asynccontextmanager
async def api_process(tg, tmp_path, database_url: str, name: str, **env: str):
    """`python -m bot api` on a free port, until SIGTERM (which must exit 0, logging no key
    and no traceback); yields the port once getBalance answers."""
    from tests.e2e.test_process import bot_env

    port = free_port()
    environ = bot_env(tg, tmp_path, database_url, RESELLER_API_LISTEN=f"127.0.0.1:{port}", **env)
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "api", env=environ, cwd=tmp_path, stderr=log_file
        )
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    logs = log_path.read_text()
    assert code == 0, logs
    assert "Traceback" not in logs, logs


async def answered(api: Api) -> str | None:
    try:
        return await api.text("getBalance")
    except httpx.TransportError:
        return None


async def test_python_m_bot_api_serves_alone_on_the_same_database(
    tg, tmp_path, database_url
) -> None:
    """`python -m bot api`: the API without the bot, against the bot's database."""
    key = await _shop_with_a_key(database_url)
    async with api_process(tg, tmp_path, database_url, "api") as port:
        api = Api(port, key)
        assert await eventually(lambda: answered(api), timeout=30) == "ACCESS_BALANCE:12.30"
        assert await api.text("getBalance", key="wrong") == "BAD_KEY"
        assert tg.get_updates_calls == 0  # no bot in this process
    assert key not in (tmp_path / "api.log").read_text()


async def test_two_api_processes_share_the_rate_limit_through_redis(
    tmp_path, database_url, redis_url
) -> None:
    """REDIS_URL set: a key gets RESELLER_API_RATE_PER_MIN across every API process, not that
    many from each. (A bot id of its own: the windows are kept per shop.)"""
    async with FakeTelegram(token=f"{uuid.uuid4().int % 10**9}:TEST-TOKEN-ratelimit0123") as tg:
        key = await _shop_with_a_key(database_url)
        env = {"REDIS_URL": redis_url, "RESELLER_API_RATE_PER_MIN": "4"}
        async with (
            api_process(tg, tmp_path, database_url, "first", **env) as first_port,
            api_process(tg, tmp_path, database_url, "second", **env) as second_port,
        ):
            first, second = Api(first_port, key), Api(second_port, key)
            assert await eventually(lambda: answered(first), timeout=30) == "ACCESS_BALANCE:12.30"
            assert await eventually(lambda: answered(second), timeout=30) == "ACCESS_BALANCE:12.30"
            # Two used, two left in all: one each, then both processes refuse.
            assert await first.text("getBalance") == "ACCESS_BALANCE:12.30"
            assert await second.text("getBalance") == "ACCESS_BALANCE:12.30"
            for api in (first, second):
                refused = await api.get("getBalance")
                assert (refused.status_code, refused.text) == (429, "TOO_MANY_REQUESTS")
                assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert await first.text("getPrices") != "TOO_MANY_REQUESTS"  # per action


async def test_without_reseller_api_listen_there_is_no_api_button(start_bot, tg) -> None:
    bot = await start_bot()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    assert not [b for b in alice.last().button_texts if "API" in b]
    assert bot.app.reseller_api is None
    await alice.press_data("m:api")  # forged: falls through to the harmless answer
    await alice.press_data("ak:new")
    assert await bot.app.api_keys.info(ALICE) is None


async def test_a_third_party_client_library_buys_through_the_api(start_bot, sa, tg) -> None:
    """aiosmsactivate (PyPI, maintained, written for sms-activate's own API), pointed at the
    shop: balance, a number with the client's orderId, the code, finish; a second number
    cancelled and refunded."""
    library = pytest.importorskip("aiosmsactivate")
    from aiosmsactivate.types import ActivationStatus

    bot, port = await start_shop(start_bot, sa, tg)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    key = await bot.app.api_keys.create(ALICE)
    client = library.SmsActivate(key, base_url=f"http://127.0.0.1:{port}{PATH}")

    assert await client.get_balance() == 10
    number = await client.purchase("tg", orderId="lib-1")  # country 0, the protocol's default
    (upstream,) = sa.activations.values()
    assert number.phone_number == upstream.phone.lstrip("+")
    status = await client.get_activation_status_v1(number.activation_id)
    assert status == (ActivationStatus.WAIT, None)
    sa.deliver_sms(upstream.id, "777888")

    async def code():
        status, text = await client.get_activation_status_v1(number.activation_id)
        return text if status == ActivationStatus.OK else None

    assert await eventually(code, timeout=10) == "777888"
    done = await client.set_activation_status(number.activation_id, 6)
    assert done.value == "ACCESS_ACTIVATION"
    second = await client.purchase("tg")
    cancelled = await client.set_activation_status(second.activation_id, 8)
    assert cancelled.value == "ACCESS_CANCEL"

    assert await bot.balance(ALICE) == FUNDS - TG_RU
    key_id = (await bot.app.api_keys.info(ALICE)).id
    ledger = [(e.delta, e.idempotency_key) for e in await bot.ledger(ALICE)]
    assert ledger[1:] == [
        (-TG_RU, f"api:{key_id}:lib-1"),
        (-TG_RU, f"charge:otp:{second.activation_id}"),
        (TG_RU, f"refund:otp:{second.activation_id}"),
    ]
    await bot.assert_ledger_invariant()
