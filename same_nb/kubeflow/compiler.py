"""Compile a notebook for Kubeflow Pipelines v2: a generated DSL file and the kfp compiler's YAML.

``compile_kubeflow`` writes the bundle (same.yaml, steps/), locks each step with what its pod
needs to run a notebook (envs/), writes each step's launch spec and local modules (kfp/<step>/),
renders ``pipeline.py`` from templates/kfp_pipeline.py.j2, checks that it calls nothing the template
does not, imports it and compiles it with kfp's compiler into ``pipeline.yaml`` (``write_pipeline_yaml``:
kfp's header comment rewritten so no parameter default or name can break the YAML, then read back).
``notebook_step`` is the decorator that ``pipeline.py`` uses to turn each step function into a
component whose pod runs templates/kfp_launcher.sh.j2. Every user string reaches generated text
escaped (bundle/escape.py).
"""
from __future__ import annotations

import ast
import base64
import copy
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import keyword
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from same_nb._version import __version__
from same_nb.bundle.escape import python_literal, visible
from same_nb.bundle.templates import render
from same_nb.errors import SameError
from same_nb.frontend.dag import topological_order
from same_nb.frontend.ir import STATE_VARIABLES, Pipeline, Step
from same_nb.kubeflow.component import METRICS_OUTPUT, NOTEBOOK_OUTPUT, SKIP_INSTALL_ENV, STEP_DIR_ENV

EXECUTOR_PACKAGES = ("papermill", "ipykernel", "cloudpickle")   # what every pod needs to run a step notebook
EXECUTOR_LOCK = "kfp-executor.txt"    # kfp itself, without its dependencies: the component executor
DEFAULT_PYTHON = "3.11"
DEFAULT_PLATFORM = "linux/x86_64"
# KFP passes list and dict parameters through protobuf, which turns every number into a float
# ([64, 32] arrives as [64.0, 32.0]), and kfp.local cannot leave an Optional parameter unset: such
# parameters travel as Python-literal text instead (exact), decoded in the pod.
PARAMETER_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list": "str", "dict": "str",
                   "NoneType": "str"}
LITERAL_TYPES = ("list", "dict", "NoneType")
_PIPELINE_GLOBALS = {"Path", "compiler", "dsl", "HTML", "Dataset", "Input", "Metrics", "Output",
                     "notebook_step", "write_pipeline_yaml", "BUNDLE", "notebook_pipeline", "same_nb"}
# What the generated pipeline.py may call (besides its own step functions): anything else means a
# value reached the source unescaped, and the file is refused before it is imported.
_PIPELINE_CALLS = {"Path", "notebook_step", "write_pipeline_yaml", "locals", "pipeline", "resolve",
                   "run_step", "set_caching_options", "set_retry", "set_cpu_request", "set_cpu_limit",
                   "set_memory_request", "set_memory_limit", "set_accelerator_type", "set_accelerator_limit",
                   "set_env_variable", "set_display_name", "after"}
KFP_EXACT_INT = 2 ** 53     # KFP keeps numbers as protobuf doubles: integers beyond this arrive rounded
LAUNCHER_DELIMITERS = ("SAME_NB_LOCK", "SAME_NB_FILES")    # the launcher's here-documents (kfp_launcher.sh.j2)
_PYTHON_IMAGE = re.compile(r"^(?:[\w.-]+(?::\d+)?/)?(?:library/)?python:(\d+\.\d+)")


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


