"""same_nb.envs.lock against the real index: hashes for the target only, pins equal to what is installed,
the lock installs into a bare venv with --require-hashes --no-deps, unresolvable pins named, tool locks."""
from __future__ import annotations

import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

import same_nb.envs.lock as lock_module
from same_nb.envs.lock import hashed_pins, lock_pipeline, uv_command, uv_environment
from same_nb.envs.pylock import load_toml, resolve_set
from same_nb.frontend.ir import Import, Pipeline, Step

LOCAL = "%d.%d" % sys.version_info[:2]
LINUX_X86_64 = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")


def imp(module: str) -> Import:
    return Import(module=module, top=module.split(".")[0], statement=f"import {module}", cell=1, line=1)


def pipeline(requirements: list[str] | None = None, **steps: list[str]) -> Pipeline:
    return Pipeline(name="p", notebook="nb.ipynb", notebook_sha256="0" * 64,
                    steps=[Step(name, imports=[imp(m) for m in mods], requirements=list(requirements or []))
                           for name, mods in steps.items()])


def entries(lock: str) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, hashes)} of a requirements.txt."""
    found = {}
    for entry in re.sub(r"\\\n", " ", lock).splitlines():
        if entry.strip() and not entry.startswith("#"):
            pin = re.match(r"([A-Za-z0-9._-]+)==(\S+)", entry)
            found[pin.group(1)] = (pin.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", entry))
    return found


def every_file(pins: list[str], work: Path) -> dict[str, str]:
    """sha256 → file name for every file of these releases, on every platform (uv's universal pylock)."""
    (work / "all.in").write_text("".join(f"{p}\n" for p in pins))
    done = subprocess.run(uv_command() + ["pip", "compile", "all.in", "--universal", "--no-deps", "--format",
                                          "pylock.toml", "--no-header", "--quiet"],
                          cwd=work, capture_output=True, text=True, timeout=120, env=uv_environment(), check=True)
    files = {}
    for package in load_toml(done.stdout)["packages"]:
        for entry in package.get("wheels", []) + ([package["sdist"]] if "sdist" in package else []):
            files[entry["hashes"]["sha256"]] = (entry.get("name") or entry["url"]).rsplit("/", 1)[-1]
    return files


@pytest.fixture(scope="module")
def pandas_sklearn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("target")
    started = time.perf_counter()
    result = lock_pipeline(pipeline(train=["pandas", "sklearn.ensemble"]), folder, folder / "bundle")
    return folder, result, time.perf_counter() - started


def test_defaults_are_the_local_python_on_linux_amd64(pandas_sklearn):
    _, result, seconds = pandas_sklearn
    assert (result.python_version, result.platform) == (LOCAL, "x86_64-manylinux_2_28")
    assert seconds < 30


def test_hashes_are_for_the_target_only_and_pins_are_what_is_installed(pandas_sklearn):
    folder, result, _ = pandas_sklearn
    step = result.steps["train"]
    assert not step.fallback and not step.unresolved, result.warnings
    locked = entries(step.lock_path.read_text())
    assert {"pandas", "scikit-learn", "numpy", "scipy"} <= set(locked)
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name} has no hash"
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue                                       # not installed here: the index's choice
        assert version == installed, f"{name}: locked {version}, installed {installed}"
    files = every_file([f"{n}=={v}" for n, (v, _) in locked.items()], folder)
    assert len(files) > 3 * len(locked)                    # the releases do have files for other platforms
    cp = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    for name, (_, hashes) in locked.items():
        names = [files[h] for h in hashes]                 # KeyError: a hash no file of the release has
        for file in names:
            assert not re.search(r"win32|win_amd64|win_arm64|macosx|musllinux|aarch64|i686", file), file
            if file.endswith(".whl"):
                assert re.search(rf"-({cp}|py3|py2\.py3|cp3\d+-abi3)[.-]", file) or "-abi3-" in file, file
                assert re.search(r"(manylinux\S*x86_64|linux_x86_64|-any)\.whl$", file), file
            else:                                          # an sdist only when no wheel fits
                assert not any(f.startswith(name.replace("-", "_")) and f.endswith(".whl") and
                               re.search(rf"-({cp}|py3)-.*(x86_64|any)\.whl$", f) for f in files.values()), file
    total = sum(len(h) for _, h in locked.values())
    assert total <= 2 * len(locked)                        # ~1 hash a package, not ~15


