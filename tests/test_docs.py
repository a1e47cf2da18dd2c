"""docs/ stays true: settings, commands and links it names exist; nothing points outside the repository.

The checks read the Markdown the way a newcomer does: every relative link
and anchor must resolve inside the repository, every ``outagewatch ...``
command in a shell block or an inline code span must parse with the real
CLI (command, subcommand and every ``--flag``), and every
``OUTAGEWATCH_*`` variable named must be a setting.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import CONFIG_FILE_ENV, load_settings
from outagewatch.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
GLOBAL_FLAGS_WITH_VALUE = {"--config"}
SKIPPED_DIRS = {"__pycache__", "build", "dist", "node_modules"}


def _ids(pages: list[Path]) -> list[str]:
    return [str(page.relative_to(ROOT)) for page in pages]


def _without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading.

    >>> slug("Client report v1 and the collector's HTTP contract")
    'client-report-v1-and-the-collectors-http-contract'
    >>> slug("`outagewatch evaluate`")
    'outagewatch-evaluate'
    """
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} +(.+?) *$", _without_fences(page.read_text()), re.M)
    return {slug(heading) for heading in headings}


def links(page: Path) -> Iterator[str]:
    for target in re.findall(r"\]\(([^)\s]+)\)", _without_fences(page.read_text())):
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_link_resolves_inside_the_repository(page: Path) -> None:
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} points outside the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{page.name}: {target}: no heading with that anchor"


def test_configuration_documents_every_setting() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name in load_settings(env={}).env_names():
        assert f"`{name}`" in text, f"{name} is missing from docs/configuration.md"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_variable_named_is_a_setting(page: Path) -> None:
    known = {*load_settings(env={}).env_names(), CONFIG_FILE_ENV}
    for name in re.findall(r"\bOUTAGEWATCH_[A-Z0-9_]+\b", page.read_text()):
        if not name.endswith("_"):  # a prefix: OUTAGEWATCH_<SECTION>_..., OUTAGEWATCH_ALERTING_*
            assert name in known, f"{page.name}: {name} is not a setting"


def code_commands(text: str) -> Iterator[str]:
    """The ``outagewatch ...`` invocations of shell blocks and inline code spans.

    >>> list(code_commands("run `outagewatch stack up` or\\n```sh\\nx && outagewatch -v worker --web-port 1  # two\\n```"))
    ['-v worker --web-port 1', 'stack up']
    """
    for block in re.findall(r"^```(?:sh|bash)\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            for in_block in re.finditer(r"(?:^|[\s/])outagewatch +([^#&;]*)", line):
                yield in_block.group(1).strip()
    for span in re.findall(r"`([^`\n]+)`", _without_fences(text)):
        inline = re.match(r"(?:\S*/)?outagewatch +(.*)", span)
        if inline:
            yield inline.group(1).strip()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}  # noqa: SLF001


def invocation_problems(root: argparse.ArgumentParser, invocation: str) -> list[str]:
    r"""What does not exist of an invocation: its command, its subcommand or a flag.

    ``|`` separates alternatives (``stack up | down``, ``build [--out DIR] | push --url U``):
    a part starting with a sibling subcommand is checked against that one.

    >>> invocation_problems(build_parser(), "dashboards build [--out DIR] \\| push --url URL")
    []
    >>> invocation_problems(build_parser(), "worker --web-prot 1")
    ['outagewatch worker: no flag --web-prot']
    >>> invocation_problems(build_parser(), "history compact")
    ['outagewatch history compact: no such subcommand']
    """
    tokens = shlex.split(invocation.replace("\\|", " | ").replace("[", " ").replace("]", " "))
    while tokens and tokens[0].startswith("-"):
        tokens = tokens[2:] if tokens[0] in GLOBAL_FLAGS_WITH_VALUE else tokens[1:]
    if not tokens:
        return []  # global flags only: `outagewatch --help`
    commands = _subcommands(root)
    if tokens[0] not in commands:
        return [f"outagewatch {tokens[0]}: no such command"]
    parser, path, rest = commands[tokens[0]], [tokens[0]], tokens[1:]
    siblings: dict[str, argparse.ArgumentParser] = {}
    subcommands = _subcommands(parser)
    if subcommands and rest and not rest[0].startswith("-"):
        if rest[0] not in subcommands:
            return [f"outagewatch {tokens[0]} {rest[0]}: no such subcommand"]
        siblings, parser, path, rest = subcommands, subcommands[rest[0]], [*path, rest[0]], rest[1:]
    problems = []
    for index, token in enumerate(rest):
        if token == "|":
            following = rest[index + 1] if index + 1 < len(rest) else ""
            if following in siblings:
                parser, path = siblings[following], [path[0], following]
        elif token.startswith("--") and token.split("=", 1)[0] not in _flags(parser):
            problems.append(f"outagewatch {' '.join(path)}: no flag {token.split('=', 1)[0]}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_command_shown_exists_with_its_flags(page: Path) -> None:
    root = build_parser()
    commands = list(code_commands(page.read_text()))
    problems = [problem for invocation in commands for problem in invocation_problems(root, invocation)]
    assert not problems, f"{page.name}: {problems}"
    if page.name != "contracts.md":
        assert commands, f"{page.name} shows no outagewatch command: is the pattern still finding them?"


def _repository_text_files() -> Iterator[Path]:
    tops = [top for top in ROOT.iterdir() if not top.name.startswith(".") or top.name == ".ci"]
    for path in (found for top in tops for found in ([top] if top.is_file() else top.rglob("*"))):
        parts = path.relative_to(ROOT).parts
        generated = any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in parts)
        text = path.suffix in {".py", ".md", ".toml", ".yml", ".yaml", ".xml", ".cfg"} or parts[0] == ".ci"
        if text and path.is_file() and not generated and parts[:2] != ("deploy", "grafana"):
            yield path


def test_nothing_points_outside_the_repository() -> None:
    outside = "/".join(["..", "shared"])  # spelled so this file does not match its own check
    machine = re.compile(r"(?<![\w}.])/(?:work|root|home)/")
    design = re.compile(r"(?<![\w/])design\.md")
    for path in _repository_text_files():
        text = path.read_text(errors="replace")
        where = path.relative_to(ROOT)
        assert outside not in text, f"{where} points at {outside}"
        assert not machine.search(text), f"{where} names a path of this machine: {machine.search(text)}"
        if path.suffix == ".py":
            assert not design.search(text), f"{where}: refer to docs/design.md, the design in the repository"
