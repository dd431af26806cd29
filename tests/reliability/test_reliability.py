"""Crash, concurrency and disk-fault behaviour of `same-nb run`, checked on real processes and files.

After every scenario the artifact store must hold only whole files: each file under
``.same/artifacts/<sha[:2]>/<sha>`` hashes to its name, and no temporary file is left behind.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from same_nb.cli import main
from same_nb.runtime.artifacts import hash_file

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

# `middle` runs long enough to be killed mid-step (it waits for go.txt); its outputs are deterministic.
PIPELINE = [
    (["step:first"], "x = list(range(5000))"),
    (["step:middle"], "import os, pathlib, time\n"
                      "pathlib.Path('middle.pid').write_text(str(os.getpid()))\n"
                      "while not os.path.exists('go.txt'):\n    time.sleep(0.05)\n"
                      "y = [v * 2 for v in x]"),
    (["step:last"], "z = {'total': sum(y), 'n': len(y)}"),
]


def cli(*args) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = main([str(a) for a in args])
    return rc, out.getvalue()


def show(folder: Path, run_id: int) -> dict:
    rc, out = cli("show", run_id, "--dir", folder, "--json")
    assert rc == 0, out
    return json.loads(out)


def output_hashes(run: dict) -> dict[str, str]:
    """sha256 of every variable a step passed on (files it wrote, like a pid file, may differ)."""
    return {f"{s['step_name']}.{o['name']}": o["sha256"] for s in run["steps"] for o in s["outputs"]
            if o.get("role") in (None, "variable")}


def assert_artifacts_whole(folder: Path) -> list[Path]:
    """Every final artifact hashes to its name; no temp file survives. Returns the artifacts."""
    root = folder / ".same" / "artifacts"
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    temps = [p for p in files if p.parent.name == "tmp"]
    assert temps == [], f"temporary files left in the artifact store: {temps}"
    for path in files:
        assert path.parent.name == path.name[:2], f"file outside the content-addressed layout: {path}"
        assert hash_file(path)[0] == path.name, f"artifact {path} does not hash to its name"
    return files


def assert_recorded_artifacts_intact(run: dict) -> None:
    for step in run["steps"]:
        for out in step["outputs"]:
            if out.get("location"):
                assert hash_file(Path(out["location"]))[0] == out["sha256"], (step["step_name"], out)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return {**env, **extra}


def test_kill_9_mid_step_then_resume_matches_an_uninterrupted_run(write_notebook, tmp_path, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook(PIPELINE, name="pipe")
    proc = subprocess.Popen([sys.executable, "-m", "same_nb.cli", "run", nb.name, "-q"], cwd=nb.parent,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    pid_file = nb.parent / "middle.pid"
    deadline = time.time() + 90
    while not (pid_file.exists() and pid_file.read_text()):
        assert proc.poll() is None and time.time() < deadline, f"step never started: {proc.communicate()[0]}"
        time.sleep(0.05)
    kernel = int(pid_file.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.kill(kernel, signal.SIGKILL)          # the orphaned kernel of the killed step, and only it

    killed = show(nb.parent, 1)
    assert killed["status"] == "interrupted"
    assert {s["step_name"]: s["status"] for s in killed["steps"]} == {
        "first": "success", "middle": "interrupted", "last": "interrupted"}
    assert_artifacts_whole(nb.parent)

    (nb.parent / "go.txt").write_text("")
    rc, out = cli("run", nb, "--resume", 1, "-q")
    assert rc == 0, out
    resumed = show(nb.parent, 2)
    assert resumed["status"] == "success"

    clean = tmp_path / "clean"
    clean.mkdir()
    reference = clean / "pipe.ipynb"
    reference.write_bytes(nb.read_bytes())
    (clean / "go.txt").write_text("")
    rc, out = cli("run", reference, "-q")
    assert rc == 0, out
    expected = output_hashes(show(clean, 1))
    assert output_hashes(resumed) == expected and set(expected) == {"first.x", "middle.y"}
    assert_recorded_artifacts_intact(resumed)
    assert set(expected.values()) <= {p.name for p in assert_artifacts_whole(nb.parent)}


def test_16_concurrent_runs_share_one_sqlite_store(write_notebook, tmp_path):
    db = tmp_path / "shared.db"
    template = write_notebook([(["step:only"], "x = 40 + 2")], name="tiny")
    folders = []
    for i in range(16):
        folder = tmp_path / f"nb{i:02d}"
        folder.mkdir()
        (folder / "tiny.ipynb").write_bytes(template.read_bytes())
        folders.append(folder)
    env = _env(SAME_NB_DB=f"sqlite:///{db}")
    started = time.time()
    procs = [subprocess.Popen([sys.executable, "-m", "same_nb.cli", "run", "tiny.ipynb", "-q", "-j", "1"],
                              cwd=f, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for f in folders]
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=max(1.0, started + 90 - time.time()))[0])
        except subprocess.TimeoutExpired:
            proc.kill()                                   # ours: never leave a hung run behind
            outputs.append(f"HUNG, killed after 90 s: {proc.communicate()[0]}")
    elapsed = time.time() - started
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out
        assert "locked" not in out.lower(), out
    with contextlib.closing(sqlite3.connect(db)) as conn:
        runs = conn.execute("SELECT notebook_path, status FROM runs").fetchall()
        steps = conn.execute("SELECT step_name, status FROM step_runs").fetchall()
    assert sorted(runs) == sorted((str(f / "tiny.ipynb"), "success") for f in folders)
    assert steps == [("only", "success")] * 16
    assert elapsed < 90, f"16 concurrent runs took {elapsed:.0f}s"


def test_an_error_while_writing_an_artifact_fails_the_step_cleanly(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([
        (["step:make"], "class Full:\n    def __reduce__(self):\n"
                        "        raise OSError(28, 'No space left on device')\n"
                        "x = list(range(100))\nfull = Full()"),
        (["step:use"], "y = (len(x), full)"),
    ])
    rc, out = cli("run", nb, "-q")
    assert rc == 1
    assert "Traceback" not in out
    assert "step make failed" in out and "variable 'full'" in out and "No space left on device" in out
    run = show(nb.parent, 1)
    assert {s["step_name"]: s["status"] for s in run["steps"]} == {"make": "failed", "use": "skipped"}
    assert [o for s in run["steps"] for o in s["outputs"]] == []       # nothing recorded from the failure
    assert_artifacts_whole(nb.parent)


def test_a_corrupt_cached_artifact_is_detected_and_its_producer_rerun(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([(["step:make"], "x = list(range(1000))"), (["step:use"], "y = sum(x)")])
    rc, out = cli("run", nb, "-q")
    assert rc == 0, out
    first = show(nb.parent, 1)
    made = next(o for s in first["steps"] if s["step_name"] == "make" for o in s["outputs"])
    path = Path(made["location"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF                                        # one flipped byte, same size
    path.write_bytes(bytes(data))

    # The artifact loader names the artifact and the variable when it meets the damage.
    from same_nb.runtime.artifacts import ArtifactStore
    from same_nb.runtime.errors import CorruptArtifactError
    with pytest.raises(CorruptArtifactError, match=f"artifact {made['sha256']} for variable 'x' is corrupt"):
        ArtifactStore(nb.parent / ".same" / "artifacts").verified_path(made["sha256"], "x")

    rc, out = cli("run", nb)
    assert rc == 0, out
    second = show(nb.parent, 2)
    why = {s["step_name"]: (s["status"], s["reason"]) for s in second["steps"]}
    assert why["make"] == ("success", "cached output x is corrupt (hash differs)")
    assert why["use"][0] in ("cached", "success")
    assert hash_file(path)[0] == made["sha256"]                         # healed in place
    assert_recorded_artifacts_intact(second)
    assert_artifacts_whole(nb.parent)
