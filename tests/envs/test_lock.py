"""same_nb.envs.lock: per-step uv locks with hashes, cached per requirement set, with an offline fallback."""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from importlib import metadata
from pathlib import Path

import pytest

from same_nb.envs.lock import NO_CONDA, lock_pipeline, uv_platform
from same_nb.envs.requirements import environment_index
from same_nb.errors import SameError
from same_nb.frontend.ir import Import, Pipeline, Step

from conftest import TESTS

FIXTURES = TESTS / "notebooks"
YAML_PIN = f"PyYAML=={metadata.version('PyYAML')}"
SKLEARN_PIN = f"scikit-learn=={metadata.version('scikit-learn')}"


def imp(module: str) -> Import:
    return Import(module=module, top=module.split(".")[0], statement=f"import {module}", cell=1, line=1)


def pipeline(**steps: list[str]) -> Pipeline:
    return Pipeline(name="p", notebook="nb.ipynb", notebook_sha256="0" * 64,
                    steps=[Step(name, imports=[imp(m) for m in mods]) for name, mods in steps.items()])


def body(path: Path) -> list[str]:
    """Requirement lines without comments (requirements.in lines end with what needs them)."""
    return [ln.split("  # ")[0] for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@pytest.fixture()
def offline_uv(monkeypatch):
    """Make every uv resolution fail fast, as without network: an unreachable index, no retries, no cache."""
    for var in ("UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        monkeypatch.setenv(var, "http://127.0.0.1:9/simple")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_NO_CACHE", "1")


def test_uv_lock_pins_installed_versions_with_hashes(tmp_path):
    result = lock_pipeline(pipeline(train=["sklearn.ensemble", "yaml", "os"]), tmp_path, tmp_path / "bundle")
    step = result.steps["train"]
    assert step.requirements_in == tmp_path / "bundle" / "envs" / "train" / "requirements.in"
    assert body(step.requirements_in) == [YAML_PIN, SKLEARN_PIN]
    lock = step.lock_path.read_text()
    assert step.lock_sha256 == hashlib.sha256(lock.encode()).hexdigest()
    assert not step.fallback and "FALLBACK" not in lock
    assert YAML_PIN.lower() in lock.lower() and SKLEARN_PIN in lock
    assert f"numpy=={metadata.version('numpy')}" in lock          # transitive, from PyPI's metadata
    pins = [ln for ln in body(step.lock_path) if "==" in ln]
    hashes = [ln for ln in body(step.lock_path) if ln.strip().startswith("--hash=sha256:")]
    assert len(pins) >= 5 and len(hashes) >= len(pins)
    assert f"Python {result.python_version} on {result.platform}" in lock
    json.dumps(result.to_dict())


def test_stdlib_only_step_gets_header_only_files_without_calling_uv(tmp_path, offline_uv):
    result = lock_pipeline(pipeline(plain=["os", "json", "collections.abc"]), tmp_path, tmp_path / "out")
    step = result.steps["plain"]
    assert not step.fallback and result.warnings == []     # uv would have failed: it was not called
    assert body(step.requirements_in) == [] and body(step.lock_path) == []
    assert step.lock_path.read_text().startswith("# Locked with uv")
    assert not (tmp_path / ".same" / "locks").exists()


def test_identical_requirement_sets_are_resolved_once_and_cached(tmp_path, monkeypatch):
    same = pipeline(a=["yaml"], b=["yaml", "json"], c=["yaml.loader"])
    first = lock_pipeline(same, tmp_path, tmp_path / "one")
    assert len({s.lock_sha256 for s in first.steps.values()}) == 1
    assert len(list((tmp_path / ".same" / "locks").iterdir())) == 1
    # With uv unable to reach any index, a re-lock still succeeds: it comes from the cache.
    for var in ("UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        monkeypatch.setenv(var, "http://127.0.0.1:9/simple")
    monkeypatch.setenv("UV_NO_CACHE", "1")
    started = time.perf_counter()
    again = lock_pipeline(same, tmp_path, tmp_path / "two")
    assert time.perf_counter() - started < 1.0
    assert not again.steps["a"].fallback
    assert again.steps["a"].lock_sha256 == first.steps["a"].lock_sha256


def test_uv_failure_falls_back_to_the_installed_environment(tmp_path, offline_uv):
    started = time.perf_counter()
    result = lock_pipeline(pipeline(train=["sklearn", "yaml"]), tmp_path, tmp_path / "out")
    assert time.perf_counter() - started < 15
    step = result.steps["train"]
    lock = step.lock_path.read_text()
    assert step.fallback
    assert "# FALLBACK: resolved from the installed environment without hashes because uv failed: " in lock
    assert "127.0.0.1:9" in lock                                   # the reason names what failed
    assert "--hash" not in lock
    closure = body(step.lock_path)
    for dist in ("scikit-learn", "PyYAML", "numpy", "scipy", "joblib", "threadpoolctl"):
        assert f"{dist}=={metadata.version(dist)}" in closure
    assert any("uv failed" in w and "without hashes" in w for w in result.warnings)
    assert not list((tmp_path / ".same" / "locks").glob("*/lock-*"))   # never cached


def test_unresolvable_import_is_named_and_left_out_the_rest_keeps_its_hashes(tmp_path):
    result = lock_pipeline(pipeline(s=["yaml", "same_nb_env_missing_q7"]), tmp_path, tmp_path / "out")
    step = result.steps["s"]
    assert not step.fallback and step.unpinned == ["same_nb_env_missing_q7"]
    lock = step.lock_path.read_text()
    assert [ln.split(" ")[0] for ln in body(step.lock_path) if "==" in ln] == [YAML_PIN.lower()]
    assert "--hash=sha256:" in lock
    assert "# LEFT OUT, uv cannot resolve it for Python" in lock
    assert "same_nb_env_missing_q7 (same-nb-env-missing-q7 was not found in the package registry" in lock
    assert list(step.unresolved) == ["same_nb_env_missing_q7"]
    assert "same_nb_env_missing_q7 is imported but not installed; assuming same_nb_env_missing_q7, unpinned" \
        in step.warnings
    assert any(w.startswith("s: same_nb_env_missing_q7 cannot be resolved for Python ") and "not found in the "
               "package registry" in w and "the rest keeps its hashes" in w for w in result.warnings)


def test_local_helper_is_listed_not_locked(tmp_path):
    for name in ("env_helper.py", "env_helper_sub.py"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    step = lock_pipeline(pipeline(s=["env_helper"]), tmp_path, tmp_path / "out").steps["s"]
    assert [p.name for p in step.local_modules] == ["env_helper.py", "env_helper_sub.py"]
    assert body(step.requirements_in) == [YAML_PIN]          # the helper's own import, pinned
    assert "env_helper" not in step.lock_path.read_text()


def test_platform_and_python_version_reach_uv(tmp_path):
    result = lock_pipeline(pipeline(s=["yaml"]), tmp_path, tmp_path / "out",
                           python_version="3.12", platform="linux/arm64")
    assert (result.python_version, result.platform) == ("3.12", "aarch64-manylinux_2_28")
    lock = result.steps["s"].lock_path.read_text()
    assert "Python 3.12 on aarch64-manylinux_2_28" in lock and "--hash=sha256:" in lock


def test_platform_names():
    index = environment_index()
    assert uv_platform("linux/x86_64", index) == "x86_64-manylinux_2_28"
    assert uv_platform("linux/amd64", index) == "x86_64-manylinux_2_28"
    assert uv_platform("darwin/arm64", index) == "aarch64-apple-darwin"
    assert uv_platform("x86_64-manylinux_2_28", index) == "x86_64-manylinux_2_28"
    assert uv_platform("linux", index) == "linux"
    assert uv_platform(None, index).startswith(index["machine"])
    with pytest.raises(SameError, match="unknown platform 'plan9/mips'"):
        uv_platform("plan9/mips", index)


def test_bad_python_version_is_a_same_error(tmp_path):
    with pytest.raises(SameError, match="bad Python version 'eleven'"):
        lock_pipeline(pipeline(s=["yaml"]), tmp_path, tmp_path / "out", python_version="eleven")


def test_conda_without_a_conda_binary_says_so_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    started = time.perf_counter()
    result = lock_pipeline(pipeline(a=["yaml"], b=["yaml"]), tmp_path, tmp_path / "out", conda=True)
    assert time.perf_counter() - started < 5
    assert result.warnings.count(NO_CONDA) == 1
    env = result.steps["a"].environment_yml.read_text()
    version = ".".join(result.python_version.split(".")[:2])
    assert f"  - python={version}\n" in env and "  - conda-forge\n" in env
    assert f"  - pip:\n      - {YAML_PIN}\n" in env
    assert result.steps["a"].conda_lock is None


def test_conda_with_a_conda_binary_runs_conda_lock(tmp_path):
    if not any(shutil.which(t) for t in ("conda", "mamba", "micromamba")) or not shutil.which("conda-lock"):
        pytest.skip("no conda/mamba/micromamba binary and conda-lock on PATH on this machine")
    result = lock_pipeline(pipeline(a=["yaml"]), tmp_path, tmp_path / "out", conda=True)
    step = result.steps["a"]
    assert step.conda_lock is not None and step.conda_lock.is_file(), result.warnings


def test_compiled_bundle_carries_locks_their_hashes_and_local_modules(tmp_path, monkeypatch):
    """`same-nb compile`: each step's lock is in the bundle, same.yaml records its sha256, and the
    local helper modules (never locked) are shipped under modules/."""
    import hashlib

    import yaml

    from same_nb.service import compile_notebook

    monkeypatch.delenv("SAME_NB_DB", raising=False)
    for name in ("env_steps.ipynb", "env_helper.py", "env_helper_sub.py"):
        shutil.copyfile(FIXTURES / name, tmp_path / name)
    out = tmp_path / "bundle"
    result = compile_notebook(tmp_path / "env_steps.ipynb", out, lock=True)
    manifest = yaml.safe_load((out / "same.yaml").read_text())
    for step in ("load", "stdlib_only", "with_helper"):
        ref = manifest["steps"][step]["lock"]
        assert ref["sha256"] == hashlib.sha256((out / ref["path"]).read_bytes()).hexdigest()
        assert ref["sha256"] == result.locks.steps[step].lock_sha256
    assert sorted(p.name for p in (out / "modules").iterdir()) == ["env_helper.py", "env_helper_sub.py"]
    assert (out / "modules" / "env_helper.py").read_bytes() == (tmp_path / "env_helper.py").read_bytes()
