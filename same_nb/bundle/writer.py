"""Write a compiled bundle: resolved same.yaml, the IR, and one papermill-ready notebook per step."""
from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import cache
from json import dumps as _json_scalar
from json.encoder import encode_basestring
from pathlib import Path

from same_nb._version import __version__
from same_nb.bundle.escape import python_literal, visible
from same_nb.bundle.templates import render
from same_nb.errors import SameError
from same_nb.frontend.ir import STATE_VARIABLES, Pipeline, Replay, Step

SPEC_VARIABLE = "_same_nb_spec"        # papermill injects the run's spec path under this name
# papermill injects parameters after the first `parameters` cell and *replaces* an
# `injected-parameters` cell, so user cells must not carry these tags into a step notebook.
PAPERMILL_TAGS = frozenset({"parameters", "injected-parameters"})
GENERATED_TAG = "same-nb-generated"    # cells same-nb wrote, not the user (the runtime marks papermill's too)


def _generated(*tags: str, hidden: bool = True) -> dict:
    """Metadata of a generated cell: tagged, and its input collapsed in JupyterLab, so an executed
    step notebook reads as the user's cells and their outputs."""
    meta: dict = {"tags": [*tags, GENERATED_TAG]}
    if hidden:
        meta["jupyter"] = {"source_hidden": True}
    return meta


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
    for p in pipeline.parameters:
        if p.name in used:
            if not p.name.isidentifier():
                raise SameError(f"parameter {p.name!r} is not a Python name", step=step.name)
            lines.append(f"{p.name} = {python_literal(p.default, f'parameter {p.name!r}')}")
    lines.append(f"{SPEC_VARIABLE} = None  # set by same-nb: where this step's inputs and outputs live")
    return "\n".join(lines)


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def to_json(value, indent: str = "\n") -> str:
    """``json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)``, as nbformat writes notebooks.

    The stdlib encoder falls back to pure Python when indenting; this one is several times faster,
    which matters for a bundle of thousands of step notebooks. Dataclasses are written as
    ``dataclasses.asdict`` would give them, without its deep copy. Keys must be strings.
    """
    if isinstance(value, str):
        return encode_basestring(value)
    if is_dataclass(value):
        value = {name: getattr(value, name) for name in _field_names(type(value))}
    inner = indent + " "
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{" + ",".join(inner + encode_basestring(k) + ": " + (
            encode_basestring(v) if type(v) is str else to_json(v, inner))
            for k, v in sorted(value.items())) + indent + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[" + ",".join(inner + (encode_basestring(v) if type(v) is str else to_json(v, inner))
                              for v in value) + indent + "]"
    return _json_scalar(value)


def _replay_lines(replay: Replay, emitted: set[str]) -> list[str]:
    """A replayed statement (user code taken from the AST, so strings are re-quoted), with the imports
    it needs; inside a function when it binds names, under a check when its library may be absent."""
    lines = [f"# set in step {visible(str(replay.step))} (cell {replay.cell}, line {replay.line})"]
    body = [i for i in replay.imports if replay.guard or i not in emitted]
    emitted.update(body)
    statement = replay.statement
    if replay.wrap:
        statement = "def _same_nb_replay():\n" + textwrap.indent(statement, "    ") + \
            "\n_same_nb_replay()\ndel _same_nb_replay"
    body.append(statement)
    if replay.guard:
        lines.append(f"if _same_nb_state.imported({python_literal(replay.guard)}):")
        lines.append(textwrap.indent("\n".join(body), "    "))
    else:
        lines.extend(body)
    return lines


def _prologue(step: Step) -> str:
    """Before the inputs load: the imports and the configuration that needs no variable, in notebook
    order (`sys.path.append("lib")` before `import mylib`); after: the rest, then generator states."""
    emitted: set[str] = set()
    early = [r for r in step.replay if not r.after_inputs]
    if early:
        items = [((i.cell or 0, i.line or 0), [i.statement]) for i in step.replay_imports]
        items += [((r.cell or 0, r.line or 0), r) for r in early]
        before: list[str] = []
        for _, item in sorted(items, key=lambda pair: pair[0]):
            if isinstance(item, Replay):
                before += _replay_lines(item, emitted)
            elif item[0] not in emitted:
                emitted.add(item[0])
                before.append(item[0])
    else:
        before = [i.statement for i in step.replay_imports]
        emitted.update(before)
    after = [line for r in step.replay if r.after_inputs for line in _replay_lines(r, emitted)]
    restores = [(i.name, python_literal(STATE_VARIABLES[i.name])) for i in step.inputs if i.name in STATE_VARIABLES]
    return render("prologue.py.j2", step=step, before_inputs=before, after_inputs=after, restores=restores,
                  planned=python_literal(list(step.state_writes)))


