"""A step's requirements and where each one comes from.

A lock built from imports alone misses what a step needs without importing it: ``load_iris(as_frame=True)``
loads pandas, a DataFrame output crosses the boundary as an Arrow file (pyarrow), a fitted estimator
arriving as an input needs scikit-learn to unpickle. Each requirement therefore carries its sources:

- ``import``     a cell of the step imports it (or a local module the step imports does);
- ``loaded``     it was loaded when the step last ran locally (``store/observed.py`` keeps that);
- ``serializer`` an output of the step needs it to be written and read (``runtime.serializers.KIND_NEEDS``);
- ``input``      an input needs it: what its producer's output needed;
- ``pip``        a ``!pip install`` line names it.

Standard library and the frontend IR only: ``requirements.py`` resolves modules to distributions
and hands them here to be merged per distribution, and runs ``kernel_probe`` (what a bare kernel
loads by itself, which no "loaded" pin should name) in the kernel's interpreter.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from same_nb.frontend.ir import Pipeline, Step

SOURCES = ("import", "loaded", "serializer", "input", "pip", "executor", "producer")
# same_nb (for same_nb.log_metric / same_nb.dataset) ships with the runtime in every kernel and pod; it
# is not on the package index, so a pin on it could never install.
RUNTIME_MODULES = frozenset({"same_nb"})
# The kernel's own packages, whatever the environment's metadata says: never a step's "loaded" pin.
KERNEL_PACKAGES = frozenset({"ipykernel", "IPython", "jupyter_client", "jupyter_core", "zmq", "tornado",
                             "traitlets", "comm", "debugpy", "matplotlib_inline", "nest_asyncio"})


def kernel_probe() -> dict:
    """What a kernel loads before any cell, in a fresh interpreter: the modules left by importing
    ipykernel's app, and the distributions ipykernel requires (what it loads later, e.g. jedi on a
    completion). Self-contained: it runs in the kernel's interpreter through ``run_probe``."""
    import importlib.metadata as md
    import re
    import sys

    try:
        import ipykernel.ipkernel  # noqa: F401
        import ipykernel.kernelapp  # noqa: F401
    except Exception:
        pass
    modules = sorted({name.split(".")[0] for name in list(sys.modules)})
    closure: set[str] = set()
    queue = ["ipykernel"]
    while queue:
        name = queue.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in closure:
            continue
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue
        closure.add(key)
        for raw in requires:
            found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", raw)
            if found and "extra" not in raw.partition(";")[2]:
                queue.append(found.group(1))
    return {"modules": modules, "dists": sorted(closure)}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def ordered(labels) -> list[str]:
    return [s for s in SOURCES if s in labels]


@dataclass
class Requirement:
    module: str | None            # the import that needs it; None for a !pip line no import matched
    dist: str                     # distribution name as its metadata spells it
    version: str | None           # installed version; None when not installed
    source: str = "installed"     # "installed" | "mapped" (not installed, name guessed) | "pip"
    spec: str = ""                # the !pip install requirement that overrides the pin, if any
    sources: list[str] = field(default_factory=list)   # why it is locked: SOURCES labels

    @property
    def pinned(self) -> bool:
        if not self.spec:
            return self.version is not None
        from packaging.requirements import InvalidRequirement
        from packaging.requirements import Requirement as PepRequirement

        try:
            parsed = PepRequirement(self.spec)
        except InvalidRequirement:
            return False
        return bool(parsed.specifier or parsed.url)

    @property
    def line(self) -> str:
        """The requirements.in line: the explicit spec, else the installed pin, else the bare name."""
        if self.spec:
            return self.spec
        return f"{self.dist}=={self.version}" if self.version else self.dist


@dataclass
class StepRequirements:
    step: str
    modules: list[str] = field(default_factory=list)        # third-party modules to import (verify)
    requirements: list[Requirement] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)           # lines with a version specifier
    unpinned: list[str] = field(default_factory=list)       # bare names
    local_modules: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    observed_run: int | None = None                         # the local run its observations come from
    runtime_modules: list[str] = field(default_factory=list)   # imported, shipped with the runtime: no pin

    @property
    def lines(self) -> list[str]:
        return sorted(self.pins + self.unpinned, key=str.lower)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["local_modules"] = [str(p) for p in self.local_modules]
        return data


