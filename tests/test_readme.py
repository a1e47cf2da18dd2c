"""README stays true: its two commands exist, and it links every page of docs/."""

from __future__ import annotations

import re
from pathlib import Path

from outagewatch.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _command_after(marker: str) -> str:
    block = README.split(marker, 1)[1]
    found = re.search(r"```sh\n(.+?)\n```", block, re.S)
    assert found, f"no ```sh block after {marker}"
    return found.group(1).strip()


def test_readme_has_the_two_commands() -> None:
    assert "pip install -e '.[dev]'" in _command_after("<!-- setup-command -->")
    assert _command_after("<!-- test-command -->") == ".venv/bin/python -m pytest"


def test_every_outagewatch_subcommand_in_the_setup_command_exists() -> None:
    parser = build_parser()
    for invocation in re.findall(r"outagewatch ([a-z-]+(?: [a-z-]+)?)", _command_after("<!-- setup-command -->")):
        parser.parse_args(invocation.split())  # exits (fails the test) on an unknown command


def test_readme_links_every_page_of_docs() -> None:
    linked = set(re.findall(r"\]\((docs/[^)#\s]+)", README))
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"README links no {sorted(pages - linked)}"


def test_readme_lists_every_package() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    table = README.split("| package | owns |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_]+)/` \|", table, re.M))
    assert packages | {"tests"} == listed
