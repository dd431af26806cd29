"""Prove each lock is complete: install it into a clean venv and import every module its steps use.

Venvs are built with uv and cached by lock hash under ``<notebook_dir>/.same/envs/<hash16>/``; a
marker file written last says the build completed. The kernel variant (``<hash16>-kernel``) adds
ipykernel constrained by the lock, so the plain venv stays exactly the lock for verification.
same-nb is never in a lock (it is not on the package index): kernels and pods get a copy of the
step runtime and the package root (``runtime_copy``), and a step's ``import same_nb`` is checked
against that copy. ``same-nb verify`` then runs each step in the kernel variant of its venv
(``local/verify_run.py``); its outcome per step is a ``RunCheck``, kept and rendered here.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator, Sequence

from same_nb.envs.lock import LockResult, StepLock, uv_command, uv_environment, uv_error_reason
from same_nb.envs.requirements import environment_index
from same_nb.errors import SameError

MARKER = ".same-complete.json"
INSTALL_TIMEOUT = 900
IMPORT_TIMEOUT = 300
RESULT_PREFIX = "SAME_NB_IMPORTS "
IMPORT_SCRIPT = f"""
import contextlib, importlib, json, sys, traceback
results = {{}}
for name in json.loads(sys.argv[1]):
    try:
        with contextlib.redirect_stdout(sys.stderr):
            importlib.import_module(name)
        results[name] = None
    except BaseException as exc:
        results[name] = traceback.format_exception_only(type(exc), exc)[-1].strip()
