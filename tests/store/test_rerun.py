"""`rerun`: the recorded source and parameters run again in the notebook's folder; every output is
compared byte for byte with the recorded one."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import delete

from same_nb.errors import SameError
from same_nb.local.progress import make_progress
from same_nb.service import rerun_run as rerun
from same_nb.service import run_notebook
from same_nb.store.database import open_store
from same_nb.store.rerun import render_rerun
from same_nb.store.schema import notebook_snapshots

pytestmark = pytest.mark.slow


def write_notebook(path: Path, train_source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for tags, src in [(["parameters"], "scale = 2"),
                      (["step:load"], "rows = [int(x) for x in open('data.txt').read().split()]"),
                      (["step:train"], train_source)]:
        nb.cells.append(nbformat.v4.new_code_cell(src, metadata={"tags": tags}))
    nbformat.write(nb, path)
    return path


def test_rerun_uses_recorded_source_and_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    (tmp_path / "data.txt").write_text("1 2 3\n")
    nb = write_notebook(tmp_path / "nb.ipynb",
                        "import time\nmodel = [r * scale for r in rows]\nstamp = time.time()\n"
                        "open('model.txt', 'w').write(str(model))\nopen('stamp.txt', 'w').write(str(stamp))")
    first = run_notebook(nb, params=[("scale", "3")], progress=make_progress(quiet=True))
    assert first.ok
    write_notebook(nb, "model = 'edited since'")   # the source moves on after the run
    edited = nb.read_bytes()

    result = rerun(first.run_id, notebook_dir=tmp_path, progress=make_progress(quiet=True))
    assert result.run.ok and result.run.run_id != first.run_id
    verdicts = {(o["step"], o["name"]): o["identical"] for o in result.outputs}
    assert verdicts == {("load", "rows"): True, ("train", "model.txt"): True,
                        ("train", "stamp.txt"): False}
    assert not result.identical
    assert (tmp_path / "model.txt").read_text() == "[3, 6, 9]"     # scale 3 and the old code
    assert nb.read_bytes() == edited                                # source untouched
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == ["nb.ipynb"]  # copy removed
    with open_store(notebook_dir=tmp_path) as store:
        again = store.get_run(result.run.run_id)
    assert again["params"] == {"scale": 3}
    assert again["notebook_sha256"] == store_run(tmp_path, first.run_id)["notebook_sha256"]
    assert all(s["status"] == "success" for s in again["steps"])  # no cache: everything ran
    text = render_rerun(result)
    assert "train: model.txt (file) identical" in text and "2 of 3 outputs byte-identical" in text
    assert json.loads(json.dumps(result.to_dict()))["identical"] is False


def store_run(folder: Path, run_id: int) -> dict:
    with open_store(notebook_dir=folder) as store:
        return store.get_run(run_id)


def test_rerun_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    (tmp_path / "data.txt").write_text("1\n")
    nb = write_notebook(tmp_path / "nb.ipynb", "model = rows")
    done = run_notebook(nb, progress=make_progress(quiet=True))
    with pytest.raises(SameError, match="there is no run 42"):
        rerun(42, notebook_dir=tmp_path)
    with open_store(notebook_dir=tmp_path) as store, store.engine.begin() as conn:
        conn.execute(delete(notebook_snapshots))
    with pytest.raises(SameError, match=f"run {done.run_id} has no recorded notebook source"):
        rerun(done.run_id, notebook_dir=tmp_path)
