"""Which distributions each step needs: its imports mapped to the versions installed where the notebook ran.

The mapping is read from the environment of the kernel's interpreter (``importlib.metadata``), so a
lock pins the versions that actually executed, not PyPI's latest. Modules beside the notebook are
local: the bundle ships them, so they are listed, scanned for their own imports, and never locked.
Imports are not the whole story (``load_iris(as_frame=True)`` needs pandas, a DataFrame crosses as
Arrow): what the step's last local run loaded and passed on is added too (``envs/sources.py``), and
each requirement says where it came from.
"""
from __future__ import annotations

import ast
import inspect
import json
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Callable

from same_nb.envs.sources import (
    KERNEL_PACKAGES,
    RUNTIME_MODULES,
    StepRequirements,
    kernel_probe,
    merge,
    never_ran,
    observed_origins,
)
from same_nb.envs.sources import Requirement as Requirement  # re-exported: callers import them here
from same_nb.envs.sources import canonical as canonical
from same_nb.errors import SameError
from same_nb.frontend.ir import Import, Pipeline, Step

MODULE_MAP_PATH = Path(__file__).parent / "data" / "module_map.txt"
PROBE_TIMEOUT = 60


def _environment_index() -> dict:
    """Describe the running interpreter's distributions. Self-contained (stdlib only): it is also
    sent as source to another interpreter, so it must not use anything defined outside it.
    It reads METADATA headers and RECORD as text: building PackagePath objects costs 10x more."""
    import importlib.metadata as md
    import platform
    import sys

    def header(text: str, key: str) -> str | None:
        found = re.search(rf"^{key}:[ \t]*(.*?)\s*$", text.split("\n\n", 1)[0], re.M)
        return found.group(1) if found else None

    tops: dict[str, list[str]] = {}
    dists: dict[str, list[str]] = {}
    records: dict[str, list[list[str]]] = {}
    for dist in md.distributions():
        meta = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        name, version = header(meta, "Name"), header(meta, "Version")
        key = re.sub(r"[-_.]+", "-", name or "").lower()
        if not name or not version or key in dists:    # the first one on sys.path wins, as for imports
            continue
        dists[key] = [name, version]
        record = dist.read_text("RECORD")
        parts = ([row.split(",", 1)[0].split("/") for row in record.splitlines() if row] if record
                 else [list(f.parts) for f in dist.files or []])
        records[name] = parts
        declared = (dist.read_text("top_level.txt") or "").split()
        inferred = {p[0] if len(p) > 1 else p[0].split(".")[0] for p in parts
                    if len(p) > 1 or p[0].endswith((".py", ".so", ".pyd"))}
        for top in declared or inferred:
            if top.isidentifier() and top != "__pycache__":
                tops.setdefault(top, []).append(name)
    # A namespace top (google, azure) belongs to several distributions: keep each one's dotted
    # subpackages so an import like google.cloud.storage can pick the one that provides it.
    subpackages: dict[str, dict[str, list[str]]] = {}
    for top, names in tops.items():
        if len(names) > 1:
            for name in names:
                paths = {".".join(p[:-1] + ([p[-1][:-3]] if p[-1].endswith(".py") else []))
                         for p in records[name] if p[0] == top and len(p) <= 5}
                subpackages.setdefault(top, {})[name] = sorted(paths)
    return {"executable": sys.executable, "python_version": "%d.%d" % sys.version_info[:2],
            "sys_platform": sys.platform, "machine": platform.machine().lower(),
            "libc": list(platform.libc_ver()), "tops": tops, "dists": dists,
            "subpackages": subpackages, "stdlib": sorted(getattr(sys, "stdlib_module_names", ()))}