print({RESULT_PREFIX!r} + json.dumps(results))
"""


@dataclass
class RunCheck:
    """A step run in its clean venv on the inputs of its last successful local run."""
    status: str                                   # ok | failed | differs | not-run
    run_id: int | None = None                     # the local run whose inputs and outputs were used
    seconds: float = 0.0
    python: str | None = None                     # the kernel's interpreter
    failures: list[dict] = field(default_factory=list)      # {ename, evalue, cell, line, where}
    differs: dict[str, dict] = field(default_factory=dict)  # output → {run, expected, got}
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for f in self.failures:
            where = [f"cell {f['cell']}"] if f.get("cell") else []
            where += [f"line {f['line']}"] if f.get("line") else []
            where += [f["where"]] if f.get("where") and f.get("where") != "step code" else []
            out.append(f"run: {f.get('ename')}: {f.get('evalue')}" + (f" ({', '.join(where)})" if where else ""))
        for name, d in sorted(self.differs.items()):
            got = d["got"][:12] if d.get("got") else "not produced"
            out.append(f"run: output {name} differs from run {d['run']} ({got} ≠ {d['expected'][:12]})")
        out += [f"run: not run: {n}" if self.status == "not-run" else f"run: note: {n}" for n in self.notes]
        return out


@dataclass
class StepVerification:
    step: str
    lock_sha256: str
    venv: Path | None
    imported: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)   # module → last line of its error
    error: str | None = None                                  # the venv could not be built
    notes: list[str] = field(default_factory=list)
    run: RunCheck | None = None                               # None: steps were not run (imports only)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures and (self.run is None or self.run.status in ("ok", "not-run"))

    @property
    def status(self) -> str:
        """ok | failed | differs | not-run: the import check's failures first, then the run's outcome."""
        if self.error is not None or self.failures:
            return "failed"
        return self.run.status if self.run is not None else "ok"


_LABELS = {"ok": "ok  ", "failed": "FAIL", "differs": "DIFF", "not-run": "--  "}


@dataclass
class VerifyReport:
    steps: list[StepVerification] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def render(self) -> str:
        venvs = len({s.lock_sha256 for s in self.steps})
        not_run = [s.step for s in self.steps if s.status == "not-run"]
        lines = [f"verify: {len(self.steps)} steps, {venvs} distinct locks, {self.seconds:.1f} s: "
                 + ("OK" if self.ok else "FAILED") + (f" ({len(not_run)} not run)" if not_run else "")]
        for s in self.steps:
            ran = f", ran in {s.run.seconds:.1f} s" if s.run is not None and s.run.status != "not-run" else ""
            lines.append(f"  {_LABELS[s.status]} {s.step} (lock {s.lock_sha256[:16]}, "
                         f"{len(s.imported)} modules imported{ran})")
            if s.error:
                lines.append(f"       environment: {s.error}")
            lines.extend(f"       {module}: {error}" for module, error in sorted(s.failures.items()))
            lines.extend(f"       note: {note}" for note in s.notes)
            if s.run is not None:
                lines.extend(f"       {line}" for line in s.run.lines())
        if not_run:
            lines.append(f"note: {', '.join(not_run)} not run: no successful local run to take inputs from "
                         f"(not a failure of the lock)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        for step, s in zip(data["steps"], self.steps):
            step["venv"] = str(step["venv"]) if step["venv"] else None
            step["status"] = s.status
            step["seconds"] = s.run.seconds if s.run is not None else 0.0
        return data


def _venv_dir(lock_sha256: str, notebook_dir: str | Path, kernel: bool = False) -> Path:
    return Path(notebook_dir).resolve() / ".same" / "envs" / (lock_sha256[:16] + ("-kernel" if kernel else ""))


def _python_in(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_python(lock_sha256: str, notebook_dir: str | Path, kernel: bool = False) -> Path:
    """Interpreter of the cached venv for a lock (``kernel``: the variant with ipykernel added)."""
    return _python_in(_venv_dir(lock_sha256, notebook_dir, kernel))


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Serialize builds of one venv across processes (POSIX flock; no locking elsewhere)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _uv(args: list[str], what: str, timeout: int = INSTALL_TIMEOUT) -> None:
    env = {k: v for k, v in uv_environment().items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    try:
        done = subprocess.run(uv_command() + args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise SameError(f"{what}: uv timed out after {timeout} s") from None
    if done.returncode != 0:
        raise SameError(f"{what}: {uv_error_reason(done.stderr)}")


def _has_requirements(lock_path: Path) -> bool:
    return any(ln.strip() and not ln.lstrip().startswith("#")
               for ln in lock_path.read_text(encoding="utf-8").splitlines())


def _base_python(python_version: str, python: str | None) -> str:
    """The interpreter to build on: the kernel's (or ours) when its version is the lock's,
    else the version, for uv to find among the Pythons installed here."""
    wanted = ".".join(python_version.split(".")[:2])
    for candidate in (python, sys.executable):
        if candidate and environment_index(candidate)["python_version"] == wanted:
            return candidate
    return wanted


def _read_marker(venv: Path) -> dict | None:
    try:
        return json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _build_venv(lock: StepLock, venv: Path, base_python: str, extra: Sequence[str] = ()) -> None:
    """Create ``venv`` from ``lock`` (and ``extra`` packages constrained by it) unless a marker
    says an identical build completed."""
    wanted = {"lock_sha256": lock.lock_sha256, "fallback": lock.fallback, "extra": sorted(extra)}
    with _exclusive(venv.with_name(venv.name + ".lock")):
        marker = _read_marker(venv)
        if marker and all(marker.get(k) == v for k, v in wanted.items()):
            return
        if venv.exists():
            shutil.rmtree(venv)
        what = f"building the environment of step {lock.step} (lock {lock.lock_sha256[:16]})"
        _uv(["venv", "--quiet", "--python", base_python, str(venv)], what)
        python = str(_python_in(venv))
        if _has_requirements(lock.lock_path):
            hashes = [] if lock.fallback else ["--require-hashes"]
            _uv(["pip", "install", "--quiet", "--python", python, *hashes, "-r", str(lock.lock_path)], what)
        if extra:
            _uv(["pip", "install", "--quiet", "--python", python, *extra, "-c", str(lock.lock_path)], what)
        wanted["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        (venv / MARKER).write_text(json.dumps(wanted, indent=1), encoding="utf-8")


def ensure_kernel_venv(lock: StepLock, notebook_dir: str | Path, *, python: str | None = None,
                       extra_packages: Sequence[str] = ()) -> Path:
    """Build (or reuse) the lock's venv plus ipykernel (this environment's version) and
    ``extra_packages``, all constrained by the lock. Returns its interpreter."""
    try:
        kernel = [f"ipykernel=={metadata.version('ipykernel')}"]
    except metadata.PackageNotFoundError:
        kernel = ["ipykernel"]
    venv = _venv_dir(lock.lock_sha256, notebook_dir, kernel=True)
    _build_venv(lock, venv, _base_python(lock.python_version, python), [*kernel, *extra_packages])
    return _python_in(venv)


def runtime_copy(notebook_dir: str | Path) -> Path:
    """A folder to put on PYTHONPATH where same-nb is not installed: the step runtime plus the package
    root (``same_nb.log_metric``), copied under ``.same/runtime/<version>-<content hash>/``."""
    from same_nb._version import __version__

    package = Path(__file__).resolve().parents[1]
    files = sorted((package / "runtime").glob("*.py")) + [package / "__init__.py", package / "_version.py"]
    digest = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()[:12]
    root = Path(notebook_dir).resolve() / ".same" / "runtime" / f"{__version__}-{digest}"
    if not (root / "same_nb" / "runtime" / "step.py").exists():
        tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        for file in files:
            target = tmp / file.relative_to(package.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
        try:
            os.replace(tmp, root)
        except OSError:                   # another process put it there first: same content, same name
            shutil.rmtree(tmp, ignore_errors=True)
            if not (root / "same_nb" / "runtime" / "step.py").exists():
                raise
    return root


def _import_all(python: Path, modules: list[str], cwd: Path, path: Path | None = None) -> dict[str, str | None]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    try:
        done = subprocess.run([str(python), "-c", IMPORT_SCRIPT, json.dumps(modules)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=IMPORT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SameError(f"importing {', '.join(modules)} took more than {IMPORT_TIMEOUT} s") from None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    raise SameError(f"the import check crashed: {last}")


def _step_modules(lock: StepLock) -> list[str]:
    local = [p.stem if p.suffix == ".py" else p.name for p in lock.local_modules]
    return sorted(set(lock.modules) | set(local))


def verify_locks(lock_result: LockResult, notebook_dir: str | Path, *,
                 progress: Callable[[str], None] | None = None,
                 runtime_modules: dict[str, list[str]] | None = None) -> VerifyReport:
    """Install each distinct lock into a clean cached venv and import its steps' modules there;
    ``runtime_modules``: step → modules it imports that ship with the runtime (``same_nb``), imported
    from ``runtime_copy`` as a kernel or pod would."""
    progress = progress or (lambda message: None)
    notebook_dir = Path(notebook_dir).resolve()
    started = time.perf_counter()
    shipped = {step: list(names) for step, names in (runtime_modules or {}).items() if names}

    def modules_of(step: StepLock) -> list[str]:
        return sorted(set(_step_modules(step)) | set(shipped.get(step.step, [])))

    groups: dict[str, list[StepLock]] = {}
    for step in lock_result.steps.values():
        groups.setdefault(step.lock_sha256, []).append(step)
    report = VerifyReport()
    for sha, group in groups.items():
        results = {s.step: StepVerification(s.step, sha, None) for s in group}
        report.steps.extend(results.values())
        for s in group:
            results[s.step].notes.extend(
                f"{req}: left out of the lock: not installed here and not resolvable from the package index "
                f"({why})" for req, why in sorted(s.unresolved.items()))
        steps = [s for s in group if modules_of(s)]
        for quiet in (s for s in group if s not in steps):
            results[quiet.step].notes.append("imports only the standard library; nothing to install")
        if not steps:
            continue
        modules = sorted({m for s in steps for m in modules_of(s)})
        venv = _venv_dir(sha, notebook_dir)
        progress(f"verify lock {sha[:16]} ({', '.join(s.step for s in steps)}): {len(modules)} modules")
        try:
            base = _base_python(lock_result.python_version, lock_result.python)
            _build_venv(steps[0], venv, base)
            runtime = runtime_copy(notebook_dir) if any(s.step in shipped for s in steps) else None
            outcome = _import_all(_python_in(venv), modules, notebook_dir, runtime)
        except SameError as exc:
            for step in steps:
                results[step.step].error = exc.message
            continue
        for step in steps:
            r = results[step.step]
            r.venv = venv
            r.imported = modules_of(step)
            r.failures = {m: outcome[m] for m in r.imported if outcome.get(m)}
            if step.fallback:
                r.notes.append("fallback lock: installed without --require-hashes")
            r.notes.extend(f"{m}: ships with the runtime (not pinned), imported from its copy"
                           for m in shipped.get(step.step, []))
    report.steps.sort(key=lambda r: list(lock_result.steps).index(r.step))
    report.seconds = time.perf_counter() - started
    return report
