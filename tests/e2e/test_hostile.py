"""Hostile input: a thousand generated updates, each answered or ignored, and nobody's money or
orders change. The real bot against the fake Bot API and a fake upstream."""

from __future__ import annotations

import random
import string
from collections.abc import AsyncIterator

import pytest

from handlers import otp_views as view
from services.otp import new_token
from services.providers import tables
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_otp_journey import FAST, FUNDS, TG_RU, buy_telegram_in_russia, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate

ALICE, MALLORY = 1001, 6666
PREFIXES = [
    "oa:cancel:",
    "oa:finish:",
    "oa:again:",
    "oa:sms:",
    "oa:refresh:",
    "ob:",
    "ob:RU:",
    "ob:RU:telegram:",
    "on:",
    "on:s:",
    "on:q:RU:",
    "on:k::~",
    "oh:",
    "sa:r:",
    "sa:c:",
    "so:",
    "bc:c:",
    "m:",
    "lang:",
    "",
]


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


def junk(rng: random.Random, size: int) -> str:
    alphabet = string.printable + "ёжЖ漢字🙂\u202e\u200b\x00"
    return "".join(rng.choice(alphabet) for _ in range(size))


def number(rng: random.Random) -> int:
    """Small, or far beyond 64 bits (an id SQLite cannot even bind)."""
    return rng.choice([rng.randint(-(10**6), 10**6), 2**63, 2**64, 10**20, -(10**20), -(2**63)])


def callback_data(rng: random.Random, own_ids: list[int]) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return junk(rng, rng.randint(1, 64))[:64] or "x"
    if kind == 1:  # truncated or padded real prefixes
        return (rng.choice(PREFIXES) + junk(rng, rng.randint(0, 20)))[:64] or "x"
    if kind == 2:  # another user's activation, or an id out of range
        target = rng.choice([*own_ids, number(rng)])
        return f"oa:{rng.choice(['cancel', 'finish', 'again', 'sms', 'refresh'])}:{target}"
    if kind == 3:  # a forged buy at a price of one micro-unit
        return f"ob:RU:telegram:{rng.randint(-5, 5)}:{new_token()}"
    if rng.random() < 0.5:
        return f"{rng.choice(['sa:r:', 'sa:c:', 'so:', 'oh:'])}{number(rng)}:{number(rng)}"[:64]
    return f"on:{rng.choice('cskaqf')}:{junk(rng, 3)}::{number(rng)}"[:64]


def message(rng: random.Random, user: dict, chat: dict, n: int) -> dict:
    texts = [
        junk(rng, rng.randint(1, 50)),
        "x" * 5000,
        "/start " + junk(rng, 30),
        f"/topup {ALICE} 100",
        f"/deduct {ALICE} 1",
        "/audit",
        "/history " + junk(rng, 5),
        "/balance@test_shop_bot",
        "<b>unclosed",
        "/" + junk(rng, 10),
        "🙂" * 1000,
    ]
    text = rng.choice(texts)
    payload = {"message_id": 10_000 + n, "from": user, "chat": chat, "date": 0, "text": text}
    if text.startswith("/"):
        payload["entities"] = [
            {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
        ]
    return payload


async def test_a_thousand_hostile_updates_change_nothing(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    (activation,) = await bot.activations(ALICE)
    mallory = tg.user(MALLORY, "Mallory", username="mallory")
    await mallory.send("/start")
    card = alice.messages[0].as_api()

    rng = random.Random(20261123)
    user = mallory.as_api()
    private = mallory.chat
    group = {"id": -100777, "type": "supergroup", "title": "Somewhere"}
    queries: list[str] = []
    for n in range(1100):
        kind = n % 6
        if kind in (0, 1, 2):
            query_id = f"h{n}"
            queries.append(query_id)
            await tg.push_update(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": user,
                        "message": card,
                        "chat_instance": "x",
                        "data": callback_data(rng, [activation.id]),
                    }
                }
            )
        elif kind == 3:
            await tg.push_update({"message": message(rng, user, private, n)})
        elif kind == 4:
            chat = group if n % 2 else {"id": -100999, "type": "channel", "title": "News"}
            key = "message" if chat["type"] != "channel" else "channel_post"
            payload = message(rng, user, chat, n)
            if key == "channel_post":
                payload.pop("from")
            await tg.push_update({key: payload})
        else:
            await tg.push_update(
                {"edited_message": {**message(rng, user, private, n), "edit_date": 1}}
            )
    await eventually(lambda: all(q in tg.callback_answers for q in queries), 90)
    await tg.settle(0.5)

    assert not bot.app.errors, "the catch-all error handler fired"
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    assert await bot.balance(MALLORY) == 0
    (after,) = await bot.activations(ALICE)
    assert (after.status, after.price, after.code) == ("waiting", activation.price, None)
    assert await bot.activations(MALLORY) == []
    assert [a.state for a in sa.activations.values()] == ["waiting"]
    assert not [m for m in tg.chats[-100999]]  # nothing posted into the channel
    await bot.assert_ledger_invariant()
    # Mallory's forged admin commands got the unknown-command answer, never a usage text.
    assert not [m for m in tg.bot_messages(MALLORY) if "Usage:" in m.text]
    assert ADMIN_ID not in tg.chats


