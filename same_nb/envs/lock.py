"""Per-step lock files: ``requirements.in`` (direct pins) and ``requirements.txt`` (full set, hashed).

uv resolves each distinct requirement set once; results are cached by content under
``<notebook_dir>/.same/locks/`` so re-locking is instant. When uv fails (PyPI unreachable, no
solution) the lock falls back to the installed environment's metadata, pinned but without hashes,
and says so in the file and in the warnings.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from same_nb.envs.requirements import environment_index, is_current_interpreter, run_probe, step_requirements
from same_nb.errors import SameError
from same_nb.frontend.ir import Pipeline

UV_TIMEOUT = 60
CONDA_LOCK_TIMEOUT = 300
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


def uv_command() -> list[str]:
    """uv from the uv package (its binary beside this interpreter), else on PATH, else ``-m uv``."""
    try:
        from uv import find_uv_bin
        return [find_uv_bin()]
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        return [found] if found else [sys.executable, "-m", "uv"]


def uv_platform(value: str | None, index: dict) -> str:
    """uv's --python-platform name for ``value`` (``linux/x86_64`` style or uv's own names);
    None → the platform of the interpreter whose ``index`` this is."""
    if value is None:
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


def uv_error_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")]
    causes = [ln.removeprefix("cause:").strip() for ln in lines if ln.startswith("cause:")]
    reason = errors[0] if errors else (lines[-1] if lines else "no output")
    return f"{reason} ({causes[-1]})" if causes else reason


def uv_environment() -> dict[str, str]:
    # Without this, uv looks for (and tries to download) an interpreter of the target version.
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}


def _run_uv(cache: Path, python: str, python_version: str, plat: str) -> tuple[str | None, str]:
    """Resolve ``cache/requirements.in`` with uv. Returns (locked body, "") or (None, reason)."""
    cmd = uv_command() + ["pip", "compile", "requirements.in", "--generate-hashes", "--no-header",
                          "--quiet", "--python", python, "--python-version", python_version,
                          "--python-platform", plat]
    try:
        done = subprocess.run(cmd, cwd=cache, capture_output=True, text=True, timeout=UV_TIMEOUT,
                              env=uv_environment())
    except subprocess.TimeoutExpired:
        return None, f"uv pip compile timed out after {UV_TIMEOUT} s"
    except OSError as exc:
        return None, f"cannot run uv: {exc}"
    if done.returncode != 0:
        return None, uv_error_reason(done.stderr)
    return done.stdout, ""


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


def _resolve(body_lines: list[str], in_text: str, cache_root: Path, python_version: str, plat: str,
             python: str, progress: Progress) -> tuple[str, bool, list[str]]:
    """(locked body, fallback?, notes) for one requirement set, from the cache when possible."""
    if not body_lines:
        return "", False, []
    key = hashlib.sha256(f"{in_text}\0{python_version}\0{plat}".encode()).hexdigest()[:24]
    cache = cache_root / key
    cached = cache / "requirements.txt"
    if cached.is_file():
        progress(f"lock {key[:12]}: cached")
        return cached.read_text(encoding="utf-8"), False, []
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "requirements.in").write_text(in_text, encoding="utf-8")
    progress(f"lock {key[:12]}: uv pip compile ({len(body_lines)} direct requirements)")
    body, reason = _run_uv(cache, python, python_version, plat)
    if body is None:
        progress(f"lock {key[:12]}: uv failed ({reason}); falling back to the installed environment")
        shutil.rmtree(cache, ignore_errors=True)
        body, notes = _fallback_body(body_lines, python, reason)
        return body, True, [f"uv failed ({reason}); locked from the installed environment without hashes"] + notes
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(cached)                    # atomic: a concurrent reader never sees half a lock
    return body, False, []


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


def lock_pipeline(pipeline: Pipeline, notebook_dir: str | Path, out_dir: str | Path, *,
                  python_version: str | None = None, platform: str | None = None, conda: bool = False,
                  python: str | None = None, progress: Progress | None = None) -> LockResult:
    """Write ``out_dir/envs/<step>/requirements.{in,txt}`` (and environment.yml with ``conda``)."""
    progress = progress or (lambda message: None)
    notebook_dir = Path(notebook_dir).resolve()
    out_dir = Path(out_dir)
    python = python or sys.executable
    index = environment_index(python)
    version = _python_version(python_version, index)
    plat = uv_platform(platform, index)
    reqs = step_requirements(pipeline, notebook_dir, python)
    result = LockResult(out_dir, version, plat, python)
    can_conda_lock = False
    if conda:
        if not any(shutil.which(t) for t in ("conda", "mamba", "micromamba")):
            result.warnings.append(NO_CONDA)
        elif not shutil.which("conda-lock"):
            result.warnings.append("conda-lock is not installed; wrote environment.yml without conda-lock.yml")
        else:
            can_conda_lock = True
    resolved: dict[str, tuple[str, bool, list[str]]] = {}
    for name, req in reqs.items():
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise SameError(f"step name '{name}' cannot name a directory", step=name)
        lines = req.lines
        in_text = _header("Direct requirements of a step", version, plat) + "".join(f"{ln}\n" for ln in lines)
        if in_text not in resolved:
            resolved[in_text] = _resolve(lines, in_text, notebook_dir / ".same" / "locks", version,
                                         plat, python, progress)
        body, fallback, notes = resolved[in_text]
        env_dir = out_dir / "envs" / name
        env_dir.mkdir(parents=True, exist_ok=True)
        in_path, lock_path = env_dir / "requirements.in", env_dir / "requirements.txt"
        in_path.write_text(in_text, encoding="utf-8")
        lock_text = _header("Locked from the installed environment (no hashes)" if fallback else
                            "Locked with uv (pip install --require-hashes -r requirements.txt)",
                            version, plat) + body
        lock_path.write_text(lock_text, encoding="utf-8")
        step_lock = StepLock(name, in_path, lock_path, hashlib.sha256(lock_text.encode()).hexdigest(),
                             req.pins, req.unpinned, req.modules, req.local_modules, fallback,
                             version, req.warnings + notes)
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
