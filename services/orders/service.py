"""What every order service has: its dependencies, reading its orders, and a clean stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from db.engine import Database
from db.models import utcnow
from services.auto_switch import AutoSwitch
from services.notifier import Notifier
from services.orders import core

log = logging.getLogger(__name__)

CatalogT = TypeVar("CatalogT")
ProviderT = TypeVar("ProviderT")
RulesT = TypeVar("RulesT")
PresenterT = TypeVar("PresenterT")


class OrderService(Generic[CatalogT, ProviderT, RulesT, PresenterT]):
    kind: ClassVar[str]  # "otp" | "smm": the order table and lifecycle (services.orders.core)

    def __init__(
        self,
        db: Database,
        catalog: CatalogT,
        providers: dict[str, ProviderT],
        rules: RulesT,
        *,
        clock: Callable[[], datetime] = utcnow,
        presenter: PresenterT | None = None,
        notifier: Notifier | None = None,
        switch: AutoSwitch | None = None,
    ) -> None:
        self.db = db
        # Automatic provider switching (services/auto_switch.py): told every buy's outcome.
        self.switch = switch
        self.catalog = catalog
        self.providers = providers
        self.rules = rules
        self.clock = clock
        # The bot layer's texts and cards; none in a service used without Telegram.
        self.presenter = presenter
        self.notifier = notifier or Notifier()  # the default one stores nothing
        self._poll_lock = asyncio.Lock()
        self._reconcile_lock = asyncio.Lock()
        self._stopped = False
        self._stop = asyncio.Event()  # wakes a round that waits between upstream readings

    async def stop(self) -> None:
        """Shutdown: no new rounds, and let a running one finish."""
        self._stopped = True
        self._stop.set()
        async with self._poll_lock, self._reconcile_lock:
            pass

    async def _observe(self, provider: str, error: BaseException | None) -> None:
        """A buy's outcome for automatic switching; its own trouble never fails the buy."""
        if self.switch is None:
            return
        try:
            await self.switch.observe(provider, error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("automatic switch failed", extra={"provider": provider})

    def _busy(self, lock: asyncio.Lock) -> bool:
        """A round is running already, or the service is stopping: skip this one."""
        return lock.locked() or self._stopped

    async def get(self, order_id: int) -> Any:
        return await core.get(self.db, self.kind, order_id)

    async def get_own(self, user_id: int, order_id: int) -> Any:
        return await core.get_own(self.db, self.kind, user_id, order_id)

    async def history(self, user_id: int, offset: int, limit: int) -> tuple[list[Any], int]:
        return await core.history(self.db, self.kind, user_id, offset, limit)

    async def _by_confirm_key(self, key: str) -> int | None:
        return await core.by_confirm_key(self.db, self.kind, key)