# 2**31: one past the largest row id PostgreSQL's INTEGER holds (services/ids.py).
HUGE_IDS = [2**31, 2**63, 2**63 - 1, 10**20, -(10**20), -(2**63) - 1, 0]


async def test_huge_ids_get_the_not_found_answer(start_bot, tg, sa) -> None:
    """Ids beyond 64 bits used to overflow SQLite and reach the catch-all: out of range is
    simply "not found", like another user's id."""
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    for huge in HUGE_IDS:
        for action in ("cancel", "finish", "again", "sms", "refresh"):
            answer = await alice.press_data(f"oa:{action}:{huge}")
            assert answer.text == "This order was not found.", (action, huge)
        for action in ("r", "c"):
            answer = await alice.press_data(f"sa:{action}:{huge}:{huge}")
            assert answer.text == "This order was not found.", (action, huge)
    for huge in (2**63, -(10**20)):  # pages out of range show a page
        for data in (f"so:{huge}", f"oh:{huge}", f"on:c:::{huge}", f"sn:c::{huge}"):
            await alice.press_data(data)
    admin = tg.user(ADMIN_ID, "Admin")
    await admin.send("/start")
    for huge in HUGE_IDS:
        answer = await admin.press_data(f"bc:c:{huge}")
        assert answer.text == "No broadcast is running.", huge
        expected = "not found" if huge >= 0 else "Usage"  # "otp:-5" is not an order reference
        reply = await admin.send(f"/refund otp:{huge}")
        assert reply is not None and expected in reply.text, huge
        reply = await admin.send(f"/adopt smm:{huge} 12345")
        assert reply is not None and expected in reply.text, huge
        for command in ("/user {}", "/topup {} 1", "/broadcast_cancel {}"):
            reply = await admin.send(command.format(huge))
            assert reply is not None and reply.text, (command, huge)
    assert not bot.app.errors, "the catch-all error handler fired"
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    (after,) = await bot.activations(ALICE)
    assert after.status == "waiting"
    await bot.assert_ledger_invariant()


