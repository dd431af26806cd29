"""same_nb.envs.requirements: imports → distributions pinned to the versions installed here."""
from __future__ import annotations

import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from same_nb.envs import requirements as req
from same_nb.envs.lock import uv_command
from same_nb.errors import SameError
from same_nb.frontend.ir import Import, Pipeline, Step

from conftest import TESTS

FIXTURES = TESTS / "notebooks"


def imp(module: str, statement: str | None = None) -> Import:
    top = "" if module.startswith(".") else module.split(".")[0]
    return Import(module=module, top=top, statement=statement or f"import {module}", cell=1, line=1)


def pipeline(*steps: Step) -> Pipeline:
    return Pipeline(name="p", notebook="nb.ipynb", notebook_sha256="0" * 64, steps=list(steps))


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> str:
    """A real interpreter whose environment has no third-party packages."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run(uv_command() + ["venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    return str(venv / "bin" / "python")


@pytest.fixture()
def nb_dir(tmp_path) -> Path:
    for name in ("env_helper.py", "env_helper_sub.py", "env_dynamic_helper.py"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    package = tmp_path / "env_pkg"
    package.mkdir()
    (package / "core.py").write_text("import sklearn\n")
    return tmp_path


def test_step_modules_merges_replayed_imports_and_drops_stdlib():
    step = Step("s", imports=[imp("sklearn.linear_model"), imp("os.path"), imp("__future__"),
                              imp(".helpers", "from .helpers import f"), imp("yaml")],
                replay_imports=[imp("numpy"), imp("yaml"), imp("json")])
    assert req.step_modules(step) == ["numpy", "sklearn", "yaml"]


def test_installed_modules_pin_the_installed_versions():
    resolved = req.resolve_distributions(["sklearn.linear_model", "yaml"])
    assert [r.line for r in resolved["sklearn.linear_model"]] == [f"scikit-learn=={metadata.version('scikit-learn')}"]
    assert [r.line for r in resolved["yaml"]] == [f"PyYAML=={metadata.version('PyYAML')}"]
    assert {r.source for rs in resolved.values() for r in rs} == {"installed"}


def test_index_is_cached_per_process():
    assert req.environment_index() is req.environment_index(sys.executable)


def test_not_installed_module_uses_the_mapping_table():
    if importlib.util.find_spec("cv2") is not None:
        pytest.skip("cv2 is installed here, so the mapping table is not consulted")
    [guess] = req.resolve_distributions(["cv2"])["cv2"]
    assert (guess.dist, guess.version, guess.source, guess.line) == ("opencv-python", None, "mapped", "opencv-python")
    assert req.module_map()["PIL"] == "Pillow" and req.module_map()["bs4"] == "beautifulsoup4"
    assert len(req.module_map()) >= 60


def test_another_interpreter_is_inspected_in_a_subprocess(bare_python):
    step = Step("train", imports=[imp("sklearn"), imp("yaml")])
    result = req.step_requirements(pipeline(step), ".", python=bare_python)["train"]
    assert result.pins == []
    assert result.unpinned == ["PyYAML", "scikit-learn"]
    assert "sklearn is imported but not installed; assuming scikit-learn, unpinned" in result.warnings
    assert "yaml is imported but not installed; assuming PyYAML, unpinned" in result.warnings


def test_a_failing_interpreter_raises_a_same_error_naming_it(tmp_path):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'boom: no such module' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(SameError, match=f"{broken}.*boom: no such module"):
        req.resolve_distributions(["yaml"], python=str(broken))
    with pytest.raises(SameError, match="/no/such/python"):
        req.resolve_distributions(["yaml"], python="/no/such/python")


def test_namespace_package_picks_the_installed_distribution_that_provides_it():
    tops = req.environment_index()["tops"]
    if len(tops.get("google", [])) < 2 or "protobuf" not in [metadata.distribution(d).metadata["Name"]
                                                              for d in tops["google"]]:
        pytest.skip("needs several installed google.* distributions including protobuf")
    assert [r.dist for r in req.resolve_distributions(["google.protobuf"])["google.protobuf"]] == ["protobuf"]
    assert sorted(r.dist for r in req.resolve_distributions(["google"])["google"]) == sorted(tops["google"])


def test_local_modules_are_listed_scanned_and_not_locked(nb_dir):
    step = Step("s", imports=[imp("env_helper"), imp("env_pkg.core"),
                              imp(".", "from . import env_dynamic_helper as d"), imp("numpy")])
    result = req.step_requirements(pipeline(step), nb_dir)["s"]
    names = sorted(p.name for p in result.local_modules)
    assert names == ["env_dynamic_helper.py", "env_helper.py", "env_helper_sub.py", "env_pkg"]
    assert req.local_modules(step, nb_dir) == result.local_modules
    # env_helper imports yaml and env_pkg/core.py imports sklearn: both reach the lock, pinned.
    assert result.pins == sorted([f"numpy=={metadata.version('numpy')}", f"PyYAML=={metadata.version('PyYAML')}",
                                  f"scikit-learn=={metadata.version('scikit-learn')}"], key=str.lower)
    assert result.modules == ["numpy", "sklearn", "yaml"]
    assert not any("env_" in line for line in result.lines)
    assert not any("ujson" in line for line in result.lines)     # optional import inside try/except


def test_unresolved_relative_import_is_reported(nb_dir):
    step = Step("s", imports=[imp(".missing", "from .missing import thing")])
    result = req.step_requirements(pipeline(step), nb_dir)["s"]
    assert result.local_modules == [] and result.lines == []
    assert any("from .missing import thing" in w and "names no module" in w for w in result.warnings)


def test_local_module_with_a_syntax_error_is_reported(tmp_path):
    (tmp_path / "env_broken.py").write_text("def (:\n")
    result = req.step_requirements(pipeline(Step("s", imports=[imp("env_broken")])), tmp_path)["s"]
    assert [p.name for p in result.local_modules] == ["env_broken.py"]
    assert any("env_broken.py: cannot parse" in w for w in result.warnings)


def test_pip_install_specs_override_and_add():
    pandas = metadata.version("pandas")
    step = Step("s", imports=[imp("pandas"), imp("yaml")],
                requirements=["pandas>=2", "PyYAML", "pyarrow[pandas]", "same-nb-no-such-dist-q7"])
    result = req.step_requirements(pipeline(step), ".")["s"]
    assert "pandas>=2" in result.pins and f"pandas=={pandas}" not in result.pins
    assert f"PyYAML=={metadata.version('PyYAML')}" in result.pins
    assert f"pyarrow[pandas]=={metadata.version('pyarrow')}" in result.pins
    assert result.unpinned == ["same-nb-no-such-dist-q7"]
    assert result.warnings == ["same-nb-no-such-dist-q7 is in !pip install but not installed; unpinned"]


def test_pip_install_spec_that_the_installed_version_does_not_satisfy_warns():
    step = Step("s", imports=[imp("pandas")], requirements=["pandas<1"])
    result = req.step_requirements(pipeline(step), ".")["s"]
    assert result.pins == ["pandas<1"]
    assert result.warnings == [f"'pandas<1' from !pip install does not match the installed pandas "
                               f"{metadata.version('pandas')}; the lock uses 'pandas<1'"]


def test_a_100_step_notebook_maps_in_under_half_a_second():
    mix = [imp("numpy"), imp("pandas"), imp("sklearn.model_selection"), imp("yaml"), imp("os"), imp("json")]
    big = pipeline(*[Step(f"s{i}", imports=mix[i % 3:], replay_imports=mix[:i % 4]) for i in range(100)])
    times = []
    for _ in range(3):
        req._index_for.cache_clear()            # include building the index, as a fresh CLI process does
        started = time.perf_counter()
        result = req.step_requirements(big, ".")
        times.append(time.perf_counter() - started)
    assert len(result) == 100 and result["s0"].pins
    assert statistics.median(times) < 0.5, times


def test_a_real_notebook_end_to_end(tmp_path):
    from same_nb.frontend.pipeline import build_pipeline
    for name in ("env_steps.ipynb", "env_helper.py", "env_helper_sub.py"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    result = req.step_requirements(build_pipeline(tmp_path / "env_steps.ipynb"), tmp_path)
    yaml_pin = f"PyYAML=={metadata.version('PyYAML')}"
    assert result["load"].pins == [yaml_pin]
    assert result["stdlib_only"].lines == [] and result["stdlib_only"].modules == []
    assert result["with_helper"].pins == [yaml_pin]
    assert [p.name for p in result["with_helper"].local_modules] == ["env_helper.py", "env_helper_sub.py"]
