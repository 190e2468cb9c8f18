"""Structured logs: one JSON object per line, with every registered secret masked."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from services.redact import RedactingFilter, redact

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = (
                    value if isinstance(value, int | float | bool | None) else str(value)
                )
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc"] = record.exc_text
        return redact(json.dumps(payload, ensure_ascii=False))


NOISY_AT_INFO = ("apscheduler.executors", "apscheduler.scheduler", "alembic.runtime.plugins")


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiogram.event").setLevel(max(logging.INFO, root.level))
    # Routine chatter: every scheduled run ("executed successfully", several a second at the
    # default intervals) and Alembic's plugin set-up at every start. Their warnings and errors
    # still show; LOG_LEVEL=DEBUG shows everything.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for chatty in NOISY_AT_INFO:
        logging.getLogger(chatty).setLevel(quiet)
