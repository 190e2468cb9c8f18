"""The order lifecycles: every move goes through the table, and one outside it changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from db.models import Activation, SmmOrder, utcnow
from services import wallet
from services.orders import core
from services.orders.errors import IllegalTransition
from services.orders.lifecycle import OTP, SMM, Refund, mermaid


def test_the_tables_name_only_their_own_states() -> None:
    for lifecycle in (OTP, SMM):
        for t in lifecycle.transitions:
            assert {t.source, t.target} <= set(lifecycle.states)
        for source, (target, refund) in lifecycle.admin_refund.items():
            assert lifecycle.allowed(source, target, refund), (source, target)
        assert lifecycle.start not in lifecycle.final


def test_final_and_open_states() -> None:
    assert set(OTP.final) == {"finished", "cancelled", "expired", "failed"}
    assert set(OTP.open) == {"buying", "unknown", "waiting", "received"}
    assert set(SMM.final) == {"completed", "partial", "cancelled", "failed"}
    assert set(SMM.open) == {"placing", "unknown", "pending", "in_progress"}


def test_a_refund_never_leaves_a_delivered_state_without_one() -> None:
    """Moves into cancelled/expired/failed always refund; into finished only by an admin."""
    for t in OTP.transitions:
        if t.target in ("cancelled", "expired", "failed"):
            assert t.refund is Refund.FULL, t
    for t in SMM.transitions:
        if t.target in ("cancelled", "failed"):
            assert t.refund is Refund.FULL, t
        if t.target == "partial" and t.source != "partial":
            assert t.refund is Refund.SHARE, t


def test_the_diagram_has_every_transition() -> None:
    text = mermaid(OTP)
    assert text.startswith("stateDiagram-v2")
    assert "waiting --> expired: no code before the deadline · refund full" in text
    assert len([line for line in mermaid(SMM).splitlines() if "-->" in line]) == len(
        SMM.transitions
    ) + 1 + len(SMM.final)


async def _shop(database_url: str) -> Database:
    db = Database(database_url)
    await upgrade(db)
    async with db.write() as session:
        await repo.create_user(session, 1, username="a", first_name="A", language="en")
        await wallet.credit(session, 1, 1_000_000, reason="topup", key="fund")
    return db


async def _activation(db: Database, status: str) -> int:
    now = utcnow()
    async with db.write() as session:
        row = Activation(
            user_id=1,
            confirm_key=f"1:{status}",
            status=status,
            country="RU",
            service="telegram",
            price=180_000,
            codes=0,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        await wallet.debit(session, 1, 180_000, reason="purchase", key=f"charge:otp:{row.id}")
        return row.id


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("buying", "received"),  # no code can arrive before the number exists
        ("waiting", "finished"),  # finishing before a code would forfeit the money
        ("finished", "cancelled"),
        ("expired", "waiting"),
        ("cancelled", "cancelled"),
    ],
)
async def test_an_illegal_otp_move_is_refused_and_changes_nothing(
    database_url: str, source: str, target: str
) -> None:
    db = await _shop(database_url)
    order_id = await _activation(db, source)
    with pytest.raises(IllegalTransition):
        async with db.write() as session:
            await core.move(
                session, "otp", order_id, (source,), target, now=utcnow(), refund=Refund.FULL
            )
    async with db.read() as session:
        row = await session.get(Activation, order_id)
        assert row is not None and row.status == source
        assert await wallet.balance(session, 1) == 820_000
    await db.dispose()


async def test_an_illegal_smm_move_is_refused() -> None:
    with pytest.raises(IllegalTransition):
        core.check(SMM, ("completed",), "cancelled", Refund.FULL)
    with pytest.raises(IllegalTransition):
        core.check(SMM, ("pending",), "partial", Refund.FULL)  # Partial pays the share only
    core.check(SMM, ("pending", "in_progress"), "partial", Refund.SHARE)


async def test_a_move_refunds_once_whoever_races(database_url: str) -> None:
    db = await _shop(database_url)
    order_id = await _activation(db, "waiting")
    now = utcnow()
    results = []
    for target in ("cancelled", "expired"):  # the user's cancel and the deadline
        async with db.write() as session:
            results.append(
                await core.move(
                    session, "otp", order_id, ("waiting",), target, now=now, refund=Refund.FULL
                )
            )
    assert results[0] is not None and results[0].refunded == 180_000
    assert results[1] is None  # the second found it no longer waiting
    async with db.read() as session:
        row = await session.get(Activation, order_id)
        assert row is not None and row.status == "cancelled"
        assert row.closed_at is not None and row.closed_at - now < timedelta(seconds=1)
        assert await wallet.balance(session, 1) == 1_000_000
    await db.dispose()


async def test_an_smm_share_refund_is_bounded_by_the_price(database_url: str) -> None:
    db = await _shop(database_url)
    now = utcnow()
    async with db.write() as session:
        order = SmmOrder(
            user_id=1, confirm_key="1:s", status="in_progress", provider="p", service_id="1",
            service_name="F", category="C", type="default", link="https://x.y/z", quantity=100,
            rate_per_1000=1_000_000, upstream_rate="0.9", upstream_currency="USD", rate="1",
            markup_percent="20", price=100_000, refunded=0, can_refill=False, can_cancel=False,
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(order)
        await session.flush()
        order_id = order.id
    async with db.write() as session:
        too_much = await core.move(
            session, "smm", order_id, ("in_progress",), "partial", now=now,
            refund=Refund.SHARE, share=100_001,
        )  # fmt: skip
    assert too_much is None
    async with db.write() as session:
        moved = await core.move(
            session, "smm", order_id, ("in_progress",), "partial", now=now,
            refund=Refund.SHARE, share=40_000,
        )  # fmt: skip
    assert moved is not None and moved.refunded == 40_000
    async with db.read() as session:
        row = await session.get(SmmOrder, order_id)
        assert row is not None and (row.status, row.refunded) == ("partial", 40_000)
    await db.dispose()
