"""OTP poller benchmark: code-delivery latency, poll rounds, upstream load, CPU and memory of the
real poller.

    .venv/bin/python bench/poller.py [--quick] [--only list1k-fixed,list1k,10k,rl]
        [--duration 45] [--interval 5] [--share 0.5] [--list-limit 300]
        [--hero | --no-list] [--upstream-latency-ms 0] [--tg-latency-ms 0] [--no-cards]

Scenarios (`--quick`: list1k and 10k, 5 s of codes each, about 40 s in all):

* `list1k`: 1,000 waiting at a handler_api host allowing 300 requests/min (`--list-limit`):
  while orders wait, its order list is read as often as POLL_RATE_SHARE (`--share`, 0.5) of
  that allows; `list1k-fixed` is the same with POLL_RATE_SHARE=0 (the list read every
  POLL_INTERVAL_S), the baseline measured in the same run;
* `10k`: 10,000 waiting at an unlimited provider (polled every POLL_INTERVAL_S);
* `rl`: 1,000 active on a provider with rate_limit_per_min=60 (20 of them reach their deadline
  during the run, so timeout cancels are part of the load).

Per scenario, four processes:

* *servers* (bench/poller_fakes.py): a simulated handler_api upstream (tests/fakes/smsactivate.py)
  holding N active activations, which hands codes to random activations at random times during
  the run (N/5 a minute by default), and a fake Bot API (tests/fakes/telegram.py) on which every
  activation already has its card message; both record when each request arrives;
* *bot* (bench/poller_bot.py), the one measured: bot/app.py's build_app() and schedule_jobs() (the
  real ActivationService.poll on its lease-held APScheduler job, the real OutboxWorker sending
  through aiogram), no Telegram long polling. It starts on an empty database and runs idle for a
  moment: its peak RSS then is the idle bot's, the baseline of the memory figure;
* *seed* (bench/poller_bot.py): then writes N 'waiting' rows (users + activations, plain INSERTs)
  into that database, from its own process, so that the bot's RSS holds only its own work;
* this parent, which imports nothing heavy (a child's ru_maxrss must not inherit a fat parent):
  it starts the three others (this file with a hidden `--role`), drives them over stdin/stdout
  and prints the report (bench/poller_report.py), with a FIGURE line (bench/figures.py) for
  each goal.

Latency is "the upstream has the code" -> "the fake Bot API received the sendMessage carrying it";
a code never pushed by the end of the drain counts as infinitely late. A poll round's time is the
full round (every active order once), without the order-list readings that follow it.

Goals (issue [4 of 8], items 5-7): at 10,000 active a full poll round within half the interval,
code delivery p99 <= POLL_INTERVAL_S + 2 s, and the poller's peak RSS < 60 MB above the idle bot;
at 1,000 waiting on a provider with an order list, delivery p99 <= 2 s with the list read within
POLL_RATE_SHARE of the rate limit. With a provider allowing 60 requests/min, never more than 60
in any 60-second window per endpoint (the client's limiter works per endpoint; all actions
together are shown beside it).

Upstream variants: by default getActiveActivations answers every order at once (plain handler_api);
`--hero` pages it by 100 like HeroSMS; `--no-list` answers BAD_ACTION (per-order getStatus only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# `python bench/poller.py` puts bench/ first on sys.path: the project (and bench.*) comes next.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.poller_common import ROOT, Scenario
from bench.poller_report import report

# --- the parent ----------------------------------------------------------------------------------


class ChildFailed(RuntimeError):
    pass


def _spawn(role: str, args: list[str], log: Path) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "--role", role, *args]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log.open("w", encoding="utf-8"),
        text=True,
    )


def _ask(child: subprocess.Popen[str], command: str | None, log: Path) -> dict[str, Any]:
    assert child.stdin is not None and child.stdout is not None
    if command is not None:
        child.stdin.write(command + "\n")
        child.stdin.flush()
    line = child.stdout.readline()
    if not line:
        child.wait(timeout=30)
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise ChildFailed(f"child exited with {child.returncode}\n{tail}")
    return json.loads(line)


def _log_figures(log: Path) -> tuple[int, int, int, str | None]:
    """(bytes, lines, ERROR lines, first ERROR line) of the bot's log."""
    size = lines = errors = 0
    first: str | None = None
    with log.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            size += len(line.encode())
            lines += 1
            if '"level": "ERROR"' in line or "Traceback" in line:
                errors += 1
                first = first or line.strip()[:300]
    return size, lines, errors, first


