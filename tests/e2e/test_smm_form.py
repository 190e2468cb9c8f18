"""The SMM order form from the user's side: its own words, buttons tied to the form they belong
to, drip-feed amounts that match the price, errors that keep the form going, and screens that
stay within Telegram's limits whatever the panel calls its services. The real bot against the
fake Bot API and a fake SMM panel over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services import pricing
from tests.conftest import eventually
from tests.e2e.test_smm_journey import (
    ALICE,
    FORM,
    FUNDS,
    LINK,
    PRICE_777,
    RATE,
    Upstream,
    _fake,
    browse_to_followers,
    dollars,
    followers,
    open_shop,
    orders_screen,
    pushed,
    smm_rows,
)
from tests.fakes.telegram import MAX_TEXT

CLOSE = "✖️ Close form"
CLOSED = "This form is already closed"
NOTHING_CHARGED = "nothing was ordered or charged"
SKIP = "➡️ No drip-feed, order at once"


@pytest.fixture
async def form() -> AsyncIterator[Upstream]:
    async with _fake(FORM) as fake:
        yield Upstream(FORM, fake)


async def test_closing_the_form_and_cancelling_an_order_have_different_words(
    start_bot, tg, form
) -> None:
    form.offer_followers(refill=False, cancel=True)
    bot, alice = await open_shop(start_bot, tg, form)
    await browse_to_followers(alice)
    card = alice.last().text
    assert "🚫 Cancelling an order: possible while it runs" in card
    await alice.press("🛒 Order")
    assert alice.last().button_texts == [CLOSE]  # the form's button is not a "Cancel"
    await alice.send(LINK)
    confirm = await alice.send("777")
    assert confirm.button_texts == [f"✅ Order for {dollars(PRICE_777)}", CLOSE]
    await alice.press("✅ Order for")
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    await alice.press("📋 My SMM orders")
    assert "🚫 Cancel order #1" in orders_screen(alice).button_texts
    answer = await alice.press("🚫 Cancel order #1")
    assert answer.text.startswith("🚫 Cancellation requested.")
    # The panel cancels it at the next poll; its notice comes first, not amid the browsing.
    await eventually(lambda: any("was cancelled" in m.text for m in alice.messages))

    # A service without cancel says so without a word the form's button uses.
    form.offer_followers(refill=False, cancel=False)
    await bot.app.smm_catalog.refresh()
    await alice.send("/start")
    await browse_to_followers(alice)
    assert "🚫 Cancelling an order: not possible" in alice.last().text


async def test_an_old_form_button_says_the_form_is_closed_and_never_that_nothing_was_charged(
    start_bot, tg, form
) -> None:
    form.offer_followers(dripfeed=True)
    bot, alice = await open_shop(start_bot, tg, form)
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    link_step = alice.last()
    quantity_step = await alice.send(LINK)
    runs_step = await alice.send("777")
    assert SKIP in runs_step.button_texts
    await alice.press(SKIP)
    await alice.press("✅ Order for")
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    assert await bot.balance(ALICE) == FUNDS - PRICE_777

    for old in (link_step, quantity_step, runs_step):  # every step had its own Close button
        answer = await alice.press(CLOSE, message=old)
        assert answer.text.startswith(CLOSED), answer.text
        assert NOTHING_CHARGED not in answer.text
    answer = await alice.press(SKIP, message=runs_step)
    assert answer.text.startswith(CLOSED)
    assert not any(NOTHING_CHARGED in m.text for m in alice.messages)
    assert "Order #1 placed" in alice.messages[-1].text  # nothing was shown over it

    # A new form: the old form's buttons neither close nor skip it.
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    new_link_step = alice.last()
    answer = await alice.press(CLOSE, message=quantity_step)
    assert answer.text.startswith(CLOSED)
    reply = await alice.send(LINK)  # the new form is still open
    assert "Send the quantity" in reply.text
    reply = await alice.send("100")
    answer = await alice.press(SKIP, message=runs_step)  # the old form's skip
    assert answer.text.startswith(CLOSED)
    assert alice.last() is reply and "Price:" not in alice.last().text
    await alice.press(CLOSE, message=new_link_step)  # its own Close, from an earlier step
    assert NOTHING_CHARGED in new_link_step.text
    reply = await alice.send("3")  # the form is gone: not a number of runs any more
    assert "interval" not in reply.text
    assert form.adds == 1 and len(await smm_rows(bot)) == 1
    assert await bot.balance(ALICE) == FUNDS - PRICE_777
    await bot.assert_ledger_invariant()


async def test_drip_feed_shows_quantity_per_run_runs_and_total_everywhere(
    start_bot, tg, form
) -> None:
    form.offer_followers(dripfeed=True)
    bot, alice = await open_shop(start_bot, tg, form)
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    await alice.send(LINK)
    runs_step = await alice.send("100")
    two_runs = dollars(pricing.smm_total(RATE, 100, 2))
    assert "delivers the whole quantity in every run" in runs_step.text
    assert "you get and pay for 100 × runs" in runs_step.text
    assert f"For example: 100 per run × 2 runs = 200 for {two_runs}" in runs_step.text
    await alice.send("3")
    confirm = await alice.send("15")
    total = pricing.smm_total(RATE, 100, 3)
    assert "Quantity: 100 per run × 3 runs = 300" in confirm.text
    assert "Drip-feed: 3 runs, every 15 min" in confirm.text
    assert f"Price: {dollars(total)}" in confirm.text
    await alice.press(f"✅ Order for {dollars(total)}")
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    assert "Quantity: 100 per run × 3 runs = 300" in alice.last().text
    await alice.press("📋 My SMM orders")
    screen = orders_screen(alice)
    assert f"#1 · Followers · 100 per run × 3 runs = 300 · {dollars(total)}" in screen.text


async def test_a_catalog_change_mid_form_re_asks_the_step_with_the_forms_buttons(
    start_bot, tg, form
) -> None:
    form.offer_followers(dripfeed=True)
    bot, alice = await open_shop(start_bot, tg, form)
    catalog = bot.app.smm_catalog
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    await alice.send(LINK)
    await alice.send("100")
    form.offer_followers(dripfeed=True, min="200")  # the panel raises its minimum
    await catalog.refresh()
    await alice.send("3")  # runs
    error = await alice.send("15")  # interval: the last step, then the quantity is checked
    assert "The quantity must be from 200 to 5000" in error.text
    assert "Send the quantity: a whole number from 200 to 5000" in error.text
    assert CLOSE in error.button_texts
    reply = await alice.send("250")  # read as the quantity again
    assert "250 per run" in reply.text and SKIP in reply.button_texts

    form.offer_followers(dripfeed=True, min="300")
    await catalog.refresh()
    await alice.press(SKIP)  # the other way to the confirmation
    error = alice.last()
    assert "The quantity must be from 300 to 5000" in error.text
    assert "Send the quantity" in error.text and CLOSE in error.button_texts
    reply = await alice.send("300")
    assert "300 per run" in reply.text
    await alice.press(SKIP, message=reply)
    confirm = alice.last()
    assert f"Price: {dollars(pricing.smm_total(RATE, 300))}" in confirm.text

    form.offer_followers(dripfeed=True, min="400")  # after the confirmation was shown
    await catalog.refresh()
    await alice.press("✅ Order for", message=confirm)
    error = alice.last()
    assert "The quantity must be from 400 to 5000" in error.text
    assert "Send the quantity" in error.text and CLOSE in error.button_texts
    assert form.adds == 0 and await bot.balance(ALICE) == FUNDS
    reply = await alice.send("400")
    assert "400 per run" in reply.text
    await alice.press(SKIP, message=reply)
    price = pricing.smm_total(RATE, 400)
    await alice.press(f"✅ Order for {dollars(price)}")
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    assert await bot.balance(ALICE) == FUNDS - price

    # The service goes away mid-form: the answer says so and offers a way on.
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    await alice.send(LINK)
    form.fake.set_services([])
    await catalog.refresh()
    gone = await alice.send("500")
    assert "no longer available" in gone.text
    assert gone.button_texts == ["📈 SMM services", "« Main menu"]
    await alice.press("📈 SMM services", message=gone)
    assert "No SMM services are on sale" in alice.last().text
    assert form.adds == 1
    await bot.assert_ledger_invariant()


async def test_long_names_and_links_are_cut_on_every_screen(start_bot, tg, form) -> None:
    name = "Followers & <friends> " + "n" * 5000
    category = "Instagram " + "c" * 5000
    form.fake.set_services(
        [
            {
                "service": 1,
                "name": name,
                "type": "Default",
                "category": category,
                "rate": "0.917",
                "min": "10",
                "max": "5000",
                "refill": True,
                "cancel": True,
                "description": "Fast <b>start</b> & more. " + "d" * 10_000,
            }
        ]
    )
    bot, alice = await open_shop(start_bot, tg, form)
    link = "https://instagram.com/p/" + "x" * 1970 + "/end"
    assert 1990 < len(link) <= 2000
    screens = []

    async def seen():
        screens.append(alice.last())
        return alice.last()

    await alice.press("📈 SMM services")
    await alice.press("Instagram ccc")
    title = (await seen()).text
    assert title.startswith("Instagram ccc") and "…" in title and "choose a service" in title
    await alice.press("Followers & <friends> nnn")
    card = (await seen()).text
    assert card.startswith("Followers & <friends> nnn") and "Fast <b>start</b> & more. ddd" in card
    await alice.press("🛒 Order")
    assert "Send the link" in (await seen()).text
    assert "Send the quantity" in (await alice.send(link)).text
    await seen()
    confirm = await alice.send("777")
    await seen()
    assert "instagram.com/p/xxx" in confirm.text and "/end" in confirm.text
    assert f"Price: {dollars(PRICE_777)}" in confirm.text
    await alice.press(f"✅ Order for {dollars(PRICE_777)}")
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    await seen()
    (row,) = await smm_rows(bot)
    assert row.link == link  # only the texts are cut, never what is ordered
    assert form.orders[row.provider_order_id].link == link
    await alice.press("📋 My SMM orders")
    await seen()
    form.set_status(row.provider_order_id, "Partial", remains=100)
    (notice,) = await pushed(alice, "was delivered partly")
    screens.append(notice)
    for screen in screens:
        assert len(screen.text) <= MAX_TEXT
        assert "nnnnn…" in screen.text or "Followers" not in screen.text, screen.text[:100]
        assert "n" * 300 not in screen.text and "c" * 300 not in screen.text
    assert await bot.balance(ALICE) < FUNDS
    await bot.assert_ledger_invariant()


async def test_closing_the_form_shows_the_whole_main_menu_top_up_included(
    start_bot, tg, form
) -> None:
    form.offer_followers()
    _bot, alice = await open_shop(start_bot, tg, form, stars_enabled=True, stars_rate="0.02")
    assert "💳 Top up" in (await alice.send("/start")).button_texts
    await browse_to_followers(alice)
    await alice.press("🛒 Order")
    await alice.press(CLOSE)
    assert "💳 Top up" in alice.last().button_texts
