"""The owner's shop-wide controls: maintenance mode, the cancel limit, CSV exports ([7 of 8])."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.shop_state import ShopState
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_otp_journey import (
    FAST,
    FUNDS,
    TG_RU,
    bought,
    code_message,
    sa_entry,
)
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001
UNKNOWN = "🤷 Unknown command. Send /start to open the menu."
NO_DELAY = {**FAST, "min_cancel_delay_s": 0}


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


async def open_shop(start_bot, tg, sa, **settings):
    bot = await start_bot(providers=[sa_entry(sa)], **{**NO_DELAY, **settings})
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice", username="alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    return bot, alice, admin


async def buy_telegram_in_russia(user) -> None:
    await user.send("/start")
    await user.press("📱 Buy a number")
    await user.press("Russia")
    await user.press("Telegram · $0.18")
    await user.press("✅ Buy for $0.18")
    await bought(user)


# --- maintenance --------------------------------------------------------------------------


async def test_maintenance_stops_new_purchases_not_open_orders(start_bot, tg, sa) -> None:
    bot, alice, admin = await open_shop(start_bot, tg, sa)
    await buy_telegram_in_russia(alice)  # an order open before maintenance
    card = alice.last()
    upstream = next(iter(sa.activations.values()))

    reply = await admin.send("/maintenance on Back at 18:00 <b>UTC</b>")
    assert "Maintenance is on" in reply.text and "Back at 18:00 <b>UTC</b>" in reply.text
    await alice.send("/start")
    answer = await alice.press("📱 Buy a number")
    assert answer.show_alert and answer.text == "Back at 18:00 <b>UTC</b>"
    answer = await alice.press("📈 SMM services")
    assert answer.text == "Back at 18:00 <b>UTC</b>"

    # the open order goes on: its code is delivered, and it can be finished
    sa.deliver_sms(upstream.id, "424242", "code 424242")
    await code_message(alice, "424242")
    await eventually(lambda: "Code: 424242" in card.text)
    await alice.press("✔️ Finish", message=card)
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "finished"

    # a confirmation shown before maintenance cannot be pressed through it either
    assert len(sa.activations) == 1
    assert await bot.balance(ALICE) == FUNDS - TG_RU

    # admins keep everything, buying included
    await bot.fund(ADMIN_ID, FUNDS)
    await buy_telegram_in_russia(admin)
    assert len(sa.activations) == 2

    before = len(alice.messages)
    assert "open again" in (await admin.send("/maintenance off")).text
    await tg.settle(0.3)
    assert len(alice.messages) == before  # nobody is told
    await buy_telegram_in_russia(alice)
    assert len(sa.activations) == 3
    await bot.assert_ledger_invariant()


async def test_a_confirmation_shown_before_maintenance_is_refused(start_bot, tg, sa) -> None:
    bot, alice, admin = await open_shop(start_bot, tg, sa)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    confirm = alice.last()
    await admin.send("/maintenance on")
    answer = await alice.press("✅ Buy for $0.18", message=confirm)
    assert "closed for maintenance" in answer.text
    assert sa.activations == {} and await bot.balance(ALICE) == FUNDS
    assert "Maintenance is on" in (await admin.send("/maintenance")).text


@pytest.mark.parametrize(
    "command", ["/maintenance on", "/maintenance off", "/export ledger", "/export orders"]
)
async def test_a_customer_cannot_use_the_owner_commands(start_bot, tg, sa, command) -> None:
    bot, alice, _ = await open_shop(start_bot, tg, sa)
    assert (await alice.send(command)).text == UNKNOWN
    assert await bot.app.shop_state.maintenance() is None
    assert tg.documents == []


async def test_another_process_sees_maintenance_within_its_ttl(two) -> None:
    first, second = two
    now = [0.0]
    a, b = ShopState(first, 5), ShopState(second, 5, clock=lambda: now[0])
    assert await b.maintenance() is None
    await a.set_maintenance("soon", ADMIN_ID)
    assert await a.maintenance() == "soon"  # at once where it was set
    now[0] = 5.0
    assert await b.maintenance() == "soon"  # within one poll interval elsewhere
    await a.set_maintenance(None, ADMIN_ID)
    now[0] = 10.0
    assert await b.maintenance() is None


# --- the cancel limit ---------------------------------------------------------------------


async def test_past_the_cancel_limit_a_user_is_told_when_to_come_back(start_bot, tg, sa) -> None:
    bot, alice, _ = await open_shop(start_bot, tg, sa, max_cancels_per_day=2)
    for _ in range(2):
        await buy_telegram_in_russia(alice)
        await alice.press("❌ Cancel", message=alice.last())
        assert "was returned" in alice.last().text
    assert await bot.balance(ALICE) == FUNDS
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    answer = await alice.press("✅ Buy for $0.18")
    assert "You cancelled 2 numbers without a code in the last 24 hours" in answer.text
    assert "You can buy again in 23:5" in answer.text or "in 24:00" in answer.text
    assert len(sa.activations) == 2 and await bot.balance(ALICE) == FUNDS

    # a day later (the cancels aged out) she buys again
    async with bot.db.write() as session:
        from sqlalchemy import update

        from db.models import Activation

        await session.execute(
            update(Activation).values(closed_at=datetime.now(UTC) - timedelta(days=1, seconds=1))
        )
    await buy_telegram_in_russia(alice)
    assert len(sa.activations) == 3
    await bot.assert_ledger_invariant()


async def test_timeouts_do_not_count_towards_the_cancel_limit(start_bot, tg, sa) -> None:
    bot, alice, _ = await open_shop(
        start_bot, tg, sa, max_cancels_per_day=1, activation_timeout_s=10
    )
    await buy_telegram_in_russia(alice)

    async def expired() -> bool:
        return [a.status for a in await bot.activations(ALICE)] == ["expired"]

    await eventually(expired, 30)
    await buy_telegram_in_russia(alice)
    await eventually(lambda: len(sa.activations) == 2)


# --- exports ------------------------------------------------------------------------------


def read_csv(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


async def test_exports_are_csv_files_with_exact_money(start_bot, tg, sa) -> None:
    _, alice, admin = await open_shop(start_bot, tg, sa)
    await buy_telegram_in_russia(alice)
    await alice.press("❌ Cancel", message=alice.last())

    await admin.send("/export ledger")
    doc = tg.documents[-1]
    assert (doc.chat_id, doc.filename) == (ADMIN_ID, "ledger.csv")
    rows = read_csv(doc.content)
    assert [(r["user_id"], r["amount"], r["reason"]) for r in rows] == [
        ("1001", "10.00", "topup"),
        ("1001", "-0.18", "purchase"),
        ("1001", "0.18", "refund"),
    ]
    assert rows[1]["key"] == "charge:otp:1"
    assert datetime.fromisoformat(rows[0]["time"]).tzinfo is not None
    assert "ledger: 3 rows" in doc.caption

    await admin.send("/export orders")
    (order,) = read_csv(tg.documents[-1].content)
    assert (order["kind"], order["id"], order["status"], order["price"], order["refunded"]) == (
        "otp",
        "1",
        "cancelled",
        "0.18",
        "0.18",
    )
    assert order["item"] == "ru/telegram" or "/" in order["item"]

    await admin.send("/export payments")
    assert read_csv(tg.documents[-1].content) == []
    assert tg.documents[-1].content.decode().startswith("id,time,user_id,method")


async def test_export_periods_and_bad_input(start_bot, tg, sa) -> None:
    _, _, admin = await open_shop(start_bot, tg, sa)
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    await admin.send(f"/export ledger {yesterday} {yesterday}")
    assert read_csv(tg.documents[-1].content) == []
    await admin.send(f"/export ledger {today}")
    assert len(read_csv(tg.documents[-1].content)) == 1
    count = len(tg.documents)
    for bad in [
        "/export",
        "/export users",
        "/export ledger 2026-13-01",
        f"/export ledger {today} {yesterday}",
        "/export ledger 1 2 3",
    ]:
        reply = await admin.send(bad)
        assert reply.text.startswith("Usage: /export"), bad
    assert len(tg.documents) == count


async def test_maintenance_closes_the_reseller_api_to_new_numbers(start_bot, tg) -> None:
    from tests.e2e.test_reseller_api import Api, key_in_the_bot, start_shop

    async with FakeSmsActivate() as upstream:
        bot, port = await start_shop(start_bot, upstream, tg)
        alice = tg.user(ALICE, "Alice")
        await alice.send("/start")
        await bot.fund(ALICE, FUNDS)
        api = Api(port, await key_in_the_bot(alice))
        await tg.user(ADMIN_ID, "Owner").send("/maintenance on")
        assert await api.text("getNumber", service="tg", country="0") == "NO_NUMBERS"
        assert await api.text("getBalance") == "ACCESS_BALANCE:10.00"
        assert upstream.activations == {} and await bot.balance(ALICE) == FUNDS
        await tg.user(ADMIN_ID, "Owner").send("/maintenance off")
        assert (await api.text("getNumber", service="tg", country="0")).startswith(
            "ACCESS_NUMBER:"
        )


async def test_an_export_stopped_by_shutdown_removes_its_file(
    start_bot, tg, sa, tmp_path, monkeypatch
) -> None:
    import tempfile
    import threading

    from services.exports import Exporter, ExportInterrupted, Period

    bot, *_ = await open_shop(start_bot, tg, sa)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "exports"))
    (tmp_path / "exports").mkdir()
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(ExportInterrupted):
        await Exporter(bot.db, stopping).export("ledger", Period())
    assert temp_csv_files(tmp_path / "exports") == set()
    path, rows = await Exporter(bot.db, threading.Event()).export("ledger", Period())
    assert rows == 1
    path.unlink()


def temp_csv_files(directory) -> set:
    return set(directory.glob("*.csv"))
