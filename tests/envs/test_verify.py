"""same_nb.envs.verify: each lock installed into a clean cached venv, and every step's modules imported there."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from same_nb.envs.lock import lock_pipeline
from same_nb.envs.verify import MARKER, ensure_kernel_venv, venv_python, verify_locks
from same_nb.frontend.ir import Import, Pipeline, Step

from conftest import TESTS

FIXTURES = TESTS / "notebooks"


def imp(module: str) -> Import:
    return Import(module=module, top=module.split(".")[0], statement=f"import {module}", cell=1, line=1)


@pytest.fixture(scope="session")
def locked(tmp_path_factory):
    """One notebook folder for the whole session, so its venvs (.same/envs) are built once."""
    nb_dir = tmp_path_factory.mktemp("verify-nb")
    shutil.copy(FIXTURES / "env_dynamic_helper.py", nb_dir)
    steps = {"parse": ["yaml"], "parse_again": ["yaml.loader"], "plain": ["os", "json"],
             "missing": ["yaml", "same_nb_env_missing_q7"], "dynamic": ["env_dynamic_helper"]}
    pipeline = Pipeline(name="p", notebook="nb.ipynb", notebook_sha256="0" * 64,
                        steps=[Step(n, imports=[imp(m) for m in mods]) for n, mods in steps.items()])
    result = lock_pipeline(pipeline, nb_dir, nb_dir / "bundle")
    return nb_dir, result, verify_locks(result, nb_dir)


def run(python: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True)


def test_a_complete_lock_verifies_in_a_clean_venv(locked):
    nb_dir, result, report = locked
    by_step = {s.step: s for s in report.steps}
    assert by_step["parse"].ok and by_step["parse"].imported == ["yaml"]
    assert by_step["parse"].venv == by_step["parse_again"].venv       # one venv per distinct lock
    python = venv_python(result.steps["parse"].lock_sha256, nb_dir)
    assert python.is_file() and python.parent.parent == by_step["parse"].venv
    assert run(python, "import yaml; print(yaml.__version__)").stdout.strip() == metadata.version("PyYAML")
    assert "No module named 'sklearn'" in run(python, "import sklearn").stderr     # nothing leaks in
    marker = json.loads((by_step["parse"].venv / MARKER).read_text())
    assert marker["lock_sha256"] == result.steps["parse"].lock_sha256 and marker["fallback"] is False


def test_stdlib_only_step_needs_no_venv(locked):
    _, _, report = locked
    plain = next(s for s in report.steps if s.step == "plain")
    assert plain.ok and plain.venv is None and "standard library" in plain.notes[0]


def test_a_module_that_is_not_installed_is_reported(locked):
    _, result, report = locked
    assert "same_nb_env_missing_q7 is imported but not installed; assuming same_nb_env_missing_q7, unpinned" \
        in result.steps["missing"].warnings
    missing = next(s for s in report.steps if s.step == "missing")
    assert not missing.ok and not report.ok
    assert missing.failures == {
        "same_nb_env_missing_q7": "ModuleNotFoundError: No module named 'same_nb_env_missing_q7'"}
    assert result.steps["missing"].unresolved.keys() == {"same_nb_env_missing_q7"}
    assert "same_nb_env_missing_q7: left out of the lock: not installed here and not resolvable" \
        in " ".join(missing.notes)
    text = report.render()
    assert "FAIL missing" in text and "same_nb_env_missing_q7: ModuleNotFoundError" in text
    assert "ok   parse " in text and text.splitlines()[0].endswith("FAILED")


def test_a_dependency_static_analysis_missed_is_caught(locked):
    # env_dynamic_helper loads yaml with importlib at import time: nothing locks it, verify notices.
    _, result, report = locked
    assert result.steps["dynamic"].pins == []
    dynamic = next(s for s in report.steps if s.step == "dynamic")
    assert dynamic.failures == {"env_dynamic_helper": "ModuleNotFoundError: No module named 'yaml'"}


def test_cached_venvs_are_reused_and_incomplete_ones_rebuilt(locked):
    nb_dir, result, _ = locked
    marker = venv_python(result.steps["parse"].lock_sha256, nb_dir).parent.parent / MARKER
    before = marker.stat().st_mtime_ns
    started = time.perf_counter()
    again = verify_locks(result, nb_dir)
    assert time.perf_counter() - started < 3
    assert marker.stat().st_mtime_ns == before
    assert [s.ok for s in again.steps] == [True, True, True, False, False]
    marker.unlink()                                       # as if a build was interrupted
    rebuilt = verify_locks(result, nb_dir)
    assert marker.is_file() and marker.stat().st_mtime_ns != before
    assert next(s for s in rebuilt.steps if s.step == "parse").ok


def test_kernel_venv_adds_ipykernel_within_the_lock(locked):
    nb_dir, result, _ = locked
    lock = result.steps["parse"]
    python = ensure_kernel_venv(lock, nb_dir)
    assert python == venv_python(lock.lock_sha256, nb_dir, kernel=True)
    out = run(python, "import ipykernel, yaml; print(ipykernel.__version__, yaml.__version__)")
    assert out.stdout.split() == [metadata.version("ipykernel"), metadata.version("PyYAML")], out.stderr
    # The plain venv used by verify is untouched.
    assert "No module named 'ipykernel'" in run(venv_python(lock.lock_sha256, nb_dir), "import ipykernel").stderr


def test_a_lock_that_cannot_be_installed_is_reported_per_step(locked, tmp_path):
    nb_dir, result, _ = locked
    bad_lock = tmp_path / "requirements.txt"
    bad_lock.write_text("same-nb-env-no-such-dist-q7==1.0\n")
    step = replace(result.steps["parse"], lock_path=bad_lock, lock_sha256="f" * 64, fallback=True)
    report = verify_locks(replace(result, steps={"parse": step}), nb_dir)
    [only] = report.steps
    assert not only.ok and only.venv is None
    assert "building the environment of step parse" in only.error and "same-nb-env-no-such-dist-q7" in only.error
    assert "environment: building the environment of step parse" in report.render()
    assert not (nb_dir / ".same" / "envs" / ("f" * 16) / MARKER).exists()
