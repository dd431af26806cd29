"""Compile a notebook for Kubeflow Pipelines v2: a generated DSL file and the kfp compiler's YAML.

``compile_kubeflow`` writes the bundle (same.yaml, steps/), locks each step with what its pod needs
(podlocks.py, envs/), stages and packs what pods run besides their packages into
``kfp/bundle.tar.gz`` (podfiles.py), writes a Docker build context per distinct lock (images.py),
renders ``pipeline.py`` from templates/kfp_pipeline.py.j2 — plain kfp: one lightweight component
per step whose function unpacks the bundle and calls ``component.run_step`` — and compiles it into
``pipeline.yaml`` (kfpyaml.py). Pods get the bundle from their image (``--image``) or through
KFP's artifact passing (a ``dsl.importer`` of ``same_nb_bundle_uri``); nothing large travels in a
command line. Every user string reaches generated text escaped (bundle/escape.py).
"""
from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from same_nb._version import __version__
from same_nb.bundle.escape import python_literal, visible
from same_nb.bundle.templates import render
from same_nb.errors import SameError
from same_nb.frontend.dag import topological_order
from same_nb.frontend.ir import Pipeline, Step
from same_nb.kubeflow.kfpyaml import check_generated, compile_yaml, write_pipeline_yaml
from same_nb.kubeflow.names import (
    BUNDLE_INPUT,
    BUNDLE_PARAMETER,
    METRICS_OUTPUT,
    NOTEBOOK_OUTPUT,
    check_names,
    component_arguments,
    component_names,
    fresh,
    function_names,
)
from same_nb.kubeflow.podfiles import (
    BUNDLE_FILE,
    archive,
    local_datasets,
    renderer_for,
    shared_files,
    stage_runtime,
    stage_step,
    write_text,
)
from same_nb.kubeflow.podlocks import executor_lock, fully_hashed, pod_pipeline, uv_lock
from same_nb.kubeflow.tasks import (
    KUBERNETES_IMPORT,
    LITERAL_TYPES,
    PARAMETER_TYPES,
    TASK_CALLS,
    check_settings,
    pipeline_parameters,
    task_statements,
    uses_kubernetes,
)

__all__ = ["compile_kubeflow", "write_pipeline_yaml", "KubeflowCompileResult"]

DEFAULT_PLATFORM = "linux/x86_64"
IMAGE_BUNDLE = "/opt/same-nb/bundle.tar.gz"    # where a generated Dockerfile puts the bundle
BUDGET_PER_STEP = 20 * 1024     # pipeline.yaml bytes per step: KFP keeps the spec in Kubernetes objects
BUDGET_ARGUMENT = 32 * 1024     # one container argument: Linux refuses any over 128 KiB
_PIPELINE_GLOBALS = {"Path", "compiler", "dsl", "same_nb_kubernetes", "Artifact", "HTML", "Dataset", "Model",
                     "Input", "Metrics", "Output", "write_pipeline_yaml", "BUNDLE", "notebook_pipeline", "same_nb"}
# What the generated pipeline.py may call (besides its own step functions): anything else means a
# value reached the source unescaped, and the file is refused before it is imported.
_PIPELINE_CALLS = {"Path", "resolve", "dict", "locals", "open", "sha256", "read", "hexdigest", "RuntimeError",
                   "mkdtemp", "extractall", "hasattr", "insert", "run_step", "importer", "get", "pipeline",
                   "component", "Compiler", "compile", "write_pipeline_yaml", "ParallelFor"} | TASK_CALLS
_PYTHON_IMAGE = re.compile(r"^(?:[\w.-]+(?::\d+)?/)?(?:library/)?python:(\d+\.\d+)")
# Values saved by these libraries are models (Output[Model]); the rest are Datasets.
_MODEL_MODULES = ("sklearn", "xgboost", "lightgbm", "catboost", "torch", "keras", "tensorflow", "statsmodels")
_NOT_MODELS = ("sklearn.utils", "torch.Tensor", "xgboost.core.DMatrix", "lightgbm.basic.Dataset")


@dataclass
class KubeflowCompileResult:
    out_dir: Path
    pipeline_yaml: Path
    pipeline_py: Path
    pipeline: Pipeline
    name: str                              # the KFP pipeline name
    defaults: dict = field(default_factory=dict)   # each parameter's default in the pipeline (same.yaml's)
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bundle: Path | None = None             # kfp/bundle.tar.gz
    bundle_sha256: str = ""
    bundle_uri: str | None = None          # where pods import it from (None: from their image)
    images: dict = field(default_factory=dict)       # step → image reference (prebuilt images only)
    figures: dict = field(default_factory=dict)      # yaml_bytes, bytes_per_step, max_argument
    locks: object = None                   # the pods' envs.lock.LockResult (each pin with its sources)


