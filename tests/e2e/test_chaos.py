"""A short seeded chaos run (tests/chaos.py): the bot as its own process, SIGKILLed and restarted
while ten users buy, get codes, cancel and order SMM services through faulty upstreams and a
flooding Bot API. Afterwards not a micro-unit is missing or invented, no code is lost, and every
upstream order is known to the bot (or flagged as unknown). Long runs: bench/chaos.py."""

from __future__ import annotations

import pytest

from tests.chaos import REQUIRED_FAULTS, ChaosConfig, run_chaos


# A bot process started four times, settled after every kill: ~80-140 s on two busy cores, too
# close to the suite's 120 s per test.
@pytest.mark.timeout(600)
async def test_money_and_codes_survive_faults_and_kills(tmp_path, database_url) -> None:
    config = ChaosConfig(
        workdir=tmp_path, seed=7, users=10, ops=150, kills=3, database_url=database_url
    )
    report = await run_chaos(config)
    figures = report.figures()
    assert report.mismatches == [], figures
    assert report.handler_errors == [] and report.errors_logged == [], figures
    assert report.kills == 3, figures
    for kind in REQUIRED_FAULTS:  # the faults really happened, not only were configured
        assert report.faults[kind] > 0, f"{kind} never fired\n{figures}"
    assert sum(report.ops.values()) >= config.ops, figures
    assert report.activations["finished"] > 0 and report.refunds > 0, figures
    assert report.smm_orders["partial"] + report.smm_orders["cancelled"] > 0, figures
    assert report.codes > 0, figures
