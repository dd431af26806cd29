"""File lineage: the audit hook records what a step opened; the runner stores each file as an
artifact with an in (read) or out (written) edge, role "file"."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from same_nb.local.progress import make_progress
from same_nb.runtime import fileio
from same_nb.service import run_notebook
from same_nb.store.database import open_store

from conftest import notebook_data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_notebook(path: Path, cells: list[tuple[list[str], str]]) -> Path:
    path.write_text(json.dumps(notebook_data(cells), indent=1))
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The notebook folder as cwd; recording always stopped afterwards."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    fileio.stop()


def by_edge(files: list[dict]) -> dict[tuple[str, str], dict]:
    return {(f["name"], f["direction"]): f for f in files}


def test_reads_and_writes_are_recorded_with_hashes(folder: Path):
    (folder / "in.txt").write_bytes(b"input")
    (folder / "sub").mkdir()
    fileio.start(str(folder))
    Path("in.txt").read_bytes()
    Path("sub/out.txt").write_bytes(b"output")
    fd = os.open("raw.bin", os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"raw")
    os.close(fd)
    np.save("arr.npy", np.arange(3))
    pd.DataFrame({"a": [1, 2]}).to_csv("frame.csv", index=False)
    files = by_edge(fileio.stop()["files"])
    assert set(files) == {("in.txt", "in"), ("sub/out.txt", "out"), ("raw.bin", "out"),
                          ("arr.npy", "out"), ("frame.csv", "out")}
    assert files[("in.txt", "in")]["sha256"] == sha(b"input")
    assert files[("sub/out.txt", "out")] | {} == {
        "name": "sub/out.txt", "direction": "out", "sha256": sha(b"output"), "size": 6,
        "location": str(folder / "sub" / "out.txt"), "kind": "file", "role": "file"}
    assert files[("frame.csv", "out")]["sha256"] == sha(b"a\n1\n2\n")
    assert files[("arr.npy", "out")]["sha256"] == sha(Path("arr.npy").read_bytes())


def test_read_then_rewritten_file_has_both_edges_with_the_bytes_read(folder: Path):
    Path("state.txt").write_bytes(b"before")
    fileio.start(str(folder))
    Path("state.txt").read_bytes()
    Path("state.txt").write_bytes(b"after!")
    Path("fresh.txt").write_bytes(b"x")
    Path("fresh.txt").read_bytes()                # written first: an output only
    files = by_edge(fileio.stop()["files"])
    assert files[("state.txt", "in")]["sha256"] == sha(b"before")
    assert files[("state.txt", "out")]["sha256"] == sha(b"after!")
    assert ("fresh.txt", "in") not in files and ("fresh.txt", "out") in files


def test_runtime_system_and_hidden_files_are_ignored(folder: Path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "data.txt"
    outside.write_text("far")
    Path("helper.py").write_text("X = 1")
    fileio.start(str(folder))
    Path(".same").mkdir()
    Path(".same/result.json").write_text("{}")
    Path("helper.py").read_text()
    Path("/proc/self/status").read_text()
    open(os.devnull, "w").close()
    outside.read_text()
    files = by_edge(fileio.stop()["files"])
    # the temp dir is a system location, even though the notebook folder itself lives in it
    assert files == {}


def test_outside_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nb_dir, data_dir = tmp_path / "nb", tmp_path / "data"
    nb_dir.mkdir()
    data_dir.mkdir()
    (data_dir / "d.txt").write_text("d")
    monkeypatch.chdir(nb_dir)
    monkeypatch.setattr(fileio, "_ignored_roots", lambda: ())   # tmp_path is under the temp dir
    fileio.start(str(nb_dir))
    Path("../data/d.txt").read_text()
    files = fileio.stop()["files"]
    assert [(f["name"], f["direction"]) for f in files] == [(str(data_dir / "d.txt"), "in")]


def test_inactive_hook_costs_little_and_records_nothing(tmp_path: Path):
    fileio.start(str(tmp_path))
    fileio.stop()
    (tmp_path / "later.txt").write_text("x")          # after stop: not recorded anywhere
    fileio.start(str(tmp_path))
    assert fileio.stop()["files"] == []
    t0 = time.perf_counter()
    for _ in range(100_000):
        fileio._hook("open", ("x", "r", 0))
    assert (time.perf_counter() - t0) / 100_000 < 2e-6


@pytest.mark.slow
def test_pipeline_run_records_file_edges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    (tmp_path / "data.csv").write_text("x\n1\n2\n")
    nb = write_notebook(tmp_path / "files.ipynb", [
        (["step:load"], "import pandas as pd\ndf = pd.read_csv('data.csv')"),
        (["step:save"], "df.to_csv('out/clean.csv', index=False)\n"
                        "with open('log.txt', 'a') as f:\n    f.write('saved')"),
    ])
    (tmp_path / "out").mkdir()
    result = run_notebook(nb, progress=make_progress(quiet=True))
    assert result.ok
    with open_store(notebook_dir=tmp_path) as store:
        steps = {s["step_name"]: s for s in store.get_run(result.run_id)["steps"]}
    load_in = {i["name"]: i for i in steps["load"]["inputs"]}
    assert load_in["data.csv"]["role"] == "file"
    assert load_in["data.csv"]["sha256"] == sha(b"x\n1\n2\n")
    outs = {o["name"]: o for o in steps["save"]["outputs"]}
    assert set(outs) == {"out/clean.csv", "log.txt"}
    assert outs["out/clean.csv"]["sha256"] == sha((tmp_path / "out" / "clean.csv").read_bytes())
    assert outs["log.txt"]["sha256"] == sha(b"saved")
    assert {i["name"]: i["role"] for i in steps["save"]["inputs"]} == {"df": "variable"}
    # a cached rerun reuses variables only; files stay with the run that wrote them
    again = run_notebook(nb, progress=make_progress(quiet=True))
    assert {n: s.status for n, s in again.states.items()} == {"load": "cached", "save": "cached"}
    assert set(again.states["save"].outputs) == set()
