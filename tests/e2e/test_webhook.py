"""Webhook mode (WEBHOOK_URL): the bot registers its webhook with the secret, serves what
Telegram posts there, refuses whatever comes without the secret, and stops gracefully without
deleting the webhook. The real bot against the fake Bot API, which posts updates to the webhook
like Telegram (tests/fakes/telegram_webhook.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path

import pytest

from bot.webhook import RequestGate
from db import repositories as repo
from tests.conftest import WEBHOOK_SECRET, eventually
from tests.e2e.test_process import _free_port, _settings_error, bot_env, start_process
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-TOKEN-abcdefghijklmnop"
STRANGER = 2002


def _start_update(user_id: int, text: str = "/start") -> dict:
    return {
        "update_id": 10_000 + user_id,
        "message": {
            "message_id": 1,
            "from": {"id": user_id, "is_bot": False, "first_name": "Mallory"},
            "chat": {"id": user_id, "type": "private", "first_name": "Mallory"},
            "date": int(time.time()),
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }


async def test_the_bot_registers_its_webhook_with_the_secret(start_bot, tg) -> None:
    bot = await start_bot(webhook=True)
    (call,) = tg.calls_of("setWebhook")
    assert call.error is None
    assert call.params["url"] == bot.app.settings.webhook_url
    assert call.params["url"].endswith("/telegram/webhook")
    assert call.params["secret_token"] == WEBHOOK_SECRET
    assert str(call.params["drop_pending_updates"]).lower() == "false"
    allowed = json.loads(call.params["allowed_updates"])
    assert set(allowed) == set(bot.app.dp.resolve_used_update_types())
    assert {"message", "callback_query"} <= set(allowed)
    info = await bot.app.bot.get_webhook_info()
    assert info.url == bot.app.settings.webhook_url and info.pending_update_count == 0
    assert tg.get_updates_calls == 0 and not tg.calls_of("deleteWebhook")


async def test_a_start_posted_to_the_webhook_is_answered(start_bot, tg) -> None:
    bot = await start_bot(webhook=True)
    alice = tg.user(1001, "Alice")
    reply = await alice.send("/start")
    assert "Hello, Alice!" in reply.text
    await alice.press("💰 Balance")  # a callback query takes the same way
    assert "$0.00" in alice.last().text
    assert tg.deliveries and all(d.status == 200 for d in tg.deliveries)
    assert all(d.secret_sent == WEBHOOK_SECRET for d in tg.deliveries)
    await bot.stop()
    # Stopping never deletes the webhook: other processes behind the URL go on serving it.
    assert not tg.calls_of("deleteWebhook") and tg.webhook is not None
    assert tg.get_updates_calls == 0


@pytest.mark.parametrize(
    "secret",
    [None, "", "wrong-secret", WEBHOOK_SECRET + "x"],
    ids=["none", "empty", "wrong", "longer"],
)
async def test_a_post_without_the_secret_gets_401_and_changes_nothing(
    start_bot, tg, secret
) -> None:
    bot = await start_bot(webhook=True)
    calls_before = len(tg.calls)
    status, body = await tg.post_webhook(_start_update(STRANGER), secret=secret)
    assert status == 401, body
    await tg.settle(quiet_s=0.3)
    assert tg.calls[calls_before:] == []  # nothing sent, nothing asked of Telegram
    assert not tg.bot_messages(STRANGER)
    async with bot.db.read() as session:
        assert await repo.get_user(session, STRANGER) is None
    # The same update with the secret is served: the refusal was the header, nothing else.
    status, _ = await tg.post_webhook(_start_update(STRANGER), secret=WEBHOOK_SECRET)
    assert status == 200
    await eventually(lambda: tg.bot_messages(STRANGER))
    assert "Hello, Mallory!" in tg.bot_messages(STRANGER)[-1].text


async def test_stopping_lets_an_update_being_handled_finish(start_bot, tg) -> None:
    bot = await start_bot(webhook=True)
    alice = tg.user(1001, "Alice")
    await alice.send("/start", wait=False)
    await eventually(lambda: tg.deliveries, step=0.001)  # accepted, now being handled
    await bot.stop()
    assert "Hello, Alice!" in alice.last().text  # answered before the bot closed anything
    async with bot.db.read() as session:
        assert await repo.get_user(session, 1001) is not None


async def test_a_closed_gate_answers_503_so_telegram_sends_the_update_again() -> None:
    gate = RequestGate()
    served = []

    async def handler(request):
        served.append(request)
        from aiohttp import web

        return web.Response(text="ok")

    assert (await gate.middleware(object(), handler)).status == 200
    await gate.close()
    assert (await gate.middleware(object(), handler)).status == 503
    assert len(served) == 1


async def test_the_webhook_process_answers_and_stops_cleanly(tg, tmp_path, database_url) -> None:
    port = _free_port()
    env = bot_env(
        tg,
        tmp_path,
        database_url,
        WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
        WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        LOG_LEVEL="DEBUG",
    )
    process = await start_process(env, tmp_path)
    try:
        await tg.wait_for(lambda: tg.webhook is not None or process.returncode, timeout=30)
        assert tg.webhook is not None and tg.webhook.secret_token == WEBHOOK_SECRET
        reply = await tg.user(1001, "Alice").send("/start")
        assert "Hello, Alice!" in reply.text
        status, _ = await tg.post_webhook(_start_update(STRANGER), secret="wrong")
        assert status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    log = stderr.decode()
    assert process.returncode == 0, log[-2000:]
    assert '"msg": "serving the webhook"' in log and '"msg": "bot stopped"' in log
    assert tg.get_updates_calls == 0 and not tg.calls_of("deleteWebhook")
    for bad in ("Traceback", "Task was destroyed", "Unclosed", "never awaited"):
        assert bad not in log
    for secret in (tg.token, WEBHOOK_SECRET):
        assert secret not in log


def _busy_port() -> tuple[socket.socket, int]:
    holder = socket.create_server(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"WEBHOOK_URL": "https://shop.example/hook"},
            "Invalid setting WEBHOOK_SECRET: must be set when WEBHOOK_URL is",
        ),
        (
            {"WEBHOOK_URL": "http://shop.example/hook", "WEBHOOK_SECRET": "abc"},
            "Invalid setting WEBHOOK_URL: must be https://",
        ),
        ({"WEBHOOK_URL": "shop.example", "WEBHOOK_SECRET": "abc"}, "Invalid setting WEBHOOK_URL"),
        (
            {"WEBHOOK_URL": "https://shop.example/hook", "WEBHOOK_SECRET": "s3cret with space"},
            "Invalid setting WEBHOOK_SECRET: must be 16-256 characters",
        ),
        (
            {"WEBHOOK_URL": "https://shop.example/hook", "WEBHOOK_SECRET": "x" * 257},
            "Invalid setting WEBHOOK_SECRET: must be 16-256 characters",
        ),
        (
            {"WEBHOOK_URL": "https://shop.example/hook", "WEBHOOK_SECRET": "x" * 15},
            "Invalid setting WEBHOOK_SECRET: must be 16-256 characters",
        ),
        ({"WEBHOOK_LISTEN": "8080"}, "Invalid setting WEBHOOK_LISTEN: must be host:port"),
        ({"WEBHOOK_LISTEN": "127.0.0.1:99999"}, "Invalid setting WEBHOOK_LISTEN"),
    ],
    ids=[
        "no-secret",
        "http",
        "not-a-url",
        "secret-alphabet",
        "secret-length",
        "secret-short",
        "listen",
        "port",
    ],
)
async def test_a_bad_webhook_setting_is_one_line_and_exit_2(tmp_path, values, expected) -> None:
    code, stderr = await _settings_error(tmp_path, BOT_TOKEN=TOKEN, **values)
    assert code == 2, stderr
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith(expected), stderr
    assert "Traceback" not in stderr
    assert "s3cret" not in stderr and "x" * 257 not in stderr  # a secret is never echoed


async def test_a_webhook_port_already_taken_is_one_line_naming_webhook_listen(
    tmp_path: Path,
) -> None:
    holder, port = _busy_port()
    with holder:
        code, stderr = await _settings_error(
            tmp_path,
            BOT_TOKEN=TOKEN,
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
            WEBHOOK_LISTEN=f"127.0.0.1:{port}",
            WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
    assert code == 2, stderr
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith(f"WEBHOOK_LISTEN: cannot listen on 127.0.0.1:{port}:"), stderr


async def test_a_webhook_telegram_refuses_is_one_line_naming_webhook_url(
    tmp_path: Path, database_url: str
) -> None:
    """Telegram refuses setWebhook (an unresolvable host, a port it does not allow): one line
    naming WEBHOOK_URL with Telegram's words, after a clean shutdown."""
    async with FakeTelegram() as fake:
        fake.fail("setWebhook", 400, "Bad Request: bad webhook: Failed to resolve host")
        port = _free_port()
        env = bot_env(
            fake,
            tmp_path,
            database_url,
            WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
            WEBHOOK_LISTEN=f"127.0.0.1:{port}",
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            LOG_LEVEL="ERROR",
        )
        process = await start_process(env, tmp_path)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2, stderr.decode()
    assert stderr.decode().strip().splitlines()[-1] == (
        "WEBHOOK_URL: setWebhook failed: Bad Request: bad webhook: Failed to resolve host"
    )
