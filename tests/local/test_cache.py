"""Step cache keys and the "why it ran" reasons: pure functions first, then a real run history."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from same_nb.local.cache import cache_key, explain, normalized_code
from same_nb.local.progress import make_progress, print_summary
from same_nb.service import run_notebook


def test_comments_and_formatting_do_not_change_normalized_code():
    base = normalized_code("x = [b * 2 for b in base]\ny = x")
    assert normalized_code("# doubled\nx = [b*2   for b in base]  # twice\n\n\ny = x\n") == base
    assert normalized_code("x = [b * 3 for b in base]\ny = x") != base


def test_cells_with_magics_compare_lines_without_comments():
    code = "%time x = 1\n!echo hi"
    assert normalized_code("# note\n%time x = 1\n\n!echo hi  # shell") == normalized_code(code)
    assert normalized_code("%time x = 2\n!echo hi") != normalized_code(code)


def _info(**changes) -> dict:
    info = {"code": "c", "cells": {"3": "h3", "4": "h4"}, "inputs": {"df": "aaa"}, "params": {"n": 1},
            "packages": {"pandas": "2.2.0"}, "outputs": ["model"], "env": {}, "runtime": "0.1.0"}
    return {**info, **changes}


def test_cache_key_covers_every_component():
    keys = {cache_key(_info())}
    for change in ({"cells": {"3": "other", "4": "h4"}}, {"inputs": {"df": "bbb"}}, {"params": {"n": 2}},
                   {"packages": {"pandas": "2.2.1"}}, {"outputs": []}, {"env": {"A": "1"}},
                   {"runtime": "0.2.0"}):
        keys.add(cache_key(_info(**change)))
    assert len(keys) == 8
    assert cache_key(_info()) == cache_key(json.loads(json.dumps(_info())))


@pytest.mark.parametrize("change, reason", [
    ({"cells": {"3": "other", "4": "h4"}}, "code changed in cell 3"),
    ({"cells": {"3": "h3"}}, "cells added or removed"),
    ({"inputs": {"df": "bbb"}}, "input df changed (from load)"),
    ({"inputs": {"df": "aaa", "extra": "e"}}, "new input extra"),
    ({"params": {"n": 2}}, "param n 1 → 2"),
    ({"packages": {"pandas": "2.2.1"}}, "pandas 2.2.0 → 2.2.1"),
    ({"outputs": ["model", "score"]}, "later steps read different variables"),
    ({"env": {"A": "1"}}, "environment variables changed"),
    ({"runtime": "0.2.0"}, "same-nb 0.1.0 → 0.2.0"),
])
def test_explain_names_what_changed(change, reason):
    assert explain(_info(**change), _info(), {"df": "load"}) == reason


def test_explain_first_run_and_several_changes():
    assert explain(_info(), None, {}) == "not cached"
    both = explain(_info(params={"n": 2}, inputs={"df": "bbb"}), _info(), {"df": "load"})
    assert both == "input df changed (from load); param n 1 → 2"


# -- a real history of runs of one notebook -------------------------------------------------------

def _edit_cell(nb: Path, number: int, source: str) -> None:
    data = json.loads(nb.read_text())
    data["cells"][number - 1]["source"] = source
    nb.write_text(json.dumps(data, indent=1))


def _cell_of(nb: Path, tag: str) -> int:
    cells = json.loads(nb.read_text())["cells"]
    return next(i for i, c in enumerate(cells, 1) if tag in c["metadata"].get("tags", []))


@pytest.fixture(scope="module")
def history(module_notebook_copy):
    """Runs of one notebook, each after one change; {label: (RunResult, summary text)}."""
    nb = module_notebook_copy("branching")
    left_cell = _cell_of(nb, "step:left")
    runs = {}

    def go(label, **kwargs):
        result = run_notebook(nb, progress=make_progress(quiet=True), **{"params": [("n", "3")], **kwargs})
        out = io.StringIO()
        print_summary(result, out)
        runs[label] = (result, out.getvalue())

    go("first")
    go("again")
    go("no-cache", use_cache=False)
    _edit_cell(nb, left_cell, "# doubled\nleft = [b*2 for b in base]  # twice\n")
    go("comment")
    _edit_cell(nb, left_cell, "left = [b * 3 for b in base]")
    go("code")
    go("param", params=[("n", "4")])
    shutil.rmtree(nb.parent / ".same" / "artifacts")
    go("deleted", params=[("n", "4")])
    return runs, left_cell


def _why(history, label) -> dict[str, tuple[str, str]]:
    result, _ = history[0][label]
    return {name: (st.status, st.reason) for name, st in result.states.items()}


@pytest.mark.slow
def test_first_run_is_not_cached_and_second_is(history):
    runs, _ = history
    assert set(_why(history, "first").values()) == {("success", "not cached")}
    first_id = runs["first"][0].run_id
    assert set(_why(history, "again").values()) == {("cached", f"reused from run {first_id}")}
    assert f"reused from run {first_id}" in runs["again"][1]
    assert not (runs["again"][0].run_dir / "steps").exists()


def test_a_hit_names_the_run_that_computed_the_step_not_the_last_hit(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([(["step:make"], "x = 1"), (["step:use"], "y = x + 1")])
    first = run_notebook(nb)
    assert first.ok and run_notebook(nb).states["make"].status == "cached"
    third = run_notebook(nb)
    assert {n: (s.status, s.reason) for n, s in third.states.items()} == {
        "make": ("cached", f"reused from run {first.run_id}"), "use": ("cached", f"reused from run {first.run_id}")}


@pytest.mark.slow
def test_no_cache_executes_every_step(history):
    assert set(_why(history, "no-cache").values()) == {("success", "--no-cache")}


@pytest.mark.slow
def test_comment_only_change_stays_cached(history):
    assert {s for s, _ in _why(history, "comment").values()} == {"cached"}


@pytest.mark.slow
def test_code_change_reruns_the_step_and_its_dependents(history):
    runs, left_cell = history
    why = _why(history, "code")
    assert why["load"][0] == why["right"][0] == "cached"
    assert why["left"] == ("success", f"code changed in cell {left_cell}")
    assert why["join"] == ("success", "input left changed (from left)")
    assert f"code changed in cell {left_cell}" in runs["code"][1]


@pytest.mark.slow
def test_param_change_is_named_with_old_and_new_value(history):
    runs, _ = history
    why = _why(history, "param")
    assert why["load"] == ("success", "param n 3 → 4")
    assert why["left"] == why["right"] == ("success", "input base changed (from load)")
    assert why["join"][1] == "input left changed (from left); input right changed (from right)"
    assert "param n 3 → 4" in runs["param"][1]


@pytest.mark.slow
def test_deleted_artifacts_are_rebuilt_and_say_why(history):
    runs, _ = history
    why = _why(history, "deleted")
    for step in ("load", "left", "right"):
        assert why[step] == ("success", "cached outputs are missing")
    # join passes nothing on, and its rebuilt inputs have the same bytes: still a cache hit.
    assert why["join"] == ("cached", f"reused from run {runs['param'][0].run_id}")


def test_a_changed_input_file_invalidates_the_cached_step(write_notebook, monkeypatch):
    """A file a step read (recorded by the audit hook) is part of what a cache hit must match."""
    from same_nb.service import run_notebook

    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([(["step:read"], "text = open('data.txt').read()"),
                         (["step:use"], "size = len(text)")])
    (nb.parent / "data.txt").write_text("first")
    first = run_notebook(nb)
    assert first.ok
    again = run_notebook(nb)
    assert again.states["read"].status == "cached"
    (nb.parent / "data.txt").write_text("second version")
    third = run_notebook(nb)
    assert third.states["read"].status == "success"
    assert third.states["read"].reason == f"file data.txt changed since run {first.run_id}"   # that read it
    assert third.states["use"].reason == "input text changed (from read)"
