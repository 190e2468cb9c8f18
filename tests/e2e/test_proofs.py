"""PROOFS_CHAT_ID: each delivered code becomes a masked line in the proofs channel, merged into
at most one post a minute; never the code, never the customer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.proofs import mask_phone
from tests.e2e.test_otp_journey import FAST, FUNDS, bought, code_message, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001
CHANNEL = -100424242


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


def test_a_phone_is_masked_beyond_recognition() -> None:
    assert mask_phone("+79001234512") == "+7 900 ***-**-12"
    assert mask_phone("447911123456") == "+44 791 ***-**-56"
    assert mask_phone("12345") == "***"
    assert mask_phone("") == "***"


async def buy(user) -> None:
    await user.send("/start")
    await user.press("📱 Buy a number")
    await user.press("Russia")
    await user.press("Telegram · $0.18")
    await user.press("✅ Buy for $0.18")
    await bought(user)


async def test_delivered_codes_are_posted_masked_and_merged(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], proofs_chat_id=CHANNEL, **FAST)
    await bot.wait_catalog()
    proofs = bot.app.proofs
    assert proofs is not None
    assert await proofs.post() == 0  # turned on: the history before is not posted
    alice = tg.user(ALICE, "Alice", username="alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    for code in ("135790", "246801"):
        await buy(alice)
        upstream = max(sa.activations.values(), key=lambda a: int(a.id))
        sa.deliver_sms(upstream.id, code, f"Telegram code {code}")
        await code_message(alice, code)

    proofs._posted_at = None  # the job's minute has passed
    assert await proofs.post() == 2
    (post,) = tg.chats[CHANNEL]
    lines = post.text.split("\n")
    assert len(lines) == 2
    upstreams = sorted(sa.activations.values(), key=lambda a: int(a.id))
    for line, upstream in zip(lines, upstreams, strict=True):
        assert line.startswith("🇷🇺 Telegram · +7 999 ***-**-")
        assert line.endswith(" s") and "code in " in line
        assert line.split(" · ")[1] == mask_phone(upstream.phone)
    for secret in ("135790", "246801", "Alice", "alice", str(ALICE)):
        assert secret not in post.text
    for upstream in sa.activations.values():
        assert upstream.phone not in post.text

    assert await proofs.post() == 0  # within the minute: nothing, and nothing twice
    proofs._posted_at = None
    assert await proofs.post() == 0  # nothing new
    assert len(tg.chats[CHANNEL]) == 1


async def test_a_post_telegram_refuses_is_tried_again_next_minute(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], proofs_chat_id=CHANNEL, **FAST)
    await bot.wait_catalog()
    proofs = bot.app.proofs
    await proofs.post()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy(alice)
    upstream = next(iter(sa.activations.values()))
    sa.deliver_sms(upstream.id, "112233", "code 112233")
    await code_message(alice, "112233")
    tg.fail("sendMessage", 400, "Bad Request: chat not found", times=1)
    proofs._posted_at = None
    assert await proofs.post() == 0
    assert await proofs.post() == 1
    assert len(tg.chats[CHANNEL]) == 1
