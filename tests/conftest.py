"""Shared fixtures. Runs write `.same/` beside the notebook, so fixture notebooks are always copied
into a temporary folder first: no test ever runs a notebook inside tests/notebooks/.
"""
from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
NOTEBOOKS = TESTS / "notebooks"


def _copy_fixture(name: str, folder: Path, files: dict[str, str] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.ipynb"
    shutil.copyfile(NOTEBOOKS / f"{name}.ipynb", target)
    for rel, text in (files or {}).items():
        (folder / rel).write_text(text)
    return target


@pytest.fixture
def notebook_copy(tmp_path, monkeypatch):
    """``copy(name, files={rel: text}, folder=None) -> Path``: a fixture notebook copied into tmp_path
    (or ``folder``), with extra files beside it; the run store lands beside it too."""
    monkeypatch.delenv("SAME_NB_DB", raising=False)

    def copy(name: str, files: dict[str, str] | None = None, folder: Path | None = None) -> Path:
        return _copy_fixture(name, folder or tmp_path, files)

    return copy


@pytest.fixture(scope="module")
def module_notebook_copy(tmp_path_factory):
    """Like ``notebook_copy`` for module-scoped fixtures that run a notebook once for many tests;
    each call gets a fresh folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)

        def copy(name: str, files: dict[str, str] | None = None) -> Path:
            return _copy_fixture(name, tmp_path_factory.mktemp(name), files)

        yield copy


def notebook_data(cells: list[tuple[list[str], str]]) -> dict:
    """nbformat 4.5 JSON from (tags, source) pairs; tags starting with "md" make a markdown cell."""
    def cell(i: int, tags: list[str], source: str) -> dict:
        if tags[:1] == ["md"]:
            return {"cell_type": "markdown", "id": f"c{i}", "metadata": {}, "source": source}
        return {"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags} if tags else {},
                "source": source, "outputs": [], "execution_count": None}

    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}},
            "cells": [cell(i, tags, source) for i, (tags, source) in enumerate(cells, 1)]}


@pytest.fixture
def write_notebook(tmp_path):
    """``write(cells, name="nb") -> Path``: a notebook written into tmp_path from (tags, source) pairs."""
    def write(cells: list[tuple[list[str], str]], name: str = "nb") -> Path:
        path = tmp_path / f"{name}.ipynb"
        path.write_text(json.dumps(notebook_data(cells), indent=1))
        return path

    return write


@pytest.fixture(autouse=True)
def _real_print():
    """kfp.local indents its output by swapping ``builtins.print`` and back (kfp/local/logging_utils.py),
    which is not thread-safe: a ParallelFor's concurrent iterations can leave an indenting ``print``
    installed, and every later test's captured output then starts with spaces. Put the real one back."""
    real = builtins.print
    yield
    builtins.print = real