@pytest.mark.skipif(not LINUX_X86_64, reason="the lock targets linux x86_64; this machine cannot install it")
def test_the_lock_installs_into_a_bare_venv_with_require_hashes_no_deps(pandas_sklearn, tmp_path):
    _, result, _ = pandas_sklearn
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(uv_command() + ["pip", "install", "--quiet", "--python", str(python), "--require-hashes",
                                             "--no-deps", "-r", str(result.steps["train"].lock_path)],
                             capture_output=True, text=True, timeout=600, env=uv_environment())
    assert install.returncode == 0, install.stderr
    out = subprocess.run([str(python), "-c", "import pandas, sklearn.ensemble; print(pandas.__version__, "
                          "sklearn.__version__)"], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == [metadata.version("pandas"), metadata.version("scikit-learn")], out.stderr


def test_requirements_in_lines_say_what_needs_them(tmp_path, monkeypatch):
    real = lock_module.step_requirements

    def with_sources(*args, **kwargs):
        reqs = real(*args, **kwargs)
        for req in reqs["s"].requirements:
            req.sources = ["loaded", "serializer"]
        return reqs

    monkeypatch.setattr(lock_module, "step_requirements", with_sources)
    step = lock_pipeline(pipeline(s=["yaml"]), tmp_path, tmp_path / "out").steps["s"]
    assert f"PyYAML=={metadata.version('PyYAML')}  # loaded, serializer\n" in step.requirements_in.read_text()
    assert step.sources == {"pyyaml": ["loaded", "serializer"]}


def test_a_version_the_index_lacks_is_named_and_the_rest_stays_hashed(tmp_path):
    result = lock_pipeline(pipeline(["PyYAML==99.0"], s=["yaml", "six"]), tmp_path, tmp_path / "out")
    step = result.steps["s"]
    assert not step.fallback and list(step.unresolved) == ["PyYAML==99.0"]
    assert "no version of pyyaml==99.0" in step.unresolved["PyYAML==99.0"]
    locked = entries(step.lock_path.read_text())
    assert list(locked) == ["six"] and locked["six"][1]
    assert any("PyYAML==99.0 cannot be resolved for Python" in w and "no version of pyyaml==99.0" in w
               for w in result.warnings)


def test_an_installed_version_the_index_lacks_is_dropped_by_name(tmp_path):
    installed = {"pandas": metadata.version("pandas"), "numpy": "1.0.0+local",
                 "python-dateutil": metadata.version("python-dateutil")}
    res = resolve_set([f"pandas=={installed['pandas']}"], installed, sys.executable, LOCAL,
                      "x86_64-manylinux_2_28", tmp_path)
    assert res.problem is None and not res.unresolved
    locked = entries(res.body)
    assert locked["python-dateutil"][0] == installed["python-dateutil"]     # still pinned to what is installed
    assert locked["numpy"][0] != "1.0.0+local"
    assert any(n.startswith("the installed numpy 1.0.0+local cannot be used") for n in res.notes), res.notes
    assert res.installed["numpy"] == "1.0.0+local"       # the cache entry is valid while that stays installed
    assert list(tmp_path.iterdir()) == []                 # uv's scratch folder is gone


def test_hashed_pins_for_tools_are_target_only_and_cached(tmp_path):
    pin = f"uv=={metadata.version('uv')}"
    text, problem = hashed_pins([pin], tmp_path, LOCAL, "linux/amd64")
    assert problem is None
    [(version, hashes)] = entries(text).values()
    assert version == metadata.version("uv") and 1 <= len(hashes) <= 2
    arm, _ = hashed_pins([pin], tmp_path, LOCAL, "linux/arm64")
    assert set(entries(arm)["uv"][1]).isdisjoint(hashes)
    started = time.perf_counter()
    assert hashed_pins([pin], tmp_path, LOCAL, "linux/amd64") == (text, None)
    assert time.perf_counter() - started < 0.5
    text, problem = hashed_pins([pin, "same-nb-env-no-such-dist-q7==1.0"], tmp_path, LOCAL, "linux/amd64")
    assert "same-nb-env-no-such-dist-q7==1.0 cannot be hashed" in problem and "not found" in problem
    assert list(entries(text)) == ["uv"]


def test_hashed_pins_without_the_index_return_the_pins_unhashed(tmp_path, monkeypatch):
    for var in ("UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        monkeypatch.setenv(var, "http://127.0.0.1:9/simple")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_NO_CACHE", "1")
    text, problem = hashed_pins(["kfp==2.17.0"], tmp_path, LOCAL, "linux/amd64")
    assert text == "kfp==2.17.0\n"
    assert problem.startswith("cannot hash kfp==2.17.0 for Python") and "installed without hash checking" in problem
    assert not list(tmp_path.glob("tools-*/lock-*"))
