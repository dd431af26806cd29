"""The README stays true: its CLI section matches the parser, and its example commands run.

The commands run against a copy of examples/ in a temporary folder, so no `.same/` lands in the repo.
"""
from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from same_nb.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# Run by .ci/run itself: installing the package and the test suite.
CI_COMMANDS = ("python3 -m pip install ", "python3 -m ruff ", "python3 -m pytest ")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _cli_rows() -> dict[str, list[str]]:
    """Each table row's command cell, by subcommand (a subcommand may have several rows)."""
    rows: dict[str, list[str]] = {}
    for cell in re.findall(r"^\| `same-nb (.+?)` \|", _section("CLI"), re.M):
        rows.setdefault(cell.split()[0], []).append(cell)
    return rows


def _bash_commands() -> list[str]:
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", README, re.S | re.M):
        for line in block.splitlines():
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def test_every_subcommand_and_option_is_in_the_cli_section():
    rows = _cli_rows()
    for name, parser in _subcommands().items():
        assert name in rows, f"README's CLI section has no row for `same-nb {name}`"
        text = " ".join(rows[name])
        for action in parser._actions:
            for option in action.option_strings:
                if option in ("-h", "--help"):
                    continue
                assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), \
                    f"README's CLI section does not mention `same-nb {name} {option}`"


def test_every_command_in_the_cli_section_exists():
    subcommands = _subcommands()
    for name, cells in _cli_rows().items():
        assert name in subcommands, f"README documents `same-nb {name}`, which the CLI does not have"
        known = {o for a in subcommands[name]._actions for o in a.option_strings}
        for cell in cells:
            for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", cell):
                assert option in known, f"README documents `same-nb {name} {option}`, which does not exist"


def test_readme_commands_are_known_to_this_test():
    for command in _bash_commands():
        assert command.startswith(CI_COMMANDS + ("same-nb ",)), f"README command this test cannot run: {command}"


@pytest.mark.slow
def test_readme_example_commands_run(tmp_path, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    shutil.copytree(ROOT / "examples", tmp_path / "examples",
                    ignore=shutil.ignore_patterns(".same", "models", "*-pipeline", ".ipynb_checkpoints"))
    executable = shutil.which("same-nb")
    assert executable, "same-nb is not on PATH (the README's install command puts it there)"
    commands = [c for c in _bash_commands() if c.startswith("same-nb ")]
    assert len(commands) >= 5
    for command in commands:
        done = subprocess.run([executable, *shlex.split(command)[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"


def test_readme_shows_the_sidebar_and_no_placeholder_binder_badge():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", README)
    assert images and all((ROOT / image).stat().st_size > 10_000 for image in images)
    assert all((ROOT / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    shown = {Path(image).name for image in images}
    assert {"pipeline-view.png", "runs-table.png", "compare.png", "lineage-trace.png",
            "params-validation.png", "notebook-badges.png"} <= shown
    # A badge must point at a real repository: none until the project has a public address.
    for badge in re.findall(r"\(https://mybinder\.org/v2/gh/[^)]+\)", README):
        assert "/OWNER/" not in badge and "urlpath=lab/tree/examples/" in badge
