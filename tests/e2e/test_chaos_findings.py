"""What the chaos run (tests/chaos.py) found, each pinned down by a focused test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from db.models import utcnow
from tests.conftest import eventually
from tests.e2e.test_otp_journey import (
    FAST,
    FUNDS,
    TG_RU,
    bought,
    buy_telegram_in_russia,
    code_message,
    only_activation,
    sa_entry,
)
from tests.e2e.test_smm_journey import (
    FORM,
    LINK,
    PRICE_777,
    Upstream,
    followers,
    open_shop,
    smm_rows,
)
from tests.fakes.smmpanel import FakeSmmPanel
from tests.fakes.smsactivate import FakeSmsActivate

ALICE, BOB = 1001, 1002
MANUAL_POLL = {**FAST, "poll_interval_s": 3600}  # one round at start-up, then only by hand


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


@pytest.fixture
async def panel() -> AsyncIterator[Upstream]:
    async with FakeSmmPanel(hang_s=5) as fake:
        yield Upstream(FORM, fake)


async def second_code_waiting_upstream(start_bot, sa, tg):
    """Code 111111 shown, Another SMS pressed, code 222222 at the upstream, not polled yet."""
    bot = await start_bot(providers=[sa_entry(sa)], **MANUAL_POLL)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    upstream = only_activation(sa)
    sa.deliver_sms(upstream.id, "111111")
    await bot.app.otp.poll()
    await code_message(alice, "111111")
    card = await eventually(
        lambda: "📨 Another SMS" in alice.messages[0].button_texts and alice.messages[0]
    )
    await alice.press("📨 Another SMS", message=card)
    sa.deliver_sms(upstream.id, "222222")
    return bot, alice, card, upstream


async def test_finish_pushes_a_code_that_arrived_since_the_last_poll(start_bot, sa, tg) -> None:
    """Found by the chaos run: Finish finished the number upstream without looking, and the
    second code, already at the upstream, never reached the chat."""
    bot, alice, card, upstream = await second_code_waiting_upstream(start_bot, sa, tg)
    await alice.press("✔️ Finish", message=card)
    await code_message(alice, "222222")
    assert upstream.state == "finished"
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code, activation.codes) == ("finished", "222222", 2)
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    await bot.assert_ledger_invariant()


async def test_the_deadline_pushes_a_code_that_arrived_since_the_last_poll(
    start_bot, sa, tg
) -> None:
    """Found by the chaos run: a number past its deadline (typically after a restart) was
    finished without looking, dropping the code that had arrived meanwhile."""
    bot, alice, _, upstream = await second_code_waiting_upstream(start_bot, sa, tg)
    bot.app.otp.clock = lambda: utcnow() + timedelta(hours=1)  # past every deadline
    await bot.app.otp.poll()
    await code_message(alice, "222222")
    assert upstream.state == "finished"
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code, activation.codes) == ("finished", "222222", 2)
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    await bot.assert_ledger_invariant()


async def test_another_sms_first_pushes_a_code_not_shown_yet(start_bot, sa, tg) -> None:
    """Found by the chaos run: a second press of Another SMS moved the upstream past a code
    that had arrived since the last poll, and that code was never shown."""
    bot, alice, card, upstream = await second_code_waiting_upstream(start_bot, sa, tg)
    await alice.press("📨 Another SMS", message=card)
    await code_message(alice, "222222")
    assert upstream.state == "retry"
    sa.deliver_sms(upstream.id, "333333")
    await bot.app.otp.poll()
    await code_message(alice, "333333")
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code, activation.codes) == ("received", "333333", 3)
    assert await bot.balance(ALICE) == FUNDS - TG_RU


async def test_finish_waits_when_the_upstream_cannot_say_whether_a_code_came(
    start_bot, sa, tg
) -> None:
    """The last look is not skipped when it fails: the number stays open, nothing is lost."""
    bot, alice, card, upstream = await second_code_waiting_upstream(start_bot, sa, tg)
    sa.inject("500", action="getStatus", times=3)  # every read attempt of the last look
    answer = await alice.press("✔️ Finish", message=card)
    assert (
        answer.text
        == "The provider is not answering. Nothing changed; please try again in a minute."
    )
    assert upstream.state == "code"
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code) == ("received", "111111")
    await alice.press("✔️ Finish", message=card)
    await code_message(alice, "222222")
    assert upstream.state == "finished"


async def test_a_lost_buy_never_takes_the_number_of_a_buy_still_answering(start_bot, sa, tg):
    """Found by the chaos run: reconciliation read the order list while another purchase's
    answer was still on its way, took that number for the lost buy, and two users shared one
    number (and its codes) while the lost buy's user paid for nothing."""
    bot = await start_bot(providers=[sa_entry(sa)], **MANUAL_POLL)
    await bot.wait_catalog()
    alice, bob = tg.user(ALICE, "Alice"), tg.user(BOB, "Bob")
    for user in (alice, bob):
        await user.send("/start")
        await bot.fund(user.id, FUNDS)
    sa.reply("getNumberV2", "<html>502 Bad Gateway</html>", status=502)  # nothing bought
    await buy_telegram_in_russia(alice)
    assert "The provider did not answer in time" in alice.last().text

    provider = bot.app.otp.providers["hero"]
    real_buy, answered, release = provider.buy, asyncio.Event(), asyncio.Event()

    async def slow_answer(*args, **kwargs):
        purchase = await real_buy(*args, **kwargs)
        answered.set()  # Bob's number exists upstream; its answer is still on its way
        await release.wait()
        return purchase

    provider.buy = slow_answer
    await bob.press("📱 Buy a number")
    await bob.press("Russia")
    await bob.press("Telegram · $0.18")
    await bob.press("✅ Buy for $0.18")
    await asyncio.wait_for(answered.wait(), 10)
    reconciling = asyncio.create_task(bot.app.otp.reconcile())
    await asyncio.sleep(0.5)  # the order list, Bob's number in it, has been read
    release.set()
    await asyncio.wait_for(reconciling, 10)
    await bought(bob)

    upstream = only_activation(sa)
    (lost,) = await bot.activations(ALICE)
    (mine,) = await bot.activations(BOB)
    assert (mine.status, mine.provider_order_id) == ("waiting", upstream.id)
    assert (lost.status, lost.provider_order_id) == ("failed", None)
    assert await bot.balance(ALICE) == FUNDS  # refunded: no number was ever bought for her
    assert await bot.balance(BOB) == FUNDS - TG_RU
    sa.deliver_sms(upstream.id, "424242")
    await bot.app.otp.poll()
    await code_message(bob, "424242")
    assert not [m for m in alice.messages if "424242" in m.text]
    await bot.assert_ledger_invariant()


