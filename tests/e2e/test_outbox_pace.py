"""The outbox within Telegram's limits: one message a second per chat at the fake Bot API,
codes before everything else, a flood limit stops all sending, and with several processes on
one database only one of them sends (each row once); a card is edited only when what it
shows changed, its edits go through the outbox (after the codes, before the rest, within the same
pace), and only a card's latest state is sent.

Each "process" here is its own Database (its own engine) on the test's one database (SQLite and
PostgreSQL), as in test_replicas.py. Tests count calls and compare their order; the one time
they read is the fake Bot API's record of when two messages reached one chat (never less than
Telegram's interval apart), not how long anything took.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.build import make_bot
from bot.group import make_group_sender
from bot.telegram import make_editor, make_sender
from db.engine import Database
from db.models import Lease, Notification, OutboxMessage, utcnow
from services import notifier, outbox
from services.notifier import NotificationWorker
from services.outbox import Edit, OutboxWorker, Pace, SendResult, SendStatus, enqueue
from tests.conftest import eventually, make_settings
from tests.e2e.test_otp_journey import ALICE, FAST, FUNDS, buy_telegram_in_russia, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.telegram import FakeTelegram

GROUP = -100_777
CHATS = (800_001, 800_002, 800_003)


@pytest.fixture
async def bots(tg: FakeTelegram, tmp_path: Path):
    made = [make_bot(make_settings(tg, tmp_path)) for _ in range(2)]
    yield made
    for made_bot in made:
        await made_bot.session.close()


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


class Recorder:
    """A sender (and editor) that records whom it was asked to send what, in the order the
    sends began, and answers from a script (then SENT)."""

    def __init__(self, *script: SendResult) -> None:
        self.script = list(script)
        self.sends: list[tuple[int, str]] = []
        self.edits: list[tuple[int, int, str, str | None]] = []
        self.texts: list[str] = []  # sends and edits, in the order they began

    async def __call__(self, chat_id: int, text: str) -> SendResult:
        self.sends.append((chat_id, text))
        return await self._answer(text)

    async def edit(self, chat_id: int, message_id: int, text: str, markup: str | None):
        self.edits.append((chat_id, message_id, text, markup))
        return await self._answer(text)

    async def _answer(self, text: str) -> SendResult:
        self.texts.append(text)
        await asyncio.sleep(0)  # a real send yields: others may start meanwhile
        return self.script.pop(0) if self.script else SendResult(SendStatus.SENT)


async def add(db: Database, *messages: tuple[int, str, str]) -> None:
    """(chat, text, kind) rows, in this order."""
    async with db.write() as session:
        for chat_id, text, kind in messages:
            await enqueue(session, chat_id, text, kind)


async def add_edits(db: Database, *edits: Edit) -> None:
    """Each in a transaction of its own, in this order."""
    for edit in edits:
        async with db.write() as session:
            await outbox.enqueue_edit(session, edit)


async def count(db: Database, *where) -> int:
    async with db.read() as session:
        query = select(func.count()).select_from(OutboxMessage).where(*where)
        return await session.scalar(query) or 0


def accepted(tg: FakeTelegram, method: str = "sendMessage"):
    return [call for call in tg.calls_of(method) if call.error is None]


# --- pace ----------------------------------------------------------------------------------------


async def test_messages_to_one_chat_reach_it_at_least_a_second_apart(two, bots, tg) -> None:
    first, _ = two
    texts = [(chat, f"note {n} for {chat}", "refund") for n in range(3) for chat in CHATS]
    await add(first, *texts)
    worker = OutboxWorker(first, make_sender(bots[0]), batch=50)

    assert await worker.drain() == len(texts)

    arrivals: dict[int, list[float]] = defaultdict(list)
    for call in accepted(tg):
        arrivals[int(call.params["chat_id"])].append(call.at)
    assert sorted(arrivals) == sorted(CHATS)
    for chat, times in arrivals.items():
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert len(gaps) == 2 and min(gaps) >= 0.95, (chat, gaps)
    for chat in CHATS:  # and in the order they were written
        texts_of_chat = [
            c.params["text"] for c in accepted(tg) if int(c.params["chat_id"]) == chat
        ]
        assert texts_of_chat == [f"note {n} for {chat}" for n in range(3)]


async def test_codes_are_sent_before_other_messages_due_with_them(two) -> None:
    first, _ = two
    await add(
        first,
        *((700 + n, f"refund {n}", "refund") for n in range(4)),
        (800, "closed", "otp:expired"),
        (900, "code 1", "otp:code"),
        (901, "code 2", "otp:code"),
    )
    sender = Recorder()
    worker = OutboxWorker(first, sender, batch=3)

    assert await worker.drain() == 7
    assert [text for _, text in sender.sends[:2]] == ["code 1", "code 2"]
    assert [text for _, text in sender.sends[2:]] == [
        "refund 0",
        "refund 1",
        "refund 2",
        "refund 3",
        "closed",
    ]


async def test_a_flood_limit_stops_every_send_for_as_long_as_telegram_asks(two) -> None:
    first, _ = two
    await add(first, *((700 + n, f"message {n}", "otp:code") for n in range(40)))
    sender = Recorder(SendResult(SendStatus.RETRY_AFTER, retry_after_s=30))
    worker = OutboxWorker(first, sender, batch=40)

    sent = await worker.drain()
    started = len(sender.sends)
    # The sends begun before the 429 came back (at most a second's worth), and no more.
    assert sent == started - 1
    assert started <= outbox.RATE_PER_S
    assert await worker.drain() == 0  # still inside Telegram's wait
    assert len(sender.sends) == started

    async with first.read() as session:
        flooded = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.text == "message 0")
        )
    assert flooded.sent_at is None and flooded.failed is None
    assert flooded.not_before >= utcnow() + timedelta(seconds=25)
    # Nothing is left claimed: the rest waits, and any process may send it after the wait.
    assert await count(first, OutboxMessage.claimed_by.is_not(None)) == 0
    assert await count(first, OutboxMessage.sent_at.is_(None)) == 40 - sent


# --- several processes: one sender ---------------------------------------------------------------


async def test_two_outbox_workers_one_sends_each_row_once_the_other_takes_over(two) -> None:
    await add(two[0], *((700 + n % 7, f"message {n}", "refund") for n in range(30)))
    senders = [Recorder(), Recorder()]
    workers = [
        OutboxWorker(db, sender, batch=4, holder=f"host:{n}:worker")
        for n, (db, sender) in enumerate(zip(two, senders, strict=True))
    ]

    sent = await asyncio.gather(*(worker.drain() for worker in workers))
    sent += await asyncio.gather(*(worker.drain() for worker in workers))

    texts = Counter(text for sender in senders for _, text in sender.sends)
    assert texts == Counter(f"message {n}" for n in range(30))  # each row once
    assert [bool(sender.sends) for sender in senders].count(True) == 1  # one process sent
    holder = await _holder(two[1], outbox.SENDER_LEASE)
    sender_index = next(n for n, s in enumerate(senders) if s.sends)
    assert holder == workers[sender_index].holder

    # The sender stops (its lease released): the other sends what comes next.
    await workers[sender_index].stop()
    other = workers[1 - sender_index]
    await add(two[0], (701, "after the handover", "otp:code"))
    assert await other.drain() == 1
    assert senders[1 - sender_index].sends[-1] == (701, "after the handover")


async def test_a_dead_senders_lease_is_taken_over_once_it_runs_out(two) -> None:
    first, second = two
    async with first.write() as session:
        session.add(
            Lease(
                name=outbox.SENDER_LEASE,
                holder="dead-host:4242:deadbeef",
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    await add(first, (700, "waiting for a sender", "otp:code"))
    sender = Recorder()
    worker = OutboxWorker(second, sender)
    assert await worker.drain() == 0  # the lease is a live process's
    assert sender.sends == []

    async with first.write() as session:  # that process died: its lease runs out
        await session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert await worker.drain() == 1
    assert sender.sends == [(700, "waiting for a sender")]


async def test_group_lines_from_two_processes_are_sent_by_one(two, bots, tg) -> None:
    async with two[0].write() as session:
        for n in range(6):
            session.add(
                Notification(kind="test", text=f"line {n} " + "x" * 2500, created_at=utcnow())
            )
    workers = [
        NotificationWorker(db, make_group_sender(made, GROUP, None), per_minute=6000)
        for db, made in zip(two, bots, strict=True)
    ]
    for _ in range(12):  # a round posts one message (two lines would not fit in one)
        await asyncio.gather(*(worker.drain_once() for worker in workers))

    assert [worker.sent_messages for worker in workers].count(0) == 1  # one process posts
    assert sum(worker.sent_messages for worker in workers) == 6  # one line per message
    posted = Counter(call.params["text"].split(" ")[1] for call in accepted(tg))
    assert posted == Counter(str(n) for n in range(6))
    assert await _holder(two[1], notifier.SENDER_LEASE) is not None


async def _holder(db: Database, name: str) -> str | None:
    async with db.read() as session:
        lease = await session.get(Lease, name)
    return None if lease is None else lease.holder


# --- the activation card -------------------------------------------------------------------------


async def test_a_card_is_edited_only_when_what_it_shows_changed(start_bot, sa, tg) -> None:
    """Poll rounds refresh the card's "time left" every second here; while the minute shown
    stays the same, no edit is sent, and none is ever refused as "not modified"."""
    bot = await start_bot(providers=[sa_entry(sa)], **{**FAST, "card_refresh_s": 1})
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    card = alice.last()
    shown = card.text
    edits = len(tg.calls_of("editMessageText"))

    async def refreshed_twice() -> bool:
        (activation,) = await bot.activations(ALICE)
        return activation.card_updated_at >= bought_at + timedelta(seconds=2.5)

    (activation,) = await bot.activations(ALICE)
    bought_at = activation.card_updated_at
    await eventually(refreshed_twice)
    if card.text == shown:  # the minute shown did not turn meanwhile
        assert len(tg.calls_of("editMessageText")) == edits

    (upstream,) = sa.activations.values()
    sa.deliver_sms(upstream.id, "246810")
    await eventually(lambda: "Code: 246810" in card.text)
    refused = [c for c in tg.calls_of("editMessageText") if "not modified" in (c.error or "")]
    assert refused == []


# --- the cards' edits in the outbox --------------------------------------------------------------

MARKUP = '{"inline_keyboard":[[{"text":"Menu","callback_data":"m"}]]}'


async def test_a_code_goes_before_card_edits_queued_before_it_and_they_before_the_rest(
    two,
) -> None:
    first, _ = two
    await add(first, (700, "refund", "refund"), (701, "closed", "otp:expired"))
    await add_edits(first, *(Edit(710 + n, 5, f"card {n}", MARKUP) for n in range(3)))
    await add(first, (720, "code", "otp:code"))
    sender = Recorder()
    worker = OutboxWorker(first, sender, edit=sender.edit, batch=2)

    assert await worker.drain() == 6
    assert sender.texts == ["code", "card 0", "card 1", "card 2", "refund", "closed"]
    assert sender.edits[0] == (710, 5, "card 0", MARKUP)
    assert await count(first, OutboxMessage.sent_at.is_(None)) == 0


async def test_a_code_does_not_wait_behind_a_batch_of_edits_waiting_for_their_chats(two) -> None:
    """A batch claimed before the code was written gives way to it (the worker is woken by its
    commit): the code does not wait for the edit whose chat had a message a moment ago."""
    first, _ = two
    await add_edits(first, Edit(700, 5, "card 700", None), Edit(701, 5, "card 701", None))
    sender = Recorder()
    worker = OutboxWorker(first, sender, edit=sender.edit)
    worker.pace.sending(701)  # chat 701 just heard from the bot: its edit waits a second
    draining = asyncio.create_task(worker.drain())
    await eventually(lambda: sender.texts == ["card 700"], step=0.01)
    await add(first, (702, "code", "otp:code"))

    assert await draining == 3
    assert sender.texts == ["card 700", "code", "card 701"]


async def test_two_refreshes_of_one_card_are_one_edit_with_the_latest_text(two) -> None:
    first, second = two
    await add_edits(first, Edit(700, 5, "19 min left", MARKUP))
    await add_edits(second, Edit(700, 5, "18 min left", MARKUP))  # another process's refresh
    await add_edits(first, Edit(700, 6, "another card", None), Edit(701, 5, "another chat", None))
    assert await count(first, OutboxMessage.kind == outbox.EDIT) == 3
    sender = Recorder()
    worker = OutboxWorker(first, sender, edit=sender.edit)

    assert await worker.drain() == 3
    assert sorted(sender.edits) == [
        (700, 5, "18 min left", MARKUP),
        (700, 6, "another card", None),
        (701, 5, "another chat", None),
    ]
    # The next refresh takes the place of the edit already sent: a card keeps one row.
    await add_edits(first, Edit(700, 5, "17 min left", MARKUP))
    assert await count(first, OutboxMessage.chat_id == 700, OutboxMessage.message_id == 5) == 1
    # A card a handler has just shown drops the older edit still waiting for it.
    async with first.write() as session:
        await outbox.drop_edits(session, 700, 5)
    assert await worker.drain() == 0
    assert len(sender.edits) == 3


async def test_an_unchanged_card_is_not_edited(start_bot, sa, tg) -> None:
    """Refreshes of a card that would show what it shows put nothing in the outbox; the code's
    refresh puts one edit there, and refreshes after it none again."""
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    card = alice.last()
    otp = bot.app.otp

    def card_edits() -> list:
        return [
            c
            for c in tg.calls_of("editMessageText")
            if int(c.params["message_id"]) == card.message_id
        ]

    edits_after_buying = len(card_edits())
    (activation,) = await bot.activations(ALICE)
    await otp._refresh_cards([activation, activation], {})  # the card shows this already
    assert await count(bot.db, OutboxMessage.kind == outbox.EDIT) == 0

    (upstream,) = sa.activations.values()
    sa.deliver_sms(upstream.id, "246810")
    await eventually(lambda: "Code: 246810" in card.text)
    (activation,) = await bot.activations(ALICE)
    await otp._refresh_cards([activation], {})
    await otp._refresh_card(activation, None)
    await tg.settle()

    assert len(card_edits()) == edits_after_buying + 1  # the code's, and no other
    assert await count(bot.db, OutboxMessage.kind == outbox.EDIT) == 1
    assert [c for c in card_edits() if c.error] == []  # none refused as "not modified"


async def test_card_edits_share_the_messages_pace(two, bots, tg) -> None:
    """Codes, card edits and other messages to a few chats through the fake Bot API at 5 a
    second overall: no chat hears from the bot twice within a second, no second holds more
    than 5 calls, and each chat gets its code, then its card, then the rest."""
    first, _ = two
    rate = 5
    chats = (*CHATS, 800_004)
    cards = {chat: await bots[0].send_message(chat, "card: waiting") for chat in chats}
    before = len(tg.calls)
    for chat, card in cards.items():
        await add_edits(first, Edit(chat, card.message_id, f"card: code for {chat}", MARKUP))
    await add(first, *((chat, f"refund for {chat}", "refund") for chat in cards))
    await add(first, *((chat, f"code for {chat}", "otp:code") for chat in cards))
    worker = OutboxWorker(
        first,
        make_sender(bots[0]),
        edit=make_editor(bots[0]),
        pace=Pace(rate_per_s=rate),
        batch=50,
    )

    assert await worker.drain() == 3 * len(cards)

    calls = [c for c in tg.calls[before:] if c.error is None]
    assert len(calls) == 3 * len(cards)
    # Times of arrival at the fake Bot API (in this event loop): the worker spaces the starts
    # of its requests, so a busy machine's jitter on the way is allowed for (a tenth).
    arrivals: dict[int, list[float]] = defaultdict(list)
    for call in calls:
        arrivals[int(call.params["chat_id"])].append(call.at)
    for chat, times in arrivals.items():
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert len(gaps) == 2 and min(gaps) >= 0.9, (chat, gaps)
    moments = sorted(call.at for call in calls)
    for start in moments:
        assert sum(start <= at < start + 0.9 for at in moments) <= rate, moments
    for chat, card in cards.items():
        texts = [c.params["text"] for c in calls if int(c.params["chat_id"]) == chat]
        assert texts == [f"code for {chat}", f"card: code for {chat}", f"refund for {chat}"]
        assert card.chat.id == chat
    assert await count(first, OutboxMessage.sent_at.is_(None)) == 0
