"""Shutdown lets work in progress finish before it closes what that work uses: the updates being
handled (a buy waiting for its upstream; bot/middlewares.py InFlightMiddleware), a scheduled job's
run (bot/app.py run_tracked), a background worker's round (services/worker.py) and a lease
renewal in flight (services/leases.py heartbeat)."""

from __future__ import annotations

import asyncio

from bot.jobs import run_tracked
from bot.middlewares import InFlightMiddleware
from services.leases import heartbeat
from services.worker import BackgroundWorker, RunningTasks


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


async def test_a_scheduled_jobs_run_is_waited_for() -> None:
    running = RunningTasks()
    release = asyncio.Event()
    finished: list[str] = []

    async def job(what: str) -> None:
        await release.wait()
        finished.append(what)

    run = asyncio.create_task(run_tracked(running, job, "poll"))
    await asyncio.sleep(0)
    assert len(running) == 1
    waiting = asyncio.create_task(running.wait(timeout=10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    release.set()
    await asyncio.wait_for(waiting, 1)
    await run
    assert finished == ["poll"] and len(running) == 0


class SlowRounds(BackgroundWorker):
    """Each round sends one message in two steps; a round cut in between sent it unmarked."""

    def __init__(self) -> None:
        super().__init__(interval_s=0.01)
        self.steps: list[str] = []

    async def round(self) -> None:
        self.steps.append("sent")
        await asyncio.sleep(0.1)
        self.steps.append("marked")


async def test_a_stopping_worker_finishes_its_round_and_begins_no_other() -> None:
    worker = SlowRounds()
    worker.start()
    await asyncio.sleep(0.05)  # inside the first round
    await asyncio.wait_for(worker.stop(), 2)
    assert worker.steps == ["sent", "marked"]


async def test_a_worker_stuck_in_its_round_is_cut_short_after_the_timeout() -> None:
    class Stuck(BackgroundWorker):
        async def round(self) -> None:
            await asyncio.Event().wait()

    worker = Stuck(interval_s=1)
    worker.start()
    await asyncio.sleep(0)
    await asyncio.wait_for(worker.stop(timeout_s=0.1), 2)


async def test_a_lease_renewal_in_flight_is_finished_not_cut_short() -> None:
    renewals: list[str] = []

    async def renew() -> bool:
        renewals.append("begun")
        await asyncio.sleep(0.1)  # a database write
        renewals.append("done")
        return True

    async with heartbeat(renew, every_s=0.02, what="job"):
        await asyncio.sleep(0.05)  # the first renewal is on its way when the job ends
    assert renewals == ["begun", "done"]


async def test_a_heartbeat_renews_while_the_body_runs_and_stops_when_the_lease_is_lost() -> None:
    answers = [True, True, False]
    calls: list[bool] = []

    async def renew() -> bool:
        calls.append(answers[len(calls)])
        return calls[-1]

    async with heartbeat(renew, every_s=0.01, what="job"):
        await asyncio.sleep(0.2)
    assert calls == [True, True, False]  # no renewal after the one that lost the lease
