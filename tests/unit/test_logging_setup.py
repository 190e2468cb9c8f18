"""bot/logging_setup.py: routine chatter (every scheduled run, Alembic's set-up) stays out of an
INFO log, its warnings do not, and LOG_LEVEL=DEBUG shows everything."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.logging_setup import NOISY_AT_INFO, setup_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_AT_INFO}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_a_scheduled_runs_success_is_not_logged_at_info(restored_logging) -> None:
    setup_logging("INFO")
    runs = logging.getLogger("apscheduler.executors.default")
    assert not runs.isEnabledFor(logging.INFO)
    assert runs.isEnabledFor(logging.WARNING)
    assert not logging.getLogger("alembic.runtime.plugins").isEnabledFor(logging.INFO)
    assert logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.INFO)
    assert logging.getLogger("services.outbox").isEnabledFor(logging.INFO)


def test_debug_shows_everything(restored_logging) -> None:
    setup_logging("DEBUG")
    assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.DEBUG)
