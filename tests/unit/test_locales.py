"""Every text a user sees comes from locales/, complete in every language, none unused."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from fluent.syntax import FluentParser
from fluent.syntax import ast as fluent_ast
from fluent.syntax.visitor import Visitor

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "locales"
CODE_DIRS = ("bot", "handlers", "services")
# Keys built at run time from a known prefix (f"admin-{direction}-usage", ...).
_DYNAMIC = re.compile(
    r"^(admin-(topup|deduct)-(usage|done)|language-name-\w+|command-\w+|status-\w+"
    r"|otp-reason-\w+|notify-[\w-]+)$"
)


def keys_of(language: str) -> dict[str, fluent_ast.Message]:
    messages: dict[str, fluent_ast.Message] = {}
    for path in sorted((LOCALES / language).glob("*.ftl")):
        resource = FluentParser().parse(path.read_text(encoding="utf-8"))
        junk = [entry for entry in resource.body if isinstance(entry, fluent_ast.Junk)]
        assert not junk, f"{path}: unparsable entries {[j.content[:40] for j in junk]}"
        for entry in resource.body:
            if isinstance(entry, fluent_ast.Message):
                assert entry.id.name not in messages, f"{path}: duplicate {entry.id.name}"
                messages[entry.id.name] = entry
    return messages


def variables(message: fluent_ast.Message) -> set[str]:
    found: set[str] = set()

    class Collect(Visitor):
        def visit_VariableReference(self, node) -> None:
            found.add(node.id.name)

    Collect().visit(message)
    return found


def string_literals() -> set[str]:
    literals: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    literals.add(node.value)
    return literals


def used_keys() -> set[str]:
    """i18n.get("key"), core.get("key", ...) and every literal that names a key."""
    keys = set(keys_of("en"))
    literals = string_literals()
    return {key for key in keys if key in literals or _DYNAMIC.match(key)}


def test_every_language_has_exactly_the_same_keys_and_variables() -> None:
    english = keys_of("en")
    languages = [p.name for p in LOCALES.iterdir() if p.is_dir()]
    assert set(languages) >= {"en", "ru"}
    for language in languages:
        other = keys_of(language)
        assert set(other) == set(english), (
            f"{language}: missing {sorted(set(english) - set(other))}, "
            f"extra {sorted(set(other) - set(english))}"
        )
        for key, message in english.items():
            assert variables(other[key]) == variables(message), f"{language}:{key} variables"


def test_no_key_is_unused() -> None:
    unused = set(keys_of("en")) - used_keys()
    assert not unused, f"keys no code uses: {sorted(unused)}"


def test_every_key_the_code_asks_for_exists() -> None:
    keys = set(keys_of("en"))
    pattern = re.compile(r"""\.get\(\s*f?["']([a-z0-9-]+)["']""")
    asked: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            asked.update(pattern.findall(path.read_text(encoding="utf-8")))
    candidates = {key for key in asked if "-" in key and not key.startswith("http")}
    missing = {key for key in candidates if key not in keys and not key.endswith("-")}
    assert not missing, f"keys used in code but not in locales: {sorted(missing)}"


def test_dynamic_keys_exist() -> None:
    keys = set(keys_of("en"))
    for direction in ("topup", "deduct"):
        assert f"admin-{direction}-usage" in keys
        assert f"admin-{direction}-done" in keys
    from bot.app import ADMIN_COMMANDS, USER_COMMANDS
    from bot.i18n import LANGUAGES

    for name in USER_COMMANDS + ADMIN_COMMANDS:
        assert f"command-{name}" in keys
    for code in LANGUAGES:
        assert f"language-name-{code}" in keys


def test_every_activation_state_and_reason_has_a_text() -> None:
    from services import otp as act

    keys = set(keys_of("en"))
    for state in act.OPEN + act.CLOSED:
        assert f"status-{state}" in keys
    for reason in ("no_numbers", "provider_error", "no_upstream_order", "other"):
        assert f"otp-reason-{reason}" in keys


def test_every_notification_event_has_a_text() -> None:
    keys = set(keys_of("en"))
    pattern = re.compile(r"""\.emit(?:_now)?\(\s*(?:\w+,\s*)?["']([a-z-]+)["']""")
    events: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            events.update(pattern.findall(path.read_text(encoding="utf-8")))
    assert events >= {"purchase", "refund", "new-user", "topup", "code"}
    missing = {event for event in events if f"notify-{event}" not in keys}
    assert not missing, f"notification events without a text: {sorted(missing)}"


# --- plurals -------------------------------------------------------------------------------------
# Every message where a number meets a noun, rendered for 1, 2, 5 and 21 in both languages. The
# number goes in as the code passes it (bot.i18n.number: a Fluent number, printed like str()),
# because Fluent picks a plural form only for numbers, never for pre-formatted strings.
COUNTS = (1, 2, 5, 21)
_ROW = {"name": "hero", "kind": "sa", "enabled": "on", "balance": "1", "rate": "0%", "last": "—"}
PLURALS: list[tuple[str, str, dict[str, object], dict[str, tuple[str, str, str, str]]]] = [
    (
        "otp-too-many",
        "limit",
        {},
        {
            "en": ("1 open number.", "2 open numbers.", "5 open numbers.", "21 open numbers."),
            "ru": (
                "1 открытый номер.",
                "2 открытых номера.",
                "5 открытых номеров.",
                "21 открытый номер.",
            ),
        },
    ),
    (
        "smm-comments-count-error",
        "count",
        {"min": 1, "max": 9},
        {
            "en": ("sent 1 comment;", "sent 2 comments;", "sent 5 comments;", "sent 21 comments;"),
            "ru": (
                "прислали 1 комментарий;",
                "прислали 2 комментария;",
                "прислали 5 комментариев;",
                "прислали 21 комментарий;",
            ),
        },
    ),
    (
        "smm-confirm-dripfeed",
        "runs",
        {"interval": 10},
        {
            "en": ("1 run,", "2 runs,", "5 runs,", "21 runs,"),
            "ru": ("1 заход,", "2 захода,", "5 заходов,", "21 заход,"),
        },
    ),
    (
        "smm-dripfeed-quantity",
        "runs",
        {"quantity": 100, "total": 100},
        {
            "en": ("× 1 run =", "× 2 runs =", "× 5 runs =", "× 21 runs ="),
            "ru": ("× 1 заход =", "× 2 захода =", "× 5 заходов =", "× 21 заход ="),
        },
    ),
    (
        "smm-ask-comments",
        "max",
        {"name": "X", "min": 1},
        {
            "en": ("to 1 line.", "to 2 lines.", "to 5 lines.", "to 21 lines."),
            "ru": ("до 1 строки.", "до 2 строк.", "до 5 строк.", "до 21 строки."),
        },
    ),
    (
        "smm-link-too-long-error",
        "max",
        {},
        {
            "en": ("1 character.", "2 characters.", "5 characters.", "21 characters."),
            "ru": ("1 символа.", "2 символов.", "5 символов.", "21 символа."),
        },
    ),
    (
        "smm-comment-too-long-error",
        "max",
        {},
        {
            "en": (
                "1 character each.",
                "2 characters each.",
                "5 characters each.",
                "21 characters each.",
            ),
            "ru": ("1 символа.", "2 символов.", "5 символов.", "21 символа."),
        },
    ),
    (
        "smm-interval-range-error",
        "max",
        {"min": 1},
        {
            "en": ("to 1 minute.", "to 2 minutes.", "to 5 minutes.", "to 21 minutes."),
            "ru": ("до 1 минуты.", "до 2 минут.", "до 5 минут.", "до 21 минуты."),
        },
    ),
    (
        "smm-closed-partial",
        "remains",
        {"id": 7, "name": "X", "quantity": 100, "refund": "$1.00"},
        {
            "en": (
                "1 of 100 was not delivered.",
                "2 of 100 were not delivered.",
                "5 of 100 were not delivered.",
                "21 of 100 were not delivered.",
            ),
            "ru": (
                "1 из 100 не доставлено.",
                "2 из 100 не доставлено.",
                "5 из 100 не доставлено.",
                "21 из 100 не доставлено.",
            ),
        },
    ),
    (
        "admin-audit-ok",
        "users",
        {},
        {
            "en": ("1 user checked", "2 users checked", "5 users checked", "21 users checked"),
            "ru": ("1 пользователь)", "2 пользователя)", "5 пользователей)", "21 пользователь)"),
        },
    ),
    (
        "admin-audit-mismatch",
        "count",
        {"users": 30},
        {
            "en": ("1 mismatch:", "2 mismatches:", "5 mismatches:", "21 mismatches:"),
            "ru": ("1 расхождение:", "2 расхождения:", "5 расхождений:", "21 расхождение:"),
        },
    ),
    (
        "admin-audit-mismatch",
        "users",
        {"count": 30},
        {
            "en": ("1 user checked", "2 users checked", "5 users checked", "21 users checked"),
            "ru": ("1 пользователь)", "2 пользователя)", "5 пользователей)", "21 пользователь)"),
        },
    ),
    (
        "admin-stats-provider",
        "orders",
        {"provider": "hero", "revenue": "$1.00", "cost": "$0.50"},
        {
            "en": ("hero: 1 order ·", "hero: 2 orders ·", "hero: 5 orders ·", "hero: 21 orders ·"),
            "ru": ("hero: 1 заказ ·", "hero: 2 заказа ·", "hero: 5 заказов ·", "hero: 21 заказ ·"),
        },
    ),
    (
        "admin-provider-row",
        "requests",
        {**_ROW, "errors": 30},
        {
            "en": ("· 1 request,", "· 2 requests,", "· 5 requests,", "· 21 requests,"),
            "ru": ("· 1 запрос,", "· 2 запроса,", "· 5 запросов,", "· 21 запрос,"),
        },
    ),
    (
        "admin-provider-row",
        "errors",
        {**_ROW, "requests": 30},
        {
            "en": (", 1 error (", ", 2 errors (", ", 5 errors (", ", 21 errors ("),
            "ru": (", 1 ошибка (", ", 2 ошибки (", ", 5 ошибок (", ", 21 ошибка ("),
        },
    ),
    (
        "broadcast-progress-counts",
        "failed",
        {"sent": 30, "blocked": 30},
        {
            "en": ("1 failed", "2 failed", "5 failed", "21 failed"),
            "ru": ("1 ошибка", "2 ошибки", "5 ошибок", "21 ошибка"),
        },
    ),
    (
        "notify-provider-errors",
        "errors",
        {"provider": "hero", "requests": 30, "last": "x"},
        {
            "en": (": 1 error in", ": 2 errors in", ": 5 errors in", ": 21 errors in"),
            "ru": (": 1 ошибка на", ": 2 ошибки на", ": 5 ошибок на", ": 21 ошибка на"),
        },
    ),
    (
        "notify-provider-errors",
        "requests",
        {"provider": "hero", "errors": 30, "last": "x"},
        {
            "en": ("in 1 request in", "in 2 requests in", "in 5 requests in", "in 21 requests in"),
            "ru": ("на 1 запрос за", "на 2 запроса за", "на 5 запросов за", "на 21 запрос за"),
        },
    ),
    (
        "forget-done",
        "count",
        {},
        {
            "en": ("1 order was", "2 orders were", "5 orders were", "21 orders were"),
            "ru": ("стёрт 1 заказ", "стёрто 2 заказа", "стёрто 5 заказов", "стёрт 21 заказ"),
        },
    ),
    (
        "otp-too-many-cancels",
        "limit",
        {"wait": "3:05", "time": "18:00"},
        {
            "en": ("cancelled 1 number ", "cancelled 2 numbers ", "5 numbers ", "21 numbers "),
            "ru": ("отменили 1 номер ", "отменили 2 номера ", "5 номеров ", "21 номер "),
        },
    ),
]
PLURAL_CATEGORIES = {"zero", "one", "two", "few", "many", "other"}


@pytest.fixture(scope="module")
def core():
    from bot.i18n import make_core

    core = make_core("en")
    asyncio.run(core.startup())
    return core


@pytest.mark.parametrize(
    ("key", "variable", "values", "forms"), PLURALS, ids=[f"{c[0]}:{c[1]}" for c in PLURALS]
)
@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_number_next_to_a_noun_takes_its_plural_form(
    core, language, key, variable, values, forms
) -> None:
    from bot.i18n import number

    args = {name: number(v) if isinstance(v, int) else v for name, v in values.items()}
    for count, expected in zip(COUNTS, forms[language], strict=True):
        text = core.get(key, language, **args, **{variable: number(count)})
        assert expected in text, f"{language}:{key} with {variable}={count}: {text!r}"


def plural_selectors(message: fluent_ast.Message) -> set[str]:
    """The variables this message selects a plural form by (`{ $n -> [one] … *[other] … }`)."""
    found: set[str] = set()

    class Collect(Visitor):
        def visit_SelectExpression(self, node) -> None:
            names = {getattr(v.key, "name", None) for v in node.variants}
            if isinstance(node.selector, fluent_ast.VariableReference) and names <= (
                PLURAL_CATEGORIES
            ):
                found.add(node.selector.id.name)
            self.generic_visit(node)

    Collect().visit(message)
    return found


def test_every_plural_selector_is_checked_here() -> None:
    checked = {(key, variable) for key, variable, _, _ in PLURALS}
    selected: set[tuple[str, str]] = set()
    for language in ("en", "ru"):
        found = {
            (key, variable)
            for key, message in keys_of(language).items()
            for variable in plural_selectors(message)
        }
        assert found <= checked, f"{language}: add to PLURALS: {sorted(found - checked)}"
        selected |= found
    assert checked == selected, f"no selector in any language: {sorted(checked - selected)}"


def test_the_code_passes_numbers_where_a_text_selects_a_plural() -> None:
    """`str(n)` or an f-string would reach Fluent as text, and text always takes `*[other]`."""
    selecting = {key: plural_selectors(m) for key, m in keys_of("en").items()}
    wrong = []
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                first = node.args[0]
                if not (isinstance(first, ast.Constant) and first.value in selecting):
                    continue
                for keyword in node.keywords:
                    value = keyword.value
                    as_text = isinstance(value, ast.JoinedStr) or (
                        isinstance(value, ast.Call)
                        and getattr(value.func, "id", None) in {"str", "format_money", "escape"}
                    )
                    if keyword.arg in selecting[first.value] and as_text:
                        wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {first.value}")
    assert not wrong, wrong


def test_the_smm_texts_pass_numbers(core) -> None:
    from handlers.smm_views import input_error, prompt_text
    from services import smm

    def t(key: str, **values: object) -> str:
        return core.get(key, "ru", **values)

    assert "не больше 21 символа" in input_error(smm.BadInput("comment_too_long", max=21), t)
    assert "до 21 минуты" in input_error(smm.BadInput("interval_range", min=1, max=21), t)
    assert "прислали 2 комментария" in input_error(
        smm.BadInput("comments_count", min=1, max=9, count=2), t
    )
    item = SimpleNamespace(name="X", min=1, max=21)
    assert "от 1 до 21 строки" in prompt_text("comments", item, t, "USD")  # type: ignore[arg-type]
