"""Submit a compiled pipeline.yaml to a Kubeflow Pipelines server and follow its run, with kfp.Client.

The pipeline is uploaded once by name; later submissions add a version named after the YAML's
content hash (reused when it already exists), then create a run in an experiment. kfp's prints
and warnings are swallowed, and every server or network problem becomes one SameError.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from same_nb.errors import SameError

FINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")
DEFAULT_EXPERIMENT = "Default"


@dataclass
class SubmittedRun:
    run_id: str
    url: str
    host: str
    pipeline_id: str
    version_id: str
    experiment_id: str
    state: str                      # KFP's run state when last read: PENDING, RUNNING, SUCCEEDED, FAILED, ...


@dataclass
class RunStatus:
    run_id: str
    url: str
    state: str
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    tasks: dict[str, str] = field(default_factory=dict)     # task display name -> state

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES


def read_pipeline(pipeline_yaml: str | Path) -> dict:
    """The compiled pipeline spec, checked to be one."""
    import yaml

    path = Path(pipeline_yaml)
    try:
        # the first document; kfp-kubernetes' platform spec (secrets, volumes) is a second one
        spec = next(yaml.safe_load_all(path.read_text(encoding="utf-8")), None)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SameError(f"cannot read the compiled pipeline: {exc}", path=str(path)) from None
    if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
        raise SameError("is not a compiled Kubeflow pipeline (no pipelineInfo/root); compile it with "
                        "`same-nb compile NOTEBOOK --target kubeflow`", path=str(path))
    return spec


def pipeline_arguments(spec: dict, params: dict | None) -> dict:
    """Run arguments for the pipeline's typed parameters. Other values for STRING parameters are sent
    as Python-literal text (how same-nb passes lists, dicts and None-default parameters exactly);
    None leaves a parameter at its default."""
    from same_nb.bundle.escape import python_literal
    from same_nb.kubeflow.tasks import kfp_value_problem, short_value

    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    arguments = {}
    for name, value in (params or {}).items():
        if name not in declared:
            raise SameError(f"unknown parameter {name!r}; the pipeline's parameters: {', '.join(declared) or 'none'}")
        kind = declared[name]["parameterType"]
        if value is None:
            continue
        problem = kfp_value_problem(value, literal=kind == "STRING")
        if problem:
            raise SameError(f"parameter {name!r} cannot be sent to Kubeflow: {problem}")
        if kind == "STRING" and not isinstance(value, str):
            value = python_literal(value, f"parameter {name!r}")      # exact, decoded with ast.literal_eval
        elif kind == "NUMBER_DOUBLE" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        expected = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool,
                    "LIST": list, "STRUCT": dict}.get(kind, object)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise SameError(f"parameter {name!r} is {kind} in the pipeline, got {short_value(value)}")
        arguments[name] = value
    return arguments


def submit(pipeline_yaml: str | Path, host: str, experiment: str | None = None, namespace: str | None = None,
           existing_token: str | None = None, params: dict | None = None, wait: bool = False,
           timeout: float = 3600.0, poll: float = 5.0, client=None) -> SubmittedRun:
    """Upload the pipeline (or a new version of it) and start a run; with ``wait``, until it finishes."""
    path = Path(pipeline_yaml)
    spec = read_pipeline(path)
    arguments = pipeline_arguments(spec, params)
    name = spec["pipelineInfo"]["name"]
    host = _normal_host(host)
    client = client or _client(host, namespace, existing_token)
    with _server(host, f"upload pipeline {name!r}"):
        pipeline_id, version_id = _upload(client, path, name, spec, namespace)
    with _server(host, f"find or create experiment {experiment or DEFAULT_EXPERIMENT!r}"):
        experiment_id = client.create_experiment(name=experiment or DEFAULT_EXPERIMENT,
                                                 namespace=namespace).experiment_id
    with _server(host, f"start a run of {name!r}"):
        run = client.run_pipeline(experiment_id=experiment_id, job_name=f"{name} {datetime.now():%Y-%m-%d %H:%M:%S}",
                                  params=arguments, pipeline_id=pipeline_id, version_id=version_id)
    submitted = SubmittedRun(run_id=run.run_id, url=_run_url(host, run.run_id), host=host, pipeline_id=pipeline_id,
                             version_id=version_id, experiment_id=experiment_id, state=run.state or "PENDING")
    if wait:
        submitted.state = wait_for_run(host, run.run_id, timeout=timeout, poll=poll, client=client).state
    return submitted


def run_kubeflow(notebook: str | Path, host: str, *, out_dir: str | Path | None = None,
                 manifest_path: str | Path | None = None, params: list[tuple[str, str]] = (),
                 params_file: str | Path | None = None, experiment: str | None = None,
                 namespace: str | None = None, existing_token: str | None = None, wait: bool = False,
                 timeout: float = 3600.0, progress=None, image: str | None = None, bundle_uri: str | None = None):
    """Compile the notebook for Kubeflow and submit it with ``-p``-style parameters.
    Returns (KubeflowCompileResult, SubmittedRun); the run gets every parameter's value explicitly.
    Pods must be able to read the bundle: from their image (``image``) or from ``bundle_uri``."""
    from same_nb.frontend.params import resolve_params
    from same_nb.kubeflow.compiler import compile_kubeflow

    compiled = compile_kubeflow(notebook, out_dir, manifest_path, progress=progress, image=image,
                                bundle_uri=bundle_uri)
    client = _client(_normal_host(host), namespace, existing_token)    # an unreachable server says so first
    if compiled.bundle_uri is not None and "://" not in compiled.bundle_uri:
        raise SameError(f"the cluster's pods cannot read the bundle at the local path {compiled.bundle_uri}: upload "
                        f"it to storage the cluster reads (e.g. `mc cp {compiled.bundle} minio/mlpipeline/…` or "
                        f"`gsutil cp …`) and pass --bundle-uri URI, or build and push the images "
                        f"({compiled.out_dir / 'kfp' / 'images' / 'build.sh'}) and pass --image REPOSITORY",
                        path=str(notebook))
    values = resolve_params(compiled.pipeline, compiled.defaults, list(params), params_file)
    run = submit(compiled.pipeline_yaml, host, experiment=experiment, namespace=namespace,
                 existing_token=existing_token, params=values, wait=wait, timeout=timeout, client=client)
    return compiled, run


def refresh_status(host: str, run_id: str, namespace: str | None = None, existing_token: str | None = None,
                   client=None) -> RunStatus:
    """The run's state and its tasks' states, read from the server."""
    host = _normal_host(host)
    client = client or _client(host, namespace, existing_token)
    with _server(host, f"read run {run_id}"):
        run = client.get_run(run_id)
    details = run.run_details.task_details if run.run_details and run.run_details.task_details else []
    return RunStatus(run_id=run_id, url=_run_url(host, run_id), state=run.state or "RUNTIME_STATE_UNSPECIFIED",
                     error=run.error.message if run.error else None, created_at=run.created_at,
                     finished_at=run.finished_at, tasks={t.display_name: t.state for t in details})


def wait_for_run(host: str, run_id: str, timeout: float = 3600.0, poll: float = 5.0, namespace: str | None = None,
                 existing_token: str | None = None, client=None) -> RunStatus:
    deadline = time.monotonic() + timeout
    client = client or _client(_normal_host(host), namespace, existing_token)
    while True:
        status = refresh_status(host, run_id, client=client)
        if status.finished:
            return status
        if time.monotonic() + poll > deadline:
            raise SameError(f"run {run_id} is still {status.state} after {timeout:g} s; follow it at {status.url}")
        time.sleep(poll)


def _upload(client, path: Path, name: str, spec: dict, namespace: str | None) -> tuple[str, str]:
    existing = client.list_pipelines(filter=_name_filter(name), namespace=namespace).pipelines or []
    if not existing:
        description = spec["pipelineInfo"].get("description") or None
        pipeline_id = client.upload_pipeline(str(path), pipeline_name=name, description=description,
                                             namespace=namespace).pipeline_id
        versions = client.list_pipeline_versions(pipeline_id, sort_by="created_at desc", page_size=1)
        return pipeline_id, versions.pipeline_versions[0].pipeline_version_id
    pipeline_id = existing[0].pipeline_id
    version_name = f"{name}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
    same = client.list_pipeline_versions(pipeline_id, filter=_name_filter(version_name)).pipeline_versions
    if same:                            # this exact YAML was submitted before
        return pipeline_id, same[0].pipeline_version_id
    version = client.upload_pipeline_version(str(path), version_name, pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def _normal_host(host: str) -> str:
    host = host.strip().rstrip("/")
    return host if "://" in host else f"http://{host}"


def _run_url(host: str, run_id: str) -> str:
    return f"{host}/#/runs/details/{run_id}"


def _client(host: str, namespace: str | None, existing_token: str | None):
    import kfp

    with _server(host, "connect"):
        return kfp.Client(host=host, namespace=namespace or "kubeflow", existing_token=existing_token)


@contextlib.contextmanager
def _server(host: str, action: str):
    """kfp.Client calls, quiet (kfp prints links and warns), with their failures as one SameError."""
    from kfp_server_api import ApiException
    from urllib3.exceptions import HTTPError

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    except ApiException as exc:
        raise SameError(f"Kubeflow Pipelines at {host} refused to {action}: HTTP {exc.status} {exc.reason}"
                        f"{_server_message(exc.body)}") from None
    except (HTTPError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SameError(f"cannot reach Kubeflow Pipelines at {host} to {action}: {reason}") from None
    except ValueError as exc:           # kfp's own checks, e.g. two pipelines with one name
        raise SameError(f"Kubeflow Pipelines at {host}: cannot {action}: {exc}") from None


def _server_message(body: str | bytes | None) -> str:
    try:
        data = json.loads(body or "{}")
    except ValueError:
        return ""
    message = (data.get("message") or data.get("error")) if isinstance(data, dict) else None
    return f": {message}" if message else ""
