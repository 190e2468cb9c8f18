"""A fake Crypto Pay API (@CryptoBot) on 127.0.0.1, following its documentation.

`/api/<method>` with the `Crypto-Pay-API-Token` header (401 `UNAUTHORIZED` without the right
one); answers `{"ok": true, "result": ...}` or `{"ok": false, "error": {"code", "name"}}`.
Methods: getMe, createInvoice (fiat invoices with accepted_assets, crypto ones with asset; the
documented limits), getInvoices (invoice_ids, status, offset, count; the result as `{"items":
[...]}`) and deleteInvoice. Amounts are strings, as Crypto Pay sends them.

A test plays the customer and Crypto Pay's side: `pay(invoice_id)` marks an invoice paid,
`expire(invoice_id)` lets it run out, `send_webhook(url, invoice_id)` POSTs the
`invoice_paid` update signed as documented (header `crypto-pay-api-signature`: hex
HMAC-SHA-256 of the body with the SHA-256 of the token as the key); `signature=` forges one.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web

TOKEN = "12345:AAtestCryptoPayTokenForTheFake00"
SIGNATURE_HEADER = "crypto-pay-api-signature"
ASSETS = {"USDT", "TON", "BTC", "ETH", "LTC", "BNB", "TRX", "USDC"}
FIATS = {"USD", "EUR", "RUB", "BYN", "UAH", "GBP", "CNY", "KZT", "UZS", "GEL", "TRY"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeInvoice:
    invoice_id: int
    amount: str
    currency_type: str
    fiat: str | None
    asset: str | None
    accepted_assets: list[str] | None
    description: str | None
    payload: str | None
    expires_in: int | None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "active"
    paid_at: datetime | None = None

    def as_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "invoice_id": self.invoice_id,
            "hash": f"IV{self.invoice_id:08d}",
            "currency_type": self.currency_type,
            "amount": self.amount,
            "bot_invoice_url": f"https://t.me/CryptoTestnetBot?start=IV{self.invoice_id:08d}",
            "mini_app_invoice_url": f"https://t.me/CryptoTestnetBot/app?startapp=IV{self.invoice_id}",
            "web_app_invoice_url": f"https://testnet-app.send.tg/invoices/IV{self.invoice_id}",
            "status": self.status,
            "created_at": _iso(self.created_at),
            "allow_comments": True,
            "allow_anonymous": True,
        }
        optional = {
            "fiat": self.fiat,
            "asset": self.asset,
            "accepted_assets": self.accepted_assets,
            "description": self.description,
            "payload": self.payload,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        if self.expires_in:
            body["expiration_date"] = _iso(self.created_at + timedelta(seconds=self.expires_in))
        if self.status == "paid" and self.paid_at is not None:
            body.update(
                paid_at=_iso(self.paid_at),
                paid_asset="USDT",
                paid_amount=self.amount,
                paid_fiat_rate="1.00",
                paid_usd_rate="1.00",
                paid_anonymously=False,
            )
        return body


class ApiError(Exception):
    def __init__(self, code: int, name: str) -> None:
        super().__init__(name)
        self.code = code
        self.name = name


class FakeCryptoPay:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.invoices: dict[int, FakeInvoice] = {}
        self.requests: Counter[str] = Counter()
        self.webhook_answers: list[int] = []
        self.drop_create_answers = 0  # createInvoice makes the invoice, then the line drops
        self._ids = itertools.count(1001)
        self._update_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""  # CRYPTOPAY_API_URL: .../api

    async def __aenter__(self) -> FakeCryptoPay:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the API -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.requests[method] = self.requests[method] + 1
        if request.headers.get("Crypto-Pay-API-Token") != self.token:
            return web.json_response(
                {"ok": False, "error": {"code": 401, "name": "UNAUTHORIZED"}}, status=401
            )
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            raw = await request.read()
            if raw:
                params.update(json.loads(raw))
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error": {"code": 405, "name": "METHOD_NOT_FOUND"}}, status=405
            )
        try:
            result = handler(params)
        except ApiError as exc:
            return web.json_response(
                {"ok": False, "error": {"code": exc.code, "name": exc.name}}, status=400
            )
        if method == "createInvoice" and self.drop_create_answers > 0:
            self.drop_create_answers -= 1
            if request.transport is not None:
                request.transport.close()  # the invoice exists; its answer never arrives
            raise web.HTTPServiceUnavailable()
        return web.json_response({"ok": True, "result": result})

    def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "app_id": 4242,
            "name": "Test Shop",
            "payment_processing_bot_username": "CryptoTestnetBot",
        }

    def api_createInvoice(self, params: dict[str, Any]) -> dict[str, Any]:
        currency_type = params.get("currency_type") or "crypto"
        amount = Decimal(str(params.get("amount", "0")))
        if not amount.is_finite() or amount <= 0:
            raise ApiError(400, "AMOUNT_INVALID")
        fiat = params.get("fiat")
        asset = params.get("asset")
        accepted = params.get("accepted_assets")
        if currency_type == "fiat":
            if fiat not in FIATS:
                raise ApiError(400, "FIAT_INVALID")
            if isinstance(accepted, str):
                accepted = [a for a in accepted.split(",") if a]
            if accepted and not set(accepted) <= ASSETS:
                raise ApiError(400, "ACCEPTED_ASSETS_INVALID")
        elif asset not in ASSETS:
            raise ApiError(400, "ASSET_INVALID")
        expires_in = params.get("expires_in")
        if expires_in is not None and not 1 <= int(expires_in) <= 2_678_400:
            raise ApiError(400, "EXPIRES_IN_INVALID")
        payload = params.get("payload")
        if payload is not None and len(str(payload).encode()) > 4096:
            raise ApiError(400, "PAYLOAD_TOO_LONG")
        invoice = FakeInvoice(
            invoice_id=next(self._ids),
            amount=format(amount.normalize(), "f"),
            currency_type=currency_type,
            fiat=fiat if currency_type == "fiat" else None,
            asset=asset if currency_type != "fiat" else None,
            accepted_assets=accepted or None,
            description=params.get("description"),
            payload=payload,
            expires_in=int(expires_in) if expires_in else None,
        )
        self.invoices[invoice.invoice_id] = invoice
        return invoice.as_api()

    def api_getInvoices(self, params: dict[str, Any]) -> dict[str, Any]:
        invoices = list(self.invoices.values())
        ids = params.get("invoice_ids")
        if ids:
            wanted = {int(i) for i in str(ids).split(",") if i.strip()}
            invoices = [i for i in invoices if i.invoice_id in wanted]
        if params.get("status"):
            invoices = [i for i in invoices if i.status == params["status"]]
        offset = int(params.get("offset") or 0)
        count = int(params.get("count") or 100)
        if not 1 <= count <= 1000:
            raise ApiError(400, "COUNT_INVALID")
        return {"items": [i.as_api() for i in invoices[offset : offset + count]]}

    def api_deleteInvoice(self, params: dict[str, Any]) -> bool:
        invoice_id = int(params.get("invoice_id", 0))
        if self.invoices.pop(invoice_id, None) is None:
            raise ApiError(400, "INVOICE_NOT_FOUND")
        return True

    # --- the customer and Crypto Pay's side ----------------------------------------------------

    def pay(self, invoice_id: int) -> FakeInvoice:
        invoice = self.invoices[invoice_id]
        assert invoice.status == "active", invoice.status
        invoice.status, invoice.paid_at = "paid", datetime.now(UTC)
        return invoice

    def expire(self, invoice_id: int) -> None:
        self.invoices[invoice_id].status = "expired"

    def sign(self, body: bytes) -> str:
        key = hashlib.sha256(self.token.encode()).digest()
        return hmac.new(key, body, hashlib.sha256).hexdigest()

    def webhook_body(self, invoice_id: int) -> bytes:
        update = {
            "update_id": next(self._update_ids),
            "update_type": "invoice_paid",
            "request_date": _iso(datetime.now(UTC)),
            "payload": self.invoices[invoice_id].as_api(),
        }
        return json.dumps(update).encode()

    async def send_webhook(
        self, url: str, invoice_id: int, *, body: bytes | None = None, signature: str | None = None
    ) -> int:
        """POST the `invoice_paid` update (or `body`) to the bot; returns the HTTP status."""
        body = body if body is not None else self.webhook_body(invoice_id)
        headers = {"Content-Type": "application/json"}
        headers[SIGNATURE_HEADER] = signature if signature is not None else self.sign(body)
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            self.webhook_answers.append(response.status)
            return response.status
