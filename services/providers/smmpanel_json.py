"""SMM panel API v2 with a JSON body (docs/protocols.md §4.7).

The same actions and answers as the form protocol (`smmpanel.py`) except:

* the body is JSON, with numbers as JSON numbers (`"service": 1, "quantity": 100`);
* the published examples do not show how the token is sent, so it goes both ways: `key` in
  the body and an `Authorization: Bearer <key>` header;
* `add` answers `{"order_id": 123}` (`order` accepted too);
* status is always asked with `orders=` (unknown ids are left out of the answer);
* validation errors are `{"errors": {"field": ["message", ...]}}` (a BadRequest);
* there is no refill.
"""

from __future__ import annotations

from typing import Any

from services.providers.smmpanel import SmmPanelProvider


class SmmPanelJsonProvider(SmmPanelProvider):
    kind = "smmpanel_json"
    supports_refill = False
    single_status_param = False
    order_id_keys = ("order_id", "order")

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "Authorization": f"Bearer {self._api_key}"}

    def _encode(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"json": payload}

    def _wire_id(self, value: str) -> str | int:
        return int(value) if value.isascii() and value.isdigit() else value

    def _error_text(self, payload: Any, status: int) -> str | None:
        text = super()._error_text(payload, status)
        if text is not None or not isinstance(payload, dict):
            return text
        errors = payload.get("errors")
        if not isinstance(errors, dict) or not errors:
            return None
        parts = []
        for field, messages in errors.items():
            items = messages if isinstance(messages, list) else [messages]
            parts.append(f"{field}: " + "; ".join(str(m) for m in items))
        return "validation failed: " + " | ".join(parts)
