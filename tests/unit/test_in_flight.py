"""Shutdown lets the updates being handled finish (a buy waiting for its upstream) before it
closes what they use: bot/middlewares.py InFlightMiddleware, the outermost update middleware."""

from __future__ import annotations

import asyncio

from bot.middlewares import InFlightMiddleware


async def test_wait_returns_once_the_updates_being_handled_are_done() -> None:
    in_flight = InFlightMiddleware()
    release = asyncio.Event()
    finished: list[str] = []

    async def handler(event: object, data: dict) -> str:
        await release.wait()
        finished.append("buy")
        return "handled"

    update = asyncio.create_task(in_flight(handler, object(), {}))
    await asyncio.sleep(0)
    assert len(in_flight) == 1
    waiting = asyncio.create_task(in_flight.wait(timeout=10))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the buy is still on its way
    release.set()
    await asyncio.wait_for(waiting, 1)
    assert finished == ["buy"] and await update == "handled"
    assert len(in_flight) == 0


async def test_wait_gives_up_after_the_timeout_and_nothing_in_flight_costs_nothing() -> None:
    in_flight = InFlightMiddleware()
    await asyncio.wait_for(in_flight.wait(timeout=10), 0.5)  # nothing in flight: at once

    async def stuck(event: object, data: dict) -> None:
        await asyncio.Event().wait()

    update = asyncio.create_task(in_flight(stuck, object(), {}))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await in_flight.wait(timeout=0.2)
    assert 0.15 < loop.time() - start < 2
    update.cancel()
    await asyncio.gather(update, return_exceptions=True)
    assert len(in_flight) == 0  # a cancelled update is not waited for again


async def test_an_update_that_fails_is_no_longer_in_flight() -> None:
    in_flight = InFlightMiddleware()

    async def broken(event: object, data: dict) -> None:
        raise RuntimeError("boom")

    result = await asyncio.gather(in_flight(broken, object(), {}), return_exceptions=True)
    assert isinstance(result[0], RuntimeError)
    assert len(in_flight) == 0
