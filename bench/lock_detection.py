"""Time dependency detection + mapping for a 100-step notebook: same-nb against pipreqs.

Run: python bench/lock_detection.py
same-nb's figure is the median of 5 runs of ``step_requirements`` from a cold per-process index
(as a fresh ``same-nb lock`` pays it). pipreqs, when installed, runs on the same imports written
as .py files, once with its default PyPI lookups and once with ``--pypi-server`` pointed at PyPI.
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from same_nb.envs import requirements
from same_nb.frontend.ir import Import, Pipeline, Step

GOAL_SECONDS = 0.5
STEPS = 100
MIX = ["numpy", "pandas", "sklearn.model_selection", "sklearn.linear_model", "yaml",
       "os", "json", "collections", "pathlib", "math"]
PYPI = "https://pypi.org/pypi/"


def step_imports(i: int) -> list[str]:
    return [m for k, m in enumerate(MIX) if (i + k) % 3 != 0]


def build_pipeline() -> Pipeline:
    def imp(module: str) -> Import:
        return Import(module=module, top=module.split(".")[0], statement=f"import {module}")
    return Pipeline(name="bench", notebook="bench.ipynb", notebook_sha256="0" * 64,
                    steps=[Step(f"step{i}", imports=[imp(m) for m in step_imports(i)]) for i in range(STEPS)])


def time_same_nb(pipeline: Pipeline, runs: int = 5) -> tuple[float, list[str]]:
    times = []
    for _ in range(runs):
        requirements._index_for.cache_clear()
        started = time.perf_counter()
        result = requirements.step_requirements(pipeline, ".")
        times.append(time.perf_counter() - started)
    pins = sorted({p for r in result.values() for p in r.pins}, key=str.lower)
    return statistics.median(times), pins


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "pyyaml/json", timeout=5):
            return True
    except OSError:
        return False


def time_pipreqs(extra: list[str]) -> str:
    exe = shutil.which("pipreqs")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(STEPS):
            Path(tmp, f"step{i}.py").write_text("".join(f"import {m}\n" for m in step_imports(i)))
        cmd = [exe, "--print", "--mode", "no-pin", *extra, tmp]
        started = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return "timed out after 60 s"
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed after {seconds:.2f} s (exit {done.returncode}): {last}"
    found = ", ".join(sorted(done.stdout.split(), key=str.lower))
    return f"{seconds:.2f} s -> {found} (no versions)"


def main() -> None:
    seconds, pins = time_same_nb(build_pipeline())
    verdict = "meets" if seconds <= GOAL_SECONDS else "MISSES"
    print(f"same-nb step_requirements, {STEPS} steps, median of 5: {seconds:.3f} s "
          f"({verdict} the {GOAL_SECONDS} s goal) -> {', '.join(pins)}")
    if not shutil.which("pipreqs"):
        print("pipreqs: not installed, skipped")
        return
    print(f"pipreqs --print --mode no-pin: {time_pipreqs([])}")
    if reachable(PYPI):
        print(f"pipreqs --print --mode no-pin --pypi-server {PYPI}: {time_pipreqs(['--pypi-server', PYPI])}")
    else:
        print(f"pipreqs with --pypi-server {PYPI}: skipped, PyPI's JSON API is unreachable")


if __name__ == "__main__":
    sys.exit(main())
