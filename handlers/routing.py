"""Routers declared at module level, aiogram's style, and built fresh for each Dispatcher.

An aiogram Router joins one parent for life, and tests build several Dispatchers in one
process: so a handler module declares a `RouterTemplate` (the same decorators: `@router.message(
...)`, `@router.callback_query(...)`, `@router.errors()`, `router.message.filter(...)`) and
`handlers.get_routers()` makes new Routers from the templates each time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiogram import Router

Callback = TypeVar("Callback", bound=Callable[..., Any])


class ObserverTemplate:
    """One event's handlers and router-level filters, replayed onto a real observer."""

    def __init__(self) -> None:
        self.filters: list[Callable[..., Any]] = []
        self.handlers: list[tuple[Callable[..., Any], tuple[Callable[..., Any], ...], dict]] = []

    def filter(self, *filters: Callable[..., Any]) -> None:
        """For every handler of this event (aiogram's `router.message.filter(...)`)."""
        self.filters.extend(filters)

    def register(
        self,
        callback: Callback,
        *filters: Callable[..., Any],
        flags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Callback:
        self.handlers.append((callback, filters, {"flags": flags, **kwargs}))
        return callback

    def __call__(
        self, *filters: Callable[..., Any], flags: dict[str, Any] | None = None, **kwargs: Any
    ) -> Callable[[Callback], Callback]:
        def decorator(callback: Callback) -> Callback:
            return self.register(callback, *filters, flags=flags, **kwargs)

        return decorator


class RouterTemplate:
    """What a module-level `Router(name=...)` would hold; `build()` makes that Router."""

    EVENTS = ("message", "callback_query", "error")

    def __init__(self, *, name: str) -> None:
        self.name = name
        self.message = ObserverTemplate()
        self.callback_query = ObserverTemplate()
        self.errors = self.error = ObserverTemplate()

    def build(self) -> Router:
        router = Router(name=self.name)
        for event in self.EVENTS:
            template: ObserverTemplate = getattr(self, event)
            observer = router.observers[event]
            if template.filters:
                observer.filter(*template.filters)
            for callback, filters, kwargs in template.handlers:
                observer.register(callback, *filters, **kwargs)
        return router
