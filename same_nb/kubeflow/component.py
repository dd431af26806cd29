"""What runs inside a Kubeflow pod for one step: its step notebook, fed by KFP artifacts.

The pod never installs same-nb. Each component's function (generated pipeline.py) unpacks the
pipeline's bundle (``bundle.tar.gz``: this module, ``podenv.py``, ``same_nb/__init__.py``, the step
runtime ``same_nb/runtime/``, and per step its folder ``steps/<step>/`` and lock ``envs/<step>/``)
into a temporary folder, puts it first on ``sys.path`` and calls ``run_step``. The bundle comes
from KFP's artifact passing (a ``dsl.importer`` of its URI) or from the image
(``$SAME_NB_BUNDLE``); its sha256 must be the one the pipeline was compiled with. ``run_step``
installs the step's lock if the pod lacks it (``podenv.py``), then runs the step notebook with the
runtime's papermill engine (``runtime/notebook_engine.py``). Standard library only at import.

``steps/<step>/step.json`` maps the component's argument names to the notebook's names::

    {"step": "train", "notebook": "train.ipynb", "kernel": "python3", "renderer": "basic",
     "parameters": {"alpha": "alpha", "layers": "layers"}, "literals": {"layers": "list"}, "inputs": {"df": "df"},
     "outputs": {"model": {"variable": "model", "consumers": ["evaluate"]}},
     "watch": [], "metrics": ["accuracy"], "index_url": null}
"""
from __future__ import annotations

import ast
import html
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from same_nb.kubeflow.podenv import PodEnvironmentError, ensure_lock
from same_nb.runtime import ArtifactStore, StepRuntimeError, notebook_engine
from same_nb.runtime.artifacts import hash_file
from same_nb.runtime.profile import read_profile
from same_nb.runtime.resources import pod_metrics