def compile_kubeflow(notebook: str | Path, out_dir: str | Path | None = None,
                     manifest_path: str | Path | None = None, python_version: str | None = None,
                     platform: str | None = None, progress: Callable[[str], None] | None = None,
                     ) -> KubeflowCompileResult:
    """Write ``out_dir/pipeline.yaml`` (kfp compiler output) and ``out_dir/pipeline.py`` (its source).

    ``python_version``/``platform`` pick the pods' interpreter for the locks; None means same.yaml's
    ``environment`` values, else the base image's ``python:X.Y`` tag, else 3.11 on linux/x86_64.
    """
    from same_nb.bundle.build import compile_notebook, default_bundle_dir
    from same_nb.envs.lock import lock_pipeline
    from same_nb.frontend.manifest import slugify_name

    notebook = Path(notebook)
    out = Path(out_dir) if out_dir else default_bundle_dir(notebook)
    from same_nb.store.learned import load_learned

    def check(inspection) -> None:      # refuse before the bundle is written
        _check_names(inspection.pipeline, str(notebook))
        _pipeline_parameters(inspection.pipeline, inspection.manifest.run.parameters, str(notebook))

    compiled = compile_notebook(notebook, out, manifest_path, learned=load_learned(notebook), check=check)
    pipeline, manifest = compiled.inspection.pipeline, compiled.inspection.manifest
    parameters = _pipeline_parameters(pipeline, manifest.run.parameters, str(notebook))
    image_python = _PYTHON_IMAGE.match(manifest.environment.base_image)
    version = (python_version or manifest.environment.python_version
               or (image_python.group(1) if image_python else DEFAULT_PYTHON))
    plat = platform or manifest.environment.platform or DEFAULT_PLATFORM
    notebook_dir = notebook.resolve().parent
    locks = lock_pipeline(_pod_pipeline(pipeline, notebook_dir), notebook_dir, out,
                          python_version=version, platform=plat, progress=progress)
    warnings = list(locks.warnings) + _shared_files(pipeline)
    executor_lock, problem = _executor_lock(notebook_dir / ".same" / "locks", locks.python_version, locks.platform)
    if problem:
        warnings.append(problem)
    files = list(compiled.files)
    files.append(_write(out / "envs" / EXECUTOR_LOCK, executor_lock))
    configs = {s.name: manifest.step_config(s.name) for s in pipeline.steps}
    shipped_data = _local_datasets(manifest, notebook_dir, warnings)
    name = slugify_name(pipeline.name) or "pipeline"
    components = _component_names(pipeline, name)
    for step in pipeline.steps:
        lock = locks.steps[step.name]
        if lock.fallback or problem:
            warnings.append(f"{step.name}: its pod installs pinned packages without hash checking "
                            f"(the lock has no hashes)")
        tag = _PYTHON_IMAGE.match(configs[step.name].image)
        if tag and tag.group(1) != locks.python_version:
            warnings.append(f"{step.name}: image {visible(configs[step.name].image)} runs Python {tag.group(1)} but the "
                            f"lock is for Python {locks.python_version}; set environment.python_version in same.yaml")
        files += _write_launch_files(out / "kfp" / step.name, pipeline, step, lock.lock_path.read_text(),
                                     lock.local_modules, shipped_data, notebook_dir, components[step.name])
    source = _pipeline_source(pipeline, parameters, name, configs, notebook.name)
    _check_generated(source)
    pipeline_py = _write(out / "pipeline.py", source)
    pipeline_yaml = out / "pipeline.yaml"
    _compile_yaml(pipeline_py, pipeline_yaml)
    return KubeflowCompileResult(out_dir=out, pipeline_yaml=pipeline_yaml, pipeline_py=pipeline_py,
                                 pipeline=pipeline, name=name, files=files + [pipeline_py, pipeline_yaml],
                                 defaults={p.name: manifest.run.parameters.get(p.name, p.default)
                                           for p in pipeline.parameters},
                                 warnings=warnings)


def notebook_step(bundle: str | Path, step: str, *, image: str):
    """Decorator for a step function of ``pipeline.py``: a lightweight component named ``step`` (or
    the name its step.json gives, see ``_component_names``) whose command first runs the launcher
    (install the lock, unpack the step's files)."""
    bundle = Path(bundle)

    def build(func):
        from kfp import dsl

        component = dsl.component(func, base_image=image, install_kfp_package=False)
        container = component.component_spec.implementation.container
        container.command = ["sh", "-ec", _launcher_script(bundle, step), "same-nb-launcher", *container.command]
        launch = json.loads((bundle / "kfp" / step / "step.json").read_text(encoding="utf-8"))
        component.component_spec.name = component.name = launch.get("component", step)
        return component

    return build


