"""A parameter sweep in pipeline.py: nested ``dsl.ParallelFor`` loops, one per swept parameter, around
the steps a swept parameter reaches; the other steps run once, before the loops.

One loop per axis, over plain values, rather than one loop over dicts of values: kfp sets each key of
a dict item as an attribute of its loop argument, so a parameter named ``name`` or ``pattern`` would
overwrite kfp's own attributes; nested loops over scalars give the same grid with no such names.
"""
from __future__ import annotations

from dataclasses import dataclass

from same_nb.bundle.escape import python_literal
from same_nb.errors import SameError
from same_nb.frontend.ir import Pipeline
from same_nb.frontend.sweep import swept_steps
from same_nb.kubeflow.names import fresh
from same_nb.kubeflow.tasks import LITERAL_TYPES, kfp_value_problem


@dataclass
class SweepLoops:
    axes: list[tuple[str, list]]          # (parameter, loop items as KFP carries them)
    swept: set[str]                       # steps inside the loops
    parallelism: int | None = None        # iterations of each loop at once (None: as many as KFP allows)

    def variables(self, taken: set[str]) -> dict[str, str]:
        """Each swept parameter's loop item variable in pipeline.py."""
        return {name: fresh(f"{name}_item", taken, "_") for name, _ in self.axes}

    def headers(self, variables: dict[str, str]) -> list[dict]:
        """The ``with dsl.ParallelFor(...)`` lines, each nested one level deeper."""
        limit = f", parallelism={int(self.parallelism)}" if self.parallelism else ""
        return [{"loop": f"with dsl.ParallelFor(items={python_literal(items)}{limit}) as {variables[name]}:",
                 "indent": "    " * depth}
                for depth, (name, items) in enumerate(self.axes)]


def sweep_loops(pipeline: Pipeline, sweep: list[tuple[str, list]], parameters: list[str],
                path: str | None = None, parallelism: int | None = None) -> tuple[SweepLoops, list[str]]:
    """The loops of a sweep, and the pipeline's parameters without the swept ones (the grid sets them).
    A value KFP cannot carry exactly is refused, naming the parameter."""
    types = {p.name: p.type for p in pipeline.parameters}
    axes = []
    for name, values in sweep:
        literal = types[name] in LITERAL_TYPES
        for value in values:
            problem = kfp_value_problem(value, literal=literal)
            if problem:
                raise SameError(f"parameter '{name}': the swept value {python_literal(value)[:60]} cannot be a "
                                f"Kubeflow loop item: {problem}", path=path)
        # As pipeline parameters of these types are: Python-literal text, decoded in the pod.
        axes.append((name, [python_literal(v) for v in values] if literal else list(values)))
    swept = swept_steps(pipeline, {name for name, _ in sweep})
    if not swept:
        names = ", ".join(name for name, _ in sweep)
        raise SameError(f"no step reads the swept parameters ({names}): every grid point would compute the same",
                        path=path)
    if parallelism is not None and (isinstance(parallelism, bool) or not isinstance(parallelism, int)
                                    or parallelism < 1):
        raise SameError(f"--parallelism must be a positive integer, got {parallelism!r}", path=path)
    names = {name for name, _ in sweep}
    kept = [p for p in parameters if p.split(":", 1)[0] not in names]
    return SweepLoops(axes=axes, swept=swept, parallelism=parallelism), kept
