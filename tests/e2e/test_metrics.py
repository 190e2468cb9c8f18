"""METRICS_LISTEN: /metrics scraped over real HTTP and parsed as Prometheus text; /health 200 when
the shop works, 503 with its reason when the database, the poller or the outbox does not."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete

from bot.metrics_server import MetricsServer
from db.engine import Database
from db.models import Lease, OutboxMessage
from tests.conftest import eventually
from tests.e2e.test_otp_journey import FAST, FUNDS, bought, code_message, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_and_health_of_a_working_shop(start_bot, tg, sa) -> None:
    port = free_port()
    bot = await start_bot(providers=[sa_entry(sa)], metrics_listen=f"127.0.0.1:{port}", **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    await alice.press("✅ Buy for $0.18")
    await bought(alice)
    (activation,) = sa.activations.values()
    sa.deliver_sms(activation.id, "246810", "code 246810")
    await code_message(alice, "246810")

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def scraped() -> dict | None:
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            found = samples(response.text)
            delivered = value(found, "shop_code_delivery_seconds_count")
            return found if delivered >= 1 else None

        found = await eventually(scraped)
        assert value(found, "shop_updates_total", handler="handlers.otp.on_buy") >= 1
        assert value(found, "shop_handler_seconds_count", handler="handlers.menu.cmd_start") >= 1
        assert (
            value(
                found,
                "shop_provider_requests_total",
                provider="hero",
                action="getNumberV2",
                outcome="ok",
            )
            >= 1
        )
        assert (
            value(
                found, "shop_provider_request_seconds_count", provider="hero", action="getNumberV2"
            )
            >= 1
        )
        assert value(found, "shop_orders", kind="otp", status="received") == 1
        assert value(found, "shop_wallet_operations", reason="purchase") == 1
        assert value(found, "shop_wallet_operations", reason="topup") == 1
        assert ("shop_outbox_backlog", frozenset()) in found
        assert ("shop_notification_backlog", frozenset()) in found
        assert value(found, "process_resident_memory_bytes") > 0

        health = await client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"


async def poll_lease(db: Database, left: timedelta) -> None:
    async with db.write() as session:
        await session.execute(delete(Lease).where(Lease.name == "otp-poll"))
        session.add(Lease(name="otp-poll", holder="test", expires_at=datetime.now(UTC) + left))


async def test_health_says_what_is_wrong(start_bot, tg, sa, tmp_path) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    db = bot.app.db
    await bot.stop()
    port = free_port()
    server = MetricsServer(db, f"127.0.0.1:{port}", outbox_max=2)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await poll_lease(db, timedelta(seconds=-1))  # the poller stopped long ago
            answer = await client.get("/health")
            assert answer.status_code == 503
            assert answer.json()["reason"] == "poll: no poll round within 3 intervals"

            await poll_lease(db, timedelta(seconds=60))  # polling again
            assert (await client.get("/health")).status_code == 200
            async with db.write() as session:
                for n in range(2):
                    session.add(OutboxMessage(chat_id=ALICE, text=f"m{n}", kind="x", attempts=0))
            answer = await client.get("/health")
            assert answer.status_code == 503
            assert answer.json()["reason"].startswith("outbox: 2 messages waiting")
    finally:
        await server.stop()
        await db.dispose()  # the stopped bot's engine, reopened by the lines above

    # A server that does not answer (nothing listens on port 1).
    broken = MetricsServer(
        Database("postgresql+asyncpg://shop@127.0.0.1:1/shop"), "127.0.0.1:1", 5
    )
    try:
        found = await broken.health(None)  # type: ignore[arg-type]
    finally:
        await broken.db.dispose()
    assert found.status == 503 and b"database" in found.body


def test_the_grafana_dashboard_reads_only_metrics_the_bot_serves() -> None:
    import json
    import re
    from pathlib import Path

    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    served = {
        "shop_updates_total", "shop_handler_seconds_bucket", "shop_code_delivery_seconds_bucket",
        "shop_provider_requests_total", "shop_provider_request_seconds_bucket", "shop_orders",
        "shop_outbox_backlog", "shop_notification_backlog", "shop_wallet_operations",
        "shop_payments", "process_resident_memory_bytes",
    }  # fmt: skip
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(shop_[a-z_]+|process_[a-z_]+)\b", target["expr"]))
    assert used == served
