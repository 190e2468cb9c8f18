"""The chaos run's "nothing sent twice" checks (tests/chaos_checks.py) on made-up sends: what a
kill explains (the message in flight when it fell, each of its lines once more, one message per
kill) and what it does not."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from tests.chaos_checks import GROUP_ID, BookState, Checker
from tests.fakes.telegram import Call

NOW = datetime.now(UTC)
CHAT = 5_000_001


def sent(chat: int, text: str, at: float, error: str | None = None) -> Call:
    return Call("sendMessage", {"chat_id": str(chat), "text": text}, error, at)


def outbox(row_id: int, text: str, *, marked: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        id=row_id, chat_id=CHAT, text=text, kind="topup", sent_at=NOW if marked else None
    )


def line(text: str) -> SimpleNamespace:
    return SimpleNamespace(kind="purchase", text=text, sent_at=NOW)


def check(calls, kills, rows=(), lines=()) -> Checker:
    chaos = SimpleNamespace(
        tg=SimpleNamespace(calls=calls, blocked=set()), fleet=SimpleNamespace(kill_times=kills)
    )
    state = BookState([], [], [], [], list(lines), list(rows))
    checker = Checker(state, chaos)
    checker.check_outbox_once()
    checker.check_group_once()
    return checker


def test_each_message_once_is_clean() -> None:
    calls = [sent(CHAT, "a", 1), sent(CHAT, "a", 2), sent(GROUP_ID, "L1\n\nL2", 3)]
    checker = check(calls, [], [outbox(1, "a"), outbox(2, "a")], [line("L1"), line("L2")])
    assert checker.mismatches == [] and not checker.resent


@pytest.mark.parametrize(
    ("times", "kills", "explained"),
    [
        ((1, 8), [1.5], True),  # the kill fell between the send and its mark
        ((40.02, 45), [39.96], True),  # the fake noted the killed process's send a bit late
        ((1, 2), [], False),  # no kill at all
        ((1, 29), [20], False),  # the kill came long after the send was marked
    ],
)
def test_an_outbox_message_twice_needs_a_kill_right_after_the_first_send(
    times, kills, explained
) -> None:
    checker = check([sent(CHAT, "a", at) for at in times], kills, [outbox(1, "a")])
    assert (checker.mismatches == []) is explained
    assert checker.resent["outbox"] == int(explained)


def test_one_kill_explains_one_outbox_message_per_chat() -> None:
    calls = [sent(CHAT, "a", 1), sent(CHAT, "b", 1.2), sent(CHAT, "a", 8), sent(CHAT, "b", 9)]
    checker = check(calls, [1.5], [outbox(1, "a"), outbox(2, "b")])
    assert len(checker.mismatches) == 1 and "outbox [2]" in checker.mismatches[0]


def test_one_kill_explains_the_messages_in_flight_to_several_chats() -> None:
    """The outbox sends a batch concurrently, one message per chat: a kill may leave one
    sent-but-unrecorded message in each of several chats."""
    other = CHAT + 1
    calls = [sent(CHAT, "a", 1), sent(other, "b", 1.1), sent(CHAT, "a", 8), sent(other, "b", 8)]
    rows = [outbox(1, "a"), SimpleNamespace(**{**vars(outbox(2, "b")), "chat_id": other})]
    checker = check(calls, [1.5], rows)
    assert checker.mismatches == []
    assert checker.resent["outbox"] == 2


def test_a_kill_explains_every_line_of_the_group_message_in_flight() -> None:
    calls = [sent(GROUP_ID, "T\n\nT\n\nU", 11.0), sent(GROUP_ID, "T\n\nT\n\nU", 20.3)]
    checker = check(calls, [11.1], lines=[line("T"), line("T"), line("U")])
    assert checker.mismatches == []
    assert checker.resent["group lines"] == 3 and checker.resent["group messages"] == 1


def test_lines_of_two_group_messages_again_after_one_kill_are_not_explained() -> None:
    calls = [sent(GROUP_ID, "L1", 1), sent(GROUP_ID, "L2", 1.5), sent(GROUP_ID, "L1\n\nL2", 7)]
    checker = check(calls, [2], lines=[line("L1"), line("L2")])
    assert len(checker.mismatches) == 1 and "'L2'" in checker.mismatches[0]


def test_a_row_marked_sent_that_telegram_refused_is_a_mismatch() -> None:
    checker = check([sent(CHAT, "a", 1, error="Forbidden")], [], [outbox(1, "a")])
    assert checker.mismatches == ["outbox [1] to 5000001 (topup): marked sent 1x, accepted 0x"]


def test_a_message_sent_then_failed_after_a_kill_is_explained_once() -> None:
    """Sent, killed before the mark, then the retry met a block: the row ends failed."""
    calls = [sent(CHAT, "a", 12.1), sent(CHAT, "a", 17.5, error="Forbidden")]
    checker = check(calls, [12.12], [outbox(1, "a", marked=False)])
    assert checker.mismatches == []
    assert checker.resent == {"outbox sent, mark lost, then failed": 1}
    assert check(calls, [], [outbox(1, "a", marked=False)]).mismatches != []


def test_the_logs_read_tell_expected_alerts_from_errors(tmp_path) -> None:
    import json

    from tests.chaos_processes import read_logs

    records = [
        {"level": "ERROR", "msg": "smm order outcome unknown", "order": 1},
        {"level": "ERROR", "msg": "purchase outcome unknown", "tried": "list-unavailable"},
        {"level": "ERROR", "msg": "purchase outcome unknown", "tried": "list"},  # not a fault's
        {"level": "INFO", "msg": "catalog refreshed"},
        {"level": "ERROR", "msg": "unhandled error in a handler", "exc": "Trace\nValueError: x"},
    ]
    log = tmp_path / "bot.log"
    log.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    logged = read_logs([log])
    assert logged.handler_errors == ["ValueError: x"]
    assert logged.errors == ["purchase outcome unknown ", "not json"]
    assert logged.alerts == {
        "smm order unknown": 1,
        "otp order unknown, order list unavailable": 1,
    }
