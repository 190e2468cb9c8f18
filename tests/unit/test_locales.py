"""Every text a user sees comes from locales/, complete in every language, none unused."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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
    from services import activations as act

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