def observed_origins(step: Step, observed: dict | None) -> dict[str, set[str]]:
    """Module → sources from the observations of the notebook's steps: what ``step`` loaded, what its
    outputs need, what its inputs needed where their producers wrote them."""
    origins: dict[str, set[str]] = {}
    if not observed:
        return origins
    own = observed.get(step.name) or {}
    for module in own.get("modules") or []:
        origins.setdefault(module, set()).add("loaded")
    for record in (own.get("outputs") or {}).values():
        for module in record.get("needs") or []:
            origins.setdefault(module, set()).add("serializer")
    for inp in step.variable_inputs:
        record = ((observed.get(inp.producer) or {}).get("outputs") or {}).get(inp.name) or {}
        for module in record.get("needs") or []:
            origins.setdefault(module, set()).add("input")
    return {m: labels for m, labels in origins.items() if isinstance(m, str) and m}


def never_ran(step: Step, pipeline: Pipeline) -> str:
    return (f"step '{step.name}' never ran locally: its lock has only its imports; run "
            f"`same-nb run {pipeline.notebook}` first so the lock includes what it loads")


def apply_explicit(step: Step, by_dist: dict[str, Requirement], index: dict, warnings: list[str]) -> None:
    """``!pip install`` specs add distributions and override installed pins (warning on mismatch).
    A target adds its own as ``spec  # label`` (a label of SOURCES: a pod's executor, …)."""
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as PepRequirement

    for line in step.requirements:
        spec, _, label = line.partition("  # ")
        label = label.strip() if label.strip() in SOURCES else "pip"
        try:
            parsed = PepRequirement(spec)
        except InvalidRequirement:
            by_dist[spec] = Requirement(None, spec, None, "pip", spec, [label])
            warnings.append(f"'{spec}' from !pip install is not a PEP 508 requirement; passed to the lock as written")
            continue
        key = canonical(parsed.name)
        installed = index["dists"].get(key)
        current = by_dist.get(key) or Requirement(None, installed[0] if installed else parsed.name,
                                                  installed[1] if installed else None, "pip")
        current.sources = ordered(set(current.sources) | {label})
        extras = f"[{','.join(sorted(parsed.extras))}]" if parsed.extras else ""
        marker = f"; {parsed.marker}" if parsed.marker else ""
        if parsed.specifier or parsed.url:
            current.spec = str(parsed)
            if current.version and parsed.specifier and \
                    not parsed.specifier.contains(current.version, prereleases=True):
                warnings.append(f"'{spec}' from !pip install does not match the installed "
                                f"{current.dist} {current.version}; the lock uses '{spec}'")
        elif current.version:
            current.spec = f"{current.dist}{extras}=={current.version}{marker}" if extras or marker else ""
        else:
            current.spec = str(parsed) if extras or marker else ""
            warnings.append(f"{parsed.name} is in !pip install but not installed; unpinned")
        by_dist[key] = current


def merge(step: Step, resolved: dict[str, list[Requirement]], index: dict, origins: dict[str, set[str]],
          via: dict[str, str], local_paths: list[Path], warnings: list[str]) -> StepRequirements:
    """One requirement per distribution, with the union of its modules' sources. ``origins``: module →
    sources (imports first); ``via``: third-party modules only local modules import → importing file."""
    by_dist: dict[str, Requirement] = {}
    modules: set[str] = set()
    for module, labels in origins.items():
        for req in resolved[module]:
            if req.source == "mapped" and labels <= {"loaded"}:
                # Loaded where the step ran, yet no distribution here provides it: not something to pin.
                warnings.append(f"{module} was loaded when step '{step.name}' last ran but no installed "
                                f"distribution provides it; not locked")
                continue
            modules.add(module if "import" not in labels else module.split(".")[0])
            key = canonical(req.dist)
            if key not in by_dist:
                by_dist[key] = Requirement(req.module, req.dist, req.version, req.source)
                if req.source == "mapped":
                    by = f" by {via[module]}" if module in via else ""
                    what = "imported" if "import" in labels else f"needed ({', '.join(ordered(labels))})"
                    warnings.append(f"{module.split('.')[0]} is {what}{by} but not installed; "
                                    f"assuming {req.dist}, unpinned")
            by_dist[key].sources = ordered(set(by_dist[key].sources) | labels)
    apply_explicit(step, by_dist, index, warnings)
    reqs = sorted(by_dist.values(), key=lambda r: r.dist.lower())
    return StepRequirements(step.name, sorted(modules), reqs,
                            sorted((r.line for r in reqs if r.pinned), key=str.lower),
                            sorted((r.line for r in reqs if not r.pinned), key=str.lower),
                            local_paths, warnings)
