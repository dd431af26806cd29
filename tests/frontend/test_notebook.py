"""same_nb.frontend.notebook: loading a notebook into plain cells, with errors naming the file and the problem."""
from __future__ import annotations

import hashlib
import json
import warnings

import pytest

from same_nb.errors import SameError
from same_nb.frontend.notebook import load_notebook

from conftest import NOTEBOOKS, notebook_data


def load_error(path) -> SameError:
    with pytest.raises(SameError) as info:
        load_notebook(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_cells_keep_position_id_type_source_and_tags():
    path = NOTEBOOKS / "tags_code_before_first.ipynb"
    nb = load_notebook(path)
    assert [(c.number, c.id, c.cell_type) for c in nb.cells] == [
        (1, "c1", "code"), (2, "c2", "markdown"), (3, "c3", "code"), (4, "c4", "code"), (5, "c5", "code")]
    assert nb.cells[0].source == "import math\nbase = 10"
    assert nb.cells[2].tags == ["step:load"]
    assert [c.number for c in nb.code_cells] == [1, 3, 4, 5]
    assert nb.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (nb.kernel, nb.language, nb.nbformat) == ("python3", "python", 4)


def test_list_sources_are_joined(tmp_path):
    data = notebook_data([(["step:a"], "")])
    data["cells"][0]["source"] = ["x = 1\n", "y = x\n"]
    path = tmp_path / "lines.ipynb"
    path.write_text(json.dumps(data))
    assert load_notebook(path).cells[0].source == "x = 1\ny = x\n"


def test_old_format_v3_is_upgraded():
    nb = load_notebook(NOTEBOOKS / "old_format_v3.ipynb")
    assert nb.nbformat == 4
    assert [(c.source, c.tags) for c in nb.cells] == [("a = 1", ["step:one"]), ("b = a + 1", ["step:two"])]
    assert len({c.id for c in nb.cells}) == 2


@pytest.mark.parametrize("fixture, expected", [
    ("error_not_json", "not valid JSON: Expecting property name enclosed in double quotes at line 3, column 3"),
    ("error_not_notebook", "not a notebook: the JSON has no 'cells'"),
    ("error_r_kernel", "the notebook's kernel is 'r' (ir); same-nb runs Python notebooks only"),
    ("error_no_code", "the notebook has no code cells"),
])
def test_fixture_load_errors_name_file_and_problem(fixture, expected):
    assert expected in load_error(NOTEBOOKS / f"{fixture}.ipynb").message


@pytest.mark.parametrize("content, expected", [
    (b"", "not valid JSON: Expecting value at line 1, column 1"),
    (b'{"cells": [], "nbformat": 4', "not valid JSON: Expecting ',' delimiter at line 1, column 28"),
    (b"\xff\xfe\x00garbage", "not a notebook: the file is not UTF-8 text (byte 0)"),
    (b"[" * 100_000, "nested too deeply"),
    (b"[1, 2]", "not a notebook: the JSON has no 'cells'"),
    (b'{"cells": []}', "missing or invalid 'nbformat' version"),
    (b'{"cells": [], "nbformat": true}', "missing or invalid 'nbformat' version"),
    (b'{"cells": "abc", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "'cells' is not a list"),
    (b'{"cells": [], "nbformat": 9, "nbformat_minor": 0, "metadata": {}}', "notebook format 9 is newer"),
    (b'{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": []}',
     "invalid notebook: [] is not of type 'object' (at metadata)"),
    (b'{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
     "invalid notebook"),
    (b'{"nbformat": 2, "nbformat_minor": 0, "worksheets": []}', "cannot upgrade notebook format 2 to 4"),
], ids=["empty", "truncated", "binary", "deep", "list", "no-version", "bool-version", "cells-str",
        "too-new", "bad-metadata", "bad-cell", "v2-broken"])
def test_malformed_files_give_a_specific_error(tmp_path, content, expected):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    assert expected in load_error(path).message


def test_missing_file_and_directory(tmp_path):
    assert load_error(tmp_path / "absent.ipynb").message == "no such file"
    assert load_error(tmp_path).message == "is a directory, not a notebook"


def test_only_blank_code_cells_count_as_no_code(write_notebook):
    path = write_notebook([(["md"], "# title"), ([], "  \n"), (["step:a"], "")])
    assert load_error(path).message == "the notebook has no code cells"


def test_language_falls_back_to_language_info(tmp_path):
    data = notebook_data([([], "x = 1")])
    data["metadata"] = {"language_info": {"name": "julia"}}
    path = tmp_path / "julia.ipynb"
    path.write_text(json.dumps(data))
    assert "kernel is 'julia'" in load_error(path).message


def test_missing_and_duplicate_cell_ids_get_stable_values_silently(tmp_path):
    data = notebook_data([([], "a = 1"), ([], "b = a"), ([], "c = b"), ([], "d = c")])
    del data["cells"][0]["id"]
    data["cells"][2]["id"] = data["cells"][3]["id"] = "same"
    path = tmp_path / "ids.ipynb"
    path.write_text(json.dumps(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # nbformat's repair warnings would fail here
        first = [c.id for c in load_notebook(path).cells]
    assert first == ["cell-1", "c2", "same", "same-2"]
    assert [c.id for c in load_notebook(path).cells] == first


def test_loading_never_modifies_the_file():
    path = NOTEBOOKS / "kale_conventions.ipynb"
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    load_notebook(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