BLOCKED = (403, "Forbidden: bot was blocked by the user")


@pytest.mark.parametrize(
    ("error", "times"),
    [(BLOCKED, 2), ((500, "Internal Server Error"), 1)],
    ids=["blocked", "bot-api-down"],
)
async def test_a_number_paid_for_is_bought_whatever_the_chat_answers(
    start_bot, sa, tg, error, times
) -> None:
    """Found by the chaos run: when the "Buying..." edit failed for any reason but a bad
    request (the user had just blocked the bot, a flood limit, a Bot API error), the handler
    stopped there: the money was taken, no number was bought, and the activation stayed
    'buying' until the next restart."""
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    tg.fail("editMessageText", *error, times=times)  # "Buying…" (and the card, if blocked)
    await alice.press("✅ Buy for $0.18")
    activation = await eventually(_bought_activation(bot), timeout=10)
    upstream = only_activation(sa)
    assert activation.provider_order_id == upstream.id
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    await bot.assert_ledger_invariant()  # and no unhandled error: start_bot checks that


def _bought_activation(bot):
    async def check():
        rows = await bot.activations(ALICE)
        return rows[0] if rows and rows[0].status == "waiting" else None

    return check


async def test_an_smm_order_paid_for_is_placed_even_if_the_user_blocked_the_bot(
    start_bot, tg, panel
) -> None:
    """The same for the SMM Order button: the order reaches the panel."""
    panel.offer_followers()
    bot, alice = await open_shop(start_bot, tg, panel)
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    await alice.send(LINK)
    await alice.send("777")
    tg.fail("editMessageText", *BLOCKED, times=2)  # "Placing…" and the result
    await alice.press("✅ Order for $0.855011")

    async def placed():
        rows = await smm_rows(bot)
        return rows if rows and rows[0].status == "pending" else None

    (order,) = await eventually(placed, timeout=10)
    (upstream,) = panel.orders.values()
    assert (order.provider_order_id, upstream.link) == (upstream.order_id, LINK)
    assert await bot.balance(ALICE) == FUNDS - PRICE_777
    await bot.assert_ledger_invariant()
