"""The scheduled jobs: what runs every few seconds or minutes, in which process, and how a run
is known to shutdown. `schedule_jobs(app)` adds them all to the app's scheduler at start-up
(bot/app.py); the jobs of `singleton_jobs()` run in one process at a time (services/leases.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from db.backup import BackupInterrupted, backup_if_due
from handlers.payments import TelegramStarsApi
from services.auto_switch import probe_all
from services.catalog_store import OTP, SMM, SnapshotSync
from services.leases import Leases
from services.money import ceil_micro
from services.payments import StarsApiError
from services.payments.cryptopay import CryptoPayError
from services.provider_watch import check_balances
from services.retention import Retention
from services.worker import RunningTasks

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

CATALOG_SYNC_S = 30  # how often every process looks for a newer catalog snapshot
BALANCE_CHECK_S = 600  # watch-balances: low balances, providers switched off automatically
PROOFS_EVERY_S = 60  # PROOFS_CHAT_ID: at most one post a minute
RETENTION_EVERY_S = 24 * 3600  # RETENTION_DAYS: the erasing job's interval
BACKUP_CHECK_S = 300  # how often the backup job looks whether a backup is due


def schedule_jobs(app: App) -> None:
    """Every job: no overlapping runs, a late run is merged into the next one.

    With several processes on one database, each job of `singleton_jobs()` runs in one process
    at a time: the holder of its lease (services/leases.py, named after the job, three intervals
    long), taken or renewed at the start of every run and renewed while the run lasts. Another
    process takes it over within about one interval of the lease running out (the holder
    died), or at its next run after the holder released it (`stop_background`). Every process
    follows the catalogs' snapshots (`catalog-sync`) and takes over orphaned broadcasts
    (`broadcasts`, each broadcast under its own lease)."""
    leases = app.leases = Leases(app.db)
    otp_snapshot = SnapshotSync(app.db, app.catalog, OTP)
    smm_snapshot = SnapshotSync(app.db, app.smm_catalog, SMM)
    for job_id, job, seconds, at_start in singleton_jobs(app, otp_snapshot, smm_snapshot):
        add_job(app, job_id, leases.run, [job_id, 3 * seconds, job], seconds, at_start)
    sync_s = min(app.settings.catalog_refresh_s, CATALOG_SYNC_S)
    add_job(app, "catalog-sync", sync_catalogs, [otp_snapshot, smm_snapshot], sync_s, False)
    # Markups, provider switches and rates, catalog rules: another process's change shows here
    # within one poll interval.
    add_job(app, "console-sync", app.console.sync, [], app.settings.poll_interval_s, False)
    resume_s = app.broadcasts.lease_s / 2
    add_job(app, "broadcasts", app.broadcasts.resume, [], resume_s, False)


def singleton_jobs(
    app: App, otp_snapshot: SnapshotSync, smm_snapshot: SnapshotSync
) -> list[tuple[str, Callable[[], Awaitable[object]], float, bool]]:
    """(job id, what it runs, interval in seconds, run once at start-up) of every job that
    runs in one process at a time."""
    poll = app.settings.poll_interval_s
    reconcile = max(5, poll)
    catalogs = app.settings.catalog_refresh_s
    jobs: list[tuple[str, Callable[[], Awaitable[object]], float, bool]] = [
        ("catalog", partial(refresh_catalog, app, otp_snapshot), catalogs, True),
        ("otp-poll", app.otp.poll, poll, True),
        ("otp-reconcile", app.otp.reconcile, reconcile, True),
        ("smm-catalog", partial(refresh_smm_catalog, app, smm_snapshot), catalogs, True),
        ("smm-poll", app.smm.poll, poll, True),
        ("smm-reconcile", app.smm.reconcile, reconcile, True),
    ]
    if app.stars is not None and app.stars.enabled:
        jobs.append(("stars-reconcile", partial(reconcile_stars, app), reconcile, True))
    if app.cryptopay is not None and app.cryptopay.enabled:
        # Also with the webhook on: webhooks get lost.
        jobs.append(("cryptopay-poll", partial(poll_cryptopay, app), poll, True))
    # Balances: the low-balance alert, and the check that brings back a provider switched off
    # automatically (without the group, only those are read).
    jobs.append(("watch-balances", partial(watch_balances, app), BALANCE_CHECK_S, True))
    if app.notifications is not None:
        jobs.append(("watch-errors", partial(watch_errors, app), 60, False))
    if app.proofs is not None:
        jobs.append(("proofs", app.proofs.post, PROOFS_EVERY_S, False))
    if app.settings.retention_days is not None:
        jobs.append(("retention", partial(erase_old_orders, app), RETENTION_EVERY_S, True))
    if app.settings.backup_dir is not None:
        # Every few minutes it looks whether a backup is due (BACKUP_EVERY_H after the newest
        # in BACKUP_DIR), so a restart neither skips one nor makes an extra one.
        jobs.append(("backup", partial(scheduled_backup, app), BACKUP_CHECK_S, True))
    return jobs


async def erase_old_orders(app: App) -> None:
    """RETENTION_DAYS: ended orders' numbers, SMS texts and codes erased (once a day)."""
    erased = await Retention(app.db, app.settings.retention_days).erase_old()
    if erased.orders or erased.messages:
        log.info(
            "retention: erased",
            extra={"orders": erased.orders, "messages": erased.messages},
        )


