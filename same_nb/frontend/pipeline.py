"""Notebook → Pipeline IR: load, group cells into steps, analyze, resolve data flow, build the DAG."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from same_nb.errors import SameError
from same_nb.frontend.analysis import CellAnalysis, analyze_cell
from same_nb.frontend.dag import find_cycle
from same_nb.frontend.dataflow import DataFlow
from same_nb.frontend.effectflow import EffectFlow
from same_nb.frontend.effectplan import finish, patch_analyses, prepare
from same_nb.frontend.effectscan import scan_cell
from same_nb.frontend.grouping import group_cells
from same_nb.frontend.ir import STATE_VARIABLES, Cell, Diagnostic, Edge, Import, Parameter, Pipeline, Step
from same_nb.frontend.notebook import LoadedNotebook, NotebookCell, load_notebook, load_notebook_bytes
from same_nb.frontend.params import parse_parameters
from same_nb.frontend.tags import step_name_from_stem


def _cell(c: NotebookCell) -> Cell:
    return Cell(number=c.number, id=c.id, source=c.source, tags=list(c.tags), cell_type=c.cell_type)


@lru_cache(maxsize=8192)
def _analysis_of(source: str) -> CellAnalysis:
    """Per-cell analysis is a pure function of the source: a long-lived process (the Jupyter server
    re-inspecting a notebook after each edit) re-analyzes only the cells that changed. Callers
    must not mutate the result."""
    return analyze_cell(source)


def _analyze(cells: list[NotebookCell], diagnostics: list[Diagnostic], owner: dict[str, str]
             ) -> dict[str, CellAnalysis]:
    out: dict[str, CellAnalysis] = {}
    for c in cells:
        if c.cell_type != "code":
            continue
        a = _analysis_of(c.source)
        out[c.id] = a
        for f in a.findings:
            diagnostics.append(Diagnostic(f.severity, f.message, code=f.code, step=owner.get(c.id),
                                          cell=c.number, cell_id=c.id, line=f.line))
    return out


def build_pipeline(path: str | Path, content: bytes | None = None) -> Pipeline:
    """The IR of one notebook. Structural problems raise SameError; code problems become diagnostics.
    ``content``: the notebook's bytes when they are not (yet) the file's, as in an unsaved editor."""
    with _gc_paused():
        return pipeline_from_notebook(load_notebook(path) if content is None else load_notebook_bytes(path, content))


@contextmanager
def _gc_paused():
    """The build allocates many small objects and no cyclic garbage; the collector's passes over them
    cost ~20% of compiling a 5,000-cell notebook."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def pipeline_from_notebook(nb: LoadedNotebook) -> Pipeline:
    path = str(nb.path)
    grouping = group_cells(nb)
    params: list[Parameter] = []
    if grouping.parameters_cell is not None:
        pc = grouping.parameters_cell
        params = parse_parameters(pc.source, path=path, cell=pc.number, cell_id=pc.id)

    diagnostics: list[Diagnostic] = []
    owner = {c.id: d.name for d in grouping.steps for c in d.cells}
    analyses = _analyze([c for d in grouping.steps for c in d.cells], diagnostics, owner)
    prelude_analyses = _analyze(grouping.prelude, diagnostics, {})
    prelude_names = {n for a in prelude_analyses.values() for st in a.statements for n in st.binds}

    # Process state and files: configuration replayed in later steps, generator state chained through
    # pseudo-variables, literal paths ordered; the data flow resolves the names this adds.
    scans = {c.id: scan_cell(c.source) for d in grouping.steps for c in d.cells if c.cell_type == "code"}
    prelude_scans = [scan_cell(c.source) for c in grouping.prelude if c.cell_type == "code"]
    effect_plan = EffectFlow({p.name for p in params}).run(grouping.steps, scans, prelude_scans)
    diagnostics.extend(effect_plan.diagnostics)
    prepared = prepare(effect_plan, grouping.steps)

    flow = DataFlow({p.name: p.type for p in params}, prelude_names)
    flows = flow.run(grouping.steps, patch_analyses(analyses, grouping.steps, prepared))
    diagnostics.extend(flow.diagnostics)

    # Prelude cells (Kale's imports/functions) run at the start of every step.
    prelude_imports = [Import(module=i.module, top=i.top, statement=i.statement, names=list(i.names),
                              cell=c.number, line=i.line)
                       for c in grouping.prelude for st in prelude_analyses[c.id].statements for i in st.imports]
    names = [d.name for d in grouping.steps]
    steps: list[Step] = []
    for draft, f in zip(grouping.steps, flows):
        steps.append(Step(name=draft.name, cells=[_cell(c) for c in draft.cells],
                          inputs=list(f.inputs.values()), imports=prelude_imports + f.imports,
                          replay_imports=list(f.replay.values()), params=f.params,
                          after=[a for a, _ in draft.after], requirements=f.requirements,
                          definitions=f.definitions, watch=f.watch))
        if not any(c.cell_type == "code" and c.source.strip() for c in draft.cells):
            cell = draft.first_cell
            diagnostics.append(Diagnostic("info", f"step {draft.name!r} has no code", code="empty-step",
                                          step=draft.name, cell=cell.number if cell else None,
                                          cell_id=cell.id if cell else None))

    edges = _edges(steps)
    edges += prepared.edges
    diagnostics.extend(finish(effect_plan, prepared, steps, grouping.steps))
    by_name = {s.name: s for s in steps}
    for draft in grouping.steps:
        for target, cell in draft.after:
            if target not in by_name:
                known = ", ".join(names)
                raise SameError(f"tag 'after:{target}' names a step that does not exist (steps: {known})",
                                path=path, cell=cell.number, cell_id=cell.id)
            edges.append(Edge(src=target, dst=draft.name, kind="after"))
    cycle = find_cycle(names, edges)
    if cycle:
        from same_nb.frontend.grouping import cycle_message

        raise SameError(cycle_message(cycle, edges, grouping.steps), path=path)

    for m in grouping.metrics:
        if m not in flow.all_bound and m not in {p.name for p in params}:
            diagnostics.append(Diagnostic("warning", f"pipeline metric {m!r} is never assigned",
                                          code="undefined-metric"))
    pc = grouping.parameters_cell
    return Pipeline(name=step_name_from_stem(nb.path.stem).replace("_", "-").lower(),
                    notebook=path, notebook_sha256=nb.sha256, kernel=nb.kernel, parameters=params,
                    parameters_cell=_cell(pc) if pc else None, prelude=[_cell(c) for c in grouping.prelude],
                    metrics=grouping.metrics, steps=steps, edges=edges, diagnostics=diagnostics)


def _edges(steps: list[Step]) -> list[Edge]:
    """Data edges producer → consumer; fills each producer's outputs as a side effect."""
    by_name = {s.name: s for s in steps}
    edges: dict[tuple[str, str], Edge] = {}
    outputs: dict[str, set[str]] = {s.name: set() for s in steps}
    for s in steps:
        for inp in s.variable_inputs:
            outputs[inp.producer].add(inp.name)
            edge = edges.setdefault((inp.producer, s.name), Edge(src=inp.producer, dst=s.name, kind="data"))
            edge.names.append(inp.name)
    for name, outs in outputs.items():
        by_name[name].outputs = sorted(outs)
    for e in edges.values():
        e.names.sort()
        e.why = [f"state {STATE_VARIABLES[n]}" for n in e.names if n in STATE_VARIABLES]
    return list(edges.values())
