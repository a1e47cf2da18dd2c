"""README stays true: its commands exist and its configuration table is complete."""

from __future__ import annotations

import re
from pathlib import Path

from core.config import load_settings
from outagewatch.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _command_after(marker: str) -> str:
    block = README.split(marker, 1)[1]
    return re.search(r"```sh\n(.+?)\n```", block, re.S).group(1).strip()


def test_readme_documents_every_setting() -> None:
    for name in load_settings(env={}).env_names():
        assert f"`{name}`" in README, f"{name} is missing from the README configuration table"


def test_readme_has_the_two_commands() -> None:
    assert "pip install -e '.[dev]'" in _command_after("<!-- setup-command -->")
    assert _command_after("<!-- test-command -->") == ".venv/bin/python -m pytest"


def test_every_outagewatch_subcommand_in_the_setup_command_exists() -> None:
    parser = build_parser()
    for invocation in re.findall(r"outagewatch ([a-z-]+(?: [a-z-]+)?)", _command_after("<!-- setup-command -->")):
        parser.parse_args(invocation.split())  # exits (fails the test) on an unknown command