def _servers_args(scenario: Scenario, opts: argparse.Namespace) -> list[str]:
    return [
        "--rate-limit",
        str(scenario.rate_limit or 0),
        "--upstream-latency-ms",
        str(opts.upstream_latency_ms),
        "--tg-latency-ms",
        str(opts.tg_latency_ms),
        *(["--hero"] if opts.hero else []),
        *(["--no-list"] if opts.no_list else []),
    ]


def _bot_args(scenario: Scenario, opts: argparse.Namespace, where: dict[str, str]) -> list[str]:
    return [
        "--upstream",
        where["upstream"],
        "--telegram",
        where["telegram"],
        "--orders",
        where["orders"],
        "--interval",
        str(opts.interval),
        "--duration",
        str(scenario.duration_s),
        "--expiring",
        str(scenario.expiring),
        "--log-level",
        opts.log_level,
        "--rate-limit",
        str(scenario.rate_limit or 0),
        "--share",
        str(scenario.share),
        *([] if opts.cards else ["--no-cards"]),
        *(["--profile", opts.profile] if opts.profile else []),
    ]


def run_scenario(scenario: Scenario, opts: argparse.Namespace) -> dict[str, Any]:
    """servers up -> bot up on an empty database, idle -> its RSS -> N rows seeded (another
    process) -> codes for `duration` -> drain -> reports."""
    drain = scenario.drain_s
    codes_per_min = opts.codes_per_min or scenario.n / 5
    children: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-poller-") as tmp:
        folder = Path(tmp)
        common = ["--dir", tmp, "--n", str(scenario.n), "--seed", str(opts.seed)]
        logs = {name: folder / f"{name}.log" for name in ("servers", "seed", "bot")}
        try:
            servers = _spawn("servers", [*common, *_servers_args(scenario, opts)], logs["servers"])
            children.append(servers)
            where = _ask(servers, None, logs["servers"])
            bot_args = [*common, *_bot_args(scenario, opts, where)]
            bot = _spawn("bot", bot_args, logs["bot"])
            children.append(bot)
            seeder = _spawn("seed", bot_args, logs["seed"])
            children.append(seeder)
            _ask(bot, None, logs["bot"])
            _ask(seeder, None, logs["seed"])
            time.sleep(scenario.idle_s)  # its first rounds, over no activation
            idle = _ask(bot, "rss", logs["bot"])
            seeded = _ask(seeder, "seed", logs["seed"])
            seeder.wait(timeout=60)
            _ask(bot, "round", logs["bot"])  # the poller has seen the rows: codes may come
            _ask(servers, f"go {scenario.duration_s} {codes_per_min}", logs["servers"])
            time.sleep(scenario.duration_s)
            _drain(servers, drain, logs["servers"])
            measured = _ask(bot, "stop", logs["bot"])
            bot.wait(timeout=60)
            upstream = _ask(servers, "report", logs["servers"])
            _ask_quit(servers)
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            _keep_logs(opts, scenario, logs.values())
        log = _log_figures(logs["bot"])
    return {
        "seeded": seeded,
        "idle": idle,
        "bot": measured,
        "upstream": upstream,
        "log": log,
        "drain": drain,
        "codes_per_min": codes_per_min,
    }