def _launcher_script(bundle: Path, step: str) -> str:
    """The shell script a step's pod runs before kfp's executor, with the lock and files embedded."""
    lock = (bundle / "envs" / step / "requirements.txt").read_text(encoding="utf-8")
    if not re.search(r"^kfp==", lock, re.M):
        lock = lock.rstrip("\n") + "\n" + (bundle / "envs" / EXECUTOR_LOCK).read_text(encoding="utf-8")
    launch_dir = bundle / "kfp" / step
    notebook = json.loads((launch_dir / "step.json").read_text(encoding="utf-8"))["notebook"]
    files = {p.relative_to(launch_dir).as_posix(): p.read_bytes() for p in sorted(launch_dir.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts}
    files[notebook] = (bundle / "steps" / f"{step}.ipynb").read_bytes()
    package = Path(__file__).resolve().parents[1]
    pod_modules = [package / "__init__.py", package / "_version.py", package / "kubeflow" / "__init__.py",
                   package / "kubeflow" / "component.py", *sorted((package / "runtime").glob("*.py"))]
    for path in pod_modules:
        files[path.relative_to(package.parent).as_posix()] = path.read_bytes()
    lock = lock.rstrip("\n")
    if any(line.strip() in LAUNCHER_DELIMITERS for line in lock.splitlines()):
        raise SameError(f"the lock of step {step} has a line that would end the launcher's here-document")
    return render("kfp_launcher.sh.j2", step=step, lock=lock, require_hashes=_fully_hashed(lock),
                  files=base64.encodebytes(_archive(files)).decode("ascii").rstrip("\n"),
                  step_dir_env=STEP_DIR_ENV, skip_install_env=SKIP_INSTALL_ENV)


# -- locks: what a pod installs -------------------------------------------------------------------

def _pod_pipeline(pipeline: Pipeline, notebook_dir: Path) -> Pipeline:
    """A copy of the IR to lock for pods: each step also needs the notebook executor, the packages of
    the steps its inputs come from (to load their values), and never same-nb (the launcher ships it)."""
    from same_nb.envs.requirements import step_requirements

    pods = copy.deepcopy(pipeline)
    for step in pods.steps:
        step.imports = [i for i in step.imports if i.top != "same_nb"]
        step.replay_imports = [i for i in step.replay_imports if i.top != "same_nb"]
    direct = step_requirements(pods, notebook_dir)
    for step in pods.steps:
        inherited = sorted({pin for a in _ancestors(pipeline, step.name) for pin in direct[a].pins})
        names = {re.split(r"[=<>~!\[; ]", line, maxsplit=1)[0].lower() for line in direct[step.name].lines + inherited}
        extra = EXECUTOR_PACKAGES + (("pyarrow",) if "pandas" in names else ())
        step.requirements = list(step.requirements) + inherited + [_installed_pin(p) for p in extra]
    return pods


def _ancestors(pipeline: Pipeline, name: str) -> set[str]:
    """Steps whose values can reach ``name`` through data edges."""
    found: set[str] = set()
    queue = [name]
    while queue:
        current = queue.pop()
        for edge in pipeline.edges:
            if edge.kind == "data" and edge.dst == current and edge.src not in found:
                found.add(edge.src)
                queue.append(edge.src)
    return found


def _installed_pin(dist: str) -> str:
    try:
        return f"{dist}=={importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        raise SameError(f"{dist} is not installed here; the Kubeflow pods need it to run step notebooks, "
                        f"and locks pin the versions installed here: pip install {dist}") from None


