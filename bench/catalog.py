"""Catalog benchmark: a 5sim-sized price list (~9 MB) parsed and indexed, then pages rendered.

Run: .venv/bin/python bench/catalog.py [--runs N] [--parser own|fivesim|all]

A subprocess generates the price list; each measurement runs in a FRESH subprocess so that peak
RSS (ru_maxrss) covers only interpreter + imports + parse + index. Goals: parse+index < 1 s and
< 150 MB peak RSS; one page of 10 services for a country from the cache < 1 ms (median).
`--parser own` parses with parse_prices() below, `fivesim` with the real adapter's parse_prices.

`generate_price_list()` and `parse_prices()` are also used by tests/unit/test_catalog.py.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from services.catalog import OtpCatalog
    from services.providers.base import OtpOffer, OtpOffers, OtpProvider

# The parent process imports nothing heavy: on Linux a child started with vfork+exec inherits
# the parent's peak RSS as its own ru_maxrss, so a fat parent would inflate every figure.

UNKNOWN_COUNTRIES = ("atlantis", "narnia")  # not in the tables: must show as-is
UNKNOWN_PRODUCTS = tuple(f"newapp{i}" for i in range(1, 10))
OPERATORS = (
    "virtual4",
    "virtual21",
    "virtual34",
    "virtual38",
    "virtual52",
    "virtual58",
    "beeline",
    "megafon",
    "mts",
    "tele2",
)


# --- the price list ----------------------------------------------------------------------------


def _cost(rng: random.Random) -> str:
    """A JSON number with 2 dp (sometimes a whole number, as in the seed's `"cost":4`)."""
    if rng.random() < 0.1:
        return str(rng.randint(1, 200))
    cents = rng.randint(1, 20_000)
    return f"{cents // 100}.{cents % 100:02d}"


def _operator(rng: random.Random, name: str) -> str:
    count = 0 if rng.random() < 0.15 else rng.randint(1, 20_000)
    rate = "" if rng.random() < 0.02 else f',"rate":{rng.randint(20, 99)}.{rng.randint(0, 99):02d}'
    return f'"{name}":{{"cost":{_cost(rng)},"count":{count}{rate}}}'


def generate_price_list(
    countries: int = 180, products: int = 300, operators: int = 3, seed: int = 5
) -> bytes:
    """5sim's unfiltered /guest/prices shape: country -> product -> operator -> {cost,count,rate}.
    Includes country and product names missing from the tables (they must be kept as-is)."""
    from services.providers import tables

    rng = random.Random(seed)
    known_countries = list(tables.fivesim_country_iso())
    kept = known_countries[: countries - len(UNKNOWN_COUNTRIES)]
    country_names = [*kept, *UNKNOWN_COUNTRIES][:countries]
    product_names = (list(tables.service_names()) + list(UNKNOWN_PRODUCTS))[:products]
    if len(product_names) < products:
        product_names += [f"extra{i}" for i in range(products - len(product_names))]
    parts: list[str] = []
    for country in country_names:
        ops = rng.sample(OPERATORS, operators)
        items = [
            f'"{product}":{{{",".join(_operator(rng, op) for op in ops)}}}'
            for product in product_names
            if rng.random() > 0.01  # not every country sells everything
        ]
        parts.append(f'"{country}":{{{",".join(items)}}}')
    return ("{" + ",".join(parts) + "}").encode()


class _Leaf(tuple):
    """(cost, count) of one operator."""


class _Product(tuple):
    """(cheapest cost in stock, or cheapest at all; stock summed over operators)."""


def _reduce_prices(obj: dict) -> object:
    """json object_hook: collapses each operator and then each product as soon as it is parsed,
    so the 9 MB tree (~80 MB of dicts and Decimals) never exists in memory at once."""
    cost = obj.get("cost")
    if isinstance(cost, Decimal | int) and not isinstance(cost, bool):
        count = obj.get("count")
        return _Leaf((cost, count if isinstance(count, int) and count > 0 else 0))
    values = list(obj.values())
    if values and all(type(value) is _Leaf for value in values):
        in_stock = [cost for cost, count in values if count]
        best = min(in_stock) if in_stock else min(cost for cost, _ in values)
        return _Product((best, sum(count for _, count in values)))
    return obj


def parse_prices(body: bytes | str) -> OtpOffers:
    """Unfiltered 5sim /guest/prices -> one offer per (country, product): the cheapest operator
    in stock (what buying with operator `any` gets) and the stock summed over operators."""
    from services.providers import tables
    from services.providers.base import OtpOffers

    iso_of = tables.fivesim_country_iso()
    data = json.loads(body, parse_float=Decimal, object_hook=_reduce_prices)
    rows = []
    for country, products in data.items():
        iso = iso_of.get(country)
        code, name = (iso, None) if iso else (f"fivesim:{country}", country)
        for product, entry in products.items():
            if type(entry) is not _Product:
                continue
            # A plain row per offer (pydantic would keep ~1 KB per model): see OtpOffers.
            cost = entry[0] if type(entry[0]) is Decimal else Decimal(entry[0])
            rows.append((code, product, cost, entry[1], country, product, name, None))
    return OtpOffers(rows)


# --- the measurement (child process) -------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _pick_parser(which: str) -> Callable[[bytes], Sequence[OtpOffer]]:
    """Our parser, or the real adapter's (which may take the body or the decoded JSON)."""
    if which != "fivesim":
        return parse_prices
    from services.money import loads
    from services.providers.fivesim import parse_prices as fivesim_parse

    first = next(iter(inspect.signature(fivesim_parse).parameters.values()))
    if "Mapping" in str(first.annotation) or "dict" in str(first.annotation):
        return lambda body: fivesim_parse(loads(body))
    return fivesim_parse


def _file_provider(
    path: Path, parse: Callable[[bytes], Sequence[OtpOffer]], timings: dict[str, float]
) -> type[OtpProvider]:
    """A provider whose offers() reads and parses the price list file (timed into `parse_s`)."""
    from services.providers.base import OtpProvider

    class FileProvider(OtpProvider):
        name, kind, currency = "5sim", "fivesim", "RUB"

        async def offers(self, country: str | None = None) -> Sequence[OtpOffer]:
            start = time.perf_counter()
            body = path.read_bytes()  # noqa: ASYNC240 - the measured work is synchronous
            result = parse(body)
            timings["parse_s"] = time.perf_counter() - start
            return result

        async def balance(self):  # pragma: no cover - not used
            raise NotImplementedError

        async def buy(self, country, service, *, max_price=None, client_ref):  # pragma: no cover
            raise NotImplementedError

        async def status(self, order_id):  # pragma: no cover
            raise NotImplementedError

        async def cancel(self, order_id):  # pragma: no cover
            raise NotImplementedError

    return FileProvider


async def _refreshes(catalog: OtpCatalog, timings: dict[str, float]) -> dict[str, float]:
    """The first refresh (parse + index), the periodic one, a re-price: times and peak RSS."""
    start, cpu_start = time.perf_counter(), time.process_time()
    report = await catalog.refresh()
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rss_peak = _rss_mb()
    if report.failed:
        raise SystemExit(f"refresh failed: {report.failed}")
    first_parse_s = timings["parse_s"]

    start = time.perf_counter()
    await catalog.refresh()  # the periodic refresh: the old index is alive meanwhile
    again_s = time.perf_counter() - start
    rss_again = _rss_mb()
    start = time.perf_counter()
    await catalog.rebuild()  # re-pricing after a markup change, no fetch
    rebuild_s = time.perf_counter() - start
    return {
        "parse_s": first_parse_s,
        "refresh_s": total,
        "refresh_cpu_s": cpu,
        "again_s": again_s,
        "rebuild_s": rebuild_s,
        "rss_peak_mb": rss_peak,
        "rss_again_mb": rss_again,
    }


def _renderer(catalog: OtpCatalog, country: str) -> Callable[[], list[str]]:
    """Page 2 of a country's services as lines of text (a closure: it is timed in a loop)."""
    from services.money import format_money

    def render() -> list[str]:
        page = catalog.page(catalog.services(country, "name"), 2, 10)
        return [
            f"{item.name} · {format_money(item.min_price_micro)} · {item.stock}"
            for item in page.items
        ]

    return render


def _pages(catalog: OtpCatalog, render: Callable[[], list[str]], runs: int) -> dict[str, float]:
    """Time `runs` renders of a country's page, and `runs` pages of countries for a service."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        render()
        samples.append(time.perf_counter_ns() - t0)
    service_samples = []
    slugs = catalog.all_services()
    for i in range(runs):
        t0 = time.perf_counter_ns()
        catalog.page(catalog.countries_for_service(slugs[i % len(slugs)]), 1, 10)
        service_samples.append(time.perf_counter_ns() - t0)
    return {
        "page_median_us": statistics.median(samples) / 1000,
        "page_p99_us": sorted(samples)[int(len(samples) * 0.99)] / 1000,
        "service_page_median_us": statistics.median(service_samples) / 1000,
    }


async def _snapshot(
    catalog: OtpCatalog, new_catalog: Callable[[], OtpCatalog]
) -> dict[str, float]:
    """to_json() of the catalog, then load_json() of it into a fresh one (as after a restart)."""
    start = time.perf_counter()
    snapshot = catalog.to_json()
    dump_s = time.perf_counter() - start
    fresh = new_catalog()
    start = time.perf_counter()
    await fresh.load_json(snapshot)
    load_s = time.perf_counter() - start
    return {
        "snapshot_mb": len(snapshot.encode()) / 1e6,
        "snapshot_dump_s": dump_s,
        "snapshot_load_s": load_s,
    }


async def _child(path: Path, which: str, runs: int) -> dict[str, object]:
    from services.catalog import MarkupRule, OtpCatalog

    timings: dict[str, float] = {}
    provider = _file_provider(path, _pick_parser(which), timings)

    def new_catalog() -> OtpCatalog:
        rates = {"5sim": Decimal("0.011")}
        return OtpCatalog([provider()], rates=rates, price_rule=MarkupRule(default=Decimal(20)))

    rss_start = _rss_mb()  # after every import
    catalog = new_catalog()
    refreshes = await _refreshes(catalog, timings)
    country = "RU" if catalog.services("RU") else catalog.countries()[0].iso
    render = _renderer(catalog, country)
    pages = _pages(catalog, render, runs)
    snapshot = await _snapshot(catalog, new_catalog)
    return {
        "parser": which,
        "body_mb": path.stat().st_size / 1e6,  # noqa: ASYNC240
        "offers_in": catalog.provider_status()["5sim"]["offers"],
        "offers_indexed": catalog.offer_count(),
        "countries": len(catalog.countries()),
        "services": len(catalog.all_services()),
        **refreshes,
        "rss_start_mb": rss_start,
        "page_country": country,
        **pages,
        "runs": runs,
        **snapshot,
        "example_page": render(),
    }


# --- the parent ----------------------------------------------------------------------------------


def _fivesim_available() -> bool:
    """Without importing it (the parent stays small): does the adapter define parse_prices?"""
    path = ROOT / "services" / "providers" / "fivesim.py"
    return path.exists() and "def parse_prices(" in path.read_text(encoding="utf-8")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, __file__, *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)


def _flag(ok: bool) -> str:
    return "[ok]  " if ok else "[OVER]"


def _report(r: dict) -> None:
    ms = {key: r[key] * 1000 for key in r if key.endswith("_s")}
    print(f"\nparser: {r['parser']}")
    print(
        f"  price list {r['body_mb']:.1f} MB -> {r['offers_in']} offers in stock "
        f"({r['offers_indexed']} indexed), {r['countries']} countries, {r['services']} services"
    )
    print(
        f"  {_flag(r['refresh_s'] < 1)} parse+index {ms['refresh_s']:.0f} ms wall, "
        f"{ms['refresh_cpu_s']:.0f} ms CPU (read+parse {ms['parse_s']:.0f} ms, "
        f"catalog {ms['refresh_s'] - ms['parse_s']:.0f} ms)   goal < 1000 ms"
    )
    print(
        f"  {_flag(r['rss_peak_mb'] < 150)} peak RSS {r['rss_peak_mb']:.0f} MB "
        f"(after imports {r['rss_start_mb']:.0f} MB)   goal < 150 MB"
    )
    print(
        f"  {_flag(r['page_median_us'] < 1000)} page of 10 services ({r['page_country']}): "
        f"median {r['page_median_us']:.1f} µs, p99 {r['page_p99_us']:.1f} µs "
        f"over {r['runs']} runs   goal < 1000 µs"
    )
    print(
        f"         page of 10 countries for a service: median {r['service_page_median_us']:.1f} µs"
    )
    print(
        f"         second refresh {ms['again_s']:.0f} ms "
        f"(peak RSS then {r['rss_again_mb']:.0f} MB), re-price only {ms['rebuild_s']:.0f} ms"
    )
    print(
        f"         snapshot {r['snapshot_mb']:.1f} MB: to_json {ms['snapshot_dump_s']:.0f} ms, "
        f"load_json {ms['snapshot_load_s']:.0f} ms"
    )
    print("         example page: " + " | ".join(r["example_page"][:3]) + " ...")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--parser", choices=("own", "fivesim", "all"), default="all")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        args.generate.write_bytes(generate_price_list())
        return
    if args.child:
        result = asyncio.run(_child(args.child, args.parser, args.runs))
        print(json.dumps(result, default=str))
        return

    parsers = ["own", "fivesim"] if args.parser == "all" else [args.parser]
    if "fivesim" in parsers and not _fivesim_available():
        print("services.providers.fivesim.parse_prices not available: skipping that parser")
        parsers.remove("fivesim")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prices.json"
        start = time.perf_counter()
        done = _run("--generate", str(path))
        if done.returncode != 0:
            raise SystemExit(f"generating the price list failed\n{done.stderr}")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} CPUs, load average {load}")
        print(
            f"generated {path.stat().st_size / 1e6:.1f} MB price list "
            f"(180 countries x ~300 products x 3 operators) in {time.perf_counter() - start:.1f} s"
        )
        for which in parsers:
            done = _run("--child", str(path), "--parser", which, "--runs", str(args.runs))
            if done.returncode != 0:
                print(f"\nparser {which}: child failed\n{done.stderr}")
                continue
            _report(json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