def _drain(servers: subprocess.Popen[str], seconds: float, log: Path) -> None:
    """Until every code handed out has reached its chat, or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _ask(servers, "delivered", log)["all"]:
            return
        time.sleep(0.25)


def _keep_logs(opts: argparse.Namespace, scenario: Scenario, logs: Any) -> None:
    if not opts.keep_logs:
        return
    kept = Path(opts.keep_logs)
    kept.mkdir(parents=True, exist_ok=True)
    for path in logs:
        if path.exists():
            (kept / f"{scenario.label}-{path.name}").write_bytes(path.read_bytes())


def _ask_quit(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("quit\n")
    child.stdin.flush()
    child.wait(timeout=30)


# --- entry point ---------------------------------------------------------------------------------


def scenarios(opts: argparse.Namespace) -> list[Scenario]:
    quick = opts.quick
    duration = 5.0 if quick else opts.duration
    idle = 1.0 if quick else opts.interval + 2  # the 10k run's memory baseline
    every = {
        # 1,000 waiting at a handler_api host allowing `--list-limit` requests a minute: its
        # order list is read as often as POLL_RATE_SHARE of that allows.
        "list1k": Scenario(
            "list1k", 1_000, opts.list_limit, duration, 0, opts.share, 0.5, 3 if quick else 6
        ),
        # The same with POLL_RATE_SHARE=0: the list read every POLL_INTERVAL_S (the baseline).
        "list1k-fixed": Scenario(
            "list1k-fixed", 1_000, opts.list_limit, duration, 0, 0.0, 0.5, opts.interval + 3
        ),
        "10k": Scenario(
            "10k", 10_000, None, duration, 0, opts.share, idle, opts.interval + (2 if quick else 5)
        ),
        "rl": Scenario(
            "rl",
            opts.rl_n,
            opts.rl_limit,
            10.0 if quick else opts.rl_duration,
            opts.rl_expiring,
            opts.share,
            0.5,
            2 * opts.interval + 5,
        ),
    }
    names = opts.only or ("list1k,10k" if quick else "list1k-fixed,list1k,10k,rl")
    return [every[name] for name in names.split(",")]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="list1k and 10k, 5 s each (about 40 s in all)"
    )
    parser.add_argument("--duration", type=float, default=45, help="seconds per N scenario")
    parser.add_argument("--rl-duration", type=float, default=120, help="rate-limited run")
    parser.add_argument("--interval", type=float, default=5, help="POLL_INTERVAL_S")
    parser.add_argument(
        "--only", default=None, help="scenarios: list1k-fixed,list1k,10k,rl (default: all)"
    )
    parser.add_argument(
        "--list-limit", type=int, default=300, help="rate_limit_per_min, list1k scenarios"
    )
    parser.add_argument("--share", type=float, default=0.5, help="POLL_RATE_SHARE")
    parser.add_argument("--rl-n", type=int, default=1000, help="active orders, rate-limited run")
    parser.add_argument("--rl-limit", type=int, default=60, help="rate_limit_per_min")
    parser.add_argument("--rl-expiring", type=int, default=20, help="deadlines in that run")
    parser.add_argument("--codes-per-min", type=float, default=None, help="default N/5")
    parser.add_argument("--upstream-latency-ms", type=float, default=0)
    parser.add_argument("--tg-latency-ms", type=float, default=0)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING"))
    parser.add_argument("--no-cards", dest="cards", action="store_false")
    parser.add_argument(
        "--hero", action="store_true", help="HeroSMS-style upstream: order list in pages of 100"
    )
    parser.add_argument(
        "--no-list", action="store_true", help="getActiveActivations answers BAD_ACTION"
    )
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--profile", metavar="PREFIX", help="cProfile the bot process to PREFIX.<N>.prof"
    )
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the children's logs there")
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=("servers", "seed", "bot"), help=hidden)
    for name in ("--dir", "--upstream", "--telegram", "--orders"):
        parser.add_argument(name, help=hidden)
    parser.add_argument("--n", type=int, help=hidden)
    parser.add_argument("--rate-limit", type=int, default=0, help=hidden)
    parser.add_argument("--expiring", type=int, default=0, help=hidden)
    return parser.parse_args(argv)


def run_child(opts: argparse.Namespace) -> None:
    """One of the three children (imported here only: the parent stays small)."""
    if opts.role == "servers":
        from bench.poller_fakes import servers_main

        asyncio.run(servers_main(opts))
    else:
        from bench.poller_bot import bot_main, seed_main

        asyncio.run((seed_main if opts.role == "seed" else bot_main)(opts))


def main() -> None:
    opts = parse()
    if opts.role is not None:
        run_child(opts)
        return
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load}; python {sys.version.split()[0]}")
    listing = "none" if opts.no_list else "pages of 100" if opts.hero else "one page"
    print(
        f"upstream order list: {listing}; upstream latency {opts.upstream_latency_ms:g} ms, "
        f"Bot API latency "
        f"{opts.tg_latency_ms:g} ms, activation cards {'on' if opts.cards else 'off'}, "
        f"log level {opts.log_level}"
    )
    measured: dict[str, dict[str, float]] = {}
    for scenario in scenarios(opts):
        try:
            result = run_scenario(scenario, opts)
        except ChildFailed as exc:
            print(f"\n== {scenario.label}: a child process failed\n{exc}")
            continue
        measured[scenario.label] = report(scenario, opts, result, measured)


if __name__ == "__main__":
    main()
