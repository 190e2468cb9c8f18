"""`python -m bot` as its own process, the way an operator starts it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.fakes.telegram import FakeTelegram


def bot_env(tg: FakeTelegram, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "PROVIDERS"}}
    env.update(
        BOT_TOKEN=tg.token,
        TELEGRAM_API_URL=tg.url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        PYTHONWARNINGS="error::RuntimeWarning",
        **extra,
    )
    return env


async def start_process(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_the_bot_process_answers_and_stops_cleanly(tg, tmp_path, stop_signal) -> None:
    process = await start_process(bot_env(tg, tmp_path), tmp_path)
    try:
        await tg.wait_for(lambda: tg.get_updates_calls > 0, timeout=30)
        reply = await tg.user(1001, "Alice").send("/start")
        assert "Hello, Alice!" in reply.text
        assert tg.commands, "the bot registered its commands"
    finally:
        process.send_signal(stop_signal)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    log = stderr.decode()
    assert process.returncode == 0, log
    assert '"msg": "bot stopped"' in log
    for bad in ("Traceback", "Task was destroyed", "Unclosed", "never awaited", tg.token):
        assert bad not in log


async def _settings_error(tmp_path: Path, **env_values: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "PROVIDERS"}}
    env.update(env_values)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, stderr.decode()


async def test_a_missing_token_is_one_clear_line(tmp_path) -> None:
    code, stderr = await _settings_error(tmp_path)
    assert code == 2
    assert stderr.strip().count("\n") == 0
    assert stderr.startswith("BOT_TOKEN is not set: create a bot with @BotFather")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("POLL_INTERVAL_S", "soon", "Invalid setting POLL_INTERVAL_S:"),
        ("ADMIN_IDS", "1,two", "Invalid setting ADMIN_IDS:"),
        ("PROVIDERS", "[{", "Invalid setting PROVIDERS: is not valid JSON"),
        (
            "PROVIDERS",
            '[{"name": "x", "kind": "nope"}]',
            "Invalid setting PROVIDERS (entry 0, kind)",
        ),
        ("MARKUP_PERCENT", "-5", "Invalid setting MARKUP_PERCENT: must be between"),
        ("TELEGRAM_API_URL", "ftp://x", "Invalid setting TELEGRAM_API_URL"),
        ("BOT_TOKEN", "nonsense", "Invalid setting BOT_TOKEN: does not look like a bot token"),
    ],
)
async def test_invalid_settings_stop_with_one_line_naming_the_key(
    tmp_path, key, value, expected
) -> None:
    env = {"BOT_TOKEN": "123456:TEST-TOKEN-abcdefghijklmnop", key: value}
    code, stderr = await _settings_error(tmp_path, **env)
    assert code == 2
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith(expected), stderr
    assert "Traceback" not in stderr