def _executor_lock(cache_root: Path, python_version: str, plat: str) -> tuple[str, str | None]:
    """kfp's lightweight-component executor, pinned to the kfp installed here, hashed, no dependencies
    (with _KFP_RUNTIME=true it needs none). Cached by content like the step locks."""
    from same_nb.envs.lock import uv_command, uv_environment, uv_error_reason

    pin = _installed_pin("kfp")
    header = f"# kfp's component executor, installed without its dependencies, for Python {python_version} on {plat}.\n"
    key = hashlib.sha256(f"{pin}\0{python_version}\0{plat}".encode()).hexdigest()[:24]
    cached = cache_root / f"kfp-executor-{key}.txt"
    if cached.is_file():
        return cached.read_text(encoding="utf-8"), None
    cache_root.mkdir(parents=True, exist_ok=True)
    source = cache_root / f"kfp-executor-{key}.in"
    source.write_text(pin + "\n", encoding="utf-8")
    cmd = uv_command() + ["pip", "compile", source.name, "--no-deps", "--generate-hashes", "--no-header", "--quiet",
                          "--python", sys.executable, "--python-version", python_version, "--python-platform", plat]
    try:
        done = subprocess.run(cmd, cwd=cache_root, capture_output=True, text=True, timeout=60, env=uv_environment())
        reason = uv_error_reason(done.stderr) if done.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = str(exc)
    finally:
        source.unlink(missing_ok=True)
    if reason:
        return header + pin + "\n", f"cannot hash {pin} for the pods ({reason}); they install it unhashed"
    text = header + re.sub(r"\n\s*# via .*", "", done.stdout)
    cached.write_text(text, encoding="utf-8")
    return text, None


def _fully_hashed(lock: str) -> bool:
    entries = [e for e in re.sub(r"\\\n", " ", lock).splitlines() if e.strip() and not e.lstrip().startswith("#")]
    return bool(entries) and all("--hash=" in e for e in entries)


# -- per-step launch files ------------------------------------------------------------------------

def _check_names(pipeline: Pipeline, path: str) -> None:
    for p in pipeline.parameters:
        if p.name.startswith("same_nb"):
            raise SameError(f"parameter '{p.name}': names starting with 'same_nb' are reserved", path=path)
    for step in pipeline.steps:
        for name in [i.name for i in step.variable_inputs] + step.outputs:
            if name.startswith("same_nb"):
                raise SameError(f"variable '{name}' crosses steps, but names starting with 'same_nb' are "
                                f"reserved", path=path, step=step.name)


def _k8s_name(name: str) -> str:
    """kfp's own cleaning of component and task names (kfp.dsl.utils.maybe_rename_for_k8s)."""
    return re.sub("-+", "-", re.sub("[^-0-9a-z]+", "-", name.lower())).strip("-")


def _component_names(pipeline: Pipeline, pipeline_name: str) -> dict[str, str]:
    """Each step's KFP component name: the step's name, unless kfp would key it like the pipeline.
    kfp's loader (``kfp.components.load_component_from_file``) reads the component keyed
    ``comp-<pipeline name>`` when there is one, so a step named like the pipeline (an untagged
    notebook's single step, a step named after its notebook) would load instead of the pipeline,
    every parameter without its default. Such a step's component becomes ``<step>-step``; its task
    keeps the step's name as display name."""
    clash = _k8s_name(pipeline_name)
    taken = {_k8s_name(s.name) for s in pipeline.steps} | {clash}
    names = {}
    for step in pipeline.steps:
        name = step.name
        if _k8s_name(name) == clash:
            while _k8s_name(name) in taken:
                name += "-step"
            taken.add(_k8s_name(name))
        names[step.name] = name
    return names


def _fresh(name: str, taken: set[str], suffix: str) -> str:
    while name in taken or keyword.iskeyword(name):
        name += suffix
    taken.add(name)
    return name


def _component_arguments(pipeline: Pipeline, step: Step) -> dict[str, dict[str, str]]:
    """Component argument → notebook name, per role; arguments are unique even when a step reads and
    rebinds one variable, or rebinds a parameter."""
    taken = {"locals", NOTEBOOK_OUTPUT, METRICS_OUTPUT}
    params = {_fresh(p, taken, "_param"): p for p in step.params}
    outputs = {_fresh(_argument(v), taken, "_out"): v for v in step.outputs}
    inputs = {_fresh(_argument(i.name), taken, "_in"): i.name for i in step.variable_inputs}
    return {"parameters": params, "inputs": inputs, "outputs": outputs}


