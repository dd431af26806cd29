"""Cells to step drafts, following the tag grammar in ``tags.py``."""
from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field

from same_nb.errors import SameError
from same_nb.frontend.ir import Edge
from same_nb.frontend.notebook import LoadedNotebook, NotebookCell
from same_nb.frontend.params import parse_parameters, split_parameters_source
from same_nb.frontend.tags import Tag, parse_tags, step_name_from_stem, valid_step_name


@dataclass
class StepDraft:
    name: str
    first_cell: NotebookCell | None          # the tagged cell, None for an untagged notebook
    cells: list[NotebookCell] = field(default_factory=list)
    after: list[tuple[str, NotebookCell]] = field(default_factory=list)


@dataclass
class Grouping:
    steps: list[StepDraft]
    parameters_cell: NotebookCell | None     # with papermill's injected values merged in (see below)
    prelude: list[NotebookCell]
    metrics: list[str]
    ignored_tags: list[tuple[NotebookCell, str]]
    injected_cells: list[NotebookCell] = field(default_factory=list)


def _metric_names(cell: NotebookCell, path: str) -> list[str]:
    """Names listed in a pipeline-metrics cell: `name`, `a, b` or Kale's own `print(name)` lines."""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise SameError(f"pipeline-metrics cell: syntax error: {exc.msg}", path=path, cell=cell.number,
                        cell_id=cell.id, line=exc.lineno) from None
    except (ValueError, RecursionError, MemoryError):
        raise SameError("pipeline-metrics cell: cannot be parsed; list one variable name per line",
                        path=path, cell=cell.number, cell_id=cell.id) from None
    names = []
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, ast.Expr) else None
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print"
                and not value.keywords and value.args):
            elts = value.args                                   # Kale: print(accuracy)
        else:
            elts = value.elts if isinstance(value, ast.Tuple) else [value]
        if not all(isinstance(e, ast.Name) for e in elts):
            raise SameError("pipeline-metrics cell: each line must name variables (e.g. `accuracy` or "
                            "`print(accuracy)`)", path=path, cell=cell.number, cell_id=cell.id, line=stmt.lineno)
        names.extend(e.id for e in elts)
    return names


def _merge_injected(parameters_cell: NotebookCell | None, injected: list[NotebookCell], path: str
                    ) -> NotebookCell | None:
    """papermill's `injected-parameters` cell holds the values of the run that produced the notebook:
    they override the parameters cell's defaults, as when papermill runs it. Appending its source to
    the parameters cell makes them the defaults (a later assignment wins), so `-p` still overrides
    both; the injected cell itself runs in no step."""
    for cell in injected:            # errors point at the injected cell itself, line for line
        parse_parameters(cell.source, path=path, cell=cell.number, cell_id=cell.id)
    if not injected:
        return parameters_cell
    base = parameters_cell or injected[0]
    parts = [parameters_cell.source.rstrip("\n")] if parameters_cell else []
    for cell in injected:
        if cell is base:
            parts.append(cell.source.rstrip("\n"))
        else:
            parts.append(f"# injected-parameters (cell {cell.number})\n{cell.source.rstrip(chr(10))}")
    return dataclasses.replace(base, source="\n".join(parts) + "\n")


def _split_parameters(cell: NotebookCell) -> tuple[NotebookCell, NotebookCell | None]:
    """papermill's parameters cell is plain code: `import os` or `same.import_packages("six")` beside the
    defaults is common. Assignments stay in the parameters cell (and must be literals); every other
    statement runs as ordinary code where the cell stands. Lines keep their numbers in both parts."""
    parts = split_parameters_source(cell.source)
    if parts is None:
        return cell, None                     # parse_parameters reports what does not parse
    keep, code = parts
    return dataclasses.replace(cell, source=keep), dataclasses.replace(cell, source=code, tags=[])


