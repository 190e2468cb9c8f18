"""Country and service names shipped with the project (services/providers/data/otp_tables.json).

Catalog keys: a country is its ISO 3166 alpha-2 code, a service a lowercase slug. The slug of a
service is its 5sim product name (`telegram`, `vkontakte`); handler_api codes (`tg`, `vk`) map to
the same slugs through their display names, with a few hand-made overrides.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NotRequired, TypedDict, cast

_DATA = Path(__file__).with_name("data") / "otp_tables.json"

# handler_api service codes whose display name does not match a 5sim product label.
_SA_SERVICE_SLUGS = {
    "go": "google",
    "lf": "tiktok",
    "hw": "alipay",
    "ot": "other",
    "wx": "apple",
    "ft": "betting",
}


@dataclass(frozen=True, slots=True)
class CountryInfo:
    iso: str
    name_en: str
    name_ru: str
    flag: str


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower()) or name.lower()


class _CountryRow(TypedDict):
    name_en: str
    name_ru: NotRequired[str]
    iso2: NotRequired[str]
    flag: NotRequired[str]
    api_eng: NotRequired[str]  # handler_api only
    prefix: NotRequired[str]  # 5sim only
    legacy: NotRequired[bool]  # 5sim only: an old name of a country that has a new one


class _Tables(TypedDict):
    sms_activate_countries: dict[str, _CountryRow]  # numeric id -> row
    sms_activate_services: dict[str, str]  # code -> display name
    fivesim_countries: dict[str, _CountryRow]  # 5sim country name -> row
    fivesim_products: dict[str, str]  # product -> display name


@cache
def _raw() -> _Tables:
    return cast(_Tables, json.loads(_DATA.read_text(encoding="utf-8")))


@cache
def countries() -> dict[str, CountryInfo]:
    """ISO -> names and flag, merged from both tables (handler_api names first)."""
    result: dict[str, CountryInfo] = {}
    for rows in (_raw()["sms_activate_countries"], _raw()["fivesim_countries"]):
        entries = sorted(rows.values(), key=lambda i: "virtual" in i["name_en"].lower())
        for info in entries:
            iso = (info.get("iso2") or "").upper()
            if len(iso) == 2 and iso not in result:
                result[iso] = CountryInfo(
                    iso=iso,
                    name_en=info["name_en"],
                    name_ru=info.get("name_ru") or info["name_en"],
                    flag=info.get("flag") or "🏳",
                )
    return result


def country(iso: str) -> CountryInfo:
    """Names for an ISO code; an unknown code is shown as-is, never dropped."""
    return countries().get(iso) or CountryInfo(iso=iso, name_en=iso, name_ru=iso, flag="🏳")


@cache
def service_names() -> dict[str, str]:
    """Slug -> display name."""
    names = dict(_raw()["fivesim_products"])
    for code, label in _raw()["sms_activate_services"].items():
        names.setdefault(sa_service_slug(code), label)
    return names


def service_name(slug: str) -> str:
    return service_names().get(slug) or slug


# --- handler_api (SMS-Activate-compatible) ---------------------------------------------------


@cache
def sa_country_iso() -> dict[str, str]:
    """handler_api numeric country id -> ISO code."""
    return {
        cid: info["iso2"].upper()
        for cid, info in _raw()["sms_activate_countries"].items()
        if info.get("iso2")
    }


@cache
def sa_iso_country() -> dict[str, str]:
    """ISO -> handler_api id; where several ids share an ISO, the non-virtual lowest one."""
    result: dict[str, str] = {}
    for cid, info in sorted(_raw()["sms_activate_countries"].items(), key=lambda kv: int(kv[0])):
        iso = (info.get("iso2") or "").upper()
        if not iso or "virtual" in info["name_en"].lower():
            continue
        result.setdefault(iso, cid)
    return result


@cache
def _label_to_fivesim() -> dict[str, str]:
    return {label.lower(): product for product, label in _raw()["fivesim_products"].items()}


@cache
def sa_service_slug(code: str) -> str:
    if code in _SA_SERVICE_SLUGS:
        return _SA_SERVICE_SLUGS[code]
    label = _raw()["sms_activate_services"].get(code)
    if label is None:
        return code
    return _label_to_fivesim().get(label.lower()) or _slugify(label)


@cache
def sa_slug_service() -> dict[str, str]:
    """Slug -> handler_api code (the shortest code wins where several map to one slug)."""
    result: dict[str, str] = {}
    for code in sorted(_raw()["sms_activate_services"], key=lambda c: (len(c), c)):
        result.setdefault(sa_service_slug(code), code)
    return result


# --- 5sim ------------------------------------------------------------------------------------


@cache
def fivesim_country_iso() -> dict[str, str]:
    return {
        name: info["iso2"].upper()
        for name, info in _raw()["fivesim_countries"].items()
        if info.get("iso2")
    }


@cache
def fivesim_iso_country() -> dict[str, str]:
    """ISO -> 5sim country name, current names before legacy ones."""
    result: dict[str, str] = {}
    items = sorted(_raw()["fivesim_countries"].items(), key=lambda kv: bool(kv[1].get("legacy")))
    for name, info in items:
        iso = (info.get("iso2") or "").upper()
        if iso:
            result.setdefault(iso, name)
    return result
