"""trace / compare / runs with metrics over a real store filled by two real pipeline runs."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.local.progress import make_progress
from same_nb.service import run_notebook
from same_nb.store import lineage
from same_nb.store.database import open_store

from conftest import notebook_data

pytestmark = pytest.mark.slow

CELLS = [
    (["parameters"], "scale = 2"),
    (["step:load"], "rows = [int(x) for x in open('data.txt').read().split()]"),
    (["step:train"], "import json\nmodel = [r * scale for r in rows]\n"
                     "with open('model.json', 'w') as f:\n    json.dump(model, f)"),
    (["step:report"], "import same_nb\nsame_nb.log_metric('total', sum(model))"),
]


def write_notebook(path: Path, cells: list[tuple[list[str], str]]) -> Path:
    path.write_text(json.dumps(notebook_data(cells), indent=1))
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lineage")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        (folder / "data.txt").write_text("1 2 3\n")
        nb = write_notebook(folder / "nb.ipynb", CELLS)
        first = run_notebook(nb, progress=make_progress(quiet=True))
        model_1 = (folder / "model.json").read_bytes()
        second = run_notebook(nb, params=[("scale", "3")], progress=make_progress(quiet=True))
        assert first.ok and second.ok
        store = open_store(notebook_dir=folder)
        yield folder, store, (first.run_id, second.run_id), model_1
        store.close()


def chain(node: dict) -> list[tuple[str, int | None, str | None]]:
    """(name, producing run, producing step) along the first input at each level."""
    out = []
    while node:
        p = node.get("producer") or {}
        out.append((node["name"], p.get("run_id"), p.get("step")))
        node = (node.get("inputs") or [None])[0]
    return out


def test_trace_file_goes_upstream_across_runs(two_runs):
    folder, store, (r1, r2), _ = two_runs
    tree = lineage.trace(store, "model.json", cwd=folder)
    # run 2 re-ran train (scale changed) but reused load from run 1's cache
    assert chain(tree) == [("model.json", r2, "train"), ("rows", r1, "load"),
                           ("data.txt", None, None)]
    assert tree["producer"]["parameters"] == {"scale": 3}
    assert tree["sha256"] == hashlib.sha256((folder / "model.json").read_bytes()).hexdigest()
    assert tree["modified"] is None
    leaf = tree["inputs"][0]["inputs"][0]
    assert leaf["role"] == "file" and leaf["producer"] is None
    assert json.loads(json.dumps(tree)) == tree


def test_trace_by_absolute_path_sha_prefix_and_run_step_variable(two_runs):
    folder, store, (r1, r2), model_1 = two_runs
    assert chain(lineage.trace(store, str(folder / "model.json")))[0] == ("model.json", r2, "train")
    old = lineage.trace(store, hashlib.sha256(model_1).hexdigest()[:10])
    assert chain(old)[0] == ("model.json", r1, "train")
    assert old["producer"]["parameters"] == {"scale": 2}
    var = lineage.trace(store, f"{r1}:train:model")
    assert chain(var) == [("model", r1, "train"), ("rows", r1, "load"), ("data.txt", None, None)]


def test_changed_files_are_flagged(two_runs):
    folder, store, (r1, r2), _ = two_runs
    model = folder / "model.json"
    data = folder / "data.txt"
    saved_model, saved_data = model.read_bytes(), data.read_bytes()
    try:
        model.write_text("[0]")
        data.write_text("9 9 9\n")
        tree = lineage.trace(store, "model.json", cwd=folder)
        assert tree["modified"] == f"modified since run {r2}: hash differs"
        assert tree["inputs"][0]["inputs"][0]["modified"] == f"modified since run {r1}: hash differs"
        assert f"!! modified since run {r2}: hash differs" in lineage.render_text(tree)
        data.unlink()
        tree = lineage.trace(store, "model.json", cwd=folder)
        assert tree["inputs"][0]["inputs"][0]["modified"].startswith("missing")
    finally:
        model.write_bytes(saved_model)
        data.write_bytes(saved_data)


def test_text_and_dot_renderings(two_runs):
    folder, store, (r1, r2), _ = two_runs
    tree = lineage.trace(store, "model.json", cwd=folder)
    text = lineage.render_text(tree)
    assert f"produced by run {r2}, step train" in text
    assert "parameters: scale=3" in text
    assert "└─ rows  (variable" in text and "no recorded producer: source data" in text
    dot = lineage.render_dot(tree)
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert f'[label="run {r1}: load", shape=box]' in dot
    assert dot.count("->") == 4      # data.txt -> load -> rows -> train -> model.json


def test_trace_errors_are_same_errors(two_runs):
    folder, store, (r1, _), _ = two_runs
    (folder / "unrelated.txt").write_text("never seen by a step")
    with pytest.raises(SameError, match="no recorded lineage for unrelated.txt"):
        lineage.trace(store, "unrelated.txt", cwd=folder)
    with pytest.raises(SameError, match="has no step 'nope'"):
        lineage.trace(store, f"{r1}:nope:x")
    with pytest.raises(SameError, match=r"has no input or output 'x' \(it has: .*rows"):
        lineage.trace(store, f"{r1}:load:x")
    with pytest.raises(SameError, match="no recorded artifact"):
        lineage.trace(store, "0123456789abcdef")


def test_compare_names_what_changed(two_runs):
    _, store, (r1, r2), _ = two_runs
    diff = lineage.compare(store, r1, r2)
    assert diff["params"] == {"scale": [2, 3]}
    assert not diff["identical"]
    assert diff["steps"]["load"]["status"] == ["success", "cached"]
    assert diff["steps"]["load"]["outputs"] == {} and diff["steps"]["load"]["code"] == {}
    assert set(diff["steps"]["train"]["outputs"]) == {"model", "model.json (file)"}
    assert diff["steps"]["report"]["metrics"] == {"total": [12.0, 18.0]}
    text = lineage.render_compare(diff)
    assert "scale: 2 → 3" in text and "metric total: 12 → 18 (+6)" in text
    assert lineage.compare(store, r2, r2)["identical"]
    with pytest.raises(SameError, match="there is no run 999"):
        lineage.compare(store, r1, 999)


def test_runs_with_metric_columns(two_runs):
    _, store, (r1, r2), _ = two_runs
    table = lineage.runs_with_metrics(store)
    assert table["columns"] == ["total"]
    assert [(r["id"], r["metrics"]) for r in table["runs"]] == [(r2, {"total": 18.0}),
                                                              (r1, {"total": 12.0})]


def test_compare_takes_more_runs_with_one_value_per_run(two_runs):
    _, store, (r1, r2), _ = two_runs
    diff = lineage.compare(store, r1, r2, r1)
    assert diff["runs"] == [r1, r2, r1] and not diff["identical"]
    assert diff["params"] == {"scale": [2, 3, 2]}
    assert diff["steps"]["report"]["metrics"] == {"total": [12.0, 18.0, 12.0]}
    assert all(len(v) == 3 for s in diff["steps"].values() for part in ("code", "inputs", "outputs")
               for v in s[part].values())
    assert lineage.compare(store, r1, r2)["params"] == {"scale": [2, 3]}          # two runs: as before
    text = lineage.render_compare(diff)
    assert text.startswith(f"runs {r1} | {r2} | {r1}\n") and "scale: 2 | 3 | 2" in text
    assert "metric total: 12 | 18 | 12" in text
    assert lineage.compare(store, r2, r2, r2)["identical"]
    with pytest.raises(SameError, match="at least two runs"):
        lineage.compare(store, r1)


def test_compare_rounds_metrics_but_not_parameters():
    diff = {"runs": [1, 2], "notebook_sha256": ["a", "a"], "identical": False,
            "params": {"lr": [0.1, 0.30000000000000004]}, "packages": {},
            "steps": {"fit": {"status": ["success", "success"], "code": {}, "inputs": {}, "outputs": {},
                              "metrics": {"acc": [0.912345678, 0.9333333333], "loss": [None, 1234.56789]}}}}
    text = lineage.render_compare(diff)
    assert "lr: 0.1 → 0.30000000000000004" in text          # a parameter is shown exactly
    assert "metric acc: 0.9123 → 0.9333 (+0.02099)" in text
    assert "metric loss: — → 1234.6" in text