def compile_kubeflow(notebook: str | Path, out_dir: str | Path | None = None,
                     manifest_path: str | Path | None = None, python_version: str | None = None,
                     platform: str | None = None, progress: Callable[[str], None] | None = None,
                     image: str | None = None, bundle_uri: str | None = None,
                     sweep: list[tuple[str, list]] | None = None,
                     sweep_parallelism: int | None = None) -> KubeflowCompileResult:
    """Write ``out_dir/pipeline.yaml`` (kfp compiler output), ``out_dir/pipeline.py`` (its source),
    ``out_dir/kfp/bundle.tar.gz`` and ``out_dir/kfp/images/<lock>/`` (one Docker build context per
    distinct lock).

    ``python_version``/``platform`` pick the pods' interpreter for the locks; None means same.yaml's
    ``environment`` values, else the base image's ``python:X.Y`` tag, else this interpreter's
    version, on linux/x86_64. ``image`` (or same.yaml ``environment.image``): pods run prebuilt
    images holding the locks and the bundle, and install nothing. Otherwise pods import the bundle
    from ``bundle_uri`` (a URI the cluster can read, e.g. ``minio://…``, ``gs://…``, ``s3://…``;
    by default the local path of the compiled bundle, which only kfp.local can read).
    ``sweep``: a parameter grid ((name, typed values) per axis, see frontend/sweep.py); the steps a swept
    parameter reaches run inside nested ``dsl.ParallelFor`` loops, one per axis, the others once before
    them (kubeflow/sweep.py); swept parameters are no longer pipeline parameters. ``sweep_parallelism``:
    at most that many iterations of each loop at once.
    """
    from same_nb.bundle.build import compile_notebook, default_bundle_dir
    from same_nb.envs.lock import lock_pipeline
    from same_nb.frontend.manifest import slugify_name
    from same_nb.store.learned import load_learned

    notebook = Path(notebook)
    out = Path(out_dir) if out_dir else default_bundle_dir(notebook)

    def check(inspection) -> None:      # refuse before the bundle is written
        check_names(inspection.pipeline, str(notebook))
        check_settings(inspection.manifest, [s.name for s in inspection.pipeline.steps], str(notebook))
        pipeline_parameters(inspection.pipeline, inspection.manifest.run.parameters, str(notebook))

    compiled = compile_notebook(notebook, out, manifest_path, learned=load_learned(notebook), check=check)
    pipeline, manifest = compiled.inspection.pipeline, compiled.inspection.manifest
    parameters = pipeline_parameters(pipeline, manifest.run.parameters, str(notebook))
    loops = None
    if sweep:
        from same_nb.kubeflow.sweep import sweep_loops

        loops, parameters = sweep_loops(pipeline, sweep, parameters, str(notebook), sweep_parallelism)
    environment = manifest.environment
    image_python = _PYTHON_IMAGE.match(environment.base_image)
    version = (python_version or environment.python_version
               or (image_python.group(1) if image_python else "{}.{}".format(*sys.version_info[:2])))
    plat = platform or environment.platform or DEFAULT_PLATFORM
    notebook_dir = notebook.resolve().parent
    observed = _observed(notebook)
    locks = lock_pipeline(pod_pipeline(pipeline, notebook_dir, observed), notebook_dir, out,
                          python_version=version, platform=plat, progress=progress, observed=observed)
    warnings = list(locks.warnings) + shared_files(pipeline)
    if manifest.checks is not None:
        warnings.append("same.yaml's checks run after local runs only: the Kubeflow pipeline neither compares "
                        "its data with a baseline run nor fails on drift (each output's profile rides in its "
                        "KFP artifact's metadata, for your own checks)")
    cache = notebook_dir / ".same" / "locks"
    kfp_lock, problem = executor_lock(cache, locks.python_version, locks.platform)
    uv_text, uv_problem = uv_lock(cache, locks.python_version, locks.platform)
    warnings += [p for p in (problem, uv_problem) if p]
    configs = {s.name: manifest.step_config(s.name) for s in pipeline.steps}
    shipped_data = local_datasets(manifest, notebook_dir, warnings)
    name = slugify_name(pipeline.name) or "pipeline"
    index_url = getattr(environment, "index_url", None)
    stage = out / "kfp" / "bundle"
    shutil.rmtree(stage, ignore_errors=True)
    files = list(compiled.files) + stage_runtime(stage, uv_text)
    classes = artifact_classes(pipeline, observed)
    step_locks = {}
    for step in pipeline.steps:
        lock = locks.steps[step.name]
        text = lock.lock_path.read_text(encoding="utf-8")
        if not re.search(r"^kfp==", text, re.M):
            text = text.rstrip("\n") + "\n" + kfp_lock
        step_locks[step.name] = text
        if not fully_hashed(text):
            warnings.append(f"{step.name}: its pod installs pinned packages without hash checking "
                            f"(the lock has no hashes)")
        tag = _PYTHON_IMAGE.match(configs[step.name].image)
        if tag and tag.group(1) != locks.python_version:
            warnings.append(f"{step.name}: image {visible(configs[step.name].image)} runs Python {tag.group(1)} but the "
                            f"lock is for Python {locks.python_version}; set environment.python_version in same.yaml")
        launch = _launch_spec(pipeline, step, text, classes, index_url)
        launch["datasets"] = {n: p.relative_to(notebook_dir).as_posix() for n, p in sorted(shipped_data.items())}
        files += stage_step(stage, pipeline, step, launch,
                            out / "steps" / f"{step.name}.ipynb", text, lock.local_modules, shipped_data,
                            notebook_dir)
    bundle = out / "kfp" / BUNDLE_FILE
    sha256 = archive(stage, bundle)
    files.append(bundle)
    images, plan_warnings, image_files = _images(out, step_locks, environment, configs, index_url, uv_text, bundle,
                                                 image or getattr(environment, "image", None), locks.platform)
    warnings += plan_warnings
    files += image_files
    if bundle_uri and not (re.fullmatch(r"(?:gs|s3|minio)://[!-~]+", bundle_uri) or Path(bundle_uri).is_absolute()):
        raise SameError(f"--bundle-uri {visible(bundle_uri)}: pods import the bundle from gs://, s3:// or minio:// "
                        f"URIs (or, under kfp.local, an absolute path)", path=str(notebook))
    uri = None if images else (bundle_uri or environment.bundle_uri or str(bundle.resolve()))
    if uri is not None and not re.match(r"^[a-z][a-z0-9+.-]*://", uri):
        warnings.append(f"pods import the bundle from {visible(uri)}, a local path only kfp.local can read: on a "
                        f"cluster, upload kfp/{BUNDLE_FILE} and pass --bundle-uri (or the {BUNDLE_PARAMETER} "
                        f"parameter), or build the images in kfp/images/ and pass --image")
    source = _pipeline_source(pipeline, parameters, name, configs, notebook.name, classes=classes, images=images,
                              bundle_uri=uri, bundle_sha256=sha256, index_url=index_url, loops=loops)
    check_generated(source, _PIPELINE_CALLS)
    pipeline_py = write_text(out / "pipeline.py", source)
    pipeline_yaml = out / "pipeline.yaml"
    compile_yaml(pipeline_py, pipeline_yaml)
    figures = spec_figures(pipeline_yaml, len(pipeline.steps))
    warnings += _budget_warnings(figures)
    return KubeflowCompileResult(out_dir=out, pipeline_yaml=pipeline_yaml, pipeline_py=pipeline_py,
                                 pipeline=pipeline, name=name, files=files + [pipeline_py, pipeline_yaml],
                                 defaults={p.name: manifest.run.parameters.get(p.name, p.default)
                                           for p in pipeline.parameters},
                                 warnings=warnings, bundle=bundle, bundle_sha256=sha256, bundle_uri=uri,
                                 images=images, figures=figures, locks=locks)


