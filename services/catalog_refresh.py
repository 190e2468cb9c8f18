"""What the OTP and SMM catalogs share: holding each provider's last good answer and refreshing it.

`RefreshingCatalog` fetches every provider at once (each under `fetch_timeout_s`), keeps the
previous answer of a provider that fails (logged, and shown by `provider_status()`), then lets the
subclass rebuild its index. `to_json()` / `load_json()` keep those answers (not our prices) in a
versioned snapshot, so a restarted bot sells before its first refresh; a snapshot older than what
a provider already fetched is not applied.

A subclass says what a provider's fetch is (`_download`), what of it is held (`_keep`), how to
rebuild (`_reindex`) and how a held item is written to and read from a snapshot (and which
snapshot versions it reads: an older one stays readable after an upgrade).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

from services.money import to_decimal
from services.providers.base import ProviderBase

SNAPSHOT_VERSION = 1
# What reading an unreadable snapshot raises (pydantic's ValidationError is a ValueError; a bad
# number in a snapshot, decimal.InvalidOperation, an ArithmeticError; a bad index an IndexError).
SNAPSHOT_ERRORS = (ValueError, KeyError, TypeError, AttributeError, ArithmeticError, IndexError)

P = TypeVar("P", bound=ProviderBase)  # the providers' type
F = TypeVar("F")  # what one provider's fetch answers
R = TypeVar("R")  # one item held of that answer (an offer row, a service)


@dataclass(frozen=True, slots=True)
class RefreshReport:
    ok: tuple[str, ...]
    failed: Mapping[str, str]  # provider -> error type and message (keys already redacted)
    offers: int  # for sale after it: (country, service, provider) offers, or SMM services


@dataclass(slots=True)
class ProviderSource(Generic[R]):
    """The last good answer of one provider."""

    items: tuple[R, ...] = ()
    fetched_at: datetime | None = None
    error: str | None = None


class RefreshingCatalog(ABC, Generic[P, F, R]):
    """The providers of one kind, their rates (one unit of a provider's currency in the store
    currency) and their last good answers; the index built from them is the subclass's."""

    log: ClassVar[logging.Logger]  # the subclass module's logger
    label: ClassVar[str]  # starts every log line: "catalog", "smm catalog"
    items_name: ClassVar[str]  # "offers", "services": in logs, provider_status() and snapshots
    snapshot_version: ClassVar[int] = SNAPSHOT_VERSION  # what to_json() writes
    readable_versions: ClassVar[frozenset[int]] = frozenset({SNAPSHOT_VERSION})

    def __init__(
        self,
        providers: Iterable[P],
        *,
        rates: Mapping[str, Decimal],
        fetch_timeout_s: float | None,
    ) -> None:
        self.providers: dict[str, P] = {p.name: p for p in providers}
        missing = sorted(set(self.providers) - set(rates))
        if missing:
            raise ValueError(f"no rate for provider(s): {', '.join(missing)}")
        self.rates = {name: to_decimal(rates[name]) for name in self.providers}  # no floats
        self.fetch_timeout_s = fetch_timeout_s
        self._sources: dict[str, ProviderSource[R]] = {
            name: ProviderSource() for name in self.providers
        }
        self._lock = asyncio.Lock()
        self.built_at: datetime | None = None
        self.excluded: set[str] = set()  # providers an admin switched off: kept, not sold

    # --- what a subclass says --------------------------------------------------------------

    @abstractmethod
    def _download(self, provider: P) -> Awaitable[F]:
        """One provider's fetch (what `fetch_timeout_s` bounds)."""

    @abstractmethod
    async def _keep(self, fetched: F) -> tuple[R, ...]:
        """What of a fetched answer is held until the next good one."""

    @abstractmethod
    async def _reindex(self) -> None:
        """Rebuild the index from the held answers (called under the lock)."""

    @abstractmethod
    def _sold_count(self) -> int:
        """What a refresh reports as for sale."""

    @abstractmethod
    def _snapshot_items(self, items: tuple[R, ...]) -> Any:
        """One provider's held items as JSON values."""

    @abstractmethod
    def _items_from_snapshot(self, values: Any, version: int) -> tuple[R, ...]:
        """The inverse of _snapshot_items() (of that snapshot version); raises one of
        SNAPSHOT_ERRORS on a bad value."""

    def _loads(self, data: str | bytes) -> Any:
        return json.loads(data)

    # --- refresh -------------------------------------------------------------------------

    async def refresh(self) -> RefreshReport:
        """Fetch every provider at once and rebuild; a failing provider keeps its last answer."""
        async with self._lock:
            names = list(self.providers)
            results = await asyncio.gather(*(self._fetch(name) for name in names))
            failed: dict[str, str] = {}
            for name, result in zip(names, results, strict=True):
                source = self._sources[name]
                if isinstance(result, BaseException):
                    source.error = f"{type(result).__name__}: {result}"
                    failed[name] = source.error
                    self.log.warning(
                        f"{self.label}: %s {self.items_name} failed, keeping %d previous: %s",
                        name,
                        len(source.items),
                        source.error,
                    )
                else:
                    source.items, source.fetched_at, source.error = result, utc_now(), None
            del results
            await self._reindex()
            ok = tuple(name for name in names if name not in failed)
            return RefreshReport(ok=ok, failed=failed, offers=self._sold_count())

    async def _fetch(self, name: str) -> tuple[R, ...] | Exception:
        try:
            download = self._download(self.providers[name])
            return await self._keep(await asyncio.wait_for(download, self.fetch_timeout_s))
        except Exception as exc:  # noqa: BLE001 - refresh() logs it; the others go on
            return exc

    def provider_status(self) -> dict[str, dict[str, object]]:
        """Per provider: items held, when they were fetched, the last error (admin screen)."""
        return {
            name: {
                self.items_name: len(source.items),
                "fetched_at": source.fetched_at,
                "error": source.error,
            }
            for name, source in self._sources.items()
        }

    # --- snapshot --------------------------------------------------------------------------

    def to_json(self) -> str:
        """Every provider's held answer (not our prices), compact."""
        providers = {
            name: {
                "fetched_at": source.fetched_at.isoformat(),
                self.items_name: self._snapshot_items(source.items),
            }
            for name, source in self._sources.items()
            if source.fetched_at is not None
        }
        snapshot = {"v": self.snapshot_version, "providers": providers}
        return json.dumps(snapshot, ensure_ascii=False, separators=(",", ":"))

    async def load_json(self, data: str | bytes) -> int:
        """Take a snapshot's answers for the providers still configured (unless they fetched
        something newer since), then rebuild with today's rates and markups. Returns how many
        providers were loaded; an unreadable snapshot loads nothing and is logged."""
        try:
            with gc_paused():
                loaded = self._read_snapshot(data)
        except SNAPSHOT_ERRORS as exc:
            self.log.warning(f"{self.label}: ignoring unreadable snapshot: %s", exc)
            return 0
        async with self._lock:
            count = 0
            for name, (fetched_at, items) in loaded.items():
                source = self._sources[name]
                if source.fetched_at is None or source.fetched_at < fetched_at:
                    source.items, source.fetched_at = items, fetched_at
                    count += 1
            await self._reindex()
            return count

    def _read_snapshot(self, data: str | bytes) -> dict[str, tuple[datetime, tuple[R, ...]]]:
        snapshot = self._loads(data)
        version = snapshot.get("v")
        if type(version) is not int or version not in self.readable_versions:
            raise ValueError(f"snapshot version {version!r}")
        return {
            name: (
                parse_time(entry["fetched_at"]),
                self._items_from_snapshot(entry[self.items_name], version),
            )
            for name, entry in snapshot["providers"].items()
            if name in self._sources
        }


class _GcPause:
    """Nested pauses of the cyclic garbage collector, from any thread: the collector runs again
    when the last one ends (if it ran before the first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._was_enabled = False

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1

    def exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._was_enabled:
                gc.enable()


_gc_pause = _GcPause()


@contextmanager
def gc_paused() -> Iterator[None]:
    """For a build that allocates ~10^5 objects in a fraction of a second, none of them in a
    reference cycle: meanwhile the cyclic collector would walk every object of the process (the
    old index included) several times, a quarter of the build's time. Only for synchronous,
    CPU-bound work (no await inside), so the pause lasts as long as the work."""
    _gc_pause.enter()
    try:
        yield
    finally:
        _gc_pause.exit()


def parse_time(text: str) -> datetime:
    """An ISO time; a naive one is taken as UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)
