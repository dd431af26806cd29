"""From the effect walk (``effectflow``) to the IR: replays per step, pseudo-variables, file and state edges.

Before the data flow runs, ``prepare`` says which names each step reads at its start (the generator
state of the previous step on its chain, the variables its replayed statements read) and binds at its
end (the generator state for the next step). The data flow resolves them like any other name, so the
edges, caching, artifacts, Kubeflow artifact passing and lineage need nothing new. Once inputs are
known, ``finish`` decides where each replay runs, refuses replays that would read a changed value,
and fills the steps' state and file fields.
"""
from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass, field, replace

from same_nb.frontend import effects as fx
from same_nb.frontend.analysis import CellAnalysis, Statement
from same_nb.frontend.effectflow import Candidate, EffectPlan
from same_nb.frontend.grouping import StepDraft
from same_nb.frontend.ir import Diagnostic, Edge, Replay, Step


@dataclass
class Prepared:
    replays: dict[str, list[Candidate]]
    reads_at_start: dict[str, list[str]] = field(default_factory=dict)
    binds_at_end: dict[str, list[str]] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)          # file and state order edges
    file_reads: dict[str, list[str]] = field(default_factory=dict)
    file_writes: dict[str, list[str]] = field(default_factory=dict)


def prepare(plan: EffectPlan, steps: list[StepDraft]) -> Prepared:
    code = {d.name for d in steps if any(c.cell_type == "code" and c.source.strip() for c in d.cells)}
    prepared = Prepared({d.name: [] for d in steps})
    order: dict[tuple[str, str], set[str]] = {}
    for position, draft in enumerate(steps):
        if draft.name not in code:
            continue
        earlier = [c for c in plan.candidates if c.index < position]   # notebook order
        prepared.replays[draft.name] = _collapse_cwd(earlier, order, draft.name)
        reads = prepared.reads_at_start.setdefault(draft.name, [])
        for c in prepared.replays[draft.name]:
            reads.extend(n for n in c.reads if n not in reads)
            plan.steps[draft.name].events.extend((path, effect, False) for path, effect in c.files)
    for channel_name, chain in plan.rng_chains.items():
        variable = fx.channel(channel_name).variable
        if not variable:
            continue
        for i, name in enumerate(chain):
            if i:
                prepared.reads_at_start.setdefault(name, []).append(variable)
            if i < len(chain) - 1:
                prepared.binds_at_end.setdefault(name, []).append(variable)
    for (src, dst), why in order.items():
        prepared.edges.append(Edge(src=src, dst=dst, kind="state", why=sorted(why)))
    _files(plan, [d.name for d in steps], prepared)
    return prepared


def _collapse_cwd(candidates: list[Candidate], order: dict, step: str) -> list[Candidate]:
    """Consecutive literal directory changes become one `os.chdir` to where they lead (none if back
    where they started). The directory must exist: the step runs after the one that went there."""
    out: list[Candidate] = []
    run: list[Candidate] = []

    def flush() -> None:
        if not run:
            return
        net = "."
        for c in run:
            net = posixpath.normpath(posixpath.join(net, c.cwd))
        if net != ".":
            last = run[-1]
            out.append(replace(last, text=f"os.chdir({net!r})", imports=["import os"], reads=[], wrap=False))
            order.setdefault((last.step, step), set()).add("state cwd")
        run.clear()

    for c in candidates:
        if c.channel == "cwd" and isinstance(c.cwd, str):
            run.append(c)
            continue
        flush()
        out.append(c)
        if c.channel == "cwd":
            order.setdefault((c.step, step), set()).add("state cwd")
    flush()
    return out


def patch_analyses(analyses: dict[str, CellAnalysis], steps: list[StepDraft], prepared: Prepared
                   ) -> dict[str, CellAnalysis]:
    """The analyses with a read at the start and a bind at the end of the steps that need them; the
    cached analyses themselves are not changed."""
    patched = dict(analyses)
    for draft in steps:
        reads = prepared.reads_at_start.get(draft.name)
        binds = prepared.binds_at_end.get(draft.name)
        ids = [c.id for c in draft.cells if c.id in analyses]
        if not ids or not (reads or binds):
            continue
        if reads:
            a = patched[ids[0]]
            patched[ids[0]] = replace(a, statements=[Statement(1, reads=list(reads)), *a.statements])
        if binds:
            a = patched[ids[-1]]
            last = a.statements[-1].line if a.statements else 1
            patched[ids[-1]] = replace(a, statements=[*a.statements, Statement(last, binds=list(binds))])
    return patched


def _files(plan: EffectPlan, names: list[str], prepared: Prepared) -> None:
    """Per path, in notebook order: writer → reader, writer → next writer, reader → next writer; a
    folder's creator → a later step using a path inside it (creators need no order among themselves)."""
    events = [(name, path, effect, weak) for name in names for path, effect, weak in plan.steps[name].events]
    written = {path for _, path, effect, _ in events if effect == "write"}
    folders = {path for _, path, effect, _ in events if effect == "mkdir"}
    access: dict[str, dict[str, set[str]]] = {}            # path -> step -> {"read", "write", "mkdir"}
    for name, path, effect, weak in events:
        if effect == "list":
            for p in written:
                if fnmatch.fnmatchcase(p, path) or p.startswith(path.rstrip("/") + "/"):
                    access.setdefault(p, {}).setdefault(name, set()).add("read")
            continue
        if weak and path not in written:
            continue
        access.setdefault(path, {}).setdefault(name, set()).add(effect)
        for folder in folders | written:                  # a file inside a folder a step creates or writes
            if path.startswith(folder + "/"):
                access.setdefault(folder, {}).setdefault(name, set()).add("read")
    position = {n: i for i, n in enumerate(names)}
    edges: dict[tuple[str, str], Edge] = {}
    for path in sorted(access):
        users = sorted(access[path], key=position.get)
        for name in users:
            kinds = access[path][name]
            if kinds & {"write", "mkdir"}:
                prepared.file_writes.setdefault(name, []).append(path)
            elif "read" in kinds:
                prepared.file_reads.setdefault(name, []).append(path)
        for src, dst in _file_order(users, access[path], position):
            edge = edges.setdefault((src, dst), Edge(src=src, dst=dst, kind="file"))
            if f"file {path}" not in edge.why:
                edge.why.append(f"file {path}")
    prepared.edges.extend(edges.values())


