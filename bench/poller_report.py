"""The printed report of bench/poller.py: one block per scenario, from the figures of the bot
process, the servers process and the bot's log (stdlib only: the parent prints it)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from bench.figures import report as figure
from bench.poller_common import WINDOW_S, Scenario, percentile

LIST_GOAL_S = 2.0  # delivery p99 at 1,000 active on a provider with an order list
ROUND_SHARE = 0.5  # "well inside the interval": a round within this share of it
RSS_GOAL_MB = 60.0  # the poller's peak RSS above the idle bot, at 10,000 active


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


def report(
    scenario: Scenario,
    opts: argparse.Namespace,
    result: dict[str, Any],
    earlier: dict[str, dict[str, float]],
) -> dict[str, float]:
    """The scenario's block, and its FIGURE lines (bench/figures.py); returns its key figures
    (`earlier`: those of the scenarios already run, for baselines)."""
    limit = scenario.rate_limit
    print(
        f"\n== {scenario.label}: N = {scenario.n:,} active, "
        f"{f'{limit} requests/min' if limit else 'unlimited'} provider, poll every "
        f"{opts.interval:g} s, POLL_RATE_SHARE {scenario.share:g}, {scenario.duration_s:g} s run "
        f"+ up to {result['drain']:g} s drain"
        + (f", {scenario.expiring} reach their deadline in the run" if scenario.expiring else "")
    )
    p99 = _report_latency(scenario, opts, result)
    per_min = _report_requests(scenario, result)
    round_s = _report_load(scenario, result)
    _report_end(opts, result)
    figures = {"p99": p99, "list_per_min": per_min, "round_s": round_s}
    _figures(scenario, opts, result, figures, earlier)
    return figures


def _figures(
    scenario: Scenario,
    opts: argparse.Namespace,
    result: dict[str, Any],
    figures: dict[str, float],
    earlier: dict[str, dict[str, float]],
) -> None:
    interval = opts.interval
    if scenario.label == "list1k":
        fixed = earlier.get("list1k-fixed", {}).get("p99")
        baseline = (
            f"{_seconds(fixed)} with the list read every {interval:g} s (same run)"
            if fixed is not None
            else f"POLL_INTERVAL_S {interval:g} s"
        )
        figure(
            f"code delivery p99, 1,000 active, order-list provider ({scenario.rate_limit}/min)",
            _seconds(figures["p99"]),
            f"<= {LIST_GOAL_S:g} s",
            figures["p99"] <= LIST_GOAL_S,
            baseline,
        )
        allowed = (scenario.rate_limit or 0) * scenario.share
        figure(
            "order-list requests/min while 1,000 wait",
            f"{figures['list_per_min']:.0f}/min",
            f"<= {allowed:g}/min (POLL_RATE_SHARE {scenario.share:g} of "
            f"{scenario.rate_limit}/min)",
            figures["list_per_min"] <= allowed * 1.05,  # a round's edge may fall in the window
            f"{60 / interval:.0f}/min at POLL_INTERVAL_S",
        )
    if scenario.label == "10k":
        round_goal = interval * ROUND_SHARE
        figure(
            "poll round at 10,000 active (median)",
            _seconds(figures["round_s"]),
            f"<= {round_goal:g} s (well inside the interval)",
            figures["round_s"] <= round_goal,
            f"POLL_INTERVAL_S {interval:g} s",
        )
        figure(
            "code delivery p99 at 10,000 active",
            _seconds(figures["p99"]),
            f"<= {interval + 2:g} s (interval + 2 s)",
            figures["p99"] <= interval + 2,
            f"POLL_INTERVAL_S {interval:g} s",
        )
        idle = result["idle"]["rss_peak_mb"]
        above = result["bot"]["rss_peak_mb"] - idle
        figure(
            "poller peak RSS above the idle bot, 10,000 active",
            f"{above:.0f} MB",
            f"< {RSS_GOAL_MB:g} MB",
            above < RSS_GOAL_MB,
            f"idle bot {idle:.0f} MB (same process, before the rows)",
        )


def _report_load(scenario: Scenario, result: dict[str, Any]) -> float:
    """Poll rounds, CPU and memory of the bot; the median round."""
    bot, upstream, idle = result["bot"], result["upstream"], result["idle"]
    rounds = sorted(bot["rounds"])
    median = percentile(rounds, 50) if rounds else math.nan
    if rounds:
        print(
            f"         full poll rounds: {len(rounds)}, duration median {median:.2f} s, "
            f"max {rounds[-1]:.2f} s; runs skipped (previous still running): {bot['skipped']}"
            + (f"; budget {bot['poll_budget']} orders/round" if bot["poll_budget"] else "")
        )
    share = bot["cpu_s"] / bot["wall_s"] * 100 if bot["wall_s"] else 0
    print(
        f"         CPU {bot['cpu_s']:.1f} s over {bot['wall_s']:.0f} s wall ({share:.0f}% of one "
        f"core); simulators used {upstream['cpu_s']:.1f} s CPU; seeding {scenario.n:,} rows "
        f"(another process) {result['seeded']['seed_s']:.1f} s"
    )
    print(
        f"         RSS: after imports {bot['rss_imports_mb']:.0f} MB, after build_app + "
        f"migrations {bot['rss_built_mb']:.0f} MB, idle (jobs running, no activation) peak "
        f"{idle['rss_peak_mb']:.0f} MB; with {scenario.n:,} active peak "
        f"{bot['rss_peak_mb']:.0f} MB (+{bot['rss_peak_mb'] - idle['rss_peak_mb']:.0f} MB), "
        f"at the end {bot['rss_end_mb']:.0f} MB"
    )
    return median


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


def _report_latency(scenario: Scenario, opts: argparse.Namespace, result: dict[str, Any]) -> float:
    """Code -> chat latencies; the p99 (inf: a code never reached the chat)."""
    total, detect, send = _latencies(result)
    upstream = result["upstream"]
    missing = sum(math.isinf(x) for x in total)
    print(
        f"         codes: {len(total)} handed out upstream ({result['codes_per_min']:g}/min), "
        f"{len(total) - missing} pushed to Telegram, {missing} never pushed"
        + (f"; {upstream['refused']} refused (already closed)" if upstream["refused"] else "")
    )
    if not total:
        return math.nan
    p99 = percentile(total, 99)
    print(
        f"         latency p50 {_seconds(percentile(total, 50))}, p99 {_seconds(p99)}, "
        f"max {_seconds(total[-1])}"
    )
    if detect and send:
        print(
            f"         of which upstream -> outbox row p50 {percentile(detect, 50):.2f} s "
            f"p99 {percentile(detect, 99):.2f} s; outbox row -> sendMessage "
            f"p50 {percentile(send, 50) * 1000:.0f} ms p99 {percentile(send, 99) * 1000:.0f} ms"
        )
    return p99


def _report_requests(scenario: Scenario, result: dict[str, Any]) -> float:
    """Upstream requests, rate-limit windows; the order-list requests per minute in the run."""
    upstream, bot = result["upstream"], result["bot"]
    per_min = upstream["requests_in_run"] / scenario.duration_s * 60
    by_action = upstream["requests_in_run_by_action"]
    actions = ", ".join(
        f"{name} {count / scenario.duration_s * 60:,.0f}"
        for name, count in sorted(by_action.items())
    )
    print(
        f"         upstream requests: {per_min:,.0f}/min during the run ({actions}); "
        f"{upstream['requests_total']:,} in all (client counted {bot['http_requests']:,}, "
        f"{bot['http_errors']} transport errors)"
    )
    list_per_min = by_action.get("getActiveActivations", 0) / scenario.duration_s * 60
    limit = scenario.rate_limit
    if limit is None:
        return list_per_min
    windows = upstream["window_by_action"]
    detail = ", ".join(f"{name} {peak}" for name, (peak, _) in sorted(windows.items()))
    print(
        f"         max requests in any 60 s window: {upstream['window_max']} "
        f"({detail}) over {upstream['requests_span_s']:.0f} s of traffic"
        + ("  [run shorter than 60 s]" if upstream["requests_span_s"] < WINDOW_S else "")
    )
    endpoint_over = sum(over for _, over in windows.values())
    print(
        f"  {_flag(endpoint_over == 0)} rate-limit violations per endpoint (the client's limiter "
        f"works per endpoint): {endpoint_over}; all actions together over {limit}/min: "
        f"{upstream['window_over']}"
    )
    return list_per_min
