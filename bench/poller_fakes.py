"""The servers process of bench/poller.py: a simulated handler_api upstream
(tests/fakes/smsactivate.py) holding N active activations, which hands codes to random activations
at random times during the run, and a fake Bot API (tests/fakes/telegram.py) on which every
activation already has its card message; both record when each request arrives.

Driven by the parent over stdin/stdout (one JSON line per answer): `go <duration> <codes/min>`,
`report`, `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.poller_common import API_KEY, CARD_BASE, CHAT_BASE, TOKEN, window_max

Sent = dict[int, list[tuple[float, str]]]  # chat id -> (arrival, text) of each call


def _fakes() -> tuple[type, type, type]:
    from tests.fakes.telegram import Msg

    return _upstream_class(), _telegram_class(), Msg


class _ListCache:
    """The simulator's order list rendered from cached items: an item is rendered again only
    when it changed (at 10,000 rendering every item would make the simulator the bottleneck)."""

    def _listing(self, key: str, page: list[Any]) -> Any:
        """The fake's own JSON ({"status": "success", key: [items]})."""
        from aiohttp import web

        items = ",".join(self._item_json(act) for act in page)
        body = f'{{"status":"success","{key}":[{items}]}}'
        return web.Response(text=body, content_type="application/json")

    def _item_json(self, act: Any) -> str:
        from tests.fakes.smsactivate import dumps

        items: dict[str, tuple[tuple[str, int], str]] = self.__dict__.setdefault("_items", {})
        version = (act.state, len(act.codes))
        kept = items.get(act.id)
        if kept is None or kept[0] != version:
            kept = (version, dumps(self._active_item(act)))  # type: ignore[attr-defined]
            items[act.id] = kept
        return kept[1]


