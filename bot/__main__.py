"""`python -m bot`: start the bot (settings from the environment and .env)."""

from __future__ import annotations

import asyncio
import sys

from bot.logging_setup import setup_logging
from bot.settings import SettingsError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(settings.log_level)

    from bot.app import build_app, run

    asyncio.run(run(build_app(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