def _observed(notebook: Path) -> dict:
    """What the last local run observed per step (loaded modules, output types); {} if it never ran."""
    from same_nb.store.observed import load_observed

    return load_observed(notebook) or {}


def artifact_classes(pipeline: Pipeline, observed: dict) -> dict[str, dict[str, str]]:
    """Each step output's KFP artifact class: Model when the last local run saved a model there
    (a value of an ML library's estimator or network type), else Dataset."""
    classes = {}
    for step in pipeline.steps:
        outputs = (observed.get(step.name) or {}).get("outputs") or {}
        classes[step.name] = {v: ("Model" if _is_model((outputs.get(v) or {}).get("type", "")) else "Dataset")
                              for v in step.outputs}
    return classes


def _is_model(type_name: str) -> bool:
    top = type_name.split(".", 1)[0]
    return top in _MODEL_MODULES and not type_name.startswith(_NOT_MODELS)


def _launch_spec(pipeline: Pipeline, step: Step, lock: str, classes: dict, index_url: str | None) -> dict:
    """``steps/<step>/step.json``: what ``component.run_step`` needs to run the step notebook."""
    args = component_arguments(pipeline, step)
    literal = {p.name: p.type for p in pipeline.parameters if p.type in LITERAL_TYPES}
    consumers = {v: sorted({s.name for s in pipeline.steps for i in s.variable_inputs
                            if i.producer == step.name and i.name == v}) for v in step.outputs}
    return {"step": step.name, "notebook": f"{step.name}.ipynb", "kernel": pipeline.kernel,
            "renderer": renderer_for(lock), "index_url": index_url,
            "parameters": args["parameters"], "inputs": args["inputs"],
            "literals": {a: literal[v] for a, v in args["parameters"].items() if v in literal},
            "outputs": {a: {"variable": v, "consumers": consumers[v], "class": classes[step.name][v]}
                        for a, v in args["outputs"].items()},
            "watch": list(step.watch), "metrics": list(pipeline.metrics), "state_writes": list(step.state_writes),
            "verify": pipeline.verified_inputs(step.name), "state_check": step is not pipeline.steps[-1],
            "later": [s.name for s in pipeline.steps[pipeline.steps.index(step) + 1:]]}


