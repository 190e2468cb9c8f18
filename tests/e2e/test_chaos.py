"""Short seeded chaos runs (tests/chaos.py): the bot as its own process, SIGKILLed and restarted
while users buy, get codes, cancel and order SMM services through faulty upstreams and a flooding
Bot API. Afterwards not a micro-unit is missing or invented, no code is lost, nothing reached
Telegram twice, and every upstream order is known to the bot (or flagged as unknown). Then the
same with two processes behind one webhook, sharing PostgreSQL and Redis. Long runs:
bench/chaos.py."""

from __future__ import annotations

import pytest

from tests.chaos import REQUIRED_FAULTS, ChaosConfig, ChaosReport, run_chaos
from tests.conftest import PG_ONLY


def assert_clean(report: ChaosReport, config: ChaosConfig) -> str:
    figures = report.figures()
    assert report.mismatches == [], figures
    assert report.handler_errors == [] and report.errors_logged == [], figures
    assert report.kills == config.kills, figures
    for kind in REQUIRED_FAULTS:  # the faults really happened, not only were configured
        assert report.faults[kind] > 0, f"{kind} never fired\n{figures}"
    assert sum(report.ops.values()) >= config.ops, figures
    assert report.codes > 0, figures
    # Sent twice after a kill: allowed, each explained by a kill (tests/chaos_checks.py). The
    # outbox sends to many chats at once (codes and card edits alike), so a kill may catch one
    # message in flight per chat; the group's sender sends one message at a time.
    assert report.resent["outbox"] <= report.kills * config.users, figures
    assert report.resent["group messages"] <= report.kills, figures
    print(figures)  # shown with -rP
    return figures


# A bot process started four times, settled after every kill: ~80-140 s on two busy cores, too
# close to the suite's 120 s per test.
@pytest.mark.timeout(600)
async def test_money_and_codes_survive_faults_and_kills(tmp_path, database_url) -> None:
    config = ChaosConfig(
        workdir=tmp_path, seed=7, users=10, ops=150, kills=3, database_url=database_url
    )
    report = await run_chaos(config)
    figures = assert_clean(report, config)
    assert report.activations["finished"] > 0 and report.refunds > 0, figures
    assert report.smm_orders["partial"] + report.smm_orders["cancelled"] > 0, figures


# Two bot processes and their restarts on two busy cores: well over the suite's 120 s.
@pytest.mark.timeout(600)
@PG_ONLY
async def test_two_replicas_behind_a_webhook_share_the_work(
    tmp_path, database_backend, database_url, redis_url
) -> None:
    """Every update goes through a round-robin forwarder to one of two `python -m bot`
    processes in webhook mode, so one user's SMM form is filled in on both (the form is in
    Redis); one of them is SIGKILLed now and then while the other serves on."""
    config = ChaosConfig(
        workdir=tmp_path,
        seed=11,
        users=8,
        ops=100,
        kills=2,
        database_url=database_url,
        replicas=2,
        redis_url=redis_url,
    )
    report = await run_chaos(config)
    figures = assert_clean(report, config)
    assert set(report.handled) == {"#0", "#1"}, figures
    assert all(count > 0 for count in report.handled.values()), figures
    # A form begun on one process went on on the other (its state is in Redis).
    assert report.forms[1] > 0, figures
