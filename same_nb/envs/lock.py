"""Per-step lock files: ``requirements.in`` (direct pins, each with what needs it) and
``requirements.txt`` (the full set, hashed for the target Python and platform only).

Each distinct requirement set is resolved once (``pylock.resolve_set``: uv, constrained to the
versions installed here) and cached under ``<notebook_dir>/.same/locks/`` by its content and the
installed versions of what it locked, so re-locking is instant until one of those changes. A
requirement uv cannot resolve is named and left out, the rest keeps its hashes. Only when uv cannot
run or reach its index does the lock fall back to the installed environment's metadata, pinned but
without hashes, and say so in the file and in the warnings.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

# uv_command, uv_environment and uv_error_reason are re-exported: verify and kubeflow import them from here.
from same_nb.envs.pylock import Resolution, resolve_set
from same_nb.envs.pylock import uv_command as uv_command
from same_nb.envs.pylock import uv_environment as uv_environment
from same_nb.envs.pylock import uv_error_reason as uv_error_reason
from same_nb.envs.requirements import canonical, environment_index, is_current_interpreter, run_probe, step_requirements
from same_nb.errors import SameError
from same_nb.frontend.ir import Pipeline

CONDA_LOCK_TIMEOUT = 300
CACHE_FORMAT = "target-pylock-1"           # in cache keys: earlier locks carried every platform's hashes
DEFAULT_PLATFORM = "linux/amd64"           # what Kubeflow's images run
LOCAL_PLATFORM = "local"                   # venvs on this machine (verify, run --isolated)
INSTALL = "# Install with: uv pip install --require-hashes --no-deps -r requirements.txt\n"
UV_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
UV_PLATFORMS = {"windows", "linux", "macos", "x86_64-pc-windows-msvc", "aarch64-pc-windows-msvc",
                "i686-pc-windows-msvc", "x86_64-unknown-linux-gnu", "aarch64-apple-darwin",
                "x86_64-apple-darwin", "aarch64-unknown-linux-gnu", "aarch64-unknown-linux-musl",
                "x86_64-unknown-linux-musl", "x86_64-manylinux2014", "aarch64-manylinux2014"} | {
    f"{arch}-manylinux_2_{minor}" for arch in ("x86_64", "aarch64") for minor in (17, *range(28, 41))}
NO_CONDA = "no conda, mamba or micromamba binary on PATH; wrote environment.yml without conda-lock.yml"

Progress = Callable[[str], None]


@dataclass
class StepLock:
    step: str
    requirements_in: Path
    lock_path: Path
    lock_sha256: str
    pins: list[str]
    unpinned: list[str]
    modules: list[str]                     # third-party modules the step imports (verify imports them)
    local_modules: list[Path]
    fallback: bool
    python_version: str = ""
    warnings: list[str] = field(default_factory=list)
    environment_yml: Path | None = None
    conda_lock: Path | None = None
    sources: dict[str, list[str]] = field(default_factory=dict)    # canonical distribution → what needs it
    unresolved: dict[str, str] = field(default_factory=dict)       # requirement left out → uv's reason


@dataclass
class LockResult:
    out_dir: Path
    python_version: str
    platform: str                          # uv's --python-platform value
    python: str                            # interpreter whose environment was read
    steps: dict[str, StepLock] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        def plain(value):
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value
        return plain(asdict(self))


def uv_platform(value: str | None, index: dict) -> str:
    """uv's --python-platform name for ``value`` (``linux/x86_64`` style or uv's own names);
    None or ``local`` → the platform of the interpreter whose ``index`` this is."""
    if value is None or value == LOCAL_PLATFORM:
        arch = UV_ARCHES.get(index["machine"], index["machine"])
        if index["sys_platform"] == "darwin":
            return f"{arch}-apple-darwin"
        if index["sys_platform"] == "win32":
            return f"{arch}-pc-windows-msvc"
        libc, version = index["libc"]
        if libc != "glibc":
            return f"{arch}-unknown-linux-musl"
        minor = int(version.split(".")[1])
        return f"{arch}-manylinux_2_{min(minor, 40)}" if minor >= 28 else f"{arch}-manylinux_2_17"
    name = value.strip().lower()
    if name in UV_PLATFORMS:
        return name
    os_name, _, arch = name.partition("/")
    arch = UV_ARCHES.get(arch, "")
    if arch and os_name == "linux":
        return f"{arch}-manylinux_2_28"
    if arch and os_name in ("darwin", "macos", "osx"):
        return f"{arch}-apple-darwin"
    if arch and os_name in ("windows", "win"):
        return f"{arch}-pc-windows-msvc"
    raise SameError(f"unknown platform '{value}': use linux/x86_64, linux/arm64, darwin/arm64, "
                    f"windows/amd64 or one of uv's names, e.g. x86_64-manylinux_2_28")


def conda_platform(uv_name: str) -> str:
    arm = uv_name.startswith("aarch64")
    if "darwin" in uv_name or uv_name == "macos":
        return "osx-arm64" if arm else "osx-64"
    if "windows" in uv_name:
        return "win-arm64" if arm else "win-64"
    return "linux-aarch64" if arm else "linux-64"


def _header(first_line: str, python_version: str, plat: str) -> str:
    return (f"# {first_line} for Python {python_version} on {plat}.\n"
            "# Written by same-nb; regenerate with: same-nb lock <notebook>\n")


def _installed(index: dict) -> dict[str, str]:
    return {key: version for key, (_, version) in index["dists"].items()}


def _key(lines: list[str], python_version: str, plat: str, no_deps: bool) -> str:
    text = "\n".join([CACHE_FORMAT, python_version, plat, str(no_deps), *lines])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _cached(cache: Path, installed: dict[str, str]) -> Resolution | None:
    """A stored resolution whose packages are installed here at the versions they were then: the
    same constraints would give the same lock."""
    for meta in sorted(cache.glob("lock-*.json")):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            body = meta.with_suffix(".txt").read_text(encoding="utf-8")
        except (OSError, ValueError):
            continue
        if all(installed.get(n) == v for n, v in data["installed"].items()):
            return Resolution(body, data["installed"], data["unresolved"], data["notes"])
    return None


def _store(cache: Path, res: Resolution) -> None:
    meta = json.dumps({"installed": res.installed, "unresolved": res.unresolved, "notes": res.notes},
                      sort_keys=True, indent=1)
    stem = cache / f"lock-{hashlib.sha256(meta.encode()).hexdigest()[:16]}"
    cache.mkdir(parents=True, exist_ok=True)
    for path, text in ((stem.with_suffix(".txt"), res.body), (stem.with_suffix(".json"), meta)):
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)                  # atomic, and the .json (what lookups read) comes last


def hashed_pins(pins: list[str], cache_root: Path, python_version: str, platform: str, *,
                no_deps: bool = True) -> tuple[str, str | None]:
    """requirements.txt entries for a few tools (kfp's executor, uv itself) hashed for one target
    only, cached like the step locks; with ``no_deps=False`` their dependencies too, pinned to the
    versions installed here. Returns (text, problem or None); when uv cannot lock at all the text
    is the pins unhashed, and the problem says so."""
    index = environment_index()
    version, plat = _python_version(python_version, index), uv_platform(platform, index)
    lines = sorted(pins, key=str.lower)
    installed = {} if no_deps else _installed(index)
    cache = Path(cache_root) / f"tools-{_key(lines, version, plat, no_deps)}"
    res = _cached(cache, installed)
    if res is None:
        res = resolve_set(lines, installed, sys.executable, version, plat, Path(cache_root), no_deps)
        if res.problem is None:
            _store(cache, res)
    if res.problem is not None:
        return "".join(f"{ln}\n" for ln in lines), (f"cannot hash {', '.join(lines)} for Python {version} on "
                                                    f"{plat} ({res.problem}); installed without hash checking")
    if res.unresolved:
        return res.body, "; ".join(f"{ln} cannot be hashed for Python {version} on {plat} ({why}); left out"
                                   for ln, why in res.unresolved.items())
    return res.body, None


def _installed_closure(lines: list[str]) -> dict:
    """Transitive installed pins of ``lines`` (evaluating markers here). Self-contained: it may run
    in the kernel's interpreter through ``run_probe``."""
    import importlib.metadata as md
    import re
    try:
        from packaging.requirements import Requirement
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement

    pins: dict[str, str] = {}
    missing: list[str] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    queue = []
    for line in lines:
        try:
            queue.append(Requirement(line))
        except Exception:
            missing.append(line)
    while queue:
        req = queue.pop()
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        extras = tuple(sorted(req.extras))
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            missing.append(req.name)
            continue
        pins[key] = f"{dist.metadata['Name']}=={dist.version}"
        for raw in dist.requires or []:
            try:
                dep = Requirement(raw)
            except Exception:             # malformed metadata of one dependency: skip it, keep the rest
                continue
            if dep.marker and not any(dep.marker.evaluate({"extra": e}) for e in extras or ("",)):
                continue
            queue.append(dep)
    return {"pins": sorted(pins.values(), key=str.lower), "missing": sorted(set(missing))}


def _fallback_body(lines: list[str], python: str, reason: str) -> tuple[str, list[str]]:
    closure = (_installed_closure(lines) if is_current_interpreter(python)
               else run_probe(python, _installed_closure, lines))
    body = f"# FALLBACK: resolved from the installed environment without hashes because uv failed: {reason}\n"
    body += "".join(f"{pin}\n" for pin in closure["pins"])
    body += "".join(f"# not installed here, left out: {name}\n" for name in closure["missing"])
    notes = [f"{name} is not installed, so the fallback lock leaves it out" for name in closure["missing"]]
    return body, notes


def _python_version(value: str | None, index: dict) -> str:
    if value is None:
        return index["python_version"]
    if not re.fullmatch(r"3\.\d+(\.\d+)?", value.strip()):
        raise SameError(f"bad Python version '{value}': use a version like 3.11")
    return value.strip()


def _environment_yml(step: str, python_version: str, lines: list[str]) -> str:
    pip = "".join(f"      - {line}\n" for line in lines)
    return (f"name: {step}\nchannels:\n  - conda-forge\ndependencies:\n"
            f"  - python={'.'.join(python_version.split('.')[:2])}\n  - pip\n"
            + (f"  - pip:\n{pip}" if lines else ""))


def _conda_lock(env_file: Path, plat: str) -> tuple[Path | None, str | None]:
    out = env_file.with_name("conda-lock.yml")
    cmd = [shutil.which("conda-lock") or "conda-lock", "-f", env_file.name, "-p", conda_platform(plat),
           "--lockfile", out.name]
    try:
        done = subprocess.run(cmd, cwd=env_file.parent, capture_output=True, text=True,
                              timeout=CONDA_LOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"conda-lock timed out after {CONDA_LOCK_TIMEOUT} s for {env_file}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"conda-lock failed for {env_file}: {last}"
    return out, None


def _resolve(lines: list[str], cache_root: Path, python_version: str, plat: str, python: str,
             installed: dict[str, str], progress: Progress) -> tuple[Resolution, bool]:
    """(resolution, fallback?) for one requirement set, from the cache when possible."""
    if not lines:
        return Resolution(), False
    key = _key(lines, python_version, plat, False)
    res = _cached(cache_root / key, installed)
    if res is not None:
        progress(f"lock {key[:12]}: cached")
        return res, False
    progress(f"lock {key[:12]}: uv pip compile ({len(lines)} direct requirements)")
    res = resolve_set(lines, installed, python, python_version, plat, cache_root)
    if res.problem is None:
        _store(cache_root / key, res)
        return res, False
    progress(f"lock {key[:12]}: uv failed ({res.problem}); falling back to the installed environment")
    body, notes = _fallback_body(lines, python, res.problem)
    return Resolution(body, notes=[f"uv failed ({res.problem}); locked from the installed environment "
                                   f"without hashes"] + notes, problem=res.problem), True


def _sources(req) -> dict[str, list[str]]:
    return {canonical(r.dist): list(getattr(r, "sources", None) or []) for r in req.requirements}


def _in_lines(req, sources: dict[str, list[str]]) -> str:
    """requirements.in lines, each with what needs it as a trailing comment (pip and uv allow one)."""
    by_line = {r.line: sources.get(canonical(r.dist)) for r in req.requirements}
    return "".join(f"{ln}  # {', '.join(by_line[ln])}\n" if by_line.get(ln) else f"{ln}\n" for ln in req.lines)


def lock_pipeline(pipeline: Pipeline, notebook_dir: str | Path, out_dir: str | Path, *,
                  python_version: str | None = None, platform: str | None = None, conda: bool = False,
                  python: str | None = None, progress: Progress | None = None,
                  observed: dict | None = None) -> LockResult:
    """Write ``out_dir/envs/<step>/requirements.{in,txt}`` (and environment.yml with ``conda``) for
    ``python_version`` (default: that of ``python``, the interpreter whose packages are read) on
    ``platform`` (default: linux/amd64, what Kubeflow's images run). ``observed``: what the last
    local runs loaded and passed between steps (``store/observed.py``), see ``step_requirements``."""
    progress = progress or (lambda message: None)
    notebook_dir = Path(notebook_dir).resolve()
    out_dir = Path(out_dir)
    python = python or sys.executable
    index = environment_index(python)
    version = _python_version(python_version, index)
    plat = uv_platform(platform or DEFAULT_PLATFORM, index)
    installed = _installed(index)
    reqs = step_requirements(pipeline, notebook_dir, python, observed=observed)
    result = LockResult(out_dir, version, plat, python)
    can_conda_lock = False
    if conda:
        if not any(shutil.which(t) for t in ("conda", "mamba", "micromamba")):
            result.warnings.append(NO_CONDA)
        elif not shutil.which("conda-lock"):
            result.warnings.append("conda-lock is not installed; wrote environment.yml without conda-lock.yml")
        else:
            can_conda_lock = True
    resolved: dict[tuple[str, ...], tuple[Resolution, bool]] = {}
    for name, req in reqs.items():
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise SameError(f"step name '{name}' cannot name a directory", step=name)
        lines = req.lines
        sources = _sources(req)
        in_text = _header("Direct requirements of a step", version, plat) + _in_lines(req, sources)
        if tuple(lines) not in resolved:
            resolved[tuple(lines)] = _resolve(lines, notebook_dir / ".same" / "locks", version, plat, python,
                                              installed, progress)
        res, fallback = resolved[tuple(lines)]
        env_dir = out_dir / "envs" / name
        env_dir.mkdir(parents=True, exist_ok=True)
        in_path, lock_path = env_dir / "requirements.in", env_dir / "requirements.txt"
        in_path.write_text(in_text, encoding="utf-8")
        lock_text = (_header("Locked from the installed environment (no hashes)", version, plat) if fallback else
                     _header("Locked with uv, hashing only the files that install", version, plat) + INSTALL)
        lock_text += res.body
        lock_path.write_text(lock_text, encoding="utf-8")
        step_lock = StepLock(name, in_path, lock_path, hashlib.sha256(lock_text.encode()).hexdigest(),
                             req.pins, req.unpinned, req.modules, req.local_modules, fallback,
                             version, req.warnings + res.notes, sources=sources, unresolved=dict(res.unresolved))
        if conda:
            step_lock.environment_yml = env_dir / "environment.yml"
            step_lock.environment_yml.write_text(_environment_yml(name, version, lines), encoding="utf-8")
            if can_conda_lock:
                step_lock.conda_lock, problem = _conda_lock(step_lock.environment_yml, plat)
                if problem:
                    step_lock.warnings.append(problem)
        result.steps[name] = step_lock
        result.warnings.extend(f"{name}: {w}" for w in step_lock.warnings)
    return result
