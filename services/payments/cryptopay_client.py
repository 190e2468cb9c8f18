"""services.payments.cryptopay.CryptoPayApi over aiosend, the maintained Crypto Pay client
(`aiosend.CryptoPay` with a `Network` whose base is CRYPTOPAY_API_URL, so testnet or a test
server work as the mainnet does).

aiosend checks the token with a blocking `getMe` when the client is made, and on a refusal tries
the other network: the client is therefore made on first use, in a thread, and a refusal there is
a CryptoPayError like any other. Amounts go to aiosend as the float it asks for, built from a
Decimal of whole cents (its shortest repr is that decimal); nothing read back from it is money:
the credit is always the `payments` row's own amount.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import aiosend
from aiohttp import ClientError, ClientSession, ClientTimeout
from aiosend.client import Network
from aiosend.client.session import BaseSession

from services.payments.cryptopay import CryptoInvoice, CryptoPayError

TIMEOUT_S = 20


class _Session(BaseSession):
    """aiosend's session interface over one kept aiohttp session (aiosend's own opens one per
    request, with an argument aiohttp deprecated)."""

    def __init__(self, network: Network, timeout: float = TIMEOUT_S) -> None:
        super().__init__(network, timeout)
        self._http: ClientSession | None = None

    async def request(self, token: str, client: aiosend.CryptoPay, method: Any) -> Any:
        if self._http is None or self._http.closed:
            self._http = ClientSession(timeout=ClientTimeout(total=self.timeout))
        try:
            async with self._http.post(
                self.network.url(method),
                data=method.model_dump_json(exclude_none=True),
                headers={"Crypto-Pay-API-Token": token, "Content-Type": "application/json"},
            ) as response:
                content = await response.text()
                status = response.status
        except TimeoutError:
            raise CryptoPayError(f"{method.__method__}: no answer in {self.timeout} s") from None
        except ClientError as exc:
            raise CryptoPayError(f"{method.__method__}: {type(exc).__name__}") from None
        answer = self._check_response(client, method, status, content)
        return answer.result

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


class AiosendCryptoPay:
    def __init__(self, token: str, api_url: str) -> None:
        self.token = token
        self.network = Network(name="CRYPTOPAY_API_URL", base=api_url.rstrip("/") + "/{method}")
        self._client: aiosend.CryptoPay | None = None
        self._lock = asyncio.Lock()

    async def _get(self) -> aiosend.CryptoPay:
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.to_thread(
                        aiosend.CryptoPay,
                        self.token,
                        self.network,
                        session=_Session,
                        timeout=TIMEOUT_S,
                    )
                except (aiosend.exceptions.CryptoPayError, OSError) as exc:
                    raise CryptoPayError(f"Crypto Pay refused the token: {exc}") from None
            return self._client

    async def create_invoice(
        self,
        *,
        amount: Decimal,
        fiat: str,
        assets: Sequence[str],
        description: str,
        payload: str,
        expires_in: int,
    ) -> CryptoInvoice:
        client = await self._get()
        try:
            invoice = await client.create_invoice(
                amount=float(amount),
                currency_type="fiat",
                fiat=fiat,
                accepted_assets=list(assets) or None,
                description=description,
                payload=payload,
                expires_in=expires_in,
            )
        except (aiosend.exceptions.CryptoPayError, OSError) as exc:
            raise CryptoPayError(str(exc)) from None
        return _invoice(invoice)

    async def get_invoices(self, invoice_ids: Sequence[int]) -> Sequence[CryptoInvoice]:
        if not invoice_ids:
            return []
        client = await self._get()
        try:
            invoices = await client.get_invoices(
                invoice_ids=list(invoice_ids), count=len(invoice_ids)
            )
        except (aiosend.exceptions.CryptoPayError, OSError) as exc:
            raise CryptoPayError(str(exc)) from None
        if not isinstance(invoices, list):
            invoices = [invoices]
        return [_invoice(invoice) for invoice in invoices]

    async def recent_invoices(self, count: int) -> Sequence[CryptoInvoice]:
        client = await self._get()
        try:
            invoices = await client.get_invoices(count=count)
        except (aiosend.exceptions.CryptoPayError, OSError) as exc:
            raise CryptoPayError(str(exc)) from None
        if not isinstance(invoices, list):
            invoices = [invoices]
        return [_invoice(invoice) for invoice in invoices]

    async def close(self) -> None:
        if self._client is not None:
            session = self._client.session
            if isinstance(session, _Session):
                await session.close()


def _invoice(invoice: aiosend.types.Invoice) -> CryptoInvoice:
    raw = invoice.status
    status = str(getattr(raw, "value", raw) or "")
    return CryptoInvoice(
        invoice_id=invoice.invoice_id,
        status=status,
        pay_url=invoice.bot_invoice_url,
        payload=invoice.payload,
    )