def _argument(variable: str) -> str:
    """KFP names must start with a letter: a generator-state pseudo-variable (`_same_nb_rng_numpy`) travels
    as `same_nb_rng_numpy`, a name user variables cannot take (`same_nb` is reserved, see _check_names)."""
    return variable.lstrip("_") if variable in STATE_VARIABLES else variable


def _write_launch_files(launch_dir: Path, pipeline: Pipeline, step: Step, lock: str,
                        local_modules: list[Path], shipped_data: list[Path] = (),
                        notebook_dir: Path | None = None, component: str | None = None) -> list[Path]:
    args = _component_arguments(pipeline, step)
    literal = {p.name: p.type for p in pipeline.parameters if p.type in LITERAL_TYPES}
    consumers = {v: sorted({s.name for s in pipeline.steps for i in s.variable_inputs
                            if i.producer == step.name and i.name == v}) for v in step.outputs}
    launch = {"step": step.name, "component": component or step.name, "notebook": f"{step.name}.ipynb",
              "kernel": pipeline.kernel,
              "renderer": "nbconvert" if re.search(r"^nbconvert==", lock, re.M | re.I) else "basic",
              "parameters": args["parameters"], "inputs": args["inputs"],
              "literals": {a: literal[v] for a, v in args["parameters"].items() if v in literal},
              "outputs": {a: {"variable": v, "consumers": consumers[v]} for a, v in args["outputs"].items()},
              "watch": list(step.watch), "metrics": list(pipeline.metrics), "state_writes": list(step.state_writes),
              "verify": pipeline.verified_inputs(step.name), "state_check": step is not pipeline.steps[-1],
              "later": [s.name for s in pipeline.steps[pipeline.steps.index(step) + 1:]]}
    shutil.rmtree(launch_dir, ignore_errors=True)
    files = [_write(launch_dir / "step.json", json.dumps(launch, indent=1, sort_keys=True) + "\n")]
    for module in local_modules:        # importable from the unpacked folder, as from the notebook's
        sources = [p for p in sorted(module.rglob("*.py")) if "__pycache__" not in p.parts] if module.is_dir() else [module]
        for source in sources:
            files.append(_write(launch_dir / source.relative_to(module.parent), source.read_text(encoding="utf-8")))
    for data in shipped_data:           # at its path relative to the notebook's folder
        target = launch_dir / data.relative_to(notebook_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != data.read_bytes():
            target.write_bytes(data.read_bytes())
        files.append(target)
    return files


def _local_datasets(manifest, notebook_dir: Path, warnings: list[str]) -> list[Path]:
    """same.yaml datasets given as local paths travel with every pod, at the same relative path, so
    the notebook's relative reads work there; remote ones are fetched by the notebook itself."""
    from same_nb.store.datasets import fetch_dataset

    shipped = []
    for name, spec in (manifest.datasets or {}).items():
        url = spec.url
        if "://" in url and not url.startswith("file://"):
            warnings.append(f"dataset {visible(name)}: {visible(url)} is not shipped to pods; the step must fetch it")
            continue
        record = fetch_dataset(name, {"url": url, "sha256": spec.sha256}, notebook_dir)   # verifies sha256
        path = Path(record["location"]).resolve()
        if notebook_dir in path.parents:
            shipped.append(path)
        else:
            warnings.append(f"dataset {visible(name)}: {visible(str(path))} is outside the notebook folder; not shipped to pods")
    return shipped


def _shared_files(pipeline: Pipeline) -> list[str]:
    """Steps ordered by a file run in order, but each pod has its own filesystem: the later one will
    not find what the earlier one wrote."""
    return [f"{e.dst}: uses {', '.join(w[5:] for w in e.why)} from step {e.src}, but pods do not share "
            f"files; pass the data as a variable (or write it to shared storage)"
            for e in pipeline.edges if e.kind == "file"]


def _archive(files: dict[str, bytes]) -> bytes:
    """A byte-stable tar.xz (fixed dates and owners, sorted names): recompiling gives the same
    pipeline.yaml. Solid xz keeps the launcher argument small (Linux caps one argument at 128 KiB)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz", preset=9) as archive:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            archive.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


# -- pipeline.py ----------------------------------------------------------------------------------

def _task_calls(config, after: list[str]) -> list[str]:
    """The task's settings from same.yaml, as method calls on the task."""
    lit = python_literal
    calls = [f"set_caching_options({lit(bool(config.cache))})"]
    if config.retries:
        calls.append(f"set_retry(num_retries={lit(int(config.retries))})")
    r = config.resources
    for method, value in (("set_cpu_request", r.cpu), ("set_cpu_limit", r.cpu_limit),
                          ("set_memory_request", r.memory), ("set_memory_limit", r.memory_limit)):
        if value is not None:
            calls.append(f"{method}({lit(str(value))})")
    if r.gpu or r.accelerator:
        # KFP's own default type for GPUs; an accelerator named without a count gets one.
        calls.append(f"set_accelerator_type({lit(str(r.accelerator or 'nvidia.com/gpu'))})")
        calls.append(f"set_accelerator_limit({lit(int(r.gpu) if r.gpu is not None else 1)})")
    calls += [f"set_env_variable({lit(str(k))}, {lit(str(v))})" for k, v in sorted(config.env.items())]
    calls += [f"after({a})" for a in after]
    return calls


def _pipeline_parameters(pipeline: Pipeline, defaults: dict, path: str | None = None) -> list[str]:
    """``name: type = default`` for the pipeline function; defaults come from same.yaml. A default
    KFP cannot keep exactly is refused, naming the parameter."""
    parameters = []
    for p in pipeline.parameters:
        value = defaults.get(p.name, p.default)
        if not p.name.isidentifier() or keyword.iskeyword(p.name):
            raise SameError(f"parameter {p.name!r} is not a Python name", path=path)
        if not _fits(value, p.type):
            raise SameError(f"parameter '{p.name}': same.yaml sets {short_value(value)}, but the notebook's default is "
                            f"a {p.type}", path=path)
        problem = kfp_value_problem(value, literal=p.type in LITERAL_TYPES)
        if problem:
            where = "same.yaml's value" if p.name in defaults else "its default"
            raise SameError(f"parameter '{p.name}': {where} cannot be a Kubeflow pipeline parameter: {problem}",
                            path=path)
        text = python_literal(value, f"parameter {p.name!r}")
        parameters.append(f"{p.name}: {PARAMETER_TYPES[p.type]} = "
                          f"{python_literal(text) if p.type in LITERAL_TYPES else text}")
    return parameters


def kfp_value_problem(value: object, literal: bool = False) -> str | None:
    """Why KFP cannot carry ``value`` exactly as a parameter (None when it can). Numbers travel as
    protobuf doubles in JSON: no NaN or infinity, integers exact only up to 2**53. List, dict and
    None-default parameters (``literal``) travel as Python-literal text, decoded in the pod with
    ast.literal_eval: any int is exact there, but NaN and infinity have no literal."""
    if isinstance(value, float) and not math.isfinite(value):
        if literal:
            return (f"it holds {value}, which Python-literal text cannot carry (the pod decodes it with "
                    f"ast.literal_eval); use a finite number")
        return (f"{value} is not a finite number, and KFP keeps numbers as JSON, which has no NaN or infinity; "
                f"use a finite number, or a string parameter the notebook converts with float()")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > KFP_EXACT_INT and not literal:
        digits = (f"{value}" if value.bit_length() < 10_000
                  else f"an integer of about {int(value.bit_length() * 0.30103):,} digits")
        return (f"{short_value(digits)} is beyond 2**53 (9007199254740992), and KFP keeps numbers as 64-bit floats, "
                f"so it would arrive rounded; use a string parameter the notebook converts with int()")
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next(filter(None, (kfp_value_problem(v, literal=True) for v in items)), None)


def short_value(value: object) -> str:
    """A value as a message shows it: its repr, cut to a line."""
    try:
        text = value if isinstance(value, str) and value.isdigit() else repr(value)
    except ValueError:
        text = "a very long integer"
    text = visible(text)
    return text if len(text) <= 60 else f"{text[:59]}… ({len(text):,} characters)"


def _pipeline_source(pipeline: Pipeline, parameters: list[str], name: str, configs: dict,
                     notebook_name: str) -> str:
    taken = {p.name for p in pipeline.parameters} | _PIPELINE_GLOBALS
    functions = {s.name: _fresh("step_" + re.sub(r"\W", "_", s.name), taken, "_") for s in pipeline.steps}
    task_vars = {s.name: _fresh(re.sub(r"\W", "_", s.name) + "_task", taken, "_") for s in pipeline.steps}
    arguments = {s.name: _component_arguments(pipeline, s) for s in pipeline.steps}
    component_names = _component_names(pipeline, name)
    types = {p.name: PARAMETER_TYPES[p.type] for p in pipeline.parameters}
    components, tasks = [], []
    for step in pipeline.steps:
        args = arguments[step.name]
        components.append({
            "step": step.name, "step_repr": repr(step.name), "image_repr": repr(configs[step.name].image),
            "function": functions[step.name],
            "cells": _cells_phrase([c.number for c in step.cells]),
            "args": [f"{a}: {types[v]}" for a, v in args["parameters"].items()]
            + [f"{a}: Input[Dataset]" for a in args["inputs"]] + [f"{a}: Output[Dataset]" for a in args["outputs"]]
            + [f"{NOTEBOOK_OUTPUT}: Output[HTML]", f"{METRICS_OUTPUT}: Output[Metrics]"]})
    for step_name in topological_order([s.name for s in pipeline.steps], pipeline.edges):
        step = pipeline.step(step_name)
        args = arguments[step_name]
        call = [f"{a}={v}" for a, v in args["parameters"].items()]
        for a, variable in args["inputs"].items():
            producer = next(i.producer for i in step.variable_inputs if i.name == variable)
            out = next(k for k, v in arguments[producer]["outputs"].items() if v == variable)
            call.append(f"{a}={task_vars[producer]}.outputs[{out!r}]")
        # after: tags, and the order files and the working directory impose (no artifact carries it)
        after = list(dict.fromkeys(task_vars[e.src] for e in pipeline.edges if e.dst == step_name and e.kind != "data"))
        calls = _task_calls(configs[step_name], after)
        if component_names[step_name] != step_name:     # the task is named for its component: show the step's
            calls.insert(0, f"set_display_name({python_literal(step_name)})")
        tasks.append({"var": task_vars[step_name], "function": functions[step_name], "arguments": call,
                      "calls": calls})
    return render("kfp_pipeline.py.j2", notebook=notebook_name, version=__version__, components=components,
                  tasks=tasks, parameters=parameters, name_repr=repr(name),
                  description_repr=repr(f"Compiled by same-nb {__version__} from {notebook_name}"))


def _cells_phrase(numbers: list[int]) -> str:
    if not numbers:
        return "no cells"
    return ("cell " if len(numbers) == 1 else "cells ") + ", ".join(map(str, numbers))


def _fits(value: object, type_name: str) -> bool:
    if type_name == "NoneType":                 # a run may set any literal
        return True
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return type(value).__name__ == type_name


def _check_generated(source: str) -> None:
    """Refuse a generated pipeline.py that is not Python or calls anything the template does not:
    the last guard, before it is imported, against a user value that reached it unescaped."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as exc:
        raise SameError(f"same-nb generated an invalid pipeline.py ({exc}); please report this") from None
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called not in _PIPELINE_CALLS and called not in functions:
                raise SameError(f"same-nb generated a pipeline.py that calls {called or 'an expression'} "
                                f"(line {node.lineno}): a value reached the code unescaped; refusing to import it. "
                                f"Please report this with the notebook's file and step names")


def write_pipeline_yaml(pipeline_func, pipeline_yaml: str | Path) -> None:
    """Compile ``pipeline_func`` with kfp into ``pipeline_yaml``, then read the file back.

    kfp writes a header comment with each parameter's default pasted in as is: a multi-line string
    default (``'SELECT *\\nFROM t'``) or an unprintable character makes the file invalid YAML, or adds
    keys. The header is rewritten from the same spec with every value escaped onto its line; the
    file must then load (yaml.safe_load) as exactly the spec kfp compiled, or compiling fails."""
    import yaml
    from google.protobuf import json_format
    from kfp import compiler
    from kfp.compiler import pipeline_spec_builder

    pipeline_yaml = Path(pipeline_yaml)
    tmp = pipeline_yaml.with_name(f".{pipeline_yaml.stem}.{os.getpid()}.tmp.yaml")
    try:
        compiler.Compiler().compile(pipeline_func, str(tmp))
        with open(tmp, encoding="utf-8", newline="") as file:     # as written: a '\r' in a default stays
            text = file.read()
        spec = json_format.MessageToDict(pipeline_func.pipeline_spec)
        kfp_header = pipeline_spec_builder.extract_comments_from_pipeline_spec(spec, pipeline_func.description)
        header = _yaml_header(spec, pipeline_func.description)
        if text.startswith(kfp_header):
            text = header + text[len(kfp_header):]
        try:
            yaml.safe_load(header)          # the reference (pure-Python) loader on the part made of user text
            documents = list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        except yaml.YAMLError as exc:
            raise SameError(f"kfp wrote a pipeline.yaml that is not valid YAML ({visible(str(exc))[:300]})",
                            path=str(pipeline_yaml)) from None
        if not documents or documents[0] != spec:
            raise SameError("kfp wrote a pipeline.yaml that does not read back as the pipeline it compiled",
                            path=str(pipeline_yaml))
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, pipeline_yaml)
    finally:
        tmp.unlink(missing_ok=True)


def _yaml_header(spec: dict, description: str | None) -> str:
    """kfp's header comment (``# PIPELINE DEFINITION``, name, description, inputs with defaults), made
    by kfp's own function from a copy of the spec whose every string is escaped onto one line."""
    from kfp.compiler import pipeline_spec_builder

    def shown(value):
        if isinstance(value, str):
            return visible(value.replace("\\", "\\\\"))   # kfp quotes it: 'text'
        if isinstance(value, (list, dict)):
            return visible(json.dumps(value, ensure_ascii=False))
        return value

    def signature(definitions: dict) -> dict:
        parameters = {}
        for name, body in definitions.get("parameters", {}).items():
            copy_ = {"parameterType": body["parameterType"]}
            if "defaultValue" in body:
                value = body["defaultValue"]
                if body["parameterType"] == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
                    value = int(value)
                copy_["defaultValue"] = shown(value)
            parameters[visible(name)] = copy_
        artifacts = {visible(name): {"artifactType": {"schemaTitle": visible(body["artifactType"]["schemaTitle"])}}
                     for name, body in definitions.get("artifacts", {}).items()}
        return {"parameters": parameters, "artifacts": artifacts}

    root = {key: signature(spec["root"][key]) for key in ("inputDefinitions", "outputDefinitions")
            if key in spec["root"]}
    safe = {"pipelineInfo": {"name": visible(spec["pipelineInfo"]["name"])}, "root": root}
    header = pipeline_spec_builder.extract_comments_from_pipeline_spec(safe, visible(description or ""))
    if not all(line.startswith("#") and line.isprintable() for line in header.splitlines()):
        raise SameError("could not write pipeline.yaml's header comment safely; please report this")
    return header


def _compile_yaml(pipeline_py: Path, pipeline_yaml: Path) -> None:
    """Import the generated pipeline.py and compile it with kfp's compiler."""
    module_name = "_same_nb_kfp_" + hashlib.sha256(str(pipeline_py.resolve()).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(module_name, pipeline_py)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module           # kfp reads the step functions' source through their module
    try:
        spec.loader.exec_module(module)
        write_pipeline_yaml(module.notebook_pipeline, pipeline_yaml)
    except (ValueError, TypeError) as exc:      # e.g. a resource quantity kfp does not accept
        raise SameError(f"kfp rejected the pipeline: {visible(str(exc))}", path=str(pipeline_py)) from None
    finally:
        sys.modules.pop(module_name, None)