def run_probe(python: str, func, *args) -> object:
    """Run the self-contained ``func(*args)`` in another interpreter and return its JSON result."""
    script = (inspect.getsource(func) + "\nimport json, sys\n"
              f"print(json.dumps({func.__name__}(*json.loads(sys.argv[1]))))\n")
    try:
        done = subprocess.run([python, "-c", script, json.dumps(list(args))], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SameError(f"cannot run the kernel's interpreter {python}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SameError(f"the kernel's interpreter {python} failed while inspecting its packages: {last}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SameError(f"the kernel's interpreter {python} printed no package index") from None


def is_current_interpreter(python: str | None) -> bool:
    # No symlink resolution: a venv's bin/python links to its base interpreter but sees other packages.
    return python is None or os.path.abspath(python) == os.path.abspath(sys.executable)


def _installed_fingerprint() -> str:
    """Changes whenever a distribution is installed, removed or upgraded on this sys.path: the
    metadata folder names carry the versions. Listing them costs milliseconds, indexing ~0.2 s."""
    import hashlib

    h = hashlib.sha256(sys.executable.encode())
    for entry in sys.path:
        try:
            names = sorted(e.name for e in os.scandir(entry or ".")
                           if e.name.endswith((".dist-info", ".egg-info", ".egg-link", ".pth")))
        except OSError:
            continue
        if names:                             # the script's own folder differs per command
            h.update(f"{os.path.abspath(entry or '.')}\0{'/'.join(names)}\0".encode())
    return h.hexdigest()[:32]


def disk_cached(name: str, compute: Callable[[], dict]) -> dict:
    """``compute()``, kept on disk while this interpreter's installed distributions stay the same."""
    cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "same-nb"
    path = cache_dir / f"{name}-{_installed_fingerprint()}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    value = compute()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)
    except OSError:
        pass                                  # a read-only home only costs the rescan next time
    return value


@lru_cache(maxsize=8)
def _index_for(python: str) -> dict:
    if is_current_interpreter(python):
        return disk_cached("env-index", _environment_index)
    return run_probe(python, _environment_index)


def environment_index(python: str | None = None) -> dict:
    """The cached per-process package index of ``python`` (default: this interpreter)."""
    return _index_for(sys.executable if is_current_interpreter(python) else python)


@lru_cache(maxsize=1)
def module_map() -> dict[str, str]:
    entries = {}
    for raw in MODULE_MAP_PATH.read_text(encoding="utf-8").splitlines():
        parts = raw.split("#", 1)[0].split()
        if len(parts) == 2:
            entries[parts[0]] = parts[1]
    return entries


def _narrow_namespace(module: str, candidates: dict[str, list[str]]) -> list[str]:
    """The distributions providing the longest prefix of ``module``; all of them for a bare top."""
    parts = module.split(".")
    for depth in range(len(parts), 1, -1):
        prefix = ".".join(parts[:depth])
        hits = [d for d, paths in candidates.items()
                if any(p == prefix or p.startswith(prefix + ".") for p in paths)]
        if hits:
            return sorted(hits)
    return sorted(candidates)


def resolve_distributions(modules: list[str], python: str | None = None) -> dict[str, list[Requirement]]:
    """Map each module (top-level or dotted) to the distribution(s) providing it in ``python``'s
    environment, pinned to the installed version; not installed → the mapping table, unpinned."""
    index = environment_index(python)
    resolved: dict[str, list[Requirement]] = {}
    for module in modules:
        top = module.split(".")[0]
        names = index["tops"].get(top, [])
        if len(names) > 1 and top in index["subpackages"]:
            names = _narrow_namespace(module, index["subpackages"][top])
        if not names and canonical(top) in index["dists"]:     # editable installs map no files
            names = [index["dists"][canonical(top)][0]]
        if names:
            resolved[module] = [Requirement(module, n, index["dists"][canonical(n)][1]) for n in names]
        else:
            resolved[module] = [Requirement(module, module_map().get(top, top), None, "mapped")]
    return resolved


def _imports(step: Step) -> list[Import]:
    return list(step.imports) + list(step.replay_imports)


def step_modules(step: Step) -> list[str]:
    """Top-level modules the step imports (own and replayed), without the stdlib and __future__."""
    tops = {i.top for i in _imports(step) if i.top}
    return sorted(t for t in tops if t not in sys.stdlib_module_names and t != "__future__")


def _local_path(name: str, base: Path) -> Path | None:
    candidate = base / f"{name}.py"
    if candidate.is_file():
        return candidate
    package = base / name
    if package.is_dir() and (any(package.glob("*.py")) or (package / "__init__.py").exists()):
        return package
    return None


def _relative_targets(imp: Import, notebook_dir: Path) -> list[tuple[str, Path]]:
    """(name, base dir) pairs a relative import refers to, read from its replayable statement."""
    try:
        node = ast.parse(imp.statement).body[0]
    except (SyntaxError, IndexError):
        node = None
    if not isinstance(node, ast.ImportFrom) or not node.level:
        return []
    base = notebook_dir
    for _ in range(node.level - 1):
        base = base.parent
    if node.module:
        return [(node.module.split(".")[0], base)]
    return [(alias.name, base) for alias in node.names]


def _direct_local_modules(step: Step, notebook_dir: Path) -> tuple[list[Path], list[str]]:
    paths: list[Path] = []
    unresolved: list[str] = []
    for imp in _imports(step):
        if imp.top:
            found = None if imp.top in RUNTIME_MODULES else _local_path(imp.top, notebook_dir)
            if found:
                paths.append(found)
            continue
        for name, base in _relative_targets(imp, notebook_dir):
            found = _local_path(name, base)
            if found:
                paths.append(found)
            else:
                unresolved.append(f"relative import '{imp.statement}' (cell {imp.cell}, line {imp.line}) "
                                  f"names no module beside the notebook; not locked or shipped")
    return paths, unresolved


def _guards_import_error(node: ast.Try) -> bool:
    names = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if handler.type is None or any(isinstance(k, ast.Name) and k.id in names for k in kinds):
            return True
    return False


@lru_cache(maxsize=512)
def _file_imports(path: Path, mtime_ns: int) -> tuple[frozenset[str], str | None]:
    """Absolute top-level imports of a local file, skipping optional ones guarded by try/except."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError) as exc:
        return frozenset(), f"{path.name}: cannot parse ({exc.__class__.__name__}); its imports are not locked"
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and _guards_import_error(node):
            optional.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    tops = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            tops.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            tops.add(node.module.split(".")[0])
    return frozenset(tops), None


def _scan_local(paths: list[Path], notebook_dir: Path,
                stdlib: frozenset[str] = frozenset(sys.stdlib_module_names),
                ) -> tuple[list[Path], dict[str, str], list[str]]:
    """Follow local modules' imports: more local modules, and third-party tops → importing file."""
    seen: list[Path] = []
    third_party: dict[str, str] = {}
    problems: list[str] = []
    queue = list(paths)
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.append(path)
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            tops, problem = _file_imports(file, file.stat().st_mtime_ns)
            if problem:
                problems.append(problem)
            for top in sorted(tops - stdlib - {"__future__"}):
                local = _local_path(top, notebook_dir)
                if local:
                    queue.append(local)
                else:
                    third_party.setdefault(top, Path(os.path.relpath(file, notebook_dir)).as_posix())
    return sorted(seen), third_party, problems


def local_modules(step: Step, notebook_dir: str | Path) -> list[Path]:
    """Modules and packages beside the notebook that the step imports, directly or through each other."""
    notebook_dir = Path(notebook_dir).resolve()
    direct, _ = _direct_local_modules(step, notebook_dir)
    return _scan_local(direct, notebook_dir)[0]


# -- what the kernel itself loads ------------------------------------------------------------------

@lru_cache(maxsize=8)
def kernel_machinery(python: str | None = None) -> frozenset[str]:
    """Top-level modules a kernel of ``python`` brings itself (ipykernel and what it needs, what the
    interpreter loads at start from .pth files): the executor's lock covers them, a step's does not."""
    python = sys.executable if is_current_interpreter(python) else python
    try:
        if is_current_interpreter(python):
            probe = disk_cached("kernel-machinery", lambda: run_probe(sys.executable, kernel_probe))
        else:
            probe = run_probe(python, kernel_probe)
    except SameError:
        probe = {"modules": [], "dists": []}
    closure = set(probe["dists"])
    tops = {top for top, names in environment_index(python)["tops"].items()
            if names and all(canonical(n) in closure for n in names)}
    return frozenset(tops | set(probe["modules"]) | KERNEL_PACKAGES)


def third_party_loaded(modules: list[str], python: str | None = None) -> list[str]:
    """The modules of ``modules`` (as a step's runtime lists them) a lock may need: provided by an
    installed distribution, and neither the standard library, same-nb, nor the kernel's machinery."""
    index = environment_index(python)
    skip = frozenset(index["stdlib"] or sys.stdlib_module_names) | RUNTIME_MODULES | kernel_machinery(python)
    return sorted(m for m in set(modules) if isinstance(m, str) and m.split(".")[0] not in skip
                  and (m.split(".")[0] in index["tops"] or canonical(m.split(".")[0]) in index["dists"]))


# -- per step ---------------------------------------------------------------------------------------


def step_requirements(pipeline: Pipeline, notebook_dir: str | Path, python: str | None = None,
                      observed: dict | None = None) -> dict[str, StepRequirements]:
    """Per step: pins of the installed versions (each with its sources), unpinned guesses, local
    modules and warnings. ``observed``: ``{step: observation}`` of the notebook's last local runs
    (``store/observed.py``); None when unknown, ``{}`` when it never ran (each step then says so).
    All steps' modules are resolved in one pass (one subprocess at most, for another interpreter)."""
    notebook_dir = Path(notebook_dir).resolve()
    index = environment_index(python)
    stdlib = frozenset(index["stdlib"] or sys.stdlib_module_names) | {"__future__"}   # the kernel's stdlib
    plans = []
    for step in pipeline.steps:
        direct, warnings = _direct_local_modules(step, notebook_dir)
        local_paths, from_locals, problems = _scan_local(direct, notebook_dir, stdlib)
        local_names = {p.stem if p.suffix == ".py" else p.name for p in direct}
        all_tops = {i.top for i in _imports(step) if i.top}
        tops = all_tops - local_names - stdlib - RUNTIME_MODULES
        origins = {m: {"import"} for m in sorted({i.module for i in _imports(step) if i.top in tops})}
        via = {t: f for t, f in sorted(from_locals.items()) if t not in tops and t not in RUNTIME_MODULES}
        origins.update((t, {"import"}) for t in via)
        for module, labels in observed_origins(step, observed).items():
            top = module.split(".")[0]
            if top not in stdlib and top not in RUNTIME_MODULES and _local_path(top, notebook_dir) is None:
                origins.setdefault(module, set()).update(labels)
        if observed is not None and step.name not in observed:
            warnings = warnings + [never_ran(step, pipeline)]
        plans.append((step, origins, via, local_paths, warnings + problems,
                      sorted(all_tops & RUNTIME_MODULES), (observed or {}).get(step.name, {}).get("run")))
    resolved = resolve_distributions(sorted({m for plan in plans for m in plan[1]}), python)
    result = {}
    for step, origins, via, paths, warnings, runtime, run in plans:
        result[step.name] = merge(step, resolved, index, origins, via, paths, warnings)
        result[step.name].runtime_modules, result[step.name].observed_run = runtime, run
    return result
