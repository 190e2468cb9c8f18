"""A fake Telegram Bot API server on 127.0.0.1, strict where Telegram is strict.

It implements what the bot uses (getMe, getUpdates with real long polling, sendMessage,
editMessageText, editMessageReplyMarkup, answerCallbackQuery, deleteMessage, setMyCommands,
Telegram Stars payments: tests/fakes/telegram_stars.py, and setWebhook, deleteWebhook and
getWebhookInfo with updates POSTed to the webhook the way Telegram does it:
tests/fakes/telegram_webhook.py), records every call, enforces Telegram's
rules (4,096-character texts, 64-byte callback data, valid HTML with parse_mode=HTML, "message
is not modified") and can be told to fail: 429 with retry_after, 403 for users who blocked the
bot, any error once.

Tests talk to it as users: `alice = tg.user(1001); await alice.send("/start");
await alice.press("Balance"); alice.last().text`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.telegram_stars import StarsApi
from tests.fakes.telegram_webhook import WebhookApi

BOT_USER = {
    "id": 777000111,
    "is_bot": True,
    "first_name": "Test Shop",
    "username": "test_shop_bot",
}
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
_ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


class TelegramError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def check_html(text: str) -> None:
    """Raise TelegramError(400) where Telegram would refuse to parse the entities."""
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "<":
            match = _TAG_RE.match(text, pos)
            if not match:
                raise TelegramError(
                    400, f"Bad Request: can't parse entities: Unexpected < at byte offset {pos}"
                )
            closing, tag = match.group(1), match.group(2).lower()
            if tag not in _ALLOWED_TAGS:
                raise TelegramError(
                    400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"'
                )
            if closing:
                if not stack or stack[-1] != tag:
                    raise TelegramError(
                        400, f'Bad Request: can\'t parse entities: Unmatched end tag "{tag}"'
                    )
                stack.pop()
            else:
                stack.append(tag)
            pos = match.end()
        elif char == "&":
            if not _ENTITY_RE.match(text, pos):
                raise TelegramError(
                    400, "Bad Request: can't parse entities: Character '&' is reserved"
                )
            pos += 1
        else:
            pos += 1
    if stack:
        raise TelegramError(
            400,
            f"Bad Request: can't parse entities: Can't find end tag corresponding to {stack[-1]}",
        )


def visible_text(text: str, parse_mode: str | None) -> str:
    if parse_mode != "HTML":
        return text
    plain = _TAG_RE.sub("", text)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&amp;", "&")):
        plain = plain.replace(entity, char)
    return plain


@dataclass
class Msg:
    """A message in a chat, as the user sees it now (edits applied)."""

    message_id: int
    chat_id: int
    text: str  # visible text (HTML tags removed)
    html: str  # what the bot sent
    reply_markup: dict | None
    from_bot: bool
    date: int
    edited: bool = False
    deleted: bool = False

    @property
    def buttons(self) -> list[list[dict]]:
        return (self.reply_markup or {}).get("inline_keyboard", [])

    @property
    def button_texts(self) -> list[str]:
        return [button["text"] for row in self.buttons for button in row]

    def as_api(self) -> dict:
        chat_type = "private" if self.chat_id > 0 else "supergroup"
        result: dict[str, Any] = {
            "message_id": self.message_id,
            "chat": {"id": self.chat_id, "type": chat_type},
            "date": self.date,
            "text": self.text,
        }
        if chat_type == "private":
            result["chat"]["first_name"] = "User"
        if self.from_bot:
            result["from"] = BOT_USER
        if self.reply_markup:
            result["reply_markup"] = self.reply_markup
        if self.edited:
            result["edit_date"] = self.date
        return result


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    error: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    code: int
    description: str
    retry_after: int | None = None
    times: int = 1


FILES = "__files__"  # a multipart request's files in its params: name -> (filename, bytes)


@dataclass
class Document:
    """A file the bot sent (sendDocument, multipart)."""

    chat_id: int
    filename: str
    content: bytes
    caption: str


@dataclass
class CallbackAnswer:
    text: str | None
    show_alert: bool


class FakeTelegram(WebhookApi, StarsApi):
    def __init__(self, token: str = "123456:TEST-TOKEN-abcdefghijklmnop") -> None:
        self._init_webhook()
        self._init_stars()  # tests/fakes/telegram_stars.py
        self.token = token
        self.calls: list[Call] = []
        self.chats: dict[int, list[Msg]] = defaultdict(list)
        self.documents: list[Document] = []
        self.blocked: set[int] = set()
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self.commands: dict[str, list[dict]] = {}
        self.url = ""
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.get_updates_calls = 0
        self.confirmed_offset = 0  # getUpdates' highest offset: every update below it is gone
        self.error_counts: Counter[int] = Counter()  # error answers given, by error code
        self._chaos_rate = 0.0
        self._chaos_rng = random.Random()
        self._chaos_retry_after = 1

    # --- server lifecycle ------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        self._closing = True
        await self._notify()
        await self._close_webhook()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- switches for tests --------------------------------------------------------------

    def fail(
        self,
        method: str,
        code: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail with this Telegram error."""
        self.faults[method].append(Fault(code, description, retry_after, times))

    def flood(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        self.fail(
            method,
            429,
            f"Too Many Requests: retry after {retry_after}",
            retry_after=retry_after,
            times=times,
        )

    def block(self, user_id: int) -> None:
        self.blocked.add(user_id)

    def chaos(
        self, rate_429: float, rng: random.Random | None = None, *, retry_after: int = 1
    ) -> None:
        """Answer a random share of the bot's calls (getUpdates spared) with a flood error;
        0 turns it off."""
        self._chaos_rate = rate_429
        self._chaos_rng = rng or random.Random()
        self._chaos_retry_after = retry_after

    # --- what tests read -----------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Alice",
        *,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> FakeUser:
        return FakeUser(self, user_id, first_name, username, language_code)

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def bot_messages(self, chat_id: int) -> list[Msg]:
        return [m for m in self.chats[chat_id] if m.from_bot and not m.deleted]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until predicate() is truthy (re-checked whenever the bot does something)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        "condition not met; last calls: "
                        + ", ".join(c.method for c in self.calls[-10:])
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def settle(self, quiet_s: float = 0.15, timeout: float = 10.0) -> None:
        """Wait until the bot has made no call for `quiet_s`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = len(self.calls)
            await asyncio.sleep(quiet_s)
            if len(self.calls) == seen:
                return

    # --- injecting updates ---------------------------------------------------------------

    async def push_update(self, payload: dict) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **payload})
        await self._notify()
        return update_id

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- the Bot API ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params = await _read_params(request)
        call = Call(method, params)
        self.calls.append(call)
        await self._notify()
        try:
            self._inject_fault(method)
            handler = getattr(self, f"api_{method.lower()}", None)
            if handler is None:
                raise TelegramError(404, "Not Found: method not found")
            result = await handler(params)
        except TelegramError as exc:
            call.error = exc.description
            self.error_counts[exc.code] += 1
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            await self._notify()
            return web.json_response(body, status=exc.code)
        await self._notify()
        return web.json_response({"ok": True, "result": result})

    def _inject_fault(self, method: str) -> None:
        if (
            self._chaos_rate
            and method != "getUpdates"
            and self._chaos_rng.random() < self._chaos_rate
        ):
            wait = self._chaos_retry_after
            raise TelegramError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        queue = self.faults.get(method)
        if not queue:
            return
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        raise TelegramError(fault.code, fault.description, fault.retry_after)

    async def api_getme(self, params: dict) -> dict:
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def api_setmycommands(self, params: dict) -> bool:
        commands = json.loads(params["commands"])
        scope = params.get("scope", '{"type": "default"}')
        self.commands[f"{scope}|{params.get('language_code', '')}"] = commands
        return True

    async def api_getupdates(self, params: dict) -> list[dict]:
        self._refuse_get_updates()  # 409 while a webhook is set
        self.get_updates_calls += 1
        offset = int(params.get("offset", 0) or 0)
        timeout = float(params.get("timeout", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)  # updates below: handed
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not self._updates and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    break
        return self._updates[:limit]

    def _check_chat(self, chat_id: int) -> None:
        if chat_id in self.blocked:
            raise TelegramError(403, "Forbidden: bot was blocked by the user")

    def _check_text(self, text: str, parse_mode: str | None) -> str:
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        if parse_mode == "HTML":
            check_html(text)
        visible = visible_text(text, parse_mode)
        if len(visible) > MAX_TEXT:
            raise TelegramError(400, "Bad Request: message is too long")
        return visible

    @staticmethod
    def _check_markup(raw: str | None) -> dict | None:
        if not raw:
            return None
        markup = json.loads(raw)
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise TelegramError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise TelegramError(400, "Bad Request: text buttons are unallowed")
        return markup

    async def api_sendmessage(self, params: dict) -> dict:
        chat_id = int(params["chat_id"])
        self._check_chat(chat_id)
        parse_mode = params.get("parse_mode")
        visible = self._check_text(params.get("text", ""), parse_mode)
        markup = self._check_markup(params.get("reply_markup"))
        message = Msg(
            next(self._message_ids),
            chat_id,
            visible,
            params["text"],
            markup,
            from_bot=True,
            date=int(time.time()),
        )
        self.chats[chat_id].append(message)
        return message.as_api()

    def _find(self, params: dict) -> Msg:
        chat_id = int(params.get("chat_id", 0))
        message_id = int(params.get("message_id", 0))
        for message in self.chats.get(chat_id, []):
            if message.message_id == message_id and not message.deleted:
                return message
        raise TelegramError(400, "Bad Request: message to edit not found")

    async def api_editmessagetext(self, params: dict) -> dict:
        message = self._find(params)
        self._check_chat(message.chat_id)
        if not message.from_bot:
            raise TelegramError(400, "Bad Request: message can't be edited")
        visible = self._check_text(params.get("text", ""), params.get("parse_mode"))
        markup = self._check_markup(params.get("reply_markup"))
        if visible == message.text and markup == message.reply_markup:
            raise TelegramError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message.text, message.html, message.reply_markup = visible, params["text"], markup
        message.edited = True
        return message.as_api()

    async def api_editmessagereplymarkup(self, params: dict) -> dict:
        message = self._find(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == message.reply_markup:
            raise TelegramError(400, "Bad Request: message is not modified")
        message.reply_markup = markup
        message.edited = True
        return message.as_api()

    async def api_deletemessage(self, params: dict) -> bool:
        message = self._find(params)
        message.deleted = True
        return True

    async def api_answercallbackquery(self, params: dict) -> bool:
        query_id = params["callback_query_id"]
        if query_id in self.callback_answers:
            raise TelegramError(
                400,
                "Bad Request: query is too old and response timeout expired "
                "or query ID is invalid",
            )
        text = params.get("text")
        if text is not None and len(text) > 200:
            raise TelegramError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = CallbackAnswer(
            text, str(params.get("show_alert", "")).lower() == "true"
        )
        return True

    async def api_senddocument(self, params: dict) -> dict:
        chat_id = int(params["chat_id"])
        self._check_chat(chat_id)
        reference = str(params.get("document", ""))
        files = params.get(FILES, {})
        if not reference.startswith("attach://") or reference[9:] not in files:
            raise TelegramError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        filename, content = files[reference[9:]]
        caption = params.get("caption", "")
        visible = self._check_text(caption, params.get("parse_mode")) if caption else ""
        self.documents.append(Document(chat_id, filename, content, visible))
        message = Msg(
            next(self._message_ids), chat_id, visible, caption, None, True, int(time.time())
        )
        self.chats[chat_id].append(message)
        return {**message.as_api(), "document": {"file_id": "f", "file_unique_id": "u"}}

    async def api_sendchataction(self, params: dict) -> bool:
        self._check_chat(int(params["chat_id"]))
        return True


async def _read_params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return dict(await request.json())
    data = await request.post()
    params: dict[str, Any] = dict(request.query)
    params.update({key: value for key, value in data.items() if isinstance(value, str)})
    files = {
        key: (value.filename, value.file.read())
        for key, value in data.items()
        if isinstance(value, web.FileField)
    }
    if files:
        params[FILES] = files
    return params


@dataclass
class FakeUser:
    """One Telegram user in a private chat with the bot."""

    tg: FakeTelegram
    id: int
    first_name: str
    username: str | None
    language_code: str | None
    _own_ids: itertools.count = field(default_factory=lambda: itertools.count(1_000_000))

    def as_api(self) -> dict:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    @property
    def chat(self) -> dict:
        return {"id": self.id, "type": "private", "first_name": self.first_name}

    @property
    def messages(self) -> list[Msg]:
        return self.tg.bot_messages(self.id)

    def last(self) -> Msg:
        messages = self.messages
        assert messages, f"the bot has sent nothing to {self.id}"
        return messages[-1]

    def _version(self) -> tuple[int, int]:
        chat = self.tg.chats[self.id]
        return len(chat), sum(1 for m in chat if m.edited)

    async def send(self, text: str, *, wait: bool = True, timeout: float = 10.0) -> Msg | None:
        """Send a text message; wait for the bot's reply (a new or edited message)."""
        before = len(self.tg.calls)
        message = {
            "message_id": next(self._own_ids),
            "from": self.as_api(),
            "chat": self.chat,
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        await self.tg.push_update({"message": message})
        if not wait:
            return None
        await self.tg.wait_for(lambda: self._replied_since(before), timeout)
        await self.tg.settle()
        return self.last() if self.messages else None

    def _replied_since(self, call_index: int) -> bool:
        for call in self.tg.calls[call_index:]:
            if (
                call.error is None
                and str(call.params.get("chat_id")) == str(self.id)
                and call.method
                in {"sendMessage", "sendDocument", "editMessageText", "editMessageReplyMarkup"}
            ):
                return True
        return False

    def find_button(self, text: str, message: Msg | None = None) -> tuple[Msg, dict]:
        candidates = [message] if message else list(reversed(self.messages))
        for msg in candidates:
            for row in msg.buttons:
                for button in row:
                    if button["text"] == text or (text in button["text"]):
                        return msg, button
        shown = self.last().button_texts if self.messages else []
        raise AssertionError(f"no button {text!r}; last buttons: {shown}")

    async def press(
        self, text: str, *, message: Msg | None = None, timeout: float = 10.0
    ) -> CallbackAnswer:
        """Press an inline button by (part of) its text; returns the callback answer."""
        msg, button = self.find_button(text, message)
        return await self.press_data(button["callback_data"], message=msg, timeout=timeout)

    async def press_data(
        self, data: str, *, message: Msg | None = None, timeout: float = 10.0
    ) -> CallbackAnswer:
        """Send a callback query with any data (forged ones included)."""
        msg = message or self.last()
        query_id = str(next(self.tg._callback_ids))
        await self.tg.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.as_api(),
                    "message": msg.as_api(),
                    "chat_instance": f"ci{self.id}",
                    "data": data,
                }
            }
        )
        await self.tg.wait_for(lambda: query_id in self.tg.callback_answers, timeout)
        await self.tg.settle()
        return self.tg.callback_answers[query_id]
