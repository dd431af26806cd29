"""The KFP side of a pod simulation, as KFP v2's driver and launcher do it: the compiled spec read
(pipeline parameters, task order), the executor input message, the placeholders in command and args,
and the outputs read back afterwards. Pure functions over the spec's dicts; `podsim.py` runs the pods.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any

import yaml

from same_nb.errors import SameError

EXECUTOR_OUTPUT = "executor_output.json"
# kfp's Artifact.path maps these uri schemes to mounts a real pod has (gcsfuse, …); kept so a
# placeholder resolves the way kfp's executor would, even though nothing exists there here.
_MOUNTS = {"gs://": "/gcs/", "minio://": "/minio/", "s3://": "/s3/"}
_IO = re.compile(r"\{\{\$\.(inputs|outputs)\.(.*?)\}\}")


def local_path(uri: str) -> str:
    for prefix, mount in _MOUNTS.items():
        if uri.startswith(prefix):
            return mount + uri[len(prefix):]
    return uri[len("file://"):] if uri.startswith("file://") else uri


def typed(value: Any, parameter_type: str | None) -> Any:
    """Protobuf carries every number as a double; the launcher hands ints back as ints."""
    if value is None:
        return None
    if parameter_type == "NUMBER_INTEGER":
        return int(value)
    if parameter_type == "NUMBER_DOUBLE":
        return float(value)
    return value


def runtime_artifact(name: str, type_schema: dict, uri: str, metadata: dict | None = None) -> dict:
    schema = {k: type_schema[k] for k in ("schemaTitle", "schemaVersion") if k in type_schema}
    return {"name": name, "type": schema, "uri": uri, "metadata": dict(metadata or {})}


def executor_input(component: dict, parameters: dict[str, Any], artifacts: dict[str, dict],
                   task_root: str) -> dict:
    """The ExecutorInput message as JSON: ``parameters`` already typed, ``artifacts`` input name →
    runtime artifact; outputs get fresh uris under ``task_root``. Empty maps are left out, as
    protobuf's JSON printer does."""
    ins = component.get("inputDefinitions", {})
    outs = component.get("outputDefinitions", {})
    inputs: dict[str, Any] = {}
    values = {}
    for name, spec in ins.get("parameters", {}).items():
        if name in parameters:
            values[name] = parameters[name]
        elif "defaultValue" in spec:
            values[name] = typed(spec["defaultValue"], spec.get("parameterType"))
    # f-string arguments arrive as extra "pipelinechannel--…" parameters the component never declared.
    values.update({k: v for k, v in parameters.items() if k not in values})
    if values:
        inputs["parameterValues"] = values
    if artifacts:
        inputs["artifacts"] = {name: {"artifacts": [art]} for name, art in artifacts.items()}
    outputs: dict[str, Any] = {}
    if outs.get("parameters"):
        outputs["parameters"] = {name: {"outputFile": os.path.join(task_root, name)} for name in outs["parameters"]}
    if outs.get("artifacts"):
        outputs["artifacts"] = {
            name: {"artifacts": [runtime_artifact(name, spec.get("artifactType", {}), os.path.join(task_root, name))]}
            for name, spec in outs["artifacts"].items()}
    outputs["outputFile"] = os.path.join(task_root, EXECUTOR_OUTPUT)
    return {"inputs": inputs, "outputs": outputs} if inputs else {"outputs": outputs}


def _lookup(message: dict, side: str, rest: str) -> Any:
    """``inputs.parameters['x']``, ``outputs.artifacts['m'].path``, ``….metadata['k']`` … → value."""
    kind, *tail = [p for p in re.split(r"\.|\[|\]|'|\"", rest) if p] or [""]
    if kind == "output_file" and side == "outputs":
        return message["outputs"]["outputFile"]
    if kind == "parameters" and side == "inputs":
        return message.get("inputs", {}).get("parameterValues", {})[tail[0]]
    if kind == "parameters" and side == "outputs":
        if tail[1:] != ["output_file"]:
            raise ValueError(f"unsupported placeholder {side}.{rest}")
        return message["outputs"]["parameters"][tail[0]]["outputFile"]
    if kind == "artifacts":
        art = message.get(side, {}).get("artifacts", {})[tail[0]]["artifacts"][0]
        field, *keys = tail[1:] or ["uri"]
        if field == "path":
            return local_path(art["uri"])
        value = art[field]
        for key in keys:
            value = value[key]
        return value
    raise ValueError(f"unsupported placeholder {side}.{rest}")


def _resolve(text: str, message: dict, context: dict[str, str]) -> str:
    text = text.replace("{{$}}", json.dumps(message))
    text = text.replace("{{$.outputMetadataUri}}", message["outputs"]["outputFile"])
    for name, value in context.items():
        text = text.replace("{{$.%s}}" % name, value)

    def one(match: re.Match) -> str:
        try:
            value = _lookup(message, match.group(1), match.group(2))
        except (KeyError, IndexError):   # an input left out (optional, not given): "null", as kfp.local
            value = None
        return value if isinstance(value, str) else json.dumps(value)
    text = _IO.sub(one, text)
    if "{{$" in text:
        raise ValueError(f"unsupported placeholder in {text[text.index('{{$'):][:80]!r}")
    return text


