"""Server-root path resolution: what the REST API accepts as a notebook or folder path."""
from __future__ import annotations

from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.server.paths import PathError, resolve_in_root, to_api_path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "sub" / "nb.ipynb").write_text("{}")
    (tmp_path / "root" / "notes.txt").write_text("")
    return tmp_path / "root"


def refused(root: Path, path: str, kind: str = "notebook") -> PathError:
    with pytest.raises(PathError) as info:
        resolve_in_root(root, path, kind=kind)
    assert isinstance(info.value, SameError)
    return info.value


def test_relative_paths_resolve_inside_the_root(root: Path):
    assert resolve_in_root(root, "sub/nb.ipynb") == (root / "sub" / "nb.ipynb").resolve()
    assert resolve_in_root(root, "./sub//nb.ipynb") == (root / "sub" / "nb.ipynb").resolve()
    assert resolve_in_root(root, "", kind="any") == root.resolve()
    assert resolve_in_root(root, "sub", kind="dir") == (root / "sub").resolve()
    assert resolve_in_root(root, "sub/nb.ipynb", kind="any").name == "nb.ipynb"


@pytest.mark.parametrize("path,status,words", [
    ("../root/sub/nb.ipynb", 400, "'..'"), ("sub/../sub/nb.ipynb", 400, "'..'"),
    ("sub\\..\\sub\\nb.ipynb", 400, "'..'"), ("/etc/passwd", 400, "absolute"),
    ("C:\\Windows\\nb.ipynb", 400, "absolute"), ("\\\\server\\share\\nb.ipynb", 400, "absolute"),
    ("sub/nb\x00.ipynb", 400, "NUL"), ("sub/missing.ipynb", 404, "no such notebook"),
    ("notes.txt", 400, "not a notebook"), ("sub", 404, "no such notebook"),
])
def test_bad_paths_are_refused_with_a_status_and_message(root: Path, path, status, words):
    error = refused(root, path)
    assert error.status == status and words in error.message


def test_symlinks_leading_outside_the_root_are_forbidden(root: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.ipynb").write_text("{}")
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "sub" / "link.ipynb").symlink_to(outside / "x.ipynb")
    (root / "sub" / "inside.ipynb").symlink_to(root / "sub" / "nb.ipynb")
    assert refused(root, "out/x.ipynb").status == 403
    assert refused(root, "sub/link.ipynb").status == 403
    assert refused(root, "out", kind="dir").status == 403
    assert resolve_in_root(root, "sub/inside.ipynb") == (root / "sub" / "nb.ipynb").resolve()


def test_api_paths_are_relative_or_none_outside_the_root(root: Path, tmp_path: Path):
    assert to_api_path(root, root / "sub" / "nb.ipynb") == "sub/nb.ipynb"
    assert to_api_path(root, root) == ""
    assert to_api_path(root, tmp_path / "elsewhere.ipynb") is None
    assert to_api_path(root, None) is None