BUNDLE_ENV = "SAME_NB_BUNDLE"                # in an image: where its copy of the bundle is
DATASETS_ENV = "SAME_NB_DATASETS"            # same.yaml datasets shipped with the step: name → path (JSON)
SNAPSHOT_ENV = "SAME_NB_KFP_SNAPSHOT_DIR"    # test hook: copy every final variable of the step here
NOTEBOOK_OUTPUT = "same_nb_notebook"         # Output[HTML]: the executed step notebook
METRICS_OUTPUT = "same_nb_metrics"           # Output[Metrics]: what the step logged
SPEC_PARAMETER = "_same_nb_spec"             # the step notebook's papermill parameter (bundle.SPEC_VARIABLE)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def run_step(arguments: dict[str, Any], step: str, bundle: str | Path) -> None:
    """Run the step notebook with the task's parameters and input artifacts; fill its output artifacts.
    ``bundle`` is the folder the pipeline's bundle was unpacked into."""
    bundle = Path(bundle)
    root = bundle / "steps" / step
    launch = json.loads((root / "step.json").read_text(encoding="utf-8"))
    try:
        ensure_lock(step, bundle / "envs" / step / "requirements.txt", bundle / "envs" / "uv.txt",
                    launch.get("index_url"))
    except PodEnvironmentError as exc:
        raise StepRuntimeError(str(exc)) from None
    # same_nb.dataset(name) in the step: the copy shipped in its folder (the kernel's working directory)
    os.environ[DATASETS_ENV] = json.dumps(launch.get("datasets", {}))
    # the kernel imports the step runtime (same_nb.runtime) and the step's local modules
    os.environ["PYTHONPATH"] = os.pathsep.join([str(bundle), str(root)] + [p for p in
                                               os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    work = Path(tempfile.mkdtemp(prefix=f"same-nb-{step}-"))
    try:
        store = ArtifactStore(work / "artifacts")
        spec = {"step": step, "store": str(store.root), "watch": launch["watch"], "verify": launch.get("verify", {}),
                "state_check": launch.get("state_check", False), "later": launch.get("later", []),
                "metrics": launch["metrics"], "result": str(work / "result.json"),
                "inputs": {variable: _place_input(step, variable, arguments[arg], store)
                           for arg, variable in launch["inputs"].items()},
                "outputs": {out["variable"]: out["consumers"] for out in launch["outputs"].values()}}
        snapshot_dir = os.environ.get(SNAPSHOT_ENV)
        if snapshot_dir:
            spec["snapshot"] = []
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
        literals = launch["literals"]
        params = {variable: _literal(step, variable, arguments[arg], literals[arg]) if arg in literals
                  else arguments[arg] for arg, variable in launch["parameters"].items()}
        executed = work / launch["notebook"]
        try:
            _execute(step, root / launch["notebook"], executed, {**params, SPEC_PARAMETER: str(spec_path)},
                     launch["kernel"], root)
        finally:
            if executed.is_file():      # also after a failure: the notebook shows where it stopped
                html_path = Path(arguments[NOTEBOOK_OUTPUT].path)
                html_path.parent.mkdir(parents=True, exist_ok=True)
                html_path.write_text(render_html(executed, launch["renderer"]), encoding="utf-8")
        result = json.loads((work / "result.json").read_text(encoding="utf-8"))
        for arg, out in launch["outputs"].items():
            _publish(step, result["outputs"][out["variable"]], arguments[arg], store)
        for metric in result.get("metrics", []):
            arguments[METRICS_OUTPUT].log_metric(metric["name"], metric["value"])
        # the step's peak memory, CPU time and artifact bytes, as local runs record them
        for name, value in pod_metrics(result, list(spec["inputs"].values())).items():
            arguments[METRICS_OUTPUT].log_metric(name, value)
        if snapshot_dir:
            _save_snapshot(Path(snapshot_dir) / step, result, store)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _literal(step: str, name: str, text: str, type_name: str) -> object:
    """A list, dict or None-default parameter, passed as Python-literal (or JSON) text to stay exact.
    A None-default parameter set to text that is no literal is that text, as with `same-nb run -p`."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    if type_name == "NoneType" or type(value).__name__ == type_name:
        return value
    raise StepRuntimeError(f"step '{step}': parameter '{name}' must be a {type_name} written as a Python "
                           f"literal, e.g. [1, 2] or {{'a': 1}}; got {text!r}")


def _place_input(step: str, variable: str, artifact: Any, store: ArtifactStore) -> dict:
    """Put an input artifact into the pod's store under its hash; the runtime re-hashes it on load."""
    meta = dict(artifact.metadata or {})
    if not meta.get("kind"):
        raise StepRuntimeError(
            f"step '{step}': input '{variable}' ({artifact.uri}) has no same-nb metadata (kind, sha256); "
            f"it must come from the output of a same-nb step")
    source = Path(artifact.path)
    sha256 = meta.get("sha256") or hash_file(source)[0]
    target = store.path(sha256)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)
    return {"name": variable, "sha256": sha256, "kind": meta["kind"], "type": meta.get("type", ""),
            "size": int(meta.get("size", source.stat().st_size))}   # KFP metadata numbers are floats


def _publish(step: str, record: dict, artifact: Any, store: ArtifactStore) -> None:
    target = Path(artifact.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = store.path(record["sha256"])
    try:
        os.link(source, target)        # no copy when both are on one filesystem
    except OSError:
        shutil.copyfile(source, target)
    artifact.metadata.update({"sha256": record["sha256"], "kind": record["kind"], "type": record["type"],
                              "size": record["size"], "variable": record["name"], "step": step})
    profile = read_profile(store.root, record["sha256"], record["name"])   # a pod keeps no store: it rides along
    if profile is not None:
        artifact.metadata["profile"] = profile


def _execute(step: str, notebook: Path, executed: Path, parameters: dict, kernel: str, cwd: Path) -> None:
    # nbformat's schema checks no IRIs, but jsonschema imports rfc3987_syntax when it is installed
    # (jupyterlab brings it) and that costs seconds per task; locks for pods do not have it.
    sys.modules.setdefault("rfc3987_syntax", None)
    import papermill
    from papermill.exceptions import PapermillExecutionError

    os.environ["PYTHONHASHSEED"] = "0"     # as in local runs: set iteration order is part of a value's bytes
    notebook_engine.register()             # the executed notebook written at a bounded rate, as in local runs
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, kernel_name=kernel,
                                   cwd=str(cwd), engine_name=notebook_engine.ENGINE, progress_bar=False,
                                   log_output=True, autosave_cell_every=notebook_engine.SAVE_INTERVAL)
    except PapermillExecutionError as exc:
        raise StepRuntimeError(f"step '{step}' failed{_where(executed, exc.exec_count)}: "
                               f"{exc.ename}: {exc.evalue}") from None


def _where(executed: Path, exec_count: int | None) -> str:
    """" in cell N of the source notebook" for the failing cell, when the executed copy says which."""
    try:
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
        cell = next(c for c in cells if c.get("cell_type") == "code" and c.get("execution_count") == exec_count)
    except (OSError, ValueError, KeyError, StopIteration):
        return ""
    if cell.get("id") in ("same-nb-prologue", "same-nb-epilogue"):
        return " while loading inputs" if cell["id"] == "same-nb-prologue" else " while saving outputs"
    number = cell.get("metadata", {}).get("same_nb", {}).get("cell")
    return f" in cell {number} of the source notebook" if number else ""


def _save_snapshot(target: Path, result: dict, store: ArtifactStore) -> None:
    target.mkdir(parents=True, exist_ok=True)
    (target / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    for record in result.get("snapshot", {}).values():
        destination = target / "artifacts" / record["sha256"][:2] / record["sha256"]
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.path(record["sha256"]), destination)


# -- the executed notebook as HTML ----------------------------------------------------------------

def render_html(executed: Path, renderer: str) -> str:
    """nbconvert's HTML when the step's lock has nbconvert ("nbconvert"), else a plain rendering."""
    if renderer == "nbconvert":
        from nbconvert import HTMLExporter

        return HTMLExporter().from_filename(str(executed))[0]
    nb = json.loads(executed.read_text(encoding="utf-8"))
    title = html.escape(executed.stem)
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:auto}pre{background:#f6f6f6;"
             "padding:.5em;overflow-x:auto}.out{background:#fff;border-left:3px solid #ccc}"
             ".err{background:#fee}</style></head><body>"]
    for cell in nb.get("cells", []):
        source = _text(cell.get("source", ""))
        if cell.get("cell_type") != "code":
            parts.append(f"<pre class='md'>{html.escape(source)}</pre>")
            continue
        count = cell.get("execution_count") or " "
        parts.append(f"<div>In [{count}]:</div><pre><code>{html.escape(source)}</code></pre>")
        parts += [_output_html(output) for output in cell.get("outputs", [])]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _output_html(output: dict) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre class='out'>{html.escape(_text(output.get('text', '')))}</pre>"
    if kind == "error":
        trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
        return f"<pre class='out err'>{html.escape(trace or output.get('ename', ''))}</pre>"
    data = output.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        payload = "".join(_text(data.get(mime, "")).split())
        if _BASE64.fullmatch(payload):                  # only well-formed images are embedded
            return f"<img src='data:{mime};base64,{payload}'>"
    return f"<pre class='out'>{html.escape(_text(data.get('text/plain', '')))}</pre>"


def _text(value: str | list[str]) -> str:
    return "".join(value) if isinstance(value, list) else value
