"""Conversation state in Redis (REDIS_URL): a half-filled SMM order form survives a restart of
the bot, and the order is placed and charged once. Without REDIS_URL the state is in memory and
a restart forgets it. A REDIS_URL that does not answer stops the bot with one line.

The Redis tests need TEST_REDIS_URL's server (tests/redis_server.py); each test's fake Bot API
has a bot id of its own, so its keys (`fsm:<bot id>:...`) are its own, deleted after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests import redis_server
from tests.conftest import eventually
from tests.e2e.test_process import _free_port, _settings_error
from tests.e2e.test_smm_journey import (
    ALICE,
    FAST,
    FORM,
    FUNDS,
    LINK,
    PRICE_777,
    Upstream,
    _fake,
    browse_to_followers,
    dollars,
    open_shop,
    smm_rows,
)
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-TOKEN-abcdefghijklmnop"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API with a bot id no other test uses (its Redis keys are this test's)."""
    async with FakeTelegram(token=redis_server.unique_token()) as server:
        yield server


@pytest.fixture
async def form() -> AsyncIterator[Upstream]:
    async with _fake(FORM) as fake:
        yield Upstream(FORM, fake)


@pytest.fixture
def redis_keys(redis_url: str, tg: FakeTelegram) -> Iterator[Callable[[], list[str]]]:
    """The Redis keys of this test's bot, as they are when called; deleted after the test."""
    bot_id = int(tg.token.split(":")[0])
    yield lambda: redis_server.keys(redis_url, bot_id)
    redis_server.delete_keys(redis_url, bot_id)


async def _half_filled_form(start_bot, tg, form, **settings):
    """Alice opens the form for Followers and sends the link: the quantity is asked next."""
    form.offer_followers()
    bot, alice = await open_shop(start_bot, tg, form, **settings)
    await browse_to_followers(alice)
    await alice.press("🛒 Order")
    reply = await alice.send(LINK)
    assert "Send the quantity" in reply.text
    return bot, alice


async def _restart(bot, start_bot, form, **settings):
    await bot.stop()
    again = await start_bot(providers=[form.entry()], **{**FAST, **settings})
    await eventually(lambda: again.app.smm_catalog.service_count() > 0)
    return again


async def test_a_half_filled_smm_form_survives_a_restart_with_redis(
    start_bot, tg, form, redis_url, redis_keys
) -> None:
    bot, alice = await _half_filled_form(start_bot, tg, form, redis_url=redis_url)
    assert len(redis_keys()) == 2  # the form's state and data, in Redis
    bot = await _restart(bot, start_bot, form, redis_url=redis_url)

    confirm = await alice.send("777")  # read as the quantity: the form went on
    assert f"Price: {dollars(PRICE_777)}" in confirm.text
    await alice.press(f"✅ Order for {dollars(PRICE_777)}")
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    (row,) = await smm_rows(bot)
    assert (row.link, row.quantity) == (LINK, 777)
    assert form.adds == 1
    assert await bot.balance(ALICE) == FUNDS - PRICE_777
    charges = [entry.delta for entry in await bot.ledger(ALICE) if entry.delta < 0]
    assert charges == [-PRICE_777]  # charged once
    await bot.assert_ledger_invariant()
    assert redis_keys() == []  # the finished form left nothing behind


async def test_the_webhook_and_redis_together_carry_the_form_over_a_restart(
    start_bot, tg, form, redis_url, redis_keys
) -> None:
    bot, alice = await _half_filled_form(start_bot, tg, form, redis_url=redis_url, webhook=True)
    bot = await _restart(bot, start_bot, form, redis_url=redis_url, webhook=True)
    confirm = await alice.send("777")
    await alice.press(f"✅ Order for {dollars(PRICE_777)}", message=confirm)
    await eventually(lambda: "Order #1 placed" in alice.last().text)
    assert form.adds == 1 and await bot.balance(ALICE) == FUNDS - PRICE_777
    assert tg.get_updates_calls == 0


async def test_without_redis_a_restart_forgets_the_form(start_bot, tg, form) -> None:
    """What REDIS_URL is for: in memory, the form is gone with the process."""
    bot, alice = await _half_filled_form(start_bot, tg, form)
    bot = await _restart(bot, start_bot, form)
    reply = await alice.send("777")
    assert "Price:" not in reply.text
    assert form.adds == 0 and await bot.balance(ALICE) == FUNDS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            lambda: f"redis://:hunter2@127.0.0.1:{_free_port()}/0",
            "REDIS_URL: cannot connect to redis://:***@127.0.0.1:",
        ),
        (lambda: "http://127.0.0.1:6379/0", "Invalid setting REDIS_URL: must be a redis://"),
    ],
    ids=["unreachable", "not-redis"],
)
async def test_a_bad_redis_url_is_one_line_naming_redis_url_and_exit_2(
    tmp_path, value, expected
) -> None:
    code, stderr = await _settings_error(
        tmp_path,
        BOT_TOKEN=TOKEN,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        REDIS_URL=value(),
    )
    assert code == 2, stderr
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith(expected), stderr
    assert "hunter2" not in stderr and "Traceback" not in stderr
