"""Write a compiled bundle: resolved same.yaml, the IR, and one papermill-ready notebook per step."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .ir import Pipeline, Step
from .templates import render

SPEC_VARIABLE = "_same_nb_spec"        # papermill injects the run's spec path under this name


@dataclass
class Bundle:
    root: Path
    files: list[Path] = field(default_factory=list)

    def step_notebook(self, name: str) -> Path:
        return self.root / "steps" / f"{name}.ipynb"


def _write(path: Path, text: str, files: list[Path]) -> None:
    """Write only when content differs: recompiling leaves files (and mtimes) untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    files.append(path)


def _parameters_source(pipeline: Pipeline, step: Step) -> str:
    used = set(step.params)
    lines = ["# Parameters (papermill injects overrides after this cell)"]
    lines += [f"{p.name} = {p.default!r}" for p in pipeline.parameters if p.name in used]
    lines.append(f"{SPEC_VARIABLE} = None  # set by same-nb: where this step's inputs and outputs live")
    return "\n".join(lines)


def step_notebook(pipeline: Pipeline, step: Step):
    """The nbformat notebook for one step. Cell ids are stable so recompiling is byte-identical."""
    import nbformat.v4 as v4

    cells = [
        v4.new_markdown_cell(render("step_header.md.j2", step=step, pipeline_name=pipeline.name,
                                    version=__version__, notebook=Path(pipeline.notebook).name,
                                    cell_numbers=", ".join(str(c.number) for c in step.cells) or "-"),
                             id="same-nb-header"),
        v4.new_code_cell(_parameters_source(pipeline, step), id="same-nb-parameters",
                         metadata={"tags": ["parameters"]}),
        v4.new_code_cell(render("prologue.py.j2", step=step).rstrip("\n"), id="same-nb-prologue",
                         metadata={"tags": ["same-nb-prologue"]}),
    ]
    for c in pipeline.prelude:
        cells.append(v4.new_code_cell(c.source, id=c.id, metadata={"same_nb": {"cell": c.number}}))
    for c in step.cells:
        meta = {"same_nb": {"cell": c.number}}
        if c.tags:
            meta["tags"] = list(c.tags)
        maker = v4.new_code_cell if c.cell_type == "code" else v4.new_markdown_cell
        cells.append(maker(c.source, id=c.id, metadata=meta))
    cells.append(v4.new_code_cell(render("epilogue.py.j2", step=step).rstrip("\n"), id="same-nb-epilogue",
                                  metadata={"tags": ["same-nb-epilogue"]}))
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": pipeline.kernel, "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "same_nb": {"pipeline": pipeline.name, "step": step.name, "version": __version__},
    })
    return nb


def write_bundle(pipeline: Pipeline, out_dir: Path, manifest_text: str) -> Bundle:
    import nbformat

    bundle = Bundle(root=out_dir)
    files = bundle.files
    _write(out_dir / "same.yaml", manifest_text, files)
    ir = pipeline.to_dict()
    ir["notebook"] = Path(pipeline.notebook).name
    _write(out_dir / "pipeline.json", json.dumps(ir, indent=1, sort_keys=True, default=str) + "\n", files)
    for step in pipeline.steps:
        _write(bundle.step_notebook(step.name), nbformat.writes(step_notebook(pipeline, step)), files)
    upstream = {s.name: pipeline.upstream(s.name) for s in pipeline.steps}
    _write(out_dir / "README.md", render("bundle_README.md.j2", pipeline=pipeline, version=__version__,
                                         notebook=Path(pipeline.notebook).name, upstream=upstream), files)
    return bundle