async def test_a_forged_buy_price_charges_nothing_and_the_real_one_the_quote(
    start_bot, tg, sa
) -> None:
    """The price in the Buy button's data is not trusted: a press is charged the quote its token
    stands for (kept server-side), and a press whose price differs charges nothing."""
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    mallory = tg.user(MALLORY, "Mallory")
    await mallory.send("/start")
    await bot.fund(MALLORY, FUNDS)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    confirm = alice.last()
    data = alice.find_button("✅ Buy for $0.18", confirm)[1]["callback_data"]
    prefix, price, token = data.rsplit(":", 2)
    assert (prefix, price) == ("ob:RU:telegram", str(TG_RU))

    for forged, shown in (
        (f"{prefix}:5000000:{token}", "$0.18"),  # $5.00 for a $0.18 number
        (f"{prefix}:{TG_RU + 1}:{token}", "$0.18"),
        (f"{prefix}:1:{token}", "$0.18"),  # a discount is not for the taking either
        (f"{prefix}:5000000:{new_token()}", "$0.18"),  # a token the bot never handed out
        (f"ob:RU:whatsapp:{TG_RU}:{token}", "$0.02"),  # the token of another item
    ):
        answer = await alice.press_data(forged, message=confirm)
        assert answer.text == "Please check the price and confirm again.", forged
        assert f"Price: {shown}" in alice.last().text  # the confirmation again, fresh
        assert await bot.balance(ALICE) == FUNDS
    answer = await mallory.press_data(data)  # Alice's own button, pressed by someone else
    assert answer.text == "Please check the price and confirm again."
    assert await bot.balance(MALLORY) == FUNDS
    assert await bot.activations() == []
    assert sa.activations == {}

    # The genuine button (Alice's first confirmation) still buys, at exactly the quoted price.
    await alice.press_data(data, message=confirm)
    await eventually(lambda: any("Waiting for the SMS" in m.text for m in alice.messages))
    (activation,) = await bot.activations(ALICE)
    assert activation.price == TG_RU
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    # Pressing it again, forged or not, buys nothing more.
    for again in (data, f"{prefix}:5000000:{token}"):
        await alice.press_data(again, message=confirm)
    assert len(await bot.activations()) == 1
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    assert await bot.balance(MALLORY) == FUNDS
    await bot.assert_ledger_invariant()


async def test_a_price_drop_after_the_confirmation_charges_the_quote(start_bot, tg, sa) -> None:
    """The confirmation showed $0.18; the upstream then gets cheaper: the press is charged what
    was confirmed (the quote), and a raise is still refused as a price change."""
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    sa.set_price("0", "tg", "0.10", 120)  # $0.12 now
    await bot.app.catalog.refresh()
    await alice.press("✅ Buy for $0.18")
    await eventually(lambda: any("Waiting for the SMS" in m.text for m in alice.messages))
    (activation,) = await bot.activations(ALICE)
    assert activation.price == TG_RU
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    await bot.assert_ledger_invariant()


async def test_bad_upstream_prices_drop_only_their_offers(start_bot, tg, sa) -> None:
    """A negative, free or absurd price drops that one offer; the rest of the catalog sells."""
    sa.set_price("0", "wa", "-0.05", 3)
    sa.set_price("187", "tg", "0", 40)
    sa.set_price("12", "tg", "1e30", 7)
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    catalog = bot.app.catalog
    assert catalog.offer_count() == 1  # only Russia/Telegram is sellable
    assert [c.iso for c in catalog.countries()] == ["RU"]
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await alice.press("📱 Buy a number")
    assert not any("$0.00" in b for b in alice.last().button_texts)
    await alice.press("Russia")
    assert not any("WhatsApp" in b for b in alice.last().button_texts)
    await alice.press("Telegram · $0.18")
    await alice.press("✅ Buy for $0.18")
    await eventually(lambda: "Buying your number" not in alice.last().text)
    assert "Waiting for the SMS" in alice.last().text
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    report = await catalog.refresh()  # every refresh keeps working
    assert report.failed == {} and report.offers == 1
    await bot.assert_ledger_invariant()


def test_callback_data_fits_64_bytes_for_the_longest_names() -> None:
    countries = list(tables.countries()) + [f"smsactivate:{n}" for n in range(1000, 1010)]
    countries.append("toolvico:" + "9" * 40)
    services = [*list(tables.service_names()), "x" * 80, "smsactivate:" + "z" * 30]
    longest_country = max(countries, key=len)
    longest_service = max(services, key=len)
    for country in (longest_country, "US"):
        for service in (longest_service, "telegram"):
            c, s = view.encode_key(country), view.encode_key(service)
            packed = [
                view.OtpBuy(c=c, s=s, price=10**15, t=new_token()).pack(),
                view.OtpNav(v="q", c=c, s=s, p=10**6).pack(),
                view.OtpAction(a="refresh", i=2**63 - 1).pack(),
                view.HistoryCb(p=10**9).pack(),
            ]
            for data in packed:
                assert len(data.encode()) <= 64, data
