"""Apply learned effects (what an earlier run observed that the analysis missed) to the Pipeline IR.

Entries come from the run store's ``learned.json`` (``same_nb.store.learned``), handed in by the layer
that reads it. A learned mutation makes the mutating step the producer of that name for every later
reader, as if the analysis had seen ``name[...] = ...`` there; a learned order becomes an ``after:``
edge. Entries that no longer fit the notebook (a renamed step, a name no longer read) are skipped.
"""
from __future__ import annotations

from same_nb.frontend.dag import find_cycle
from same_nb.frontend.ir import Diagnostic, Edge, Input, Pipeline


def apply_learned(pipeline: Pipeline, entries: list[dict]) -> list[dict]:
    """Change ``pipeline`` in place; returns the entries that applied."""
    applied = []
    for entry in entries:
        if entry.get("kind") == "mutation" and _apply_mutation(pipeline, entry):
            applied.append(entry)
        elif entry.get("kind") == "order" and _apply_order(pipeline, entry):
            applied.append(entry)
    if applied:
        _rebuild_data_edges(pipeline)
    for entry in applied:
        pipeline.diagnostics.append(Diagnostic("info", _message(entry), code="learned-effect",
                                               step=entry.get("step") or entry.get("after")))
    return applied


def _message(entry: dict) -> str:
    run = f"learned from run {entry['run']}" if entry.get("run") is not None else "learned"
    if entry["kind"] == "mutation":
        return (f"{run}: this step changes {entry['name']!r} ({entry.get('how', 'in place')}), so later "
                f"steps read it from here (`same-nb forget` drops learned effects)")
    return (f"{run}: runs after {entry['before']!r} ({entry.get('why', 'observed at run time')}) "
            f"(`same-nb forget` drops learned effects)")


def _apply_mutation(pipeline: Pipeline, entry: dict) -> bool:
    names = [s.name for s in pipeline.steps]
    step, name = entry.get("step"), entry.get("name")
    if step not in names:
        return False
    position = names.index(step)
    mutator = pipeline.steps[position]
    source = next((i for i in mutator.inputs if i.name == name), None)
    holder = next((i for i in mutator.inputs if i.name == entry.get("via")), None)
    changed = False
    if source is None and holder is not None and holder.kind == "variable":
        # Changed through another input it was saved with: load it from the same producer here.
        source = Input(name=name, kind="variable", producer=holder.producer)
        mutator.inputs.append(source)
        changed = True
    if source is None:
        return False
    for later in pipeline.steps[position + 1:]:
        for i, inp in enumerate(later.inputs):
            if inp.name != name or inp.kind != source.kind or inp.producer != source.producer:
                continue
            later.inputs[i] = Input(name=name, kind="variable", producer=step)
            if inp.kind == "parameter" and name in later.params:
                later.params.remove(name)
            changed = True         # readers of a later rebinding have another producer: untouched
    return changed


def _apply_order(pipeline: Pipeline, entry: dict) -> bool:
    names = [s.name for s in pipeline.steps]
    before, after = entry.get("before"), entry.get("after")
    if before not in names or after not in names or names.index(before) >= names.index(after):
        return False
    if any(e.src == before and e.dst == after for e in pipeline.edges):
        return False
    why = f"learned from run {entry['run']}: {entry.get('why', 'observed')}" if entry.get("run") is not None \
        else f"learned: {entry.get('why', 'observed')}"
    candidate = pipeline.edges + [Edge(src=before, dst=after, kind="after", why=[why])]
    if find_cycle(names, candidate):
        return False
    pipeline.edges = candidate
    step = pipeline.step(after)
    if before not in step.after:
        step.after.append(before)
    return True


def _rebuild_data_edges(pipeline: Pipeline) -> None:
    """Data edges and each producer's outputs, from the (changed) inputs."""
    others = [e for e in pipeline.edges if e.kind != "data"]
    edges: dict[tuple[str, str], Edge] = {}
    outputs: dict[str, set[str]] = {s.name: set() for s in pipeline.steps}
    for s in pipeline.steps:
        for inp in s.variable_inputs:
            outputs[inp.producer].add(inp.name)
            edges.setdefault((inp.producer, s.name), Edge(src=inp.producer, dst=s.name, kind="data")).names.append(
                inp.name)
    for s in pipeline.steps:
        s.outputs = sorted(outputs[s.name])
    for e in edges.values():
        e.names.sort()
    pipeline.edges = list(edges.values()) + others