def _struct(item: Any, provided: set[str]) -> list[str]:
    """Concat / IfPresent placeholders (serialized as JSON strings by kfp's compiler) → strings."""
    if isinstance(item, str) and item.startswith(('{"Concat": ', '{"IfPresent": ')):
        item = json.loads(item)
    if isinstance(item, str):
        return [item]
    if isinstance(item, list):
        return [s for part in item for s in _struct(part, provided)]
    if "Concat" in item:
        return ["".join(s for part in item["Concat"] for s in _struct(part, provided))]
    if "IfPresent" in item:
        spec = item["IfPresent"]
        chosen = spec.get("Then") if spec["InputName"] in provided else spec.get("Else")
        return [] if chosen is None else _struct(chosen, provided)
    raise ValueError(f"unsupported placeholder structure {item!r}")


def resolve_command(argv: list, message: dict, context: dict[str, str]) -> list[str]:
    """``context``: pipeline_root, pipeline_job_name, pipeline_task_name, … (the ``{{$.name}}`` ones)."""
    provided = set(message.get("inputs", {}).get("parameterValues", {})) | set(message.get("inputs", {}).get("artifacts", {}))
    params = message.get("inputs", {}).get("parameterValues", {})
    for name, value in params.items():   # a parameter may itself be an f-string over other parameters
        if isinstance(value, str) and "{{$" in value:
            params[name] = _resolve(value, message, context)
    return [_resolve(s, message, context) for item in argv for s in _struct(item, provided)]


def read_outputs(component: dict, message: dict) -> tuple[dict[str, Any], dict[str, dict]]:
    """(output parameters, output artifacts) after the command: executor_output.json first, then
    the parameter files (dsl.OutputPath), read the way the launcher does (strings raw, else JSON)."""
    outs = component.get("outputDefinitions", {})
    written: dict = {}
    if os.path.isfile(message["outputs"]["outputFile"]):
        with open(message["outputs"]["outputFile"], encoding="utf-8") as handle:
            written = json.load(handle)
    params = dict(written.get("parameterValues", {}))
    for name, spec in message["outputs"].get("parameters", {}).items():
        if os.path.exists(spec["outputFile"]):
            with open(spec["outputFile"], encoding="utf-8") as handle:
                text = handle.read()
            kind = outs.get("parameters", {}).get(name, {}).get("parameterType")
            params[name] = text if kind == "STRING" else json.loads(text.lower() if kind == "BOOLEAN" else text)
    params = {k: typed(v, outs.get("parameters", {}).get(k, {}).get("parameterType")) for k, v in params.items()}
    artifacts = {}
    for name, listing in message["outputs"].get("artifacts", {}).items():
        art = dict(listing["artifacts"][0])
        reported = (written.get("artifacts", {}).get(name, {}).get("artifacts") or [{}])[0]
        art["uri"] = reported.get("uri") or art["uri"]
        art["metadata"] = {**art.get("metadata", {}), **reported.get("metadata", {})}
        artifacts[name] = art
    return params, artifacts


def load_spec(pipeline: str | os.PathLike | dict) -> dict:
    """The pipeline spec of a compiled KFP v2 YAML (or the spec itself)."""
    if isinstance(pipeline, dict):
        return pipeline
    with open(pipeline, encoding="utf-8") as handle:
        docs = [d for d in yaml.safe_load_all(handle) if isinstance(d, dict)]
    for doc in docs:   # a platform spec (Kubernetes settings) may follow the pipeline spec
        if "root" in doc and "deploymentSpec" in doc:
            return doc
    raise SameError(f"{pipeline}: not a compiled KFP v2 pipeline (no root/deploymentSpec)")


def pipeline_parameters(spec: dict, arguments: dict[str, Any]) -> dict[str, Any]:
    """Pipeline parameters: ``root.inputDefinitions`` defaults overridden by ``arguments``, typed."""
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(arguments) - set(declared))
    if unknown:
        raise SameError(f"unknown pipeline parameter(s): {', '.join(unknown)}")
    values = {}
    for name, p in declared.items():
        if name in arguments:
            values[name] = typed(arguments[name], p.get("parameterType"))
        elif "defaultValue" in p:
            values[name] = typed(p["defaultValue"], p.get("parameterType"))
        elif not p.get("isOptional"):
            raise SameError(f"pipeline parameter '{name}' has no default: pass it in arguments")
    return values


def task_order(tasks: dict[str, dict]) -> dict[str, set[str]]:
    """task → the tasks it waits for (dependentTasks and producers of its inputs); checks the graph."""
    deps = {}
    for name, task in tasks.items():
        if "triggerPolicy" in task or "iteratorPolicy" in task or "parameterIterator" in task or "artifactIterator" in task:
            raise SameError(f"task '{name}': conditions and loops are not simulated")
        ins = task.get("inputs", {})
        producers = {src[key]["producerTask"] for kind in ("parameters", "artifacts") for src in ins.get(kind, {}).values()
                     for key in ("taskOutputParameter", "taskOutputArtifact") if key in src}
        deps[name] = set(task.get("dependentTasks", [])) | producers
        missing = deps[name] - set(tasks)
        if missing:
            raise SameError(f"task '{name}' depends on unknown task(s) {sorted(missing)}")
    done: set[str] = set()
    while len(done) < len(deps):
        ready = {n for n in deps if n not in done and deps[n] <= done}
        if not ready:
            raise SameError(f"cycle among tasks {sorted(set(deps) - done)}")
        done |= ready
    return deps
