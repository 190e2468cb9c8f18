"""The documents in the repository stay true to the code: the lifecycle diagrams are exactly what
the lifecycle tables render, and every link points to a file in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.orders.lifecycle import OTP, SMM, Lifecycle, mermaid

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DOCUMENTS = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# [text](target) and [text](target "title"); images too.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REGENERATE = (
    '.venv/bin/python -c "from services.orders.lifecycle import {name}, mermaid; '
    'print(mermaid({name}))"'
)


@pytest.mark.parametrize(("name", "lifecycle"), [("OTP", OTP), ("SMM", SMM)])
def test_lifecycle_diagram_is_what_the_table_renders(name: str, lifecycle: Lifecycle) -> None:
    text = (DOCS / "lifecycles.md").read_text(encoding="utf-8")
    block = f"```mermaid\n{mermaid(lifecycle)}\n```"
    assert block in text, (
        f"docs/lifecycles.md does not show the {name} lifecycle as the code has it: replace its "
        f"diagram with the output of\n    {REGENERATE.format(name=name)}"
    )


def test_lifecycles_doc_has_one_diagram_per_lifecycle() -> None:
    text = (DOCS / "lifecycles.md").read_text(encoding="utf-8")
    assert text.count("```mermaid\n") == 2  # no stale copy left next to the current one


def test_the_docs_exist_and_the_index_links_them_all() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    expected = {"architecture.md", "money.md", "lifecycles.md", "protocols.md"}
    expected.add("adding-a-provider.md")
    for name in sorted(expected):
        assert (DOCS / name).is_file(), name
        assert f"]({name})" in index, name


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_link_points_into_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    for target in _LINK.findall(text):
        path = target.split("#", 1)[0]
        if not path:
            continue  # an anchor in the same document
        assert "://" not in path and not path.startswith(("/", "mailto:")), (
            f"{document.name} links outside the repository: {target}"
        )
        resolved = (document.parent / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{document.name}: {target} leaves the repository"
        assert resolved.exists(), f"{document.name}: {target} does not exist"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_no_document_sends_readers_to_a_design_file_outside_the_repository(
    document: Path,
) -> None:
    text = document.read_text(encoding="utf-8")
    assert "DESIGN.md" not in text
    assert "design folder" not in text.lower()


# Commands any customer may send; every other command a handler registers is an admin's.
CUSTOMER_COMMANDS = {"balance", "forget", "help", "history", "language"}
_COMMAND = re.compile(r"\bCommand\(([^)]*)\)")


def _registered_commands() -> set[str]:
    names: set[str] = set()
    for source in sorted((ROOT / "handlers").glob("*.py")):
        for args in _COMMAND.findall(source.read_text(encoding="utf-8")):
            names.update(re.findall(r"\"([a-z_]+)\"", args))
    return names


def test_the_readme_admin_table_lists_every_admin_command() -> None:
    registered = _registered_commands()
    assert registered >= CUSTOMER_COMMANDS  # the list above is not stale
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Admin commands", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`/([a-z_]+)", section))
    missing = sorted(registered - CUSTOMER_COMMANDS - listed)
    assert not missing, f"admin commands missing from the README's table: {missing}"