def _upstream_class() -> type:
    from aiohttp import web

    from tests.fakes.smsactivate import ACTIVE, FakeSmsActivate

    class _Discard(list):
        def append(self, item: object) -> None:  # the fake's call log: not kept (memory)
            pass

    class Upstream(_ListCache, FakeSmsActivate):
        """Records the arrival time and action of every request; optional answer latency."""

        def __init__(self, latency_s: float, no_list: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.latency_s = latency_s
            self.no_list = no_list
            self.hits: list[tuple[float, str]] = []
            self.calls = _Discard()

        async def _handle(self, request: web.Request) -> web.StreamResponse:
            self.hits.append((time.monotonic(), request.query.get("action", "")))
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return await super()._handle(request)

        def _get_active(self, params: dict[str, str]) -> web.Response:
            """The fake's answers, but only the requested page is rendered (the fake renders
            every order for every page: at 10,000 the simulator, not the bot, would be slow)."""
            if self.no_list:
                return self._error("BAD_ACTION")
            for act in self.activations.values():
                self._refresh(act)
            active = [act for act in self.activations.values() if act.state in ACTIVE]
            if self.hero:
                start = int(params.get("start") or 0)
                page = active[start : start + min(int(params.get("limit") or 100), 100)]
                return self._listing("data", page)
            if not active:
                return self._text("NO_ACTIVATIONS")
            return self._listing("activeActivations", active)

    return Upstream


def _telegram_class() -> type:
    from aiohttp import web

    from tests.fakes.telegram import FakeTelegram

    class Telegram(FakeTelegram):
        """The fake Bot API, answering after `latency_s` (calls are recorded on arrival)."""

        def __init__(self, latency_s: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.latency_s = latency_s

        async def _handle(self, request: web.Request) -> web.Response:
            response = await super()._handle(request)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return response

    return Telegram


class Servers:
    def __init__(self, args: argparse.Namespace) -> None:
        upstream_cls, telegram_cls, self._msg = _fakes()
        self.args = args
        self.rng = random.Random(args.seed)
        self.upstream = upstream_cls(
            args.upstream_latency_ms / 1000,
            args.no_list,
            api_key=API_KEY,
            balance="1000000000",
            hero=args.hero,
        )
        self.upstream.set_price("0", "tg", "0.1453", 10**9)
        self.telegram = telegram_cls(args.tg_latency_ms / 1000, token=TOKEN)
        self.orders: list[tuple[str, str, int]] = []  # (upstream id, phone, chat id)
        self.codes: list[tuple[int, str, float]] = []  # (chat id, code, monotonic)
        self.refused = 0  # codes for activations the bot had already closed upstream
        self.go_at = 0.0
        self.duration_s = 0.0
        self._delivery: asyncio.Task[None] | None = None

    async def start(self) -> dict[str, Any]:
        await self.upstream.start()
        await self.telegram.start()
        lines = []
        for i in range(self.args.n):
            act = self.upstream.create("tg", "0")
            chat = CHAT_BASE + i
            card = self._msg(CARD_BASE + i, chat, "card", "card", None, True, int(time.time()))
            self.telegram.chats[chat].append(card)
            self.orders.append((act.id, act.phone, chat))
            lines.append(f"{act.id}\t{act.phone}\t{chat}\t{CARD_BASE + i}\n")
        orders = Path(self.args.dir) / "orders.tsv"
        orders.write_text("".join(lines), encoding="utf-8")
        for act in self.upstream.activations.values():  # the list's cache, before the bot asks
            self.upstream._item_json(act)
        urls = {"upstream": self.upstream.url, "telegram": self.telegram.url}
        return {**urls, "orders": str(orders)}

    def go(self, duration_s: float, codes_per_min: float) -> None:
        self.go_at = time.monotonic()
        self.duration_s = duration_s
        count = min(self.args.n, round(codes_per_min * duration_s / 60))
        picks = self.rng.sample(range(self.args.n), count)
        moments = sorted(self.rng.uniform(0, duration_s) for _ in picks)
        self._delivery = asyncio.create_task(self._deliver(list(zip(moments, picks, strict=True))))

    async def _deliver(self, plan: list[tuple[float, int]]) -> None:
        for offset, index in plan:
            await asyncio.sleep(max(0.0, self.go_at + offset - time.monotonic()))
            order_id, _, chat = self.orders[index]
            code = str(self.rng.randrange(100_000, 1_000_000))
            moment = time.monotonic()
            try:
                self.upstream.deliver_sms(order_id, code, f"Telegram code {code}")
            except ValueError:  # already cancelled/expired upstream
                self.refused += 1
                continue
            self.codes.append((chat, code, moment))

    def delivered(self) -> dict[str, Any]:
        """Have all the codes handed out so far reached their chats (the drain may end)?"""
        sends, _, _, _ = self._bot_api_calls()
        missing = sum(
            1
            for chat, code, moment in self.codes
            if not any(at >= moment and code in text for at, text in sends[chat])
        )
        done = self._delivery is not None and self._delivery.done()
        return {"all": done and missing == 0, "missing": missing}

    def report(self) -> dict[str, Any]:
        if self._delivery is not None:
            self._delivery.cancel()
        sends, edits, methods, errors = self._bot_api_calls()
        codes = self._codes(sends, edits)
        return {
            "cpu_s": time.process_time(),
            **codes,
            "refused": self.refused,
            "telegram_calls": dict(methods),
            "telegram_errors": dict(errors),
            **self._requests(),
        }

    def _bot_api_calls(self) -> tuple[Sent, Sent, Counter[str], Counter[str]]:
        """(sendMessage and editMessageText that succeeded, per chat; calls per method; errors)."""
        sends: Sent = defaultdict(list)
        edits: Sent = defaultdict(list)
        methods: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for call in self.telegram.calls:
            methods[call.method] += 1
            if call.error is not None:
                errors[f"{call.method}: {call.error[:60]}"] += 1
            if call.method in ("sendMessage", "editMessageText") and call.error is None:
                target = sends if call.method == "sendMessage" else edits
                target[int(call.params["chat_id"])].append((call.at, str(call.params["text"])))
        return sends, edits, methods, errors

    def _codes(self, sends: Sent, edits: Sent) -> dict[str, Any]:
        """When each code was sent to its chat, and what the activation cards show at the end."""
        wall_offset = time.time() - time.monotonic()
        events = []
        stale_cards = 0  # the card showed the code, then was edited back to a view without it
        with_code = 0
        trace: list[str] = []
        for chat, code, moment in self.codes:
            card = self._card(chat)
            with_code += code in card.text
            if code not in card.text and any(code in text for _, text in edits[chat]):
                stale_cards += 1
                trace = trace or self._trace(chat, code, moment)
            sent = next((at for at, text in sends[chat] if at >= moment and code in text), None)
            events.append(
                {
                    "chat": chat,
                    "code_at": moment + wall_offset,
                    "sent_at": None if sent is None else sent + wall_offset,
                }
            )
        return {
            "codes": events,
            "stale_cards": stale_cards,
            "cards_with_code": with_code,
            "stale_trace": trace,
        }

    def _card(self, chat: int) -> Any:
        return next(m for m in self.telegram.chats[chat] if m.message_id >= CARD_BASE)

    def _trace(self, chat: int, code: str, moment: float) -> list[str]:
        """What the Bot API saw for one chat, relative to the code's arrival upstream."""
        lines = [f"chat {chat}: code {code} upstream at t=0"]
        for call in self.telegram.calls:
            if str(call.params.get("chat_id")) == str(chat):
                text = " ".join(str(call.params.get("text", "")).split())[:90]
                lines.append(f"t={call.at - moment:+.2f} s {call.method}: {text}")
        return lines

    def _requests(self) -> dict[str, Any]:
        hits = self.upstream.hits
        limit = self.args.rate_limit or None
        run_end = self.go_at + self.duration_s
        in_run = [action for moment, action in hits if self.go_at <= moment <= run_end]
        per_action: dict[str, list[float]] = defaultdict(list)
        for moment, action in hits:
            per_action[action].append(moment)
        every = [moment for moment, _ in hits]
        peak, over = window_max(every, limit)
        by_action = {name: window_max(times, limit) for name, times in per_action.items()}
        span = (hits[-1][0] - hits[0][0]) if hits else 0.0
        return {
            "requests_total": len(hits),
            "requests_span_s": span,
            "requests_in_run": len(in_run),
            "requests_in_run_by_action": dict(Counter(in_run)),
            "window_max": peak,
            "window_over": over,
            "window_by_action": {name: list(value) for name, value in by_action.items()},
        }

    async def close(self) -> None:
        await self.upstream.close()
        await self.telegram.close()


async def servers_main(args: argparse.Namespace) -> None:
    servers = Servers(args)
    print(json.dumps(await servers.start()), flush=True)
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            break
        if line[0] == "go":
            servers.go(float(line[1]), float(line[2]))
            print(json.dumps({"go": True}), flush=True)
        elif line[0] == "delivered":
            print(json.dumps(servers.delivered()), flush=True)
        elif line[0] == "report":
            print(json.dumps(servers.report()), flush=True)
    await servers.close()
