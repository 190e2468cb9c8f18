#!/usr/bin/env python3
"""Quick start without anything but Python 3.11+.

    python3 tasks.py start   # create .venv if needed, install, run the bot
    python3 tasks.py test    # same environment, run the whole test suite (pytest options
                             # may follow, e.g. -n 4; TEST_DATABASE_URL, if you set it, adds
                             # the PostgreSQL half: see docs/deployment.md)
    python3 tasks.py lint    # ruff, then the import layers (lint-imports)
    python3 tasks.py typecheck  # mypy, as configured in pyproject.toml [tool.mypy]
    python3 tasks.py bench   # every bench in its reduced size (about 3 minutes), then one
                             # table: figure, baseline, goal, ok/missed. Options: --full (the
                             # full sizes), --only dispatch,wallet,... , --postgres URL (the
                             # wallet bench on that empty PostgreSQL database too)

The virtualenv is (re)installed whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".tasks-stamp"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - tasks.py may be run by an older python3
        sys.exit(f"Python 3.11 or newer is required (this is {sys.version.split()[0]}).")
    if not PYTHON.exists():
        print("Creating the virtualenv in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("Installing dependencies into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(_fingerprint())


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    extra = sys.argv[2:]
    if command == "start":
        ensure_env()
        return subprocess.call([str(PYTHON), "-m", "bot", *extra], cwd=ROOT)
    if command == "test":
        ensure_env()
        return subprocess.call([str(PYTHON), "-m", "pytest", *extra], cwd=ROOT)
    if command == "lint":
        ensure_env()
        ruff = subprocess.call([str(PYTHON), "-m", "ruff", "check", ".", *extra], cwd=ROOT)
        # The layers in pyproject.toml [tool.importlinter]: bot -> handlers -> services -> db.
        imports = subprocess.call([str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT)
        return ruff or imports
    if command == "typecheck":
        ensure_env()
        return subprocess.call([str(PYTHON), "-m", "mypy", *extra], cwd=ROOT)
    if command == "bench":
        ensure_env()
        return bench(extra)
    print(__doc__)
    return 0 if command == "help" else 2


BENCHES = ("dispatch", "wallet", "catalog", "poller")


def bench(extra: list[str]) -> int:
    """Run each bench script (bench/<name>.py, --quick unless --full) and print the figures
    they report (bench/figures.py) in one table."""
    from bench.figures import Figure, parse

    full = "--full" in extra
    only = _option(extra, "--only")
    postgres = _option(extra, "--postgres")
    names = only.split(",") if only else list(BENCHES)
    figures: list[Figure] = []
    failed: list[str] = []
    for name in names:
        runs: list[list[str]] = [[]]
        if name == "wallet" and postgres:
            runs.append(["--database-url", postgres])
        for args in runs:
            command = [str(PYTHON), str(ROOT / "bench" / f"{name}.py"), *args]
            if not full:
                command.append("--quick")
            print(f"== bench/{name}.py {' '.join(command[2:])}", flush=True)
            done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True)
            print(done.stdout, end="", flush=True)
            figures += parse(done.stdout)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                failed.append(f"bench/{name}.py exited with {done.returncode}")
    print(_table(figures))
    for line in failed:
        print(line)
    missed = sum(not figure.ok for figure in figures)
    print(f"{len(figures)} figures: {len(figures) - missed} ok, {missed} missed")
    return 1 if failed else 0


def _option(extra: list[str], name: str) -> str | None:
    if name in extra and extra.index(name) + 1 < len(extra):
        return extra[extra.index(name) + 1]
    return None


def _table(figures: list) -> str:
    rows = [("figure", "value", "baseline (same run)", "goal", "")]
    rows += [
        (f.name, f.value, f.baseline or "-", f.goal, "ok" if f.ok else "MISSED") for f in figures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
