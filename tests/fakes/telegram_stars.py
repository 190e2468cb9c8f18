"""The payments half of the fake Bot API (tests/fakes/telegram.py): Telegram Stars.

sendInvoice (XTR: no provider token, exactly one price, 1-10,000 Stars, Telegram's lengths),
answerPreCheckoutQuery (once per query), refundStarPayment (CHARGE_NOT_FOUND,
CHARGE_ALREADY_REFUNDED as Telegram answers them) and getStarTransactions (the incoming
payments, their id being the `telegram_payment_charge_id`, and the refunds).

A test pays an invoice the way a customer does: `await tg.pay(alice, invoice)` delivers the
`pre_checkout_query`, waits for the bot's answer and, if it is ok, records the Star
transaction and delivers the `successful_payment` message (or not, with `deliver=False`: the
update the bot lost). `deliver_payment()` delivers one again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.telegram import FakeUser

MAX_STARS = 10_000


@dataclass
class Invoice:
    chat_id: int
    message_id: int
    title: str
    description: str
    payload: str
    currency: str
    amount: int  # Stars


@dataclass
class PreCheckoutAnswer:
    ok: bool
    error_message: str | None


@dataclass
class Paid:
    ok: bool
    error_message: str | None
    charge_id: str | None = None


class StarsApi:
    """Mixed into FakeTelegram; uses its errors, chats, update queue and `_notify()`."""

    def _init_stars(self) -> None:
        self.invoices: list[Invoice] = []
        self.pre_checkout_answers: dict[str, PreCheckoutAnswer] = {}
        self.star_transactions: list[dict[str, Any]] = []
        self.refunded_charges: set[str] = set()
        self._charge_ids = itertools.count(1)
        self._pre_checkout_ids = itertools.count(1)

    def _stars_error(self, description: str) -> Exception:
        from tests.fakes.telegram import TelegramError

        return TelegramError(400, f"Bad Request: {description}")

    # --- the Bot API -------------------------------------------------------------------------

    async def api_sendinvoice(self, params: dict) -> dict:
        from tests.fakes.telegram import Msg

        chat_id = int(params["chat_id"])
        self._check_chat(chat_id)  # type: ignore[attr-defined]
        title, description = params.get("title", ""), params.get("description", "")
        payload = params.get("payload", "")
        if not 1 <= len(title) <= 32:
            raise self._stars_error("INVOICE_TITLE_INVALID")
        if not 1 <= len(description) <= 255:
            raise self._stars_error("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode()) <= 128:
            raise self._stars_error("INVOICE_PAYLOAD_INVALID")
        currency = params.get("currency")
        if currency != "XTR":
            raise self._stars_error("CURRENCY_INVALID")
        if params.get("provider_token"):
            raise self._stars_error("PROVIDER_TOKEN_INVALID")  # Stars take none
        prices = params.get("prices")
        prices = json.loads(prices) if isinstance(prices, str) else prices
        if not isinstance(prices, list) or len(prices) != 1:
            raise self._stars_error("STARS_INVOICE_INVALID")
        amount = int(prices[0]["amount"])
        if not 1 <= amount <= MAX_STARS:
            raise self._stars_error("STARS_INVOICE_INVALID")
        message = Msg(
            next(self._message_ids),  # type: ignore[attr-defined]
            chat_id,
            f"🧾 {title}: {description} ({amount} ⭐)",
            title,
            None,
            from_bot=True,
            date=int(time.time()),
        )
        self.chats[chat_id].append(message)  # type: ignore[attr-defined]
        self.invoices.append(
            Invoice(chat_id, message.message_id, title, description, payload, currency, amount)
        )
        return message.as_api()

    async def api_answerprecheckoutquery(self, params: dict) -> bool:
        query_id = params["pre_checkout_query_id"]
        if query_id in self.pre_checkout_answers:
            raise self._stars_error("QUERY_ID_INVALID")
        ok = str(params.get("ok", "")).lower() == "true"
        error_message = params.get("error_message")
        if not ok and not error_message:
            raise self._stars_error("ERROR_MESSAGE_EMPTY")
        self.pre_checkout_answers[query_id] = PreCheckoutAnswer(ok, error_message)
        return True

    async def api_refundstarpayment(self, params: dict) -> bool:
        charge_id = params["telegram_payment_charge_id"]
        user_id = int(params["user_id"])
        payment = next(
            (tx for tx in self.star_transactions if tx["id"] == charge_id and "source" in tx),
            None,
        )
        if payment is None or payment["source"]["user"]["id"] != user_id:
            raise self._stars_error("CHARGE_NOT_FOUND")
        if charge_id in self.refunded_charges:
            raise self._stars_error("CHARGE_ALREADY_REFUNDED")
        self.refunded_charges.add(charge_id)
        self.star_transactions.append(
            {
                "id": charge_id,
                "amount": payment["amount"],
                "date": int(time.time()),
                "receiver": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": payment["source"]["user"],
                },
            }
        )
        return True

    async def api_getstartransactions(self, params: dict) -> dict:
        offset = int(params.get("offset", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        return {"transactions": self.star_transactions[offset : offset + limit]}

    # --- what a customer does ----------------------------------------------------------------

    async def pay(
        self, user: FakeUser, invoice: Invoice, *, deliver: bool = True, timeout: float = 10.0
    ) -> Paid:
        """The customer presses Pay: pre-checkout, then (if the bot said ok) the payment."""
        query_id = f"pcq{next(self._pre_checkout_ids)}"
        await self.push_update(  # type: ignore[attr-defined]
            {
                "pre_checkout_query": {
                    "id": query_id,
                    "from": user.as_api(),
                    "currency": invoice.currency,
                    "total_amount": invoice.amount,
                    "invoice_payload": invoice.payload,
                }
            }
        )
        await self.wait_for(  # type: ignore[attr-defined]
            lambda: query_id in self.pre_checkout_answers, timeout
        )
        answer = self.pre_checkout_answers[query_id]
        if not answer.ok:
            return Paid(False, answer.error_message)
        charge_id = f"stxTEST{next(self._charge_ids):06d}CHARGE"
        self.star_transactions.append(
            {
                "id": charge_id,
                "amount": invoice.amount,
                "date": int(time.time()),
                "source": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": user.as_api(),
                    "invoice_payload": invoice.payload,
                },
            }
        )
        if deliver:
            await self.deliver_payment(user, invoice, charge_id)
        return Paid(True, None, charge_id)

    async def deliver_payment(self, user: FakeUser, invoice: Invoice, charge_id: str) -> int:
        """The `successful_payment` service message (again, if it was delivered before)."""
        return await self.push_update(  # type: ignore[attr-defined]
            {
                "message": {
                    "message_id": next(user._own_ids),
                    "from": user.as_api(),
                    "chat": user.chat,
                    "date": int(time.time()),
                    "successful_payment": {
                        "currency": invoice.currency,
                        "total_amount": invoice.amount,
                        "invoice_payload": invoice.payload,
                        "telegram_payment_charge_id": charge_id,
                        "provider_payment_charge_id": "",
                    },
                }
            }
        )

    async def wait_invoice(self, user: FakeUser, count: int = 1, timeout: float = 10.0) -> Invoice:
        """The `count`-th invoice sent to the user."""

        def found() -> Invoice | None:
            mine = [i for i in self.invoices if i.chat_id == user.id]
            return mine[count - 1] if len(mine) >= count else None

        result = await self.wait_for(found, timeout)  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        return result
