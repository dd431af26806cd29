"""Inside a pod, before the step runs: make sure the step's locked packages are installed.

Standard library only: this runs before anything from the lock is importable. The lock is the
step's hashed ``requirements.txt`` from the bundle. When every pin is already installed at its
version (an image built from the step's Dockerfile, or kfp.local on the machine that locked it)
nothing is installed. Otherwise the pins are installed with uv, hash-checked and without dependency
resolution, from the index the pipeline was compiled for (same.yaml ``environment.index_url``);
uv itself comes from the bundle's hashed ``envs/uv.txt``. An image (``SAME_NB_LOCK_SHA256`` set by
its Dockerfile) or ``SAME_NB_KFP_INSTALL=never`` never installs: a missing pin fails the step,
naming it, instead of reaching the network.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import time
from pathlib import Path

INSTALL_ENV = "SAME_NB_KFP_INSTALL"        # "never": fail on a missing pin instead of installing
IMAGE_LOCK_ENV = "SAME_NB_LOCK_SHA256"     # set by the generated Dockerfile: the lock the image holds
INDEX_ENV = "SAME_NB_INDEX_URL"            # overrides the compiled index (a cluster's own mirror)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


class PodEnvironmentError(RuntimeError):
    """The step's packages are not installed and may not (or could not) be."""


def pins(lock_text: str) -> dict[str, str]:
    """Canonical distribution name → pinned version, from a requirements.txt."""
    found = {}
    for line in lock_text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            found[_canonical(match.group(1))] = match.group(2)
    return found


def missing(wanted: dict[str, str]) -> dict[str, str | None]:
    """Pins not installed at their version: name → the installed version (None when absent)."""
    importlib.invalidate_caches()
    installed = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            installed.setdefault(_canonical(name), dist.version)
    return {name: installed.get(name) for name, version in wanted.items() if installed.get(name) != version}


def ensure_lock(step: str, lock: Path, uv_lock: Path | None, index_url: str | None,
                log=lambda text: print(text, file=sys.stderr, flush=True)) -> float:
    """Install what the lock pins and this interpreter lacks; returns the seconds spent installing."""
    wanted = pins(lock.read_text(encoding="utf-8"))
    absent = missing(wanted)
    if not absent:
        log(f"same-nb: step '{step}': all {len(wanted)} locked packages are installed")
        return 0.0
    shown = ", ".join(f"{n}=={wanted[n]}" + (f" (found {v})" if v else "") for n, v in sorted(absent.items())[:8])
    more = f" and {len(absent) - 8} more" if len(absent) > 8 else ""
    if os.environ.get(IMAGE_LOCK_ENV) or os.environ.get(INSTALL_ENV) == "never":
        why = ("the image was built for another lock; rebuild it from the step's Dockerfile "
               "(kfp/images/ in the compiled bundle)" if os.environ.get(IMAGE_LOCK_ENV)
               else f"{INSTALL_ENV}=never")
        raise PodEnvironmentError(f"step '{step}': {len(absent)} locked package(s) are not installed: "
                                  f"{shown}{more}; {why}")
    started = time.perf_counter()
    index = os.environ.get(INDEX_ENV) or index_url
    log(f"same-nb: step '{step}': installing {len(absent)} of {len(wanted)} locked packages"
        + (f" from {index}" if index else ""))
    _install(_uv(uv_lock, index) + ["pip", "install", "--python", sys.executable, "--require-hashes", "--no-deps",
                                    "--no-config", "-r", str(lock)] + (["--index-url", index] if index else []),
             step)
    still = missing(wanted)
    if still:
        raise PodEnvironmentError(f"step '{step}': installed the lock, but {', '.join(sorted(still))} "
                                  f"still do not match their pins")
    seconds = time.perf_counter() - started
    log(f"same-nb: step '{step}': installed {len(absent)} packages in {seconds:.1f} s")
    return seconds


def _uv(uv_lock: Path | None, index: str | None) -> list[str]:
    """uv, installed hash-checked from the bundle's uv lock when this interpreter lacks it."""
    try:
        importlib.import_module("uv")
    except ImportError:
        if uv_lock is None or not uv_lock.is_file():
            raise PodEnvironmentError("uv is not installed and the bundle has no uv lock to install it from") from None
        _install([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "--no-warn-script-location", "--require-hashes", "--no-deps", "-r", str(uv_lock)]
                 + (["--index-url", index] if index else []), "uv")
        importlib.invalidate_caches()
    return [sys.executable, "-m", "uv"]


def _install(command: list[str], what: str) -> None:
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode:
        tail = "\n".join(done.stdout.strip().splitlines()[-15:])
        raise PodEnvironmentError(f"installing the locked packages for '{what}' failed (exit {done.returncode}):\n{tail}")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
