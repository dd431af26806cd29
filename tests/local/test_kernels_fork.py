"""`same-nb run --kernel fork`: step kernels forked from a zygote compute exactly what fresh kernels
compute, draw their own random numbers, survive a preload that starts threads, and stop on Ctrl-C."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from same_nb.background import descendants
from same_nb.local.forked import fork_supported
from same_nb.local.progress import make_progress
from same_nb.service import run_notebook

pytestmark = pytest.mark.skipif(not fork_supported(), reason="fork server needs fork() and /proc")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "tests" / "notebooks"
SAME_OUTPUTS = [ROOT / "examples" / "branching" / "branching.ipynb", NOTEBOOKS / "data_kinds.ipynb",
                NOTEBOOKS / "functions_across_steps.ipynb", NOTEBOOKS / "mutation.ipynb",
                NOTEBOOKS / "branching.ipynb"]


def _notebook(folder: Path, cells: list[tuple[str, str]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src, metadata={"tags": [f"step:{name}"]}) for name, src in cells]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def _run(path: Path, kernel: str, **kw):
    result = run_notebook(path, kernel=kernel, progress=make_progress(quiet=True), **kw)
    assert result.ok, {n: st.error for n, st in result.states.items()}
    return result


def _hashes(result) -> dict[str, dict[str, str]]:
    return {name: {o: rec["sha256"] for o, rec in st.outputs.items()} for name, st in result.states.items()}


def _record(result) -> dict:
    return json.loads((result.run_dir / "kernels.json").read_text())


@pytest.mark.parametrize("notebook", SAME_OUTPUTS, ids=lambda p: p.stem)
def test_fork_and_fresh_kernels_give_the_same_outputs(notebook, tmp_path):
    runs = {}
    for kernel in ("fork", "fresh"):
        folder = tmp_path / kernel
        shutil.copytree(notebook.parent, folder, ignore=shutil.ignore_patterns(".same", "*-pipeline"))
        runs[kernel] = _run(folder / notebook.name, kernel, use_cache=False)
    forked = _record(runs["fork"])
    assert forked["kernel"] == "fork" and set(forked["steps"].values()) == {"fork"}
    zygote = forked["zygotes"][0]["pid"]
    for name in forked["steps"]:
        log = (runs["fork"].run_dir / "steps" / name / "kernel.log").read_text()
        assert f"kernel forked from zygote {zygote}" in log
    assert set(_record(runs["fresh"])["steps"].values()) == {"fresh"}
    assert _hashes(runs["fork"]) == _hashes(runs["fresh"])


def test_sibling_steps_draw_their_own_random_numbers(tmp_path):
    draw = "import numpy as np, random\n{seed}{name} = [float(np.random.rand()), random.random()]"
    cells = [("load", "import numpy as np\nx = 1")]
    for name, seed in (("a", ""), ("b", ""), ("c", "np.random.seed(3); random.seed(3)\n"),
                       ("d", "np.random.seed(3); random.seed(3)\n")):
        cells.append((name, f"y{name} = x\n" + draw.format(seed=seed, name=name)))
    cells.append(("merge", "pairs = [a, b, c, d]"))
    result = _run(_notebook(tmp_path / "nb", cells), "fork", snapshot=True)
    from same_nb.runtime import ArtifactStore, load_value

    store = ArtifactStore(tmp_path / "nb" / ".same" / "artifacts")
    snap = json.loads((result.run_dir / "steps" / "merge" / "result.json").read_text())["snapshot"]
    a, b, c, d = load_value(snap["pairs"], store)
    assert a[0] != b[0] and a[1] != b[1]            # unseeded siblings: different streams
    assert c == d                                   # seeded: identical
    assert set(_record(result)["steps"].values()) == {"fork"}


def test_a_preloaded_module_that_starts_a_thread_is_dropped(tmp_path, tmp_path_factory, monkeypatch):
    lib = tmp_path_factory.mktemp("lib")            # not under the notebook folder: a preload candidate
    (lib / "threadmod_run.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "def double(v):\n    return 2 * v\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(lib), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))     # nothing learned from other runs
    path = _notebook(tmp_path / "nb", [("load", "import threadmod_run\nv = threadmod_run.double(21)"),
                                        ("use", "import threadmod_run\nw = threadmod_run.double(v)")])
    result = _run(path, "fork")
    record = _record(result)
    assert "threadmod_run" in record["zygotes"][0]["dropped"]
    assert set(record["steps"].values()) == {"fork"}
    assert result.states["use"].outputs == {} and result.states["load"].outputs["v"]["sha256"]
    blocked = json.loads((tmp_path / "cache" / "same-nb" / "zygote-blocked.json").read_text())
    from same_nb.local.forked import _blocked_key

    assert "threadmod_run" in blocked[_blocked_key()]


def test_a_zygote_that_cannot_fork_falls_back_to_fresh_kernels_with_a_note(tmp_path, monkeypatch):
    # tensorflow (any GPU library) makes a process unfit to fork; a fake one on the path stands in.
    lib = tmp_path / "lib"
    (lib / "tensorflow").mkdir(parents=True)
    (lib / "tensorflow" / "__init__.py").write_text("")
    (lib / "sitecustomize.py").write_text("import tensorflow\n")     # imported before any preload
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(lib), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    path = _notebook(tmp_path / "nb", [("load", "v = 21"), ("use", "w = 2 * v")])
    result = _run(path, "fork")
    record = _record(result)
    assert set(record["steps"].values()) == {"fresh"}
    assert any("not fork-safe" in note and "tensorflow" in note for note in record["notes"])


def test_ctrl_c_stops_forked_kernels(tmp_path):
    path = _notebook(tmp_path / "nb", [("load", "v = 1"),
                                        ("slow_a", "import time\ntime.sleep(120)\na = v"),
                                        ("slow_b", "import time\ntime.sleep(120)\nb = v")])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "same_nb.cli", "run", str(path), "-q", "-j", "2",
                             "--kernel", "fork"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: dict = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seen.update(descendants(proc.pid))
            logs = list((tmp_path / "nb" / ".same" / "runs").glob("*/steps/slow_*/log.txt"))
            if len(logs) == 2 and len(descendants(proc.pid)) >= 3:    # zygote + two running kernels
                break
            time.sleep(0.2)
        time.sleep(1.0)
        seen.update(descendants(proc.pid))
        assert len(seen) >= 3, seen
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    deadline = time.monotonic() + 10
    alive = list(seen)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in seen if Path(f"/proc/{pid}").exists()
                 and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"]
        time.sleep(0.2)
    assert alive == [], f"processes left behind: {alive}"
