"""``same-nb rerun RUN``: run a recorded run again, with its parameters and the exact notebook
source it executed (kept by sha256 in the store), without the cache; then say, per output, whether
the bytes are identical to the recorded ones.

The run happens in the original notebook's folder, so relative paths resolve as they did. When the
notebook changed since, its recorded source is written beside it as a hidden copy
(``.<stem>.rerun-<sha12>.ipynb``, removed afterwards); the source notebook is never written.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from same_nb.errors import SameError


@dataclass
class RerunResult:
    original_run: int
    run: Any                       # service.RunResult of the new run
    outputs: list[dict]            # {step, name, role, recorded, new, identical}

    @property
    def identical(self) -> bool:
        return self.run.ok and all(o["identical"] for o in self.outputs)

    def to_dict(self) -> dict:
        return {"original_run": self.original_run, "run": self.run.run_id,
                "status": self.run.status, "identical": self.identical, "outputs": self.outputs}


def rerun(run_id: int, run_notebook: Callable[..., Any], *, notebook_dir: str | Path | None = None,
          jobs: int | None = None, progress: Any = None) -> RerunResult:
    """Run ``run_id`` again from its recorded source and parameters with ``run_notebook`` (the
    service's local run, passed in so the store never imports the layers above it); compare every
    output."""
    from same_nb.store.database import open_store

    with open_store(notebook_dir=Path(notebook_dir) if notebook_dir else None) as store:
        original = store.get_run(run_id)
        if original is None:
            raise SameError(f"there is no run {run_id}")
        if original["target"] != "local":
            raise SameError(f"run {run_id} ran on {original['target']}: only local runs can be rerun")
        source = store.notebook_snapshot(original["notebook_sha256"])
    if source is None:
        raise SameError(f"run {run_id} has no recorded notebook source (it was recorded before "
                        "same-nb kept notebook snapshots)")
    notebook = Path(original["notebook_path"])
    if not notebook.parent.is_dir():
        raise SameError(f"the folder run {run_id} ran in no longer exists", path=str(notebook.parent))
    same_dir = notebook.parent / ".same" / "rerun"
    same_dir.mkdir(parents=True, exist_ok=True)
    params_file = same_dir / f"params-{run_id}-{os.getpid()}.json"
    params_file.write_text(json.dumps(original["params"]))
    copy = None
    if not notebook.is_file() or notebook.read_bytes() != source:
        copy = notebook.with_name(f".{notebook.stem}.rerun-{original['notebook_sha256'][:12]}.ipynb")
        copy.write_bytes(source)
    try:
        result = run_notebook(copy or notebook, params_file=params_file, use_cache=False,
                              jobs=jobs, progress=progress)
    finally:
        params_file.unlink(missing_ok=True)
        if copy is not None:
            copy.unlink(missing_ok=True)
    with open_store(notebook_dir=notebook.parent) as store:
        again = store.get_run(result.run_id)
    return RerunResult(original_run=run_id, run=result, outputs=_compare_outputs(original, again))


def _compare_outputs(original: dict, again: dict) -> list[dict]:
    new = {(s["step_name"], o["name"]): o["sha256"] for s in again["steps"] for o in s["outputs"]}
    return [{"step": s["step_name"], "name": o["name"], "role": o["role"] or "variable",
             "recorded": o["sha256"], "new": new.get((s["step_name"], o["name"])),
             "identical": new.get((s["step_name"], o["name"])) == o["sha256"]}
            for s in original["steps"] for o in s["outputs"]]


def render_rerun(result: RerunResult) -> str:
    lines = [f"run {result.original_run} rerun as run {result.run.run_id}: {result.run.status}"]
    for o in result.outputs:
        if o["identical"]:
            verdict = "identical"
        elif o["new"] is None:
            verdict = "not produced"
        else:
            verdict = f"differs ({o['recorded'][:12]} → {o['new'][:12]})"
        lines.append(f"  {o['step']}: {o['name']} ({o['role']}) {verdict}")
    same = sum(o["identical"] for o in result.outputs)
    lines.append(f"{same} of {len(result.outputs)} outputs byte-identical")
    return "\n".join(lines)
