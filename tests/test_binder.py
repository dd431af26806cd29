"""binder/ as repo2docker uses it: binder/requirements.txt, then binder/postBuild from the repository
root. No Docker here, so the same steps run in a fresh venv on a clean copy of the repository (the files
git would check out: no prebuilt lab extension, no node_modules), and the quickstart runs with that
venv's `same-nb`. Slow: the venv is installed from pip's cache and postBuild builds the lab extension.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def clean_checkout(target: Path) -> Path:
    """Tracked and new, not ignored, files: what a clone of the working tree would hold."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = ROOT / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    return target


def test_binder_files_are_what_repo2docker_reads():
    assert os.access(ROOT / "binder" / "postBuild", os.X_OK)
    assert (ROOT / "binder" / "requirements.txt").read_text().strip()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_binder_environment_runs_the_quickstart(tmp_path):
    repo = clean_checkout(tmp_path / "repo")
    assert not (repo / "same_nb" / "labextension").exists()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("SAME_NB_DB", None)
    env.pop("PYTHONPATH", None)

    def step(*command: str, cwd: Path = repo) -> str:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout + done.stderr

    step("python", "-m", "pip", "install", "-q", "-r", "binder/requirements.txt")
    step("./binder/postBuild")

    # The extension was built and installed into the venv, and JupyterLab opens on the quickstart.
    labextension = venv / "share" / "jupyter" / "labextensions" / "same-nb"
    assert (labextension / "package.json").exists() and (labextension / "static" / "style.js").exists()
    extensions = step("jupyter", "labextension", "list")
    assert any("same-nb" in line and "enabled" in line and "OK" in line for line in extensions.splitlines()), extensions
    [written] = (venv / "etc" / "jupyter" / "jupyter_server_config.d").glob("same_nb_binder.json")
    default_url = json.loads(written.read_text())["ServerApp"]["default_url"]
    assert default_url.startswith("/lab/tree/") and (repo / default_url.removeprefix("/lab/tree/")).is_file()

    same_nb = step("python", "-c", "import same_nb; print(same_nb.__file__)", cwd=tmp_path).strip()
    assert Path(same_nb).is_relative_to(venv)                   # not this environment's editable install
    work = tmp_path / "work"
    shutil.copytree(repo / "examples", work / "examples")
    out = step(str(venv / "bin" / "same-nb"), "run", "examples/quickstart/quickstart.ipynb", cwd=work)
    assert "success" in out
    assert (work / "examples" / "quickstart" / ".same" / "same.db").exists()
