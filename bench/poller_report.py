"""The printed report of bench/poller.py: one block per scenario, from the figures of the bot
process, the servers process and the bot's log (stdlib only: the parent prints it)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from bench.poller_common import WINDOW_S, Scenario, percentile


def _flag(ok: bool) -> str:
    return "[ok]  " if ok else "[OVER]"


def _seconds(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.2f} s"


def _latencies(result: dict[str, Any]) -> tuple[list[float], list[float], list[float]]:
    """(code -> sendMessage, code -> outbox row, outbox row -> sendMessage) in seconds."""
    enqueued = result["bot"]["enqueued"]
    total, detect, send = [], [], []
    for event in result["upstream"]["codes"]:
        sent = event["sent_at"]
        total.append(math.inf if sent is None else sent - event["code_at"])
        row = enqueued.get(str(event["chat"]))
        if row is not None:
            detect.append(row[0] - event["code_at"])
            if sent is not None:
                send.append(sent - row[0])
    return sorted(total), sorted(detect), sorted(send)


def report(scenario: Scenario, opts: argparse.Namespace, result: dict[str, Any]) -> None:
    limit = scenario.rate_limit
    print(
        f"\n== {scenario.label}: N = {scenario.n:,} active, "
        f"{f'{limit} requests/min' if limit else 'unlimited'} provider, poll every "
        f"{opts.interval:g} s, {scenario.duration_s:g} s run + {result['drain']:g} s drain"
        + (f", {scenario.expiring} reach their deadline in the run" if scenario.expiring else "")
    )
    _report_latency(scenario, opts, result)
    _report_requests(scenario, result)
    _report_load(scenario, result)
    _report_end(opts, result)


def _report_load(scenario: Scenario, result: dict[str, Any]) -> None:
    """Poll rounds, CPU and memory of the bot."""
    bot, upstream = result["bot"], result["upstream"]
    rounds = sorted(bot["rounds"])
    if rounds:
        print(
            f"         poll rounds: {len(rounds)}, duration median "
            f"{percentile(rounds, 50):.2f} s, "
            f"max {rounds[-1]:.2f} s; runs skipped (previous still running): {bot['skipped']}"
            + (f"; budget {bot['poll_budget']} orders/round" if bot["poll_budget"] else "")
        )
    share = bot["cpu_s"] / bot["wall_s"] * 100 if bot["wall_s"] else 0
    print(
        f"         CPU {bot['cpu_s']:.1f} s over {bot['wall_s']:.0f} s wall ({share:.0f}% of one "
        f"core); simulators used {upstream['cpu_s']:.1f} s CPU; seeding {scenario.n:,} rows "
        f"(another process) {result['seeded']['seed_s']:.1f} s"
    )
    rss_flag = _flag(bot["rss_peak_mb"] < 200) if scenario.n >= 10_000 else "      "
    print(
        f"  {rss_flag} peak RSS {bot['rss_peak_mb']:.0f} MB (after imports "
        f"{bot['rss_imports_mb']:.0f} MB, after build_app + migrations "
        f"{bot['rss_built_mb']:.0f} MB)" + ("   goal < 200 MB" if scenario.n >= 10_000 else "")
    )


def _report_end(opts: argparse.Namespace, result: dict[str, Any]) -> None:
    """The bot's log, the rows and the Bot API's view (cards, refusals) at the end."""
    bot, upstream = result["bot"], result["upstream"]
    size, lines, errors, first = result["log"]
    print(
        f"         log at {opts.log_level}: {lines:,} lines, {size / 1e6:.1f} MB; "
        f"ERROR lines {errors}" + (f" (first: {first})" if first else "")
    )
    states = ", ".join(f"{k} {v:,}" for k, v in sorted(bot["states"].items()))
    print(
        f"         rows at the end: {states}; outbox unsent {bot['outbox_pending']}; "
        f"Bot API calls {upstream['telegram_calls']}"
    )
    if opts.cards:
        print(
            f"         activation cards showing their code at the end: "
            f"{upstream['cards_with_code']} of {len(upstream['codes'])} "
            f"({upstream['stale_cards']} showed it, then were edited back to a view without it)"
        )
        for line in upstream["stale_trace"]:
            print(f"           {line}")
    for error, count in sorted(upstream["telegram_errors"].items()):
        print(f"         Bot API refused {count}x {error}")


def _report_latency(scenario: Scenario, opts: argparse.Namespace, result: dict[str, Any]) -> None:
    total, detect, send = _latencies(result)
    upstream = result["upstream"]
    missing = sum(math.isinf(x) for x in total)
    print(
        f"         codes: {len(total)} handed out upstream ({result['codes_per_min']:g}/min), "
        f"{len(total) - missing} pushed to Telegram, {missing} never pushed"
        + (f"; {upstream['refused']} refused (already closed)" if upstream["refused"] else "")
    )
    if not total:
        return
    goal = opts.interval + 1
    p99 = percentile(total, 99)
    flag = _flag(p99 <= goal) if scenario.rate_limit is None and scenario.n <= 1000 else "      "
    print(
        f"  {flag} latency p50 {_seconds(percentile(total, 50))}, p99 {_seconds(p99)}, "
        f"max {_seconds(total[-1])}" + (f"   goal p99 <= {goal:g} s" if flag.strip() else "")
    )
    if detect and send:
        print(
            f"         of which upstream -> outbox row p50 {percentile(detect, 50):.2f} s "
            f"p99 {percentile(detect, 99):.2f} s; outbox row -> sendMessage "
            f"p50 {percentile(send, 50) * 1000:.0f} ms p99 {percentile(send, 99) * 1000:.0f} ms"
        )


def _report_requests(scenario: Scenario, result: dict[str, Any]) -> None:
    upstream, bot = result["upstream"], result["bot"]
    per_min = upstream["requests_in_run"] / scenario.duration_s * 60
    actions = ", ".join(
        f"{name} {count / scenario.duration_s * 60:,.0f}"
        for name, count in sorted(upstream["requests_in_run_by_action"].items())
    )
    print(
        f"         upstream requests: {per_min:,.0f}/min during the run ({actions}); "
        f"{upstream['requests_total']:,} in all (client counted {bot['http_requests']:,}, "
        f"{bot['http_errors']} transport errors)"
    )
    limit = scenario.rate_limit
    if limit is None:
        return
    by_action = upstream["window_by_action"]
    detail = ", ".join(f"{name} {peak}" for name, (peak, _) in sorted(by_action.items()))
    print(
        f"         max requests in any 60 s window: {upstream['window_max']} "
        f"({detail}) over {upstream['requests_span_s']:.0f} s of traffic"
        + ("  [run shorter than 60 s]" if upstream["requests_span_s"] < WINDOW_S else "")
    )
    endpoint_over = sum(over for _, over in by_action.values())
    print(
        f"  {_flag(upstream['window_over'] == 0)} rate-limit violations: "
        f"{upstream['window_over']} (all actions together, limit {limit}/min); "
        f"per endpoint: {endpoint_over}"
    )
