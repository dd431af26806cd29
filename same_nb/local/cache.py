"""Step cache keys, and the human reason a step had to run.

A key covers everything that can change a step's outputs: its normalized code (comments and
whitespace don't count), the hashes of its input artifacts, the parameters it reads, the installed
versions of what it imports, local helper modules, the outputs asked of it, and the runtime version.
"""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from same_nb._version import __version__
from same_nb.frontend.ir import Pipeline, Step


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalized_code(source: str) -> str:
    """The cell's code without comments, blank lines or formatting differences."""
    try:
        return ast.dump(ast.parse(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # Magics make a cell non-Python; compare its lines without comments and spacing instead.
        lines = (ln.split("  #")[0].strip() for ln in source.splitlines())
        return "\n".join(ln for ln in lines if ln and not ln.startswith("#"))


def code_info(pipeline: Pipeline, step: Step) -> dict[str, str]:
    """Per-cell code hashes, keyed by the cell's number as the user sees it."""
    cells = {str(c.number): _sha(normalized_code(c.source)) for c in pipeline.prelude}
    cells.update({str(c.number): _sha(normalized_code(c.source)) for c in step.cells if c.cell_type == "code"})
    return cells


def packages_info(step: Step, notebook_dir: Path) -> dict[str, str]:
    from same_nb.envs.requirements import local_modules, resolve_distributions, step_modules

    info: dict[str, str] = {}
    for reqs in resolve_distributions(step_modules(step)).values():
        for r in reqs:
            info[r.dist] = r.version or "not installed"
    for path in local_modules(step, notebook_dir):
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
        info[f"local:{path.name}"] = digest[:16]
    return info


def cache_info(pipeline: Pipeline, step: Step, *, inputs: dict[str, str], params: dict[str, object],
               outputs: list[str], packages: dict[str, str], env: dict[str, str]) -> dict:
    cells = code_info(pipeline, step)
    return {
        # Configuration replayed from earlier steps changes what this step computes, like its own code.
        "code": _sha(json.dumps(cells, sort_keys=True) + "".join(i.statement for i in step.replay_imports)
                     + "".join(r.statement for r in step.replay)),
        "cells": cells,
        "inputs": dict(sorted(inputs.items())),
        "params": {k: params[k] for k in sorted(params)},
        "packages": dict(sorted(packages.items())),
        "outputs": sorted(outputs),
        "env": dict(sorted(env.items())),
        "runtime": __version__,
    }


def cache_key(info: dict) -> str:
    return _sha(json.dumps(info, sort_keys=True, default=repr))


def explain(info: dict, previous: dict | None, producers: dict[str, str]) -> str:
    """Why a step ran, compared with the last recorded run of the same step of this notebook."""
    if not previous:
        return "not cached"
    reasons: list[str] = []
    old_cells, new_cells = previous.get("cells", {}), info["cells"]
    changed = [n for n in new_cells if old_cells.get(n) != new_cells[n]]
    if changed:
        reasons.append("code changed in cell " + ", ".join(changed[:3]) + ("…" if len(changed) > 3 else ""))
    elif set(old_cells) != set(new_cells):
        reasons.append("cells added or removed")
    for name, sha in info["inputs"].items():
        old = previous.get("inputs", {}).get(name)
        if old != sha:
            reasons.append(f"input {name} changed (from {producers.get(name, '?')})" if old else f"new input {name}")
    for name, value in info["params"].items():
        old = previous.get("params", {}).get(name, "<unset>")
        if old != value:
            reasons.append(f"param {name} {old!r} → {value!r}")
    for dist, ver in info["packages"].items():
        old = previous.get("packages", {}).get(dist)
        if old != ver:
            reasons.append(f"{dist} {old} → {ver}" if old else f"new package {dist}")
    if info["outputs"] != previous.get("outputs"):
        reasons.append("later steps read different variables")
    if info["env"] != previous.get("env"):
        reasons.append("environment variables changed")
    if info["runtime"] != previous.get("runtime"):
        reasons.append(f"same-nb {previous.get('runtime')} → {info['runtime']}")
    return "; ".join(reasons) if reasons else "cached outputs are missing"


# -- whether a cache hit is still good -----------------------------------------------------------

def corrupt_outputs(outputs: list[dict]) -> list[str]:
    """Names of cached variable outputs whose stored bytes no longer hash to their recorded sha256."""
    from same_nb.runtime.artifacts import hash_file

    return [o["name"] for o in outputs
            if o.get("role") in (None, "variable") and o.get("sha256") and o.get("location")
            and hash_file(Path(o["location"]))[0] != o["sha256"]]


def changed_files(records: list[dict], notebook_dir: Path) -> list[str]:
    """Files (and datasets) a cached step run read whose bytes are different now."""
    from same_nb.runtime.artifacts import hash_file

    changed = []
    for rec in records:
        path = Path(rec["name"])
        path = path if path.is_absolute() else notebook_dir / path
        try:
            current = hash_file(path)[0] if rec["role"] == "file" else rec["sha256"]
        except OSError:
            current = None
        if current != rec["sha256"]:
            changed.append(rec["name"])
    return changed
