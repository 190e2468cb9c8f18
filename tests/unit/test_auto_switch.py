"""Automatic provider switching's counting (services/auto_switch.py) and the notification worker
sending an alert with buttons alone (services/notifier.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db.engine import Database
from db.migrate import upgrade
from db.models import ProviderSetting
from services.admin import set_provider_enabled
from services.auto_switch import AutoSwitch
from services.notifier import GroupAlert, NotificationWorker, Notifier
from services.outbox import SendResult, SendStatus
from services.providers.errors import (
    BadRequest,
    NoNumbers,
    ProviderBalanceLow,
    Unavailable,
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


def recorder() -> tuple[Notifier, list[tuple[str, dict]]]:
    events: list[tuple[str, dict]] = []

    def render(event: str, fields: dict) -> str:
        events.append((event, dict(fields)))
        return f"{event}: {fields.get('provider')}"

    return Notifier(render, enabled=True), events


async def reason(db: Database, name: str = "hero") -> str | None:
    async with db.read() as session:
        row = await session.get(ProviderSetting, name)
        return None if row is None else row.auto_off_reason


async def test_n_failures_of_the_last_m_calls_and_only_failures_count(db) -> None:
    notifier, events = recorder()
    switch = AutoSwitch(db, notifier, failures=3, window=5)
    for error in (Unavailable("down"), NoNumbers(), BadRequest(), Unavailable("down"), None):
        await switch.observe("hero", error)
    assert await reason(db) is None  # 2 failures in the last 5: refusals are answers
    await switch.observe("hero", None)  # the window slides: the first failure is out
    await switch.observe("hero", Unavailable("down"))
    assert await reason(db) is None  # 2 of the last 5
    await switch.observe("hero", Unavailable("down again"))
    assert await reason(db) == "failures"
    assert events == [("provider-auto-off", events[0][1])]
    assert "3/5, last: Unavailable: down again" in events[0][1]["detail"]


@pytest.mark.parametrize(("failures", "window"), [(0, 10), (8, 0), (11, 10)])
async def test_zero_or_an_impossible_count_never_switches_on_failures(
    db, failures, window
) -> None:
    switch = AutoSwitch(db, failures=failures, window=window)
    for _ in range(30):
        await switch.observe("hero", Unavailable("down"))
    assert await reason(db) is None
    await switch.observe("hero", ProviderBalanceLow("NO_BALANCE"))  # always switches
    assert await reason(db) == "no-balance"


async def test_a_comeback_needs_the_right_reason_and_never_undoes_an_admins_off(db) -> None:
    notifier, events = recorder()
    switch = AutoSwitch(db, notifier, failures=2, window=2)
    await switch.observe("hero", ProviderBalanceLow("NO_BALANCE"))
    await switch.probe("hero", None)  # a price list says nothing about the balance
    await switch.balance_read("hero", enough=False)
    assert await reason(db) == "no-balance"
    await set_provider_enabled(db, "hero", False)  # the admin's off
    await switch.balance_read("hero", enough=True)
    assert await reason(db) is None
    assert [event for event, _ in events] == ["provider-auto-off"]  # not announced: still off
    async with db.read() as session:
        assert (await session.get(ProviderSetting, "hero")).enabled is False
    # While the admin's off holds, nothing switches it automatically either.
    assert not await switch.switch_off("hero", "no-balance")
    await set_provider_enabled(db, "hero", True)
    assert await switch.switch_off("hero", "failures")
    await set_provider_enabled(db, "hero", True)  # the admin's on clears the automatic off
    assert await reason(db) is None


async def test_an_alert_with_buttons_is_sent_alone_with_its_action(db) -> None:
    calls: list[tuple[str, GroupAlert | None]] = []

    async def group(text: str, alert: GroupAlert | None = None) -> SendResult:
        calls.append((text, alert))
        return SendResult(SendStatus.SENT)

    notifier = Notifier(lambda event, fields: f"{event} {fields.get('order', '')}", enabled=True)
    async with db.write() as session:
        await notifier.emit(session, "purchase")
        await notifier.emit(session, "unknown-order", order="otp:7", provider="hero")
        await notifier.emit(session, "refund")
        await notifier.emit(session, "code")
    worker = NotificationWorker(db, group, per_minute=600)
    while await worker.drain_once():
        pass
    assert [text for text, _ in calls] == ["purchase ", "unknown-order otp:7", "refund \n\ncode "]
    assert [alert for _, alert in calls][0::2] == [None, None]
    alert = calls[1][1]
    assert alert is not None and (alert.action, alert.target) == ("order", "otp:7")