def _epilogue(step: Step) -> str:
    captures = [(name, python_literal(STATE_VARIABLES[name])) for name in step.outputs if name in STATE_VARIABLES]
    return render("epilogue.py.j2", step=step, captures=captures)


def _cell(cell_type: str, cell_id: str, source: str, metadata: dict) -> dict:
    cell = {"cell_type": cell_type, "id": cell_id, "metadata": metadata, "source": source.splitlines(True)}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def step_notebook(pipeline: Pipeline, step: Step) -> dict:
    """One step's notebook as nbformat 4.5 JSON data. Cell ids are stable so recompiling is byte-identical."""
    cells = [
        _cell("markdown", "same-nb-header",
              render("step_header.md.j2", step=step, pipeline_name=pipeline.name, version=__version__,
                     notebook=Path(pipeline.notebook).name,
                     cell_numbers=", ".join(str(c.number) for c in step.cells) or "-"),
              _generated(hidden=False)),
        _cell("code", "same-nb-parameters", _parameters_source(pipeline, step), _generated("parameters")),
    ]
    # The prelude (Kale's imports/functions cells) runs once, before any step, in a top-to-bottom run: here
    # it runs before the prologue, so the generator state, configuration and inputs that earlier steps
    # left come after it (a seed in an imports cell does not restart every step's draws).
    for c in pipeline.prelude:
        cells.append(_cell("code", c.id, c.source, {"same_nb": {"cell": c.number}}))
    cells.append(_cell("code", "same-nb-prologue", _prologue(step).rstrip("\n"), _generated("same-nb-prologue")))
    for c in step.cells:
        meta: dict = {"same_nb": {"cell": c.number}}
        tags = [t for t in c.tags if t not in PAPERMILL_TAGS]
        if tags:
            meta["tags"] = tags
        cells.append(_cell("code" if c.cell_type == "code" else "markdown", c.id, c.source, meta))
    cells.append(_cell("code", "same-nb-epilogue", _epilogue(step).rstrip("\n"), _generated("same-nb-epilogue")))
    same = {"pipeline": pipeline.name, "step": step.name, "version": __version__}
    if step.state_writes:       # the channels the step is planned to change: any other change is unplanned
        same["state_writes"] = list(step.state_writes)
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": pipeline.kernel, "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}, "same_nb": same,
    }}


def check_bundle_dir(pipeline: Pipeline, out_dir: Path) -> None:
    """Refuse the notebook's own folder: the bundle's same.yaml and README.md would replace the user's."""
    if Path(out_dir).resolve() == Path(pipeline.notebook).resolve().parent:
        raise SameError("the bundle cannot go in the notebook's own folder: it would overwrite same.yaml "
                        "and README.md there; choose another -o directory", path=str(out_dir))


def write_bundle(pipeline: Pipeline, out_dir: Path, manifest_text: str) -> Bundle:
    """Write the bundle into ``out_dir``; step notebooks left from an earlier compile are removed."""
    out_dir = Path(out_dir)
    check_bundle_dir(pipeline, out_dir)
    bundle = Bundle(root=out_dir)
    files = bundle.files
    try:
        _write(out_dir / "same.yaml", manifest_text, files)
        ir = replace(pipeline, notebook=Path(pipeline.notebook).name)    # equal to ir.to_dict()
        _write(out_dir / "pipeline.json", to_json(ir) + "\n", files)
        for step in pipeline.steps:
            _write(bundle.step_notebook(step.name), to_json(step_notebook(pipeline, step)) + "\n", files)
        upstream: dict[str, set[str]] = {s.name: set() for s in pipeline.steps}
        for e in pipeline.edges:     # one pass: Pipeline.upstream() per step is quadratic
            upstream[e.dst].add(e.src)
        _write(out_dir / "README.md", render("bundle_README.md.j2", pipeline=pipeline, version=__version__,
                                             notebook=Path(pipeline.notebook).name,
                                             upstream={k: sorted(v) for k, v in upstream.items()}), files)
        steps_dir = out_dir / "steps"
        for stale in set(steps_dir.glob("*.ipynb")) - set(files):
            stale.unlink()
    except OSError as exc:
        raise SameError(f"cannot write the bundle: {exc.strerror or exc}",
                        path=exc.filename or str(out_dir)) from None
    return bundle
