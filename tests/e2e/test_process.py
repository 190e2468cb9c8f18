"""`python -m bot` as its own process, the way an operator starts it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.conftest import PG_ONLY
from tests.fakes.telegram import FakeTelegram

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def bot_env(
    tg: FakeTelegram, tmp_path: Path, database_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of `python -m bot` against the fake Bot API, on `database_url` (the
    fixture's) or else a SQLite file in tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "PROVIDERS"}}
    env.update(
        BOT_TOKEN=tg.token,
        TELEGRAM_API_URL=tg.url,
        DATABASE_URL=database_url or f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        PYTHONWARNINGS="error::RuntimeWarning",
        **extra,
    )
    return env


class BotProcess:
    """`python -m bot` with its logs going to a file: a pipe nobody reads while the bot runs
    would fill up and block the bot's event loop on its next log line."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def send_signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def communicate(self) -> tuple[bytes, bytes]:
        await self.process.wait()
        return b"", self.log_path.read_bytes()


async def start_process(env: dict[str, str], cwd: Path) -> BotProcess:
    log_path = cwd / f"bot-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            env=env,
            cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_file,
        )
    return BotProcess(process, log_path)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_the_bot_process_answers_and_stops_cleanly(
    tg, tmp_path, database_url, stop_signal
) -> None:
    process = await start_process(bot_env(tg, tmp_path, database_url), tmp_path)
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


async def test_the_env_example_as_shipped_says_the_token_is_not_set(tmp_path) -> None:
    """README: `cp .env.example .env`, then start. The example's empty BOT_TOKEN= is "not set"."""
    shutil.copyfile(ENV_EXAMPLE, tmp_path / ".env")
    code, stderr = await _settings_error(tmp_path)
    assert code == 2
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith("BOT_TOKEN is not set: create a bot with @BotFather"), stderr


@pytest.mark.parametrize("value", ["", "   ", "\t "])
async def test_an_empty_or_blank_token_is_not_set(tmp_path, value) -> None:
    code, stderr = await _settings_error(tmp_path, BOT_TOKEN=value)
    assert code == 2
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith("BOT_TOKEN is not set: create a bot with @BotFather"), stderr


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again: nothing answers there


@pytest.mark.parametrize(
    ("make_url", "expected"),
    [
        (lambda tmp: "nonsense", "Invalid setting DATABASE_URL: is not a database URL"),
        (lambda tmp: "mysql://u@127.0.0.1/shop", "Invalid setting DATABASE_URL: mysql://"),
        (
            lambda tmp: "postgresql://u:hunter2@127.0.0.1/shop",  # the driver is missing
            "Invalid setting DATABASE_URL: postgresql:// is not supported",
        ),
        (
            lambda tmp: f"postgresql+asyncpg://u:hunter2@127.0.0.1:{_free_port()}/shop",
            "DATABASE_URL: cannot connect to postgresql+asyncpg://u:***@127.0.0.1:",
        ),
        (
            lambda tmp: f"sqlite+aiosqlite:///{tmp / 'file'}/bot.db",  # a file where a folder goes
            "DATABASE_URL: cannot open sqlite+aiosqlite:///",
        ),
    ],
    ids=["not-a-url", "unsupported", "no-driver", "unreachable", "sqlite-folder"],
)
async def test_a_wrong_or_unreachable_database_is_one_line_naming_database_url(
    tmp_path, make_url, expected
) -> None:
    (tmp_path / "file").write_text("not a folder")
    env = {"BOT_TOKEN": "123456:TEST-TOKEN-abcdefghijklmnop", "DATABASE_URL": make_url(tmp_path)}
    code, stderr = await _settings_error(tmp_path, **env)
    assert code == 2, stderr
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith(expected), stderr
    assert "Traceback" not in stderr and "hunter2" not in stderr


@PG_ONLY
async def test_a_missing_postgresql_database_is_one_line(
    tmp_path, database_backend, pg_server
) -> None:
    """The server answers but the database named is not there (a typo, or not created yet)."""
    missing = pg_server.database_url(f"{pg_server.prefix}_never_created")
    env = {"BOT_TOKEN": "123456:TEST-TOKEN-abcdefghijklmnop", "DATABASE_URL": missing}
    code, stderr = await _settings_error(tmp_path, **env)
    assert code == 2, stderr
    assert stderr.strip().count("\n") == 0, stderr
    assert stderr.startswith("DATABASE_URL: cannot connect to postgresql+asyncpg://"), stderr
    assert "_never_created" in stderr and "does not exist" in stderr, stderr


async def test_secrets_never_reach_the_logs_of_a_real_run(tmp_path, database_url) -> None:
    """A full journey at DEBUG with recognizable secrets; the captured logs hold none of them."""
    from db.engine import Database
    from services import wallet
    from tests.conftest import eventually
    from tests.fakes.smsactivate import FakeSmsActivate

    token = "424242:SECRET-BOT-TOKEN-do-not-log-me"
    # `+ / = &` and a space: httpx percent-encodes them in the URLs it logs.
    sa_key = "SECRET+SA/KEY=01 23&456789"
    async with FakeTelegram(token=token) as tg, FakeSmsActivate(api_key=sa_key) as sa:
        providers = (
            f'[{{"name": "hero", "kind": "smsactivate", "base_url": "{sa.url}", '
            f'"api_key": "{sa_key}", "currency": "USD", "rate": "1"}}]'
        )
        env = bot_env(
            tg,
            tmp_path,
            database_url,
            LOG_LEVEL="DEBUG",
            PROVIDERS=providers,
            POLL_INTERVAL_S="0.3",
            MIN_CANCEL_DELAY_S="0",
            ADMIN_IDS="5",
        )
        env["BOT_TOKEN"] = token
        process = await start_process(env, tmp_path)
        try:
            await tg.wait_for(lambda: tg.get_updates_calls > 0, timeout=30)
            alice = tg.user(1001, "Alice")
            await alice.send("/start")
            db = Database(env["DATABASE_URL"])
            async with db.write() as session:
                await wallet.credit(session, 1001, 5_000_000, reason="topup", key="t")
            await db.dispose()
            await eventually(lambda: sa.requests["getPrices"] > 0, 20)
            await alice.press("📱 Buy a number")
            await alice.press("Russia")
            await alice.press("Telegram · $0.18")
            await alice.press("✅ Buy for $0.18")
            (activation,) = sa.activations.values()
            sa.deliver_sms(activation.id, "313131")
            await eventually(lambda: any("313131" in m.text for m in alice.messages), 20)
            admin = tg.user(5, "Admin")
            await admin.send("/topup 1001 1")
            sa.inject("500", action="getActiveActivations", times=5)  # errors get logged too
            await asyncio.sleep(1.5)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 20)
    log = stderr.decode()
    assert process.returncode == 0, log[-2000:]
    assert "HTTP Request" in log and "getActiveActivations" in log  # the URLs were logged...
    assert "api_key=***" in log  # ...with the key masked
    for secret in (token, sa_key, token.split(":")[1]):
        for encoded in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
            assert encoded not in log
