"""What a protocol module of the reseller API takes and returns: plain data, no web framework.

bot/reseller_api.py reads the HTTP request into an `ApiRequest` (query and form merged, the
form winning, as PHP's `$_REQUEST` does), calls the protocol, and writes its `Reply` back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ApiRequest:
    method: str
    path: str
    params: Mapping[str, str]  # query string and form fields
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""  # the raw body (a JSON protocol parses it itself)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: str
    content_type: str = "text/plain"
    headers: Mapping[str, str] = field(default_factory=dict)


class ApiProtocol(Protocol):
    """One protocol of the server: where it is served and how it answers."""

    paths: tuple[str, ...]

    def handle(self, request: ApiRequest) -> Awaitable[Reply]: ...

    def failure(self) -> Reply:
        """The protocol's generic error, for a request that failed inside (logged)."""
        ...

    def too_large(self) -> Reply:
        """A body over the limit (HTTP 413)."""
        ...

    def too_slow(self) -> Reply:
        """A client that did not send its body in time (HTTP 408)."""
        ...
