"""Defects found by review ([1 of 8]): SMM orders' money and orders that stop moving. Each test
failed before its fix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services import pricing
from services.smm import SmmDraft
from tests.conftest import eventually
from tests.e2e.test_smm_journey import (
    FORM,
    FUNDS,
    LINK,
    MANUAL_POLL,
    RATE,
    Upstream,
    followers,
    open_shop,
    orders_screen,
    smm_rows,
)
from tests.fakes.smmpanel import FakeSmmPanel

ALICE = 1001
GROUP = -100555


@pytest.fixture
async def form() -> AsyncIterator[Upstream]:
    async with FakeSmmPanel() as fake:
        yield Upstream(FORM, fake)


def group_text(tg) -> str:
    return "\n".join(m.text for m in tg.chats.get(GROUP, []))


async def place(bot, quantity: int, runs: int | None = None, token: str = "t1"):
    smm, item = bot.app.smm, followers(bot)
    interval = 15 if runs else None
    draft = SmmDraft(service=item.key, link=LINK, quantity=quantity, runs=runs, interval=interval)
    price = pricing.smm_total(RATE, quantity, runs or 1)
    order = await smm.create(ALICE, draft, price, token)
    return await smm.execute(order.id), price


# --- 5. drip-feed: `remains` counts the whole order ------------------------------------------


async def test_a_drip_feed_partial_refunds_the_undelivered_share_of_all_runs(
    start_bot, tg, form
) -> None:
    form.offer_followers(dripfeed=True)
    bot, alice = await open_shop(start_bot, tg, form, **MANUAL_POLL)
    _order, price = await place(bot, 100, runs=3)  # 300 delivered in all
    assert price == 330_120
    (upstream,) = form.orders.values()
    assert upstream.remains == 300  # the panel counts the whole order
    form.set_status(upstream.order_id, "Partial", remains=150)  # half of it never came
    await bot.app.smm.poll()
    (row,) = await smm_rows(bot)
    assert (row.status, row.refunded, row.remains) == ("partial", 165_060, 150)
    assert await bot.balance(ALICE) == FUNDS - price + 165_060
    assert form.fake.orders[upstream.order_id].refunded * 2 == upstream.charge  # the panel too
    notice = await eventually(
        lambda: [m for m in alice.messages if "were not delivered" in m.text]
    )
    assert "150 of 300" in notice[0].text
    await bot.assert_ledger_invariant()


# --- 3. every refund of one order is bounded by what it paid --------------------------------


async def test_an_admin_refund_racing_the_pollers_partial_never_pays_back_more_than_was_paid(
    start_bot, tg, form, monkeypatch
) -> None:
    """What PostgreSQL showed: the admin's /refund read the order, the poller's Partial refund
    committed, then the admin's write refunded the whole price on top (1.5x what was paid).
    Here the admin's first read is that stale snapshot."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from db.models import SmmOrder
    from tests.conftest import ADMIN_ID

    form.offer_followers()
    bot, _alice = await open_shop(start_bot, tg, form, **MANUAL_POLL)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    order, price = await place(bot, 1000)
    (row,) = await smm_rows(bot)
    stale = SmmOrder(**{c.key: getattr(row, c.key) for c in SmmOrder.__table__.columns})
    (upstream,) = form.orders.values()
    form.set_status(upstream.order_id, "Partial", remains=500)
    await bot.app.smm.poll()
    (row,) = await smm_rows(bot)
    assert (row.status, row.refunded) == ("partial", price // 2)

    real_get, served = AsyncSession.get, []

    async def get(self, model, ident, **kwargs):
        if model is SmmOrder and not served:
            served.append(ident)
            return stale  # read before the poller's commit
        return await real_get(self, model, ident, **kwargs)

    monkeypatch.setattr(AsyncSession, "get", get)
    reply = await admin.send(f"/refund smm:{order.id} race")
    assert served, "the stale read was not used"
    assert price == 1_100_400
    assert "Refunded $0.5502 for" in reply.text  # what the Partial had not paid back
    (row,) = await smm_rows(bot)
    assert row.refunded == price
    assert await bot.balance(ALICE) == FUNDS  # paid back exactly what was paid, no more
    refunds = [e.delta for e in await bot.ledger(ALICE) if e.reason == "refund"]
    assert sum(refunds) == price
    await bot.assert_ledger_invariant()


async def test_an_admin_refund_of_a_poller_settled_order_pays_only_the_rest(
    start_bot, tg, form
) -> None:
    from tests.conftest import ADMIN_ID

    form.offer_followers()
    bot, _alice = await open_shop(start_bot, tg, form, **MANUAL_POLL)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    order, price = await place(bot, 1000)
    (upstream,) = form.orders.values()
    form.set_status(upstream.order_id, "Partial", remains=250)
    await bot.app.smm.poll()
    await admin.send(f"/refund smm:{order.id}")
    assert "was already refunded" in (await admin.send(f"/refund smm:{order.id}")).text
    assert await bot.balance(ALICE) == FUNDS
    (row,) = await smm_rows(bot)
    assert (row.status, row.refunded) == ("partial", price)
    await bot.assert_ledger_invariant()


# --- 17, 18. an order the panel cannot show turns 'unknown' for the admins ------------------

TROUBLE = {**MANUAL_POLL, "smm_trouble_grace_s": 0.3, "notify_chat_id": GROUP}


async def grace_passes(bot) -> None:
    """One poll sees the trouble, the next one (after the grace period) gives up."""
    import asyncio

    await bot.app.smm.poll()
    await asyncio.sleep(0.4)
    await bot.app.smm.poll()


@pytest.fixture
async def json_panel() -> AsyncIterator[Upstream]:
    async with FakeSmmPanel(json_api=True) as fake:
        yield Upstream("smmpanel_json", fake)


@pytest.mark.parametrize("kind", ["form", "json"])
async def test_an_order_that_vanishes_upstream_is_flagged_once_and_an_admin_resolves_it(
    start_bot, tg, form, json_panel, kind
) -> None:
    from tests.conftest import ADMIN_ID

    up = form if kind == "form" else json_panel  # form: "Incorrect order ID"; JSON: left out
    up.offer_followers()
    bot, _alice = await open_shop(start_bot, tg, up, **TROUBLE)
    order, price = await place(bot, 1000)
    (upstream,) = up.orders.values()
    del up.fake.orders[upstream.order_id]  # the panel forgot it (JSON variant: after a cancel)
    await bot.app.smm.poll()
    (row,) = await smm_rows(bot)
    assert row.status == "pending" and row.trouble_since is not None  # not at once
    await grace_passes(bot)
    (row,) = await smm_rows(bot)
    assert row.status == "unknown"
    text = await eventually(lambda: "needs a human" in group_text(tg) and group_text(tg))
    assert f"Order smm:{order.id} at panel needs a human" in text
    assert "it says there is no such order" in text
    await bot.app.smm.poll()
    await tg.settle(0.5)
    assert group_text(tg).count("needs a human") == 1  # once
    assert await bot.balance(ALICE) == FUNDS - price  # nothing refunded behind the admin's back
    admin = tg.user(ADMIN_ID, "Owner")
    reply = await admin.send(f"/refund smm:{order.id} panel lost it")
    assert "Refunded $1.1004" in reply.text
    assert await bot.balance(ALICE) == FUNDS
    (row,) = await smm_rows(bot)
    assert (row.status, row.refunded) == ("cancelled", price)
    await bot.assert_ledger_invariant()


async def test_a_status_word_the_bot_does_not_know_is_an_alert_not_silence(
    start_bot, tg, form
) -> None:
    form.offer_followers()
    bot, _alice = await open_shop(start_bot, tg, form, **TROUBLE)
    _order, price = await place(bot, 1000)
    (upstream,) = form.orders.values()
    upstream.status = "Fail"
    await grace_passes(bot)
    (row,) = await smm_rows(bot)
    assert row.status == "unknown"
    text = await eventually(lambda: "needs a human" in group_text(tg) and group_text(tg))
    assert "it reports the status “Fail”, which the bot does not know" in text
    assert await bot.balance(ALICE) == FUNDS - price
    await bot.assert_ledger_invariant()


async def test_a_readable_answer_within_the_grace_period_clears_the_trouble(
    start_bot, tg, form
) -> None:
    form.offer_followers()
    bot, _alice = await open_shop(start_bot, tg, form, **TROUBLE)
    await place(bot, 1000)
    (upstream,) = form.orders.values()
    upstream.status = "Error"
    await bot.app.smm.poll()
    upstream.status = "In progress"
    await grace_passes(bot)
    (row,) = await smm_rows(bot)
    assert (row.status, row.trouble_since) == ("in_progress", None)
    assert "needs a human" not in group_text(tg)


@pytest.mark.parametrize("remains", ["", None])
async def test_a_partial_without_remains_is_an_alert_not_a_zero_refund(
    start_bot, tg, form, remains
) -> None:
    form.offer_followers()
    bot, alice = await open_shop(start_bot, tg, form, **TROUBLE)
    _order, price = await place(bot, 777)
    (upstream,) = form.orders.values()
    upstream.status = "Partial"
    upstream.remains = remains  # "" or left out of the answer
    if remains is None:
        entry = form.fake._order_entry
        form.fake._order_entry = lambda o: {k: v for k, v in entry(o).items() if k != "remains"}
    await grace_passes(bot)
    (row,) = await smm_rows(bot)
    assert (row.status, row.refunded) == ("unknown", 0)
    assert not [m for m in alice.messages if "were not delivered" in m.text]
    text = await eventually(lambda: "needs a human" in group_text(tg) and group_text(tg))
    assert "Partial without saying how much was not delivered" in text
    assert await bot.balance(ALICE) == FUNDS - price
    await bot.assert_ledger_invariant()


# --- 21. every refill word the panels use means something; an unknown one is final ----------


async def refill_requested(start_bot, tg, form, language: str = "en"):
    form.offer_followers(refill=True, cancel=False)
    bot, alice = await open_shop(start_bot, tg, form, **{**MANUAL_POLL, "notify_chat_id": GROUP})
    if language == "ru":
        from db import repositories as repo

        async with bot.db.write() as session:
            await repo.set_language(session, ALICE, "ru")  # as the language screen does
    order, _ = await place(bot, 777)
    (upstream,) = form.orders.values()
    form.set_status(upstream.order_id, "Completed", remains=0)
    await bot.app.smm.poll()
    await bot.app.smm.refill(ALICE, order.id)
    (refill_id,) = form.fake.refills
    return bot, alice, order, refill_id


@pytest.mark.parametrize(
    ("word", "shown"),
    [("Partial", "partly done"), ("Error", "failed"), ("Canceled", "rejected")],
)
async def test_a_refill_word_that_ends_it_brings_the_refill_button_back(
    start_bot, tg, form, word, shown
) -> None:
    bot, alice, order, refill_id = await refill_requested(start_bot, tg, form)
    form.fake.set_refill(refill_id, word)
    await bot.app.smm.poll()
    row = await bot.app.smm.get(order.id)
    assert bot.app.smm.can_refill(row)  # the Refill button is back
    await eventually(lambda: [m for m in alice.messages if "is completed" in m.text])
    await alice.send("/start")
    await alice.press("📈 SMM services")
    await alice.press("📋 My SMM orders")
    assert f"♻️ refill: {shown}" in orders_screen(alice).text
    assert "♻️ Refill #1" in orders_screen(alice).button_texts
    polls = form.fake.requests["refill_status"]
    await bot.app.smm.poll()
    assert form.fake.requests["refill_status"] == polls  # not polled forever
    assert "needs a human" not in group_text(tg) and "Refill of order" not in group_text(tg)


async def test_an_unknown_refill_word_is_final_translated_and_an_alert(
    start_bot, tg, form
) -> None:
    bot, alice, order, refill_id = await refill_requested(start_bot, tg, form, language="ru")
    form.fake.set_refill(refill_id, "Stuck_Somewhere")
    await bot.app.smm.poll()
    row = await bot.app.smm.get(order.id)
    assert bot.app.smm.can_refill(row)
    await eventually(lambda: [m for m in alice.messages if "выполнен" in m.text])
    await alice.send("/start")
    await alice.press("📈 SMM-услуги")
    await alice.press("📋 Мои SMM-заказы")
    screen = alice.find_button("🔄 Обновить")[0]
    assert "завершено (поставщик пишет «stuck somewhere»)" in screen.text
    text = await eventually(lambda: "Refill of order" in group_text(tg) and group_text(tg))
    assert f"Refill of order smm:{order.id} at panel: the panel answers “stuck somewhere”" in text
    await bot.app.smm.poll()
    await tg.settle(0.5)
    assert group_text(tg).count("Refill of order") == 1


async def test_an_admin_can_follow_a_flagged_order_again_once_the_panel_shows_it(
    start_bot, tg, form
) -> None:
    from tests.conftest import ADMIN_ID

    form.offer_followers()
    bot, _alice = await open_shop(start_bot, tg, form, **TROUBLE)
    order, price = await place(bot, 1000)
    (upstream,) = form.orders.values()
    upstream.status = "Fail"
    await grace_passes(bot)
    assert (await bot.app.smm.get(order.id)).status == "unknown"
    upstream.status = "Partial"
    upstream.remains = 500
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send(f"/adopt smm:{order.id} {upstream.order_id}")
    await bot.app.smm.poll()
    row = await bot.app.smm.get(order.id)
    assert (row.status, row.refunded, row.alerted_at) == ("partial", price // 2, None)
    assert group_text(tg).count("🛒") == 1  # the purchase is not announced twice
    assert await bot.balance(ALICE) == FUNDS - price + price // 2
    await bot.assert_ledger_invariant()
