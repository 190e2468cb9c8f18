"""The chaos run's end-of-run checks (a)-(e) of tests/chaos.py, over the books read back from the
database and what the fakes saw, and that nothing reached Telegram twice.

Sent twice: the criterion is the bot's own rows against what the fake Bot API accepted. Every
outbox row is one message the bot means to send once, with its chat and exact text (a code, a
top-up, an order's end): the successful sendMessage calls with that (chat_id, text) must number
exactly the rows marked sent with it (texts may repeat, e.g. two equal top-ups, so rows and sends
are compared as multisets). Every line of the notification group is a `notifications` row, sent
merged with others (joined by a blank line): each row's text must occur, as a whole line group
between separators, in the group's accepted messages as often as there are rows of that text.
A code is delivered exactly once: the messages to its owner naming it ("code for ... <code>")
number one.

One exception, by design (the outbox and the group are at least once): a SIGKILL between a
send and the commit of its "sent" mark. The row's claim runs out and another process (or the
restarted one) sends it again, or tries to and meets a chat that blocked the bot meanwhile (the
outbox row ends failed though its text arrived once). Such a surplus is allowed when a kill
falls after the send (within RECORD_WINDOW_S of it, the time the bot may take to commit the
mark; up to SEND_LAG_S before it counts too, as the fake notes a call late) and before the next
one, if any; each kill explains at most one outbox message and one group message (with all of
its lines: the group's messages are merged). They are counted in the figures (`resent`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from db.models import Activation, LedgerEntry, Notification, OutboxMessage, SmmOrder, User
from services.outbox import EDIT

if TYPE_CHECKING:
    from tests.chaos import ChaosRun

GROUP_ID = -1_000_777  # the notification group
OTP_PROVIDER = "hero"
OTP_OPEN = ("buying", "unknown", "waiting", "received")
OTP_REFUNDED = ("cancelled", "expired", "failed")
SMM_OPEN = ("placing", "pending", "in_progress")
FAKE_ACTIVE = ("waiting", "ready", "code", "retry")
_DIGITS = r"(?<![\d.]){}(?!\d)"
SEPARATOR = "\n\n"  # between the lines of one group message (services/notifier.py)
RECORD_WINDOW_S = 15.0  # a send, then its "sent" mark committed: at most this long apart
# The fake Bot API notes a call when its handler runs, in the harness's event loop: a request the
# killed process had sent may be noted a moment after the kill.
SEND_LAG_S = 1.0


@dataclass
class BookState:
    users: list[User]
    ledger: list[LedgerEntry]
    activations: list[Activation]
    orders: list[SmmOrder]
    notifications: list[Notification]
    outbox: list[OutboxMessage]


class Checker:
    """The end-of-run checks; every failure is one line in `mismatches`."""

    def __init__(self, state: BookState, chaos: ChaosRun) -> None:
        self.state = state
        self.chaos = chaos
        self.mismatches: list[str] = []
        self.codes_to_blocked = 0
        self.resent: Counter[str] = Counter()  # explained by a kill: outbox, group, codes
        self.sends: Counter[str] = Counter()
        self.resent_keys: set[tuple[int, str]] = set()  # outbox (chat, text) sent twice
        self.kills = Kills(chaos.fleet.kill_times)
        self.sent: dict[tuple[int, str], list[float]] = defaultdict(list)  # accepted sends
        self.chats: dict[int, set[tuple[int, str]]] = defaultdict(set)  # chat -> its keys
        for call in chaos.tg.calls:
            if call.method == "sendMessage" and call.error is None:
                key = (int(call.params["chat_id"]), str(call.params.get("text", "")))
                self.sent[key].append(call.at)
                self.chats[key[0]].add(key)
        self.lost_and_refunded_upstream = 0
        self.owners: dict[str, Activation] = {}
        self.by_ref: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
        for row in state.ledger:
            self.by_ref[(row.reason, row.ref or "")].append(row)

    def fail(self, text: str) -> None:
        self.mismatches.append(text)

    def run(self) -> None:
        self.owners = self._owners()
        self.check_balances()
        self.check_ledger_rows()
        self.check_charges()
        self.check_activations()
        self.check_smm_orders()
        self.check_outbox_once()
        self.check_group_once()
        self.check_codes()
        self.check_upstream_orders()

    # (a)
    def check_balances(self) -> None:
        sums: Counter[int] = Counter()
        for row in self.state.ledger:
            sums[row.user_id] += row.delta
        for user in self.state.users:
            if user.balance != sums[user.id] or user.balance < 0:
                self.fail(f"user {user.id}: balance {user.balance}, ledger {sums[user.id]}")

    def check_ledger_rows(self) -> None:
        """Every row is explained: a top-up the admin sent, a purchase, or a refund."""
        topups = self.chaos.topups
        for row in self.state.ledger:
            if row.reason == "topup":
                if topups.get(row.idempotency_key) != (row.user_id, row.delta):
                    self.fail(f"unexplained top-up {row.idempotency_key} {row.delta}")
            elif row.reason not in ("purchase", "refund"):
                self.fail(f"unexplained ledger row {row.reason} {row.idempotency_key}")

    # (c)
    def check_charges(self) -> None:
        orders = [("otp", a.id, a.user_id, a.price) for a in self.state.activations]
        orders += [("smm", o.id, o.user_id, o.price) for o in self.state.orders]
        charged = set()
        for kind, order_id, user_id, price in orders:
            ref = f"{kind}:{order_id}"
            charged.add(ref)
            rows = self.by_ref[("purchase", ref)]
            if [(r.user_id, r.delta, r.idempotency_key) for r in rows] != [
                (user_id, -price, f"charge:{ref}")
            ]:
                self.fail(f"{ref} charged {[r.delta for r in rows]} instead of once {-price}")
        for reason, ref in self.by_ref:
            if reason == "purchase" and ref not in charged:
                self.fail(f"a charge for an order that does not exist: {ref}")

    # (b), OTP
    def check_activations(self) -> None:
        for activation in self.state.activations:
            ref = f"otp:{activation.id}"
            rows = self.by_ref[("refund", ref)]
            back = sum(row.delta for row in rows)
            if activation.status in OTP_OPEN:
                self.fail(f"{ref} still {activation.status}")
            elif activation.code:
                if activation.status != "finished" or rows:
                    self.fail(f"{ref} got a code but is {activation.status}, refunded {back}")
            elif activation.status not in OTP_REFUNDED or [r.delta for r in rows] != [
                activation.price
            ]:
                self.fail(
                    f"{ref} delivered nothing, is {activation.status}, refunds "
                    f"{[r.delta for r in rows]} of {activation.price}"
                )
            elif rows[0].idempotency_key != f"refund:{ref}":
                self.fail(f"{ref} refunded under {rows[0].idempotency_key}")

    # (b), SMM
    def check_smm_orders(self) -> None:
        panel = self.chaos.panel.orders
        links = Counter(order.link for order in panel.values())
        for link, count in links.items():
            if count > 1:
                self.fail(f"the panel got {count} orders for {link}: an add was sent twice")
        for order in self.state.orders:
            ref = f"smm:{order.id}"
            back = sum(row.delta for row in self.by_ref[("refund", ref)])
            if back != order.refunded:
                self.fail(f"{ref}: refunded column {order.refunded}, ledger {back}")
            expected = self._smm_due(order, panel.get(order.provider_order_id or ""), links)
            if expected is None:
                continue
            if back != expected:
                self.fail(f"{ref} ({order.status}): refunded {back}, due {expected}")

    def _smm_due(self, order: SmmOrder, upstream: Any, links: Counter[str]) -> int | None:
        ref, status = f"smm:{order.id}", order.status
        if status in SMM_OPEN:
            self.fail(f"{ref} still {status}")
            return None
        if status == "unknown":
            self.fail(f"{ref} still unknown after the admin's decision")
            return None
        if status == "failed" or order.fail_reason == "admin":
            if links[order.link]:
                self.fail(f"{ref} refunded as never placed, but the panel has {order.link}")
            return order.price
        if upstream is None:
            self.fail(f"{ref} is {status} but the panel has no order {order.provider_order_id}")
            return None
        word = upstream.status.lower()
        if status == "completed" and word == "completed":
            return 0
        if status == "partial" and word == "partial":
            return order.price * upstream.remains // order.quantity
        if status == "cancelled" and word in ("canceled", "cancelled", "refunded"):
            return order.price
        self.fail(f"{ref} is {status}, the panel says {upstream.status}")
        return None

    # nothing twice
    def check_outbox_once(self) -> None:
        rows: dict[tuple[int, str], list[OutboxMessage]] = defaultdict(list)
        for row in self.state.outbox:
            if row.kind == EDIT:  # a card's edit: idempotent, only its latest state is kept
                continue
            rows[(row.chat_id, row.text)].append(row)
        for key in sorted(rows, key=lambda k: min(r.id for r in rows[k])):
            marked = sum(row.sent_at is not None for row in rows[key])
            times = sorted(self.sent.get(key, []))
            self.sends["outbox messages"] += len(times)
            where = f"outbox {[r.id for r in rows[key]]} to {key[0]} ({rows[key][0].kind})"
            if len(times) < marked:
                self.fail(f"{where}: marked sent {marked}x, accepted {len(times)}x")
            elif self._surplus(
                "outbox",
                times,
                len(times) - marked,
                where,
                unmarked=len(rows[key]) - marked,
                chat=key[0],
            ):
                self.resent_keys.add(key)

    def check_group_once(self) -> None:
        messages = [
            (SEPARATOR + text + SEPARATOR, at)
            for (chat, text), times in self.sent.items()
            if chat == GROUP_ID
            for at in times
        ]
        self.sends["group messages"] = len(messages)
        marked: Counter[str] = Counter()
        for row in self.state.notifications:
            if row.sent_at is not None:
                marked[row.text] += 1
        for text, count in marked.items():
            line = SEPARATOR + text + SEPARATOR
            times = sorted(
                at for padded, at in messages for _ in range(_occurrences(padded, line))
            )
            where = f"group line {text[:60]!r}"
            if len(times) < count:
                self.fail(f"{where}: marked sent {count}x, in the group {len(times)}x")
            else:
                self._surplus("group", times, len(times) - count, where)
        if explained := self.kills.explains("group"):
            self.resent["group messages"] = explained

    def _surplus(
        self,
        channel: str,
        times: list[float],
        extra: int,
        where: str,
        unmarked: int = 0,
        chat: int | None = None,
    ) -> bool:
        """True when there were `extra` > 0 deliveries too many and kills explain them all
        (`unmarked`: rows that ended failed, not sent, as one whose mark a kill lost may)."""
        if extra <= 0:
            return False
        resent, lost = self.kills.explain(channel, times, extra, unmarked, chat)
        if resent:
            self.resent[f"{channel} lines" if channel == "group" else channel] += resent
        if lost:
            self.resent[f"{channel} sent, mark lost, then failed"] += lost
        explained = resent + lost
        if explained < extra:
            start = self.chaos.tg.calls[0].at
            when = ", ".join(f"{at - start:.1f}" for at in times)
            kills = ", ".join(f"{at - start:.1f}" for at in self.kills.times) or "none"
            self.fail(
                f"{where}: sent {len(times)}x, {extra - explained} more than kills explain "
                f"(seconds into the run: sent at {when}; kills at {kills})"
            )
            return False
        return True

    # (d)
    def check_codes(self) -> None:
        sent: dict[int, list[str]] = defaultdict(list)
        for chat, text in self.sent:
            sent[chat] += [text] * len(self.sent[(chat, text)])
        owners = self.owners
        blocked = self.chaos.tg.blocked
        for upstream in self.chaos.sa.activations.values():
            activation = owners.get(upstream.id)
            if activation is None or not upstream.codes:
                continue
            user = activation.user_id
            if activation.code != upstream.codes[-1]:
                self.fail(
                    f"otp:{activation.id}: last code {activation.code}, upstream sent "
                    f"{upstream.codes[-1]}"
                )
            if user in blocked:
                self.codes_to_blocked += len(upstream.codes)
            for code in upstream.codes:
                pattern = re.compile(_DIGITS.format(code))
                if user not in blocked:
                    self._code_once(activation, user, code, pattern)
                for chat, texts in sent.items():
                    leaked = chat not in (user, GROUP_ID) and any(
                        "code for" in t and pattern.search(t) for t in texts
                    )
                    if leaked:
                        self.fail(f"otp:{activation.id}: code {code} reached chat {chat}")

    def _code_once(self, activation: Activation, user: int, code: str, pattern: Any) -> None:
        """The code reached its owner in exactly one message (or one resent after a kill)."""
        keys = [key for key in self.chats[user] if pattern.search(key[1])]
        if not keys:
            self.fail(f"otp:{activation.id}: code {code} never reached chat {user}")
            return
        named = [key for key in keys if "code for" in key[1]]
        count = sum(len(self.sent[key]) for key in named)
        if count == 2 and len(named) == 1 and named[0] in self.resent_keys:
            self.resent["codes"] += 1
        elif count > 1:
            self.fail(f"otp:{activation.id}: code {code} reached chat {user} {count}x")

    def _owners(self) -> dict[str, Activation]:
        owners: dict[str, Activation] = {}
        for activation in self.state.activations:
            order_id = activation.provider_order_id
            if activation.provider != OTP_PROVIDER or order_id is None:
                continue
            if order_id in owners:
                self.fail(
                    f"upstream order {order_id} belongs to otp:{owners[order_id].id} and "
                    f"otp:{activation.id}"
                )
            owners[order_id] = activation
        return owners

    # (e)
    def check_upstream_orders(self) -> None:
        owners = self.owners
        for upstream in self.chaos.sa.activations.values():
            if upstream.id not in owners:
                if upstream.state in ("expired", "cancelled") and not upstream.codes:
                    # Lost, then ended by the upstream itself with the money back to the shop
                    # (the bot refunded its user when the order list no longer had it).
                    self.lost_and_refunded_upstream += 1
                    continue
                self.fail(
                    f"upstream activation {upstream.id} (orderId {upstream.order_id}, "
                    f"{upstream.state}, codes {upstream.codes}) is unknown to the bot"
                )
            elif upstream.state in FAKE_ACTIVE:
                self.fail(f"upstream activation {upstream.id} was left {upstream.state}")
        known = {o.provider_order_id for o in self.state.orders if o.provider_order_id}
        for upstream in self.chaos.panel.orders.values():
            if upstream.order_id not in known:  # not even after the admin's /adopt
                self.fail(f"panel order {upstream.order_id} ({upstream.link}) unknown to the bot")
        flagged = " ".join(n.text for n in self.state.notifications if n.kind == "unknown-order")
        for order_id in self.chaos.resolved:
            if not re.search(rf"smm:{order_id}(?!\d)", flagged):
                self.fail(f"smm:{order_id} was lost but never flagged to the admins")
        for order in self.state.orders:
            if order.fail_reason == "admin" and self.chaos.resolved.get(order.id) != "refund":
                self.fail(f"smm:{order.id} refunded by an admin nobody asked")


class Kills:
    """The kills' times, each explaining the resend of the messages in flight when it fell: in
    the group, one message (every line of that one merged message; the group is sent one
    message at a time); in the outbox, one message per chat (the outbox sends a batch
    concurrently, one message per chat)."""

    def __init__(self, times: list[float]) -> None:
        self.times = sorted(times)
        # channel -> (kill, chat or None) -> the send it explains (its time: the message)
        self.used: dict[str, dict[tuple[int, int | None], float]] = defaultdict(dict)

    def explain(
        self,
        channel: str,
        times: list[float],
        extra: int,
        unmarked: int = 0,
        chat: int | None = None,
    ) -> tuple[int, int]:
        """How many of `extra` surplus deliveries at `times` (sorted; the lines of one message
        share its time) kills explain: (sent again, sent but then recorded as failed). A kill
        explains the message in flight when it fell, the last one sent before it (within
        RECORD_WINDOW_S; up to SEND_LAG_S after it counts as before): each of its lines may come
        once more in a later message, or, when nothing came again, its row may have ended failed
        (one of `unmarked`: the retry met a block). One message per kill and `chat` (None: per
        kill)."""
        in_message = Counter(times)
        resent = lost = 0
        for index, at in enumerate(self.times):
            if resent + lost >= extra:
                break
            before = [t for t in in_message if t - SEND_LAG_S < at and at - t <= RECORD_WINDOW_S]
            if not before:
                continue  # nothing in flight then
            last = max(before)
            again = any(t > last and t > at for t in in_message)
            if not again and lost >= unmarked:
                continue  # nothing sent again after it, nor a row that then failed
            if self.used[channel].setdefault((index, chat), last) != last:
                continue  # this kill explains another message (to this chat)
            count = min(in_message[last], extra - resent - lost)
            if again:
                resent += count
            else:
                lost += min(count, unmarked - lost)
        return resent, lost

    def explains(self, channel: str) -> int:
        """How many kills explain a resend in `channel`."""
        return len({index for index, _ in self.used[channel]})


def _occurrences(text: str, part: str) -> int:
    """How often `part` occurs in `text`, overlaps counted (lines share their separators)."""
    count, start = 0, text.find(part)
    while start != -1:
        count += 1
        start = text.find(part, start + 1)
    return count
