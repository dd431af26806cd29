"""Parameter sweeps: the grid (`--sweep NAME=V1,V2`, `--params-grid FILE`), each value typed like the
parameter's default, and which steps a swept parameter reaches (the rest are computed once per sweep).
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from same_nb.errors import SameError
from same_nb.frontend.ir import Pipeline
from same_nb.frontend.manifest_same import read_yaml_file
from same_nb.frontend.params import coerce_value

MAX_POINTS = 1000         # a grid larger than this is a typo more often than a plan


@dataclass
class Axis:
    name: str
    raw: list[Any]        # as written (strings from --sweep, YAML values from a grid file)
    origin: str


@dataclass
class SweepPlan:
    axes: list[tuple[str, list[Any]]]                  # (parameter, typed values), in the order given
    points: list[dict[str, Any]]                       # each grid point: swept parameter -> value
    swept_steps: list[str]                             # steps a swept parameter reaches, notebook order
    shared_steps: list[str]                            # computed once, used by every grid point
    unused: list[str] = field(default_factory=list)    # swept parameters no step reads

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.axes]


def split_values(text: str) -> list[str]:
    """``0.1,0.5`` → ``["0.1", "0.5"]``; commas inside brackets or quotes stay (``[1,2],[3]``)."""
    parts, current, depth, quote = [], [], 0, None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def parse_sweep_args(items: list[str]) -> list[Axis]:
    """``--sweep NAME=V1,V2,...`` options as axes."""
    axes = []
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SameError(f"--sweep {item!r}: write NAME=VALUE1,VALUE2,... (e.g. --sweep C=0.1,0.5,1.0)")
        raw = [] if not values.strip() else split_values(values)
        axes.append(Axis(name, raw, f"--sweep {name}"))
    return axes


def load_grid_file(path: str | Path) -> list[Axis]:
    """A YAML (or JSON) mapping of parameter -> list of values."""
    file = Path(path)
    if not file.is_file():
        raise SameError("no such parameter grid file", path=str(path))
    data = read_yaml_file(file, "parameter grid")
    if not isinstance(data, dict) or not data:
        raise SameError("a parameter grid maps each parameter to a list of values, e.g. `C: [0.1, 0.5]`",
                        path=str(path))
    axes = []
    for name, values in data.items():
        if not isinstance(values, list):
            raise SameError(f"parameter {name!r} must map to a list of values, got {json.dumps(values)[:60]}",
                            path=str(path))
        axes.append(Axis(str(name), list(values), f"{file.name}: {name}"))
    return axes


def plan_sweep(pipeline: Pipeline, axes: list[Axis], fixed: set[str] = frozenset()) -> SweepPlan:
    """Check the grid against the notebook's parameters and type its values; ``fixed`` are the
    parameters set with -p (or --params), which cannot also be swept."""
    if not axes:
        raise SameError("a sweep needs at least one --sweep NAME=V1,V2 or a --params-grid file")
    by_name = {p.name: p for p in pipeline.parameters}
    seen: dict[str, str] = {}
    typed: list[tuple[str, list[Any]]] = []
    for axis in axes:
        if axis.name not in by_name:
            valid = ", ".join(by_name) or "none (the notebook has no parameters cell)"
            raise SameError(f"unknown parameter {axis.name!r} (from {axis.origin}); valid parameters: {valid}")
        if axis.name in seen:
            raise SameError(f"parameter {axis.name!r} is swept twice ({seen[axis.name]} and {axis.origin}); "
                            f"give all its values once")
        if axis.name in fixed:
            raise SameError(f"parameter {axis.name!r} is both fixed with -p/--params and swept ({axis.origin}); "
                            f"drop one")
        seen[axis.name] = axis.origin
        if not axis.raw:
            raise SameError(f"parameter {axis.name!r} (from {axis.origin}) has no values to sweep")
        values = []
        for raw in axis.raw:
            value = coerce_value(by_name[axis.name], raw, source=axis.origin)
            if value in values:
                raise SameError(f"parameter {axis.name!r} (from {axis.origin}) lists the value "
                                f"{json.dumps(value)[:60]} twice")
            values.append(value)
        typed.append((axis.name, values))
    count = 1
    for _, values in typed:
        count *= len(values)
    if count > MAX_POINTS:
        raise SameError(f"the grid has {count:,} points; at most {MAX_POINTS} runs are started by one sweep")
    names = [name for name, _ in typed]
    points = [dict(zip(names, combo)) for combo in itertools.product(*(values for _, values in typed))]
    swept = swept_steps(pipeline, set(names))
    unused = [n for n in names if not any(n in s.params for s in pipeline.steps)]
    return SweepPlan(axes=typed, points=points, swept_steps=[s.name for s in pipeline.steps if s.name in swept],
                     shared_steps=[s.name for s in pipeline.steps if s.name not in swept], unused=unused)


def swept_steps(pipeline: Pipeline, names: set[str]) -> set[str]:
    """Steps that read one of ``names``, and every step downstream of one (its inputs differ per point)."""
    reached = {s.name for s in pipeline.steps if names & set(s.params)}
    changed = True
    while changed:
        changed = False
        for step in pipeline.steps:
            if step.name not in reached and reached & set(pipeline.upstream(step.name)):
                reached.add(step.name)
                changed = True
    return reached


def point_label(point: dict[str, Any]) -> str:
    """``C=0.5 seed=1``: a grid point as progress lines and tables show it (values as JSON)."""
    return " ".join(f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in point.items())
