"""One escaping helper for every value that enters a Telegram message."""

from __future__ import annotations

import re
from pathlib import Path

from services.text import countdown, escape, mention
from tests.fakes.telegram import check_html, visible_text

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_escapes_through_the_one_helper() -> None:
    helper = ROOT / "services" / "text.py"
    offenders = []
    for folder in ("bot", "handlers", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            if path != helper and (
                re.search(r"^\s*(from html import|import html\b)", source, re.M)
                or "html.escape" in source
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"escape with services.text.escape instead: {offenders}"


def test_escaped_values_read_as_they_were_written() -> None:
    for value in ("<b>oops & <script>", 'say "hi" & <bye>', "it's fine", "&amp;"):
        text = f'<a href="tg://user?id=1">{escape(value)}</a> {escape(value)}'
        check_html(text)
        assert visible_text(text, "HTML") == f"{value} {value}"
    assert escape(None) == ""
    assert escape(12) == "12"


def test_a_person_is_a_mention_with_the_id() -> None:
    assert mention(1001, "Alice") == '<a href="tg://user?id=1001">Alice</a> (1001)'
    assert mention(7, "<Eve> & co") == '<a href="tg://user?id=7">&lt;Eve&gt; &amp; co</a> (7)'
    assert mention(5) == '<a href="tg://user?id=5">5</a>'


def test_countdown_is_minutes_and_seconds() -> None:
    assert countdown(114) == "1:54"
    assert countdown(119.2) == "2:00"
    assert countdown(5) == "0:05"
    assert countdown(-3) == "0:00"
    assert countdown(3600) == "60:00"
