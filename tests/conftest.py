"""Shared fixtures. Runs write `.same/` beside the notebook, so fixture notebooks are always copied
into a temporary folder first: no test ever runs a notebook inside tests/notebooks/.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parent / "notebooks"


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