async def scheduled_backup(app: App) -> None:
    """BACKUP_DIR: a dated backup when one is due; a failure is announced in the group."""
    settings = app.settings
    if settings.backup_dir is None:
        return
    try:
        made = await asyncio.to_thread(
            backup_if_due,
            settings.database_url,
            settings.backup_dir,
            settings.backup_keep,
            settings.backup_every_h * 3600,
            datetime.now(UTC),
            app.stopping,
        )
    except BackupInterrupted as exc:  # shutdown: the next start makes it (it is still due)
        log.info("backup parked at shutdown", extra={"detail": str(exc)})
        return
    except (OSError, ValueError, RuntimeError, sqlite3.Error) as exc:
        log.error("backup failed", extra={"error": str(exc)})
        await app.notifier.emit_now(app.db, "backup-failed", error=str(exc))
        return
    if made is not None:
        log.info("backup written", extra={"file": str(made)})


def add_job(
    app: App,
    job_id: str,
    func: Callable[..., Awaitable[object]],
    args: list,
    seconds: float,
    at_start: bool,
) -> None:
    # APScheduler: next_run_time=None would add the job paused, so leave it out instead.
    first = {"next_run_time": _now()} if at_start else {}
    app.scheduler.add_job(
        run_tracked,
        "interval",
        seconds=seconds,
        args=[app.running_jobs, func, *args],
        id=job_id,
        name=job_id,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        **first,
    )


async def watch_balances(app: App) -> None:
    providers = {**app.providers, **app.smm_providers}
    if app.notifications is None:  # no alerts to send: only what may come back is read
        off = await app.switch.auto_off() if app.switch is not None else {}
        providers = {name: p for name, p in providers.items() if name in off}
    rates = app.console.rates  # /rate over PROVIDERS
    threshold = ceil_micro(app.settings.provider_low_balance)
    await check_balances(app.db, app.notifier, providers, rates, threshold, switch=app.switch)


async def watch_errors(app: App) -> None:
    await app.error_watch.check(app.db, app.notifier, [*app.providers, *app.smm_providers])


async def reconcile_stars(app: App) -> None:
    """Stars payments whose update was lost (a crash after Telegram handed it over)."""
    if app.stars is None:
        return
    try:
        credited = await app.stars.reconcile(TelegramStarsApi(app.bot))
    except StarsApiError as exc:
        log.warning("stars reconcile failed", extra={"error": exc.description})
        return
    if credited:
        log.info("stars payments recovered", extra={"credited": credited})


async def poll_cryptopay(app: App) -> None:
    if app.cryptopay is None:
        return
    try:
        credited = await app.cryptopay.poll()
    except CryptoPayError as exc:
        log.warning("cryptopay poll failed", extra={"error": str(exc)})
        return
    if credited:
        log.info("cryptopay payments credited", extra={"credited": credited})


async def refresh_catalog(app: App, snapshot: SnapshotSync) -> None:
    """The lease holder's: fetch every OTP provider, then share the result as the snapshot."""
    report = await app.catalog.refresh()
    if report.ok:
        await snapshot.save()
    await probe_all(app.switch, report.ok, report.failed)
    log.info("catalog refreshed", extra={"offers": report.offers, "failed": len(report.failed)})


async def refresh_smm_catalog(app: App, snapshot: SnapshotSync) -> None:
    report = await app.smm_catalog.refresh()
    if report.ok:
        await snapshot.save()
    await probe_all(app.switch, report.ok, report.failed)
    log.info(
        "smm catalog refreshed", extra={"services": report.offers, "failed": len(report.failed)}
    )


async def sync_catalogs(*snapshots: SnapshotSync) -> None:
    """Every process's: load a catalog snapshot another process saved since (the lease holder
    of `catalog` / `smm-catalog`), so every process sells at the same prices."""
    for snapshot in snapshots:
        await snapshot.sync()


async def run_tracked(
    running: RunningTasks, func: Callable[..., Awaitable[object]], *args: object
) -> None:
    """A job's run, known to shutdown (`stop_background` lets it finish, and only past the
    shutdown budget cancels it: its open transaction rolls back, the next run resumes)."""
    with running.track():
        try:
            await func(*args)
        except asyncio.CancelledError:
            log.info("job run parked at shutdown", extra={"job": getattr(func, "__name__", "?")})


def _now() -> datetime:
    return datetime.now(UTC)
