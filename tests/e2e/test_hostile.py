"""Hostile input: a thousand generated updates, each answered or ignored, and nobody's money or
orders change. The real bot against the fake Bot API and a fake upstream."""

from __future__ import annotations

import random
import string
from collections.abc import AsyncIterator

import pytest

from handlers import otp_views as view
from services.activations import new_token
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
    "m:",
    "lang:",
    "",
]


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


def junk(rng: random.Random, size: int) -> str:
    alphabet = string.printable + "ёжЖ漢字🙂‮\u200b\x00"
    return "".join(rng.choice(alphabet) for _ in range(size))


def callback_data(rng: random.Random, own_ids: list[int]) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return junk(rng, rng.randint(1, 64))[:64] or "x"
    if kind == 1:  # truncated or padded real prefixes
        return (rng.choice(PREFIXES) + junk(rng, rng.randint(0, 20)))[:64] or "x"
    if kind == 2:  # another user's activation
        return f"oa:{rng.choice(['cancel', 'finish', 'again', 'sms'])}:{rng.choice(own_ids)}"
    if kind == 3:  # a forged buy at a price of one micro-unit
        return f"ob:RU:telegram:{rng.randint(-5, 5)}:{new_token()}"
    return f"on:{rng.choice('cskaqf')}:{junk(rng, 3)}::{rng.randint(-(10**6), 10**6)}"[:64]


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
