"""What a step's pod installs: the step's pins, what it needs to run a notebook, and kfp's executor.

``pod_pipeline`` gives the locker (envs/lock.py) a copy of the IR where each step also needs the
notebook executor and the packages of the steps its inputs come from (to load their values), and
never same-nb (pods run the runtime shipped in the bundle). ``executor_lock`` and ``uv_lock`` are
small hashed locks of kfp (installed without its dependencies: with ``_KFP_RUNTIME=true`` its
executor needs none) and of uv, which pods use to install their lock.
"""
from __future__ import annotations

import copy
import importlib.metadata
import re
from pathlib import Path

from same_nb.errors import SameError
from same_nb.frontend.ir import Pipeline

EXECUTOR_PACKAGES = ("papermill", "ipykernel", "cloudpickle")   # what every pod needs to run a step notebook


def pod_pipeline(pipeline: Pipeline, notebook_dir: Path, observed: dict | None = None) -> Pipeline:
    """A copy of the IR to lock for pods: each step also needs the notebook executor, the packages of
    the steps its inputs come from (to load their values), and never same-nb (the launcher ships it)."""
    from same_nb.envs.requirements import step_requirements

    pods = copy.deepcopy(pipeline)
    for step in pods.steps:
        step.imports = [i for i in step.imports if i.top != "same_nb"]
        step.replay_imports = [i for i in step.replay_imports if i.top != "same_nb"]
    direct = step_requirements(pods, notebook_dir, observed=observed)
    for step in pods.steps:
        inherited = sorted({pin for a in _ancestors(pipeline, step.name) for pin in direct[a].pins})
        names = {re.split(r"[=<>~!\[; ]", line, maxsplit=1)[0].lower() for line in direct[step.name].lines + inherited}
        extra = EXECUTOR_PACKAGES + (("pyarrow",) if "pandas" in names else ())
        step.requirements = (list(step.requirements) + [f"{pin}  # producer" for pin in inherited]
                             + [f"{installed_pin(p)}  # executor" for p in extra])
    return pods


def _ancestors(pipeline: Pipeline, name: str) -> set[str]:
    """Steps whose values can reach ``name`` through data edges."""
    found: set[str] = set()
    queue = [name]
    while queue:
        current = queue.pop()
        for edge in pipeline.edges:
            if edge.kind == "data" and edge.dst == current and edge.src not in found:
                found.add(edge.src)
                queue.append(edge.src)
    return found


def installed_pin(dist: str) -> str:
    try:
        return f"{dist}=={importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        raise SameError(f"{dist} is not installed here; the Kubeflow pods need it to run step notebooks, "
                        f"and locks pin the versions installed here: pip install {dist}") from None


def executor_lock(cache_root: Path, python_version: str, plat: str) -> tuple[str, str | None]:
    """kfp's lightweight-component executor, pinned to the kfp installed here, hashed, no dependencies."""
    return _tool_lock(installed_pin("kfp"), "kfp's component executor, installed without its dependencies",
                      cache_root, python_version, plat)


def uv_lock(cache_root: Path, python_version: str, plat: str) -> tuple[str, str | None]:
    """uv (one static binary in a wheel), hashed: pods install it before their lock."""
    try:
        pin = installed_pin("uv")
    except SameError:
        pin = "uv"
    return _tool_lock(pin, "uv, which pods use to install their lock", cache_root, python_version, plat)


def _tool_lock(pin: str, what: str, cache_root: Path, python_version: str, plat: str) -> tuple[str, str | None]:
    from same_nb.envs.lock import hashed_pins

    text, problem = hashed_pins([pin], cache_root, python_version, plat)
    if problem:
        problem = f"{what}: {problem}"
    return f"# {what}, for Python {python_version} on {plat}.\n" + text, problem


def fully_hashed(lock: str) -> bool:
    entries = [e for e in re.sub(r"\\\n", " ", lock).splitlines() if e.strip() and not e.lstrip().startswith("#")]
    return bool(entries) and all("--hash=" in e for e in entries)


