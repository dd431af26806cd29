"""Cells to step drafts, following the tag grammar in ``tags.py``."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from same_nb.errors import SameError
from same_nb.frontend.notebook import LoadedNotebook, NotebookCell
from same_nb.frontend.tags import parse_tags, step_name_from_stem, valid_step_name


@dataclass
class StepDraft:
    name: str
    first_cell: NotebookCell | None          # the tagged cell, None for an untagged notebook
    cells: list[NotebookCell] = field(default_factory=list)
    after: list[tuple[str, NotebookCell]] = field(default_factory=list)


@dataclass
class Grouping:
    steps: list[StepDraft]
    parameters_cell: NotebookCell | None
    prelude: list[NotebookCell]
    metrics: list[str]
    ignored_tags: list[tuple[NotebookCell, str]]


def _metric_names(cell: NotebookCell, path: str) -> list[str]:
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
        elts = value.elts if isinstance(value, ast.Tuple) else [value]
        if not all(isinstance(e, ast.Name) for e in elts):
            raise SameError("pipeline-metrics cell: each line must name variables (e.g. `accuracy`)",
                            path=path, cell=cell.number, cell_id=cell.id, line=stmt.lineno)
        names.extend(e.id for e in elts)
    return names


def group_cells(nb: LoadedNotebook) -> Grouping:
    path = str(nb.path)
    steps: list[StepDraft] = []
    by_name: dict[str, StepDraft] = {}
    leading: list[NotebookCell] = []          # cells before the first step tag
    leading_after: list[tuple[str, NotebookCell]] = []
    parameters_cell = None
    prelude: list[NotebookCell] = []
    metrics: list[str] = []
    ignored: list[tuple[NotebookCell, str]] = []
    current: StepDraft | None = None

    def err(msg: str, cell: NotebookCell) -> SameError:
        return SameError(msg, path=path, cell=cell.number, cell_id=cell.id)

    for cell in nb.cells:
        tags = parse_tags(cell.tags)
        meanings = {t.meaning for t in tags}
        ignored.extend((cell, t) for t in cell.tags if not any(x.raw == t for x in tags))
        # Step and after: tags count on every cell, even a skipped, raw or parameters one: a tag is
        # never dropped silently.
        step_tags = [t for t in tags if t.meaning == "step"]
        if len(step_tags) > 1:
            raise err("the cell has more than one step tag: " + ", ".join(t.raw for t in step_tags), cell)
        if step_tags:
            name = step_tags[0].arg or ""
            if not valid_step_name(name):
                raise err(f"invalid step name {name!r} in tag {step_tags[0].raw!r}: use letters, digits, "
                          "'_' or '-', starting with a letter or '_', at most 63 characters", cell)
            if name in by_name:
                first = by_name[name].first_cell
                raise err(f"duplicate step name {name!r}: cell {first.number} (id {first.id}) and cell "
                          f"{cell.number} (id {cell.id}) both start it; rename one", cell)
            current = StepDraft(name=name, first_cell=cell)
            if not steps:
                current.cells.extend(leading)
                current.after.extend(leading_after)
            steps.append(current)
            by_name[name] = current
        for t in tags:
            if t.meaning == "after":
                if not t.arg:
                    raise err(f"tag {t.raw!r} names no step", cell)
                (current.after if current else leading_after).append((t.arg, cell))
        if cell.cell_type == "raw" or "skip" in meanings:
            continue
        if cell.cell_type == "code" and "parameters" in meanings:
            if parameters_cell is not None:
                raise err(f"two parameters cells: cell {parameters_cell.number} and cell {cell.number}; "
                          "keep one", cell)
            parameters_cell = cell
            continue
        if cell.cell_type == "code" and "prelude" in meanings:
            prelude.append(cell)
            continue
        if cell.cell_type == "code" and "metrics" in meanings:
            metrics.extend(_metric_names(cell, path))
        (current.cells if current else leading).append(cell)

    if not steps:
        draft = StepDraft(name=step_name_from_stem(nb.path.stem), first_cell=None, cells=leading,
                          after=leading_after)
        steps.append(draft)
    return Grouping(steps=steps, parameters_cell=parameters_cell, prelude=prelude, metrics=metrics,
                    ignored_tags=ignored)