def _images(out: Path, step_locks: dict[str, str], environment, configs: dict, index_url: str | None,
            uv_text: str, bundle: Path, image: str | None, plat: str) -> tuple[dict[str, str], list[str], list[Path]]:
    """Docker build contexts, one per distinct lock (kfp/images/); with ``image``, each step's image
    reference. Without one, a lock that cannot make an image (no hashes) only costs the contexts."""
    from same_nb.kubeflow.images import IMAGES_DIR, write_image_contexts

    try:
        plan = write_image_contexts(out, step_locks, base_image=environment.base_image, index_url=index_url,
                                    uv_lock=uv_text, bundle=bundle, image=image, platform=plat)
    except SameError as exc:
        if image:
            raise
        return {}, [f"no Docker build contexts: {exc.message}"], []
    files = sorted(p for p in (out / IMAGES_DIR).rglob("*") if p.is_file())
    return (dict(plan.images) if image else {}), (list(plan.warnings) if image else []), files


def spec_figures(pipeline_yaml: Path, steps: int) -> dict:
    """pipeline.yaml's size, per step, and its largest container argument (command or args item)."""
    text = pipeline_yaml.read_text(encoding="utf-8")
    spec = next(yaml.safe_load_all(text))      # a second document holds kfp-kubernetes' platform spec
    largest = 0
    for executor in (spec.get("deploymentSpec", {}).get("executors") or {}).values():
        container = executor.get("container") or {}
        for item in list(container.get("command") or []) + list(container.get("args") or []):
            largest = max(largest, len(str(item).encode("utf-8")))
    size = len(text.encode("utf-8"))
    return {"yaml_bytes": size, "bytes_per_step": size // max(steps, 1), "max_argument": largest}


def _budget_warnings(figures: dict) -> list[str]:
    found = []
    if figures["bytes_per_step"] > BUDGET_PER_STEP:
        found.append(f"pipeline.yaml is {figures['bytes_per_step']:,} bytes per step (budget {BUDGET_PER_STEP:,}): "
                     f"KFP stores the spec in Kubernetes objects with 256 KB–1.5 MiB ceilings")
    if figures["max_argument"] > BUDGET_ARGUMENT:
        found.append(f"a container argument is {figures['max_argument']:,} bytes (budget {BUDGET_ARGUMENT:,}; "
                     f"Linux refuses one over 131,072)")
    return found


def _pipeline_source(pipeline: Pipeline, parameters: list[str], name: str, configs: dict, notebook_name: str, *,
                     classes: dict, images: dict, bundle_uri: str | None, bundle_sha256: str,
                     index_url: str | None = None, loops=None) -> str:
    taken = {p.name for p in pipeline.parameters} | _PIPELINE_GLOBALS
    loop_vars = loops.variables(taken) if loops else {}        # swept parameter -> its loop item
    functions = function_names(pipeline, name, taken)
    task_vars = {s.name: fresh(re.sub(r"\W", "_", s.name) + "_task", taken, "_") for s in pipeline.steps}
    bundle_var = fresh("bundle", taken, "_")
    arguments = {s.name: component_arguments(pipeline, s) for s in pipeline.steps}
    components_named = component_names(pipeline, name)
    types = {p.name: PARAMETER_TYPES[p.type] for p in pipeline.parameters}
    if bundle_uri is not None:
        parameters = [f"{BUNDLE_PARAMETER}: str = {python_literal(bundle_uri)}"] + parameters
    components, tasks = [], []
    for step in pipeline.steps:
        args = arguments[step.name]
        producer_class = {i.name: classes[i.producer][i.name] for i in step.variable_inputs}
        components.append({
            "step": step.name, "step_repr": python_literal(step.name), "function": functions[step.name],
            "image_repr": python_literal(images.get(step.name) or configs[step.name].image),
            "install_kfp": step.name not in images,
            "bundle_path": (f"{BUNDLE_INPUT}.path" if bundle_uri is not None
                            else f"os.environ.get('SAME_NB_BUNDLE', {IMAGE_BUNDLE!r})"),
            "cells": _cells_phrase([c.number for c in step.cells]),
            "args": ([f"{BUNDLE_INPUT}: Input[Artifact]"] if bundle_uri is not None else [])
            + [f"{a}: {types[v]}" for a, v in args["parameters"].items()]
            + [f"{a}: Input[{producer_class[v]}]" for a, v in args["inputs"].items()]
            + [f"{a}: Output[{classes[step.name][v]}]" for a, v in args["outputs"].items()]
            + [f"{NOTEBOOK_OUTPUT}: Output[HTML]", f"{METRICS_OUTPUT}: Output[Metrics]"]})
    order = topological_order([s.name for s in pipeline.steps], pipeline.edges)
    if loops:          # shared steps first: none of them waits for a swept one
        order = [n for n in order if n not in loops.swept] + [n for n in order if n in loops.swept]
    for step_name in order:
        step = pipeline.step(step_name)
        args = arguments[step_name]
        indent = ""
        if loops and step_name in loops.swept:
            if not any(t.get("loop") for t in tasks):
                tasks += loops.headers(loop_vars)
            indent = "    " * len(loops.axes)
        call = ([f"{BUNDLE_INPUT}={bundle_var}.output"] if bundle_uri is not None else [])
        call += [f"{a}={loop_vars.get(v, v)}" for a, v in args["parameters"].items()]
        for a, variable in args["inputs"].items():
            producer = next(i.producer for i in step.variable_inputs if i.name == variable)
            out = next(k for k, v in arguments[producer]["outputs"].items() if v == variable)
            call.append(f"{a}={task_vars[producer]}.outputs[{out!r}]")
        # after: tags, and the order files and the working directory impose (no artifact carries it)
        after = list(dict.fromkeys(task_vars[e.src] for e in pipeline.edges if e.dst == step_name and e.kind != "data"))
        # a task named for its component (see _component_names) shows the step's name
        shown = step_name if components_named[step_name] != step_name else None
        statements = task_statements(configs[step_name], task_vars[step_name], after, shown)
        if index_url and step_name not in images:      # kfp's own `pip install kfp` at the pod's start
            statements.append(f"{task_vars[step_name]}.set_env_variable('PIP_INDEX_URL', {python_literal(index_url)})")
        tasks.append({"var": task_vars[step_name], "function": functions[step_name], "arguments": call,
                      "statements": statements, "indent": indent, "loop": None})
    used = {"Artifact", "HTML", "Input", "Metrics", "Output"} | {c for step in classes.values() for c in step.values()}
    return render("kfp_pipeline.py.j2", notebook=notebook_name, version=__version__, components=components,
                  tasks=tasks, parameters=parameters, name_repr=python_literal(name),
                  description_repr=python_literal(f"Compiled by same-nb {__version__} from {notebook_name}"),
                  artifact_imports=sorted(used), bundle_var=bundle_var, image_mode=bundle_uri is None,
                  bundle_name=BUNDLE_FILE, bundle_sha256=bundle_sha256, bundle_sha256_repr=repr(bundle_sha256),
                  kubernetes_import=KUBERNETES_IMPORT if uses_kubernetes(configs) else None)


def _cells_phrase(numbers: list[int]) -> str:
    if not numbers:
        return "no cells"
    return ("cell " if len(numbers) == 1 else "cells ") + ", ".join(map(str, numbers))


