"""Names in pipeline.py and the pipeline spec: components, functions, arguments.

Component arguments are the notebook's names where they can be, renamed (``_in``, ``_out``,
``_param``) where one step reads and rebinds a variable or where a name is taken by what the
component function itself uses; ``step.json`` maps them back.
"""
from __future__ import annotations

import keyword
import re

from same_nb.errors import SameError
from same_nb.frontend.ir import STATE_VARIABLES, Pipeline, Step
from same_nb.kubeflow.component import METRICS_OUTPUT, NOTEBOOK_OUTPUT

BUNDLE_INPUT = "same_nb_bundle"              # Input[Artifact]: the pipeline's bundle
BUNDLE_PARAMETER = "same_nb_bundle_uri"      # the pipeline parameter the bundle is imported from
# Names the component function's body uses before or while it unpacks the bundle: an argument
# named like one would break it (templates/kfp_pipeline.py.j2).
FUNCTION_LOCALS = ("locals", "dict", "open", "hasattr", "RuntimeError", "arguments")


def check_names(pipeline: Pipeline, path: str) -> None:
    for p in pipeline.parameters:
        if p.name.startswith("same_nb"):
            raise SameError(f"parameter '{p.name}': names starting with 'same_nb' are reserved", path=path)
    for step in pipeline.steps:
        for name in [i.name for i in step.variable_inputs] + step.outputs:
            if name.startswith("same_nb"):
                raise SameError(f"variable '{name}' crosses steps, but names starting with 'same_nb' are "
                                f"reserved", path=path, step=step.name)


def k8s_name(name: str) -> str:
    """kfp's own cleaning of component and task names (kfp.dsl.utils.maybe_rename_for_k8s)."""
    return re.sub("-+", "-", re.sub("[^-0-9a-z]+", "-", name.lower())).strip("-")


def component_names(pipeline: Pipeline, pipeline_name: str) -> dict[str, str]:
    """Each step's KFP component name: the step's name, unless kfp would key it like the pipeline.
    kfp's loader (``kfp.components.load_component_from_file``) reads the component keyed
    ``comp-<pipeline name>`` when there is one, so a step named like the pipeline (an untagged
    notebook's single step, a step named after its notebook) would load instead of the pipeline,
    every parameter without its default. Such a step's component becomes ``<step>-step``; its task
    keeps the step's name as display name."""
    clash = k8s_name(pipeline_name)
    taken = {k8s_name(s.name) for s in pipeline.steps} | {clash}
    names = {}
    for step in pipeline.steps:
        name = step.name
        if k8s_name(name) == clash:
            while k8s_name(name) in taken:
                name += "-step"
            taken.add(k8s_name(name))
        names[step.name] = name
    return names


def fresh(name: str, taken: set[str], suffix: str) -> str:
    while name in taken or keyword.iskeyword(name):
        name += suffix
    taken.add(name)
    return name


def component_arguments(pipeline: Pipeline, step: Step) -> dict[str, dict[str, str]]:
    """Component argument → notebook name, per role; arguments are unique even when a step reads and
    rebinds one variable, or rebinds a parameter."""
    taken = set(FUNCTION_LOCALS) | {NOTEBOOK_OUTPUT, METRICS_OUTPUT}
    params = {fresh(p, taken, "_param"): p for p in step.params}
    outputs = {fresh(_argument(v), taken, "_out"): v for v in step.outputs}
    inputs = {fresh(_argument(i.name), taken, "_in"): i.name for i in step.variable_inputs}
    return {"parameters": params, "inputs": inputs, "outputs": outputs}


def _argument(variable: str) -> str:
    """KFP names must start with a letter: a generator-state pseudo-variable (`_same_nb_rng_numpy`) travels
    as `same_nb_rng_numpy`, a name user variables cannot take (`same_nb` is reserved, see _check_names)."""
    return variable.lstrip("_") if variable in STATE_VARIABLES else variable




def function_names(pipeline: Pipeline, pipeline_name: str, taken: set[str]) -> dict[str, str]:
    """Each step's function in pipeline.py, named so kfp names its component as ``component_names``
    says (kfp names a component after its function)."""
    names = {}
    for step, component in component_names(pipeline, pipeline_name).items():
        base = re.sub(r"\W", "_", component)
        names[step] = fresh(base if base[:1].isalpha() else "step_" + base, taken, "_")
    return names
