"""One form for every bench's figures, so `python3 tasks.py bench` can gather them in one table.

A bench prints its own readable output as it likes and, for each figure with a goal, calls
`report()`: that prints one line `FIGURE {json}` (name, value, unit, baseline, goal, ok). The
table in tasks.py reads those lines from each bench's output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PREFIX = "FIGURE "


@dataclass(frozen=True)
class Figure:
    name: str  # what was measured, e.g. "wallet debits/s, SQLite, 50 tasks"
    value: str  # as measured, with its unit, e.g. "2,310/s"
    baseline: str  # the baseline measured in the same run, or "" when there is none
    goal: str  # e.g. ">= 2,000/s" or ">= 0.5x baseline"
    ok: bool


def report(name: str, value: str, goal: str, ok: bool, baseline: str = "") -> Figure:
    figure = Figure(name=name, value=value, baseline=baseline, goal=goal, ok=ok)
    print(PREFIX + json.dumps(asdict(figure), ensure_ascii=False), flush=True)
    return figure


def parse(output: str) -> list[Figure]:
    """Every figure a bench printed."""
    return [
        Figure(**json.loads(line[len(PREFIX) :]))
        for line in output.splitlines()
        if line.startswith(PREFIX)
    ]