def group_cells(nb: LoadedNotebook) -> Grouping:
    path = str(nb.path)
    steps: list[StepDraft] = []
    by_name: dict[str, StepDraft] = {}
    leading: list[NotebookCell] = []          # cells before the first step tag
    leading_after: list[tuple[str, NotebookCell]] = []
    parameters_cell = None
    injected: list[NotebookCell] = []
    prelude: list[NotebookCell] = []
    metrics: list[str] = []
    ignored: list[tuple[NotebookCell, str]] = []
    current: StepDraft | None = None
    # Markdown cells since the last code cell: a heading right before a step's first cell introduces
    # that step, so they move into it instead of ending the previous one.
    heading: list[NotebookCell] = []

    def err(msg: str, cell: NotebookCell) -> SameError:
        return SameError(msg, path=path, cell=cell.number, cell_id=cell.id)

    for cell in nb.cells:
        tags = parse_tags(cell.tags)
        meanings = {t.meaning for t in tags}
        ignored.extend((cell, t) for t in cell.tags if not any(x.raw == t for x in tags))
        step_tags = [t for t in tags if t.meaning == "step"]
        if "skip" in meanings:
            # A skipped cell contributes nothing but its step tags, so the cells after it stay in the
            # step it names; its other tags go with it (Kale: `[skip, prev:train]` is no dependency).
            ignored.extend((cell, t.raw) for t in tags if t.meaning not in ("skip", "step"))
            tags = [t for t in tags if t.meaning in ("skip", "step")]
        if "injected" in meanings and (step_tags or cell.cell_type != "code"):
            # papermill writes its injected cell with that one tag; on a step cell it is the user's own.
            ignored.extend((cell, t.raw) for t in tags if t.meaning == "injected")
            meanings.discard("injected")
        for t in step_tags:
            name = t.arg or ""
            if not valid_step_name(name):
                raise err(f"invalid step name {name!r} in tag {t.raw!r}: use letters, digits, "
                          "'_' or '-', starting with a letter or '_', at most 63 characters", cell)
            if name in by_name:
                first = by_name[name].first_cell
                raise err(f"duplicate step name {name!r}: cell {first.number} (id {first.id}) and cell "
                          f"{cell.number} (id {cell.id}) both start it; rename one", cell)
            if sum(1 for s in step_tags if s.arg == t.arg) > 1:
                raise err(f"tag {t.raw!r} appears twice on the cell", cell)
        introduction: list[NotebookCell] = []
        if step_tags and cell.cell_type == "code" and heading and "skip" not in meanings:
            owner = current.cells if current else leading
            if owner[-len(heading):] == heading:
                del owner[-len(heading):]
                introduction = heading
        for t in step_tags:
            # Several step tags: the cell runs in each step (Kale's semantics); the cells after it
            # continue the last one.
            current = StepDraft(name=t.arg, first_cell=cell)
            if not steps:
                current.cells.extend(leading)
                current.after.extend(leading_after)
            current.cells.extend(introduction)
            steps.append(current)
            by_name[current.name] = current
        for t in tags:
            if t.meaning == "after":
                if not t.arg:
                    raise err(f"tag {t.raw!r} names no step", cell)
                if not valid_step_name(t.arg):
                    raise err(f"tag {t.raw!r} names an invalid step {t.arg!r}: step names use letters, "
                              "digits, '_' or '-', starting with a letter or '_'", cell)
                for draft in ([by_name[s.arg] for s in step_tags] or [current]):
                    (draft.after if draft else leading_after).append((t.arg, cell))
        if cell.cell_type == "raw" or "skip" in meanings:
            continue                          # neither part of a heading's run nor the end of one
        heading = heading + [cell] if cell.cell_type == "markdown" and not step_tags else []
        if cell.cell_type == "code" and "parameters" in meanings:
            if parameters_cell is not None:
                raise err(f"two parameters cells: cell {parameters_cell.number} and cell {cell.number}; "
                          "keep one", cell)
            parameters_cell, code = _split_parameters(cell)
            if code is not None:
                (current.cells if current else leading).append(code)
            continue
        if cell.cell_type == "code" and "injected" in meanings:
            injected.append(cell)
            continue
        if cell.cell_type == "code" and "prelude" in meanings:
            prelude.append(cell)
            continue
        if cell.cell_type == "code" and "metrics" in meanings:
            metrics.extend(_metric_names(cell, path))
        if len(step_tags) > 1:
            for t in step_tags:
                by_name[t.arg].cells.append(cell)
        else:
            (current.cells if current else leading).append(cell)

    if not steps:
        draft = StepDraft(name=step_name_from_stem(nb.path.stem), first_cell=None, cells=leading,
                          after=leading_after)
        steps.append(draft)
    _check_after_targets(steps, path)
    return Grouping(steps=steps, parameters_cell=_merge_injected(parameters_cell, injected, path),
                    prelude=prelude, metrics=metrics, ignored_tags=ignored, injected_cells=injected)


def _after_tag(cell: NotebookCell, target: str) -> Tag | None:
    return next((t for t in parse_tags(cell.tags) if t.meaning == "after" and t.arg == target), None)


def _check_after_targets(steps: list[StepDraft], path: str) -> None:
    """An after:/prev: tag naming no step is reported as written (`prev:x`, not `after:x`)."""
    names = [s.name for s in steps]
    for draft in steps:
        for target, cell in draft.after:
            if target not in names:
                tag = _after_tag(cell, target)
                raw = tag.raw.strip() if tag else f"after:{target}"
                raise SameError(f"tag {raw!r} names a step that does not exist (steps: {', '.join(names)})",
                                path=path, cell=cell.number, cell_id=cell.id)


def cycle_message(cycle: list[str], edges: list[Edge], steps: list[StepDraft]) -> str:
    """The cycle error, naming the cell and tag behind each after:/prev: link and the variables behind
    each data link, so the user knows which tag to remove."""
    drafts = {s.name: s for s in steps}
    links = []
    for src, dst in zip(cycle, cycle[1:]):
        tagged = [(cell, _after_tag(cell, src)) for target, cell in drafts[dst].after if target == src] \
            if dst in drafts else []
        for cell, tag in tagged:
            raw = tag.raw.strip() if tag else f"after:{src}"
            links.append(f"{src} → {dst}: tag {raw!r} on cell {cell.number} (id {cell.id})")
        for e in edges:
            if e.src == src and e.dst == dst and e.kind != "after":
                what = ", ".join(e.names) if e.names else e.kind
                links.append(f"{src} → {dst}: {dst} uses {what} from {src}" if e.kind == "data"
                             else f"{src} → {dst}: {e.kind} {what}")
    return ("the steps form a cycle: " + " → ".join(cycle) + "; remove an after:/prev: tag on one of them"
            + (" (" + "; ".join(links) + ")" if links else ""))