def _file_order(users: list[str], kinds: dict[str, set[str]], position: dict[str, int]) -> list[tuple[str, str]]:
    writers = [n for n in users if "write" in kinds[n]]
    creators = [n for n in users if "mkdir" in kinds[n] and n not in writers]
    pairs = list(zip(writers, writers[1:]))
    for user in (n for n in users if n not in writers and n not in creators):
        before = [w for w in writers + creators if position[w] < position[user]]
        after = [w for w in writers if position[w] > position[user]]
        if before:
            pairs.append((max(before, key=position.get), user))
        if after:
            pairs.append((user, after[0]))
    return pairs


def finish(plan: EffectPlan, prepared: Prepared, steps: list[Step], drafts: list[StepDraft]) -> list[Diagnostic]:
    """Fill the steps' replay, state and file fields; the diagnostics that only inputs can decide."""
    diagnostics: list[Diagnostic] = []
    by_name = {s.name: s for s in steps}
    for step in steps:
        effects = plan.steps[step.name]
        uses = {i.top for i in (*step.imports, *step.replay_imports)}
        inputs = {i.name: i for i in step.inputs}
        replays: list[Replay] = []
        for c in prepared.replays.get(step.name, []):
            problem = _changed_since(plan, c, step, by_name)
            if problem:
                diagnostics.append(Diagnostic(
                    "error", f"step {step.name!r} must replay `{c.text}` (set in step {c.step!r}, cell "
                    f"{c.cell.number}, line {c.line}), but {problem}, so it would not get the setting a "
                    "top-to-bottom run has. Set it from a literal or a parameter, or leave that name "
                    "unchanged afterwards", code="state-replay-conflict", step=step.name,
                    cell=c.cell.number, cell_id=c.cell.id, line=c.line))
                continue
            module = fx.channel(c.channel).module
            guard = module if module and module not in uses else ""
            late = bool(guard) or any(inputs[n].kind == "variable" for n in c.reads if n in inputs)
            replays.append(Replay(channel=c.channel, statement=c.text, step=c.step, imports=list(c.imports),
                                  cell=c.cell.number, line=c.line, guard=guard, after_inputs=late, wrap=c.wrap))
        late_channels = {r.channel for r in replays if r.after_inputs}
        for r in replays:          # one channel's statements stay in notebook order
            r.after_inputs = r.after_inputs or r.channel in late_channels
        step.replay = replays
        step.state_writes = sorted(set(effects.rng) | set(effects.config))
        step.file_reads = sorted(prepared.file_reads.get(step.name, []))
        step.file_writes = sorted(prepared.file_writes.get(step.name, []))
    diagnostics += _tensorflow(plan, drafts) + _hidden_state(plan, steps, drafts)
    return diagnostics


def _changed_since(plan: EffectPlan, c: Candidate, step: Step, by_name: dict[str, Step]) -> str | None:
    """Why a replay in ``step`` would read another value than the statement read, or None."""
    origin = by_name[c.step]
    touches = plan.steps[c.step].touches
    current = {i.name: i for i in step.inputs}
    for name in c.reads:
        if any(p > c.position for p in touches.get(name, ())):
            return f"{name!r} changes after it, later in step {c.step!r}"
        if c.own[name]:
            expected = ("variable", c.step)
        else:
            source = next((i for i in origin.inputs if i.name == name), None)
            expected = (source.kind, source.producer) if source else None
        got = current.get(name)
        if expected is None or got is None or (got.kind, got.producer) != expected:
            where = f"step {got.producer!r}" if got is not None and got.producer else "another step"
            return f"{name!r} is changed by {where} before step {step.name!r} runs"
    return None


def _tensorflow(plan: EffectPlan, drafts: list[StepDraft]) -> list[Diagnostic]:
    chain = plan.rng_chains.get("tensorflow", [])
    first = {d.name: d.first_cell for d in drafts}
    return [Diagnostic("error", f"step {name!r} uses TensorFlow's global random generator after step {chain[0]!r} "
                       "did; its state cannot be carried between steps. Keep the seed and the draws in one "
                       "step, or pass a tf.random.Generator as a variable", code="state-not-carried",
                       step=name, cell=first[name].number if first[name] else None)
            for name in chain[1:]]


def _hidden_state(plan: EffectPlan, steps: list[Step], drafts: list[StepDraft]) -> list[Diagnostic]:
    """A step before the last whose results nobody reads probably exists for an effect the plan
    cannot see: say so, where it is, and what to do."""
    found = []
    for step in steps[:-1]:
        hidden = plan.steps[step.name].hidden
        if hidden is None or step.outputs or step.file_writes or step.state_writes:
            continue
        cell, line, what = hidden
        found.append(Diagnostic(
            "warning", f"no later step reads anything step {step.name!r} makes, and it writes no file the "
            f"analysis can see; it runs {what}, which may set state (configuration, files, services) later "
            f"steps depend on. If one does, tag it `after:{step.name}`, or make the effect explicit (assign "
            "and use a value, or write a file with a literal path)", code="hidden-state", step=step.name,
            cell=cell.number, cell_id=cell.id, line=line))
    return found
