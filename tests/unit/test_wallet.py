"""The wallet against a real database (SQLite and PostgreSQL): exact balances, one row per
movement, no overdraft, one credit per key whoever races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from services import wallet

USER = 42


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    async with database.write() as session:
        await repo.create_user(session, USER, username="u", first_name="U", language="en")
    yield database
    await database.dispose()


async def _credit(db: Database, amount: int, key: str) -> wallet.Applied:
    async with db.write() as session:
        return await wallet.credit(session, USER, amount, reason="topup", key=key)


async def _debit(db: Database, amount: int, key: str) -> bool:
    try:
        async with db.write() as session:
            await wallet.debit(session, USER, amount, reason="purchase", key=key)
    except wallet.InsufficientFunds:
        return False
    return True


async def _balance(db: Database) -> int:
    async with db.read() as session:
        return await wallet.balance(session, USER)


async def test_200_concurrent_debits_against_50_take_exactly_50(db: Database) -> None:
    await _credit(db, 50_000_000, "seed")
    results = await asyncio.gather(*(_debit(db, 1_000_000, f"d{i}") for i in range(200)))
    assert results.count(True) == 50
    assert await _balance(db) == 0
    async with db.read() as session:
        rows = await wallet.history(session, USER, limit=1000)
        report = await wallet.audit(session)
    assert len(rows) == 51
    assert sum(r.delta for r in rows) == 0
    assert report.ok and report.users_checked == 1


async def test_concurrent_debits_from_two_engines_never_overdraw(db: Database) -> None:
    """Two Database objects on one database (as two bot processes would be): on SQLite BEGIN
    IMMEDIATE holds, on PostgreSQL the conditional UPDATE's row lock."""
    other = Database(str(db.url))
    try:
        await _credit(db, 30_000_000, "seed")
        results = await asyncio.gather(
            *(_debit(db if i % 2 else other, 1_000_000, f"d{i}") for i in range(80))
        )
        assert results.count(True) == 30
        assert await _balance(db) == 0
    finally:
        await other.dispose()


async def test_insufficient_funds_reports_the_missing_amount(db: Database) -> None:
    await _credit(db, 1_500_000, "seed")
    with pytest.raises(wallet.InsufficientFunds) as info:
        async with db.write() as session:
            await wallet.debit(session, USER, 2_000_000, reason="purchase", key="k")
    assert info.value.missing == 500_000
    assert info.value.balance == 1_500_000
    assert await _balance(db) == 1_500_000


async def test_the_same_refund_key_twice_credits_once(db: Database) -> None:
    await _credit(db, 5_000_000, "seed")
    assert await _debit(db, 2_000_000, "buy:1")
    async with db.write() as session:
        first = await wallet.refund(session, USER, 2_000_000, key="refund:otp:1", ref="otp:1")
    async with db.write() as session:
        second = await wallet.refund(session, USER, 2_000_000, key="refund:otp:1", ref="otp:1")
    assert first.applied and first.balance == 5_000_000
    assert not second.applied
    assert await _balance(db) == 5_000_000


async def test_concurrent_refunds_with_one_key_credit_once(db: Database) -> None:
    async def refund_once() -> bool:
        async with db.write() as session:
            return (await wallet.refund(session, USER, 1_000_000, key="refund:otp:7")).applied

    results = await asyncio.gather(*(refund_once() for _ in range(20)))
    assert results.count(True) == 1
    assert await _balance(db) == 1_000_000


async def _hold_open_then_race(db: Database, first_op, second_op) -> tuple[object, object]:
    """`first_op` runs in a transaction kept open (uncommitted) while `second_op` runs on another
    engine, as another process would: the second's statements meet the first's uncommitted row
    (PostgreSQL: the insert waits for it; SQLite: BEGIN IMMEDIATE waits for the commit)."""
    other = Database(str(db.url))
    done_first = asyncio.Event()

    async def first() -> object:
        async with db.write() as session:
            result = await first_op(session)
            done_first.set()
            await asyncio.sleep(0.5)  # the second is under way by now
        return result

    async def second() -> object:
        await done_first.wait()
        try:
            async with other.write() as session:
                return await second_op(session)
        except wallet.WalletError as exc:
            return exc

    try:
        return tuple(await asyncio.gather(first(), second()))  # type: ignore[return-value]
    finally:
        await other.dispose()


async def test_two_concurrent_credits_of_one_key_apply_once(db: Database) -> None:
    """Both pass the "is the key used?" point before either commits. The second must answer
    "already applied", not fail on the unique key (PostgreSQL: IntegrityError, before)."""

    async def refund(session) -> wallet.Applied:
        return await wallet.refund(session, USER, 1_000_000, key="refund:otp:11", ref="otp:11")

    first, second = await _hold_open_then_race(db, refund, refund)
    assert first == wallet.Applied(applied=True, balance=1_000_000)
    assert second == wallet.Applied(applied=False)
    assert await _balance(db) == 1_000_000
    async with db.read() as session:
        rows = await wallet.history(session, USER)
        assert [(r.delta, r.idempotency_key) for r in rows] == [(1_000_000, "refund:otp:11")]
        assert (await wallet.audit(session)).ok


async def test_two_concurrent_debits_of_one_key_take_once(db: Database) -> None:
    await _credit(db, 5_000_000, "seed")

    async def buy(session) -> int:
        return await wallet.debit(session, USER, 2_000_000, reason="purchase", key="charge:1")

    first, second = await _hold_open_then_race(db, buy, buy)
    assert first == 3_000_000
    assert isinstance(second, wallet.DuplicateOperation)
    assert await _balance(db) == 3_000_000


async def test_two_first_messages_at_once_register_one_user(db: Database) -> None:
    """A new user's first two updates handled at once (or by two processes): one row, one
    "new user", and neither fails on the primary key."""

    async def register(session) -> bool:
        _, created = await repo.register_user(
            session, 77, username="n", first_name="N", language="en"
        )
        return created

    assert await _hold_open_then_race(db, register, register) == (True, False)
    async with db.read() as session:
        user = await repo.get_user(session, 77)
        assert user is not None and (user.username, user.balance) == ("n", 0)


async def test_a_reused_debit_key_rolls_the_whole_transaction_back(db: Database) -> None:
    await _credit(db, 5_000_000, "seed")
    assert await _debit(db, 1_000_000, "buy:9")
    with pytest.raises(wallet.DuplicateOperation):
        async with db.write() as session:
            await wallet.debit(session, USER, 1_000_000, reason="purchase", key="buy:9")
    assert await _balance(db) == 4_000_000


async def test_a_failure_after_the_debit_rolls_it_back(db: Database) -> None:
    await _credit(db, 5_000_000, "seed")
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            await wallet.debit(session, USER, 1_000_000, reason="purchase", key="buy:x")
            raise RuntimeError("order row could not be written")
    assert await _balance(db) == 5_000_000
    async with db.read() as session:
        assert not await repo.ledger_key_exists(session, "buy:x")


@pytest.mark.parametrize("amount", [0, -1, 1.5, True])
async def test_amounts_must_be_positive_integers(db: Database, amount) -> None:
    with pytest.raises(ValueError):
        async with db.write() as session:
            await wallet.credit(session, USER, amount, reason="topup", key="bad")


async def test_unknown_user(db: Database) -> None:
    with pytest.raises(wallet.UserNotFound):
        async with db.write() as session:
            await wallet.debit(session, 999, 1, reason="purchase", key="x")
