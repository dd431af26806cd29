"""`same-nb run --isolated`: each step's kernel runs in a venv built from that step's lockfile, with
only the step runtime copied onto its path. Real uv venvs, real installs from the package index."""
from __future__ import annotations

import json

import pytest

from same_nb.service import run_notebook

pytestmark = pytest.mark.slow


def test_isolated_run_uses_each_steps_locked_venv(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([
        (["step:load"], "import sys\nimport yaml\nconfig = yaml.safe_load('a: 1')\nload_python = sys.executable"),
        (["step:use"], "import sys\nvalue = config['a'] + 1\nuse_python = sys.executable\n"
                       "try:\n    import pandas\n    leaked = True\nexcept ImportError:\n    leaked = False"),
    ])
    result = run_notebook(nb, isolated=True, snapshot=True)
    assert result.ok, {n: s.error for n, s in result.states.items()}
    from same_nb.runtime import ArtifactStore, load_value

    store = ArtifactStore(nb.parent / ".same" / "artifacts")
    snap = {step: json.loads((result.run_dir / "steps" / step / "result.json").read_text())["snapshot"]
            for step in ("load", "use")}
    load_python = load_value(snap["load"]["load_python"], store)
    use_python = load_value(snap["use"]["use_python"], store)
    envs = nb.parent / ".same" / "envs"
    assert load_python.startswith(str(envs)) and use_python.startswith(str(envs))
    assert load_python != use_python                     # different locks, different venvs
    assert load_value(snap["use"]["value"], store) == 2
    # The `use` step imports pandas only inside try/except: its lock pins it, so it is installed
    # there; the point is that nothing outside the lock is visible. `load` has no pandas at all.
    assert load_value(snap["use"]["leaked"], store) is True
    probe = __import__("subprocess").run([load_python, "-c", "import pandas"], capture_output=True)
    assert probe.returncode != 0, "the load step's venv must not see packages outside its lock"
