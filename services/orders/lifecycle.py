"""Order lifecycles as data: the states of each kind of order and the only moves between them.

Every state change of an order (a customer's button, the poller, reconciliation, a timeout, an
admin's refund or adoption) is one of these transitions, applied by `services.orders.core`
with a conditional UPDATE (`WHERE status = <from>`); a move that is not in the table cannot
happen anywhere. `docs/lifecycles.md` shows the same tables as diagrams made by `mermaid()`,
and a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Refund(StrEnum):
    NONE = "none"
    FULL = "full"  # what was paid, less what was refunded before
    SHARE = "share"  # the undelivered share (SMM Partial), never more than was paid
    REST = "rest"  # an admin's refund of a closed order: whatever was not refunded yet


class OtpState(StrEnum):
    BUYING = "buying"
    UNKNOWN = "unknown"
    WAITING = "waiting"
    RECEIVED = "received"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


class SmmState(StrEnum):
    PLACING = "placing"
    UNKNOWN = "unknown"
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Transition:
    source: str
    target: str
    event: str  # what makes it happen, in a few words (the diagram's label)
    refund: Refund = Refund.NONE


@dataclass(frozen=True)
class Lifecycle:
    kind: str  # "otp" | "smm": the prefix of order references and refund keys
    states: tuple[str, ...]
    start: str
    transitions: tuple[Transition, ...]
    # An admin's /refund: from this state, to that one, with that refund (each one a row above).
    admin_refund: Mapping[str, tuple[str, Refund]] = field(default_factory=dict)

    def allowed(self, source: str, target: str, refund: Refund | None = None) -> bool:
        return any(
            (t.source, t.target) == (source, target) and refund in (None, t.refund)
            for t in self.transitions
        )

    def sources(self, target: str, refund: Refund | None = None) -> tuple[str, ...]:
        """Every state from which `target` can be reached (with that kind of refund)."""
        return tuple(
            t.source
            for t in self.transitions
            if t.target == target and (refund is None or t.refund is refund)
        )

    @property
    def final(self) -> frozenset[str]:
        leaving = {t.source for t in self.transitions if t.source != t.target}
        return frozenset(self.states) - leaving

    @property
    def open(self) -> tuple[str, ...]:
        return tuple(s for s in self.states if s not in self.final)


def _moves(rows: Iterable[tuple[str, str, str, Refund]]) -> tuple[Transition, ...]:
    return tuple(Transition(*row) for row in rows)


Ot, R = OtpState, Refund
OTP = Lifecycle(
    kind="otp",
    states=tuple(Ot),
    start=Ot.BUYING,
    transitions=_moves(
        [
            (Ot.BUYING, Ot.WAITING, "upstream issued a number", R.NONE),
            (Ot.BUYING, Ot.FAILED, "every provider refused", R.FULL),
            (Ot.BUYING, Ot.UNKNOWN, "the buy's answer was lost", R.NONE),
            (Ot.UNKNOWN, Ot.WAITING, "found upstream / admin /adopt", R.NONE),
            (Ot.UNKNOWN, Ot.FAILED, "no such order upstream", R.FULL),
            (Ot.UNKNOWN, Ot.CANCELLED, "admin /refund", R.FULL),
            (Ot.WAITING, Ot.RECEIVED, "a code arrived", R.NONE),
            (Ot.WAITING, Ot.CANCELLED, "customer / upstream / admin cancel", R.FULL),
            (Ot.WAITING, Ot.EXPIRED, "no code before the deadline", R.FULL),
            (Ot.RECEIVED, Ot.RECEIVED, "another code arrived", R.NONE),
            (Ot.RECEIVED, Ot.FINISHED, "customer finish / deadline / upstream ended", R.NONE),
            (Ot.RECEIVED, Ot.FINISHED, "admin /refund", R.FULL),
            (Ot.FINISHED, Ot.FINISHED, "admin /refund", R.REST),
        ]
    ),
    admin_refund={
        Ot.UNKNOWN: (Ot.CANCELLED, R.FULL),
        Ot.WAITING: (Ot.CANCELLED, R.FULL),
        Ot.RECEIVED: (Ot.FINISHED, R.FULL),
        Ot.FINISHED: (Ot.FINISHED, R.REST),
    },
)

S = SmmState
SMM = Lifecycle(
    kind="smm",
    states=tuple(S),
    start=S.PLACING,
    transitions=_moves(
        [
            (S.PLACING, S.PENDING, "panel accepted the order", R.NONE),
            (S.PLACING, S.FAILED, "panel refused / never sent", R.FULL),
            (S.PLACING, S.UNKNOWN, "the add's answer was lost", R.NONE),
            (S.UNKNOWN, S.PENDING, "admin /adopt", R.NONE),
            (S.UNKNOWN, S.CANCELLED, "admin /refund", R.FULL),
            (S.PENDING, S.IN_PROGRESS, "panel started", R.NONE),
            (S.PENDING, S.COMPLETED, "Completed", R.NONE),
            (S.PENDING, S.PARTIAL, "Partial", R.SHARE),
            (S.PENDING, S.CANCELLED, "Canceled / Refunded / admin /refund", R.FULL),
            (S.PENDING, S.UNKNOWN, "panel cannot show it past the grace period", R.NONE),
            (S.IN_PROGRESS, S.COMPLETED, "Completed", R.NONE),
            (S.IN_PROGRESS, S.PARTIAL, "Partial", R.SHARE),
            (S.IN_PROGRESS, S.CANCELLED, "Canceled / Refunded / admin /refund", R.FULL),
            (S.IN_PROGRESS, S.UNKNOWN, "panel cannot show it past the grace period", R.NONE),
            (S.COMPLETED, S.COMPLETED, "admin /refund", R.REST),
            (S.PARTIAL, S.PARTIAL, "admin /refund", R.REST),
        ]
    ),
    admin_refund={
        S.UNKNOWN: (S.CANCELLED, R.FULL),
        S.PENDING: (S.CANCELLED, R.FULL),
        S.IN_PROGRESS: (S.CANCELLED, R.FULL),
        S.COMPLETED: (S.COMPLETED, R.REST),
        S.PARTIAL: (S.PARTIAL, R.REST),
    },
)

LIFECYCLES = {OTP.kind: OTP, SMM.kind: SMM}


def mermaid(lifecycle: Lifecycle) -> str:
    """The lifecycle as a Mermaid state diagram (docs/lifecycles.md is made of these)."""
    lines = ["stateDiagram-v2", f"    [*] --> {lifecycle.start}"]
    for t in lifecycle.transitions:
        label = t.event if t.refund is Refund.NONE else f"{t.event} · refund {t.refund.value}"
        lines.append(f"    {t.source} --> {t.target}: {label}")
    lines += [f"    {state} --> [*]" for state in lifecycle.states if state in lifecycle.final]
    return "\n".join(lines)
