"""Optional OpenLineage RunEvents (START / COMPLETE / FAIL) per step run, sent with
openlineage-python's client. Configured in same.yaml (``lineage: {openlineage: {transport: file,
path: ...}}`` or ``{transport: http, url: ..., endpoint: ...}``) or by ``OPENLINEAGE_URL``.

One OpenLineage job per step (``<pipeline>.<step>``); the run id is a UUID derived from the
same-nb run and step, so a step's START and COMPLETE share it. Files are datasets in the ``file``
namespace by absolute path; values passed between steps are datasets named
``<pipeline>.<variable>`` in the ``same-nb`` namespace; datasets from same.yaml by their URL.
A lineage backend that is down never fails a pipeline: the error is logged.
"""
from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from same_nb.errors import SameError

PRODUCER = "https://github.com/same-nb/same-nb"
NAMESPACE = "same-nb"
EVENT_TYPES = ("START", "COMPLETE", "FAIL", "ABORT")
_log = logging.getLogger("same_nb.openlineage")
_RETRY = {"total": 1, "backoff_factor": 0.2}  # the client's default retries for ~9 s per event


def lineage_config(manifest: Any = None, base: Path | None = None) -> dict | None:
    """The client's transport config from the manifest's ``lineage.openlineage`` (a pydantic
    model or dict), else from ``OPENLINEAGE_URL``; None when OpenLineage is not configured."""
    section = getattr(getattr(manifest, "lineage", None), "openlineage", None)
    if section is None and isinstance(manifest, dict):
        section = (manifest.get("lineage") or {}).get("openlineage")
    if section is not None:
        conf = section if isinstance(section, dict) else section.model_dump(exclude_none=True)
        if conf["transport"] == "file":
            path = Path(conf["path"])
            path = path if path.is_absolute() else Path(base or Path.cwd()) / path
            return {"type": "file", "log_file_path": str(path), "append": True}
        return {"type": "http", "url": conf["url"], "retry": _RETRY,
                **({"endpoint": conf["endpoint"]} if conf.get("endpoint") else {})}
    url = os.environ.get("OPENLINEAGE_URL")
    if url:
        return {"type": "http", "url": url, "retry": _RETRY,
                **({"endpoint": os.environ["OPENLINEAGE_ENDPOINT"]}
                   if os.environ.get("OPENLINEAGE_ENDPOINT") else {})}
    return None


def emit_step_event(config: dict | None, run: dict, step_state: Any, event_type: str) -> Any:
    """Send one RunEvent for ``step_state`` (a ``runner.StepState``) of ``run`` (``{"id",
    "pipeline_name", "notebook_path"}``); return the event, or None when not configured or the
    backend failed (logged)."""
    if config is None:
        return None
    if event_type not in EVENT_TYPES:
        raise SameError(f"invalid OpenLineage event type {event_type!r}: expected one of "
                        f"{', '.join(EVENT_TYPES)}")
    try:
        from openlineage.client import OpenLineageClient
    except ImportError:
        raise SameError("OpenLineage is configured but openlineage-python is not installed: "
                        "pip install 'same-nb[lineage]'") from None
    event = build_event(run, step_state, event_type)
    try:
        OpenLineageClient(config={"transport": config}).emit(event)
    except Exception as exc:  # any transport failure: lineage must not fail the pipeline
        _log.warning("OpenLineage %s event for step %s not sent: %s", event_type,
                     step_state.name, exc)
        return None
    return event


def build_event(run: dict, step_state: Any, event_type: str) -> Any:
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

    pipeline = run["pipeline_name"]
    folder = Path(run["notebook_path"]).parent
    run_uuid = uuid.uuid5(uuid.NAMESPACE_URL,
                          f"same-nb:{run['notebook_path']}:{run['id']}:{step_state.name}")
    files_in, files_out = _step_files(step_state)
    inputs = [InputDataset(namespace=ns, name=name)
              for ns, name in _datasets(step_state.inputs + files_in, pipeline, folder)]
    outputs = []
    if event_type == "COMPLETE":
        records = [{**rec, "name": name, "role": "variable"}
                   for name, rec in step_state.outputs.items()]
        outputs = [OutputDataset(namespace=ns, name=name)
                   for ns, name in _datasets(records + files_out, pipeline, folder)]
    return RunEvent(eventType=RunState(event_type),
                    eventTime=datetime.now(timezone.utc).isoformat(),
                    run=Run(runId=str(run_uuid)), job=Job(namespace=NAMESPACE,
                                                         name=f"{pipeline}.{step_state.name}"),
                    producer=PRODUCER, inputs=inputs, outputs=outputs)


def _step_files(step_state: Any) -> tuple[list[dict], list[dict]]:
    """Files and datasets from the step's result file (the runner keeps it at
    ``steps/<step>/result.json`` beside the executed ``steps/<step>.ipynb``)."""
    from same_nb.runtime.fileio import result_records

    if not getattr(step_state, "executed", None):
        return [], []
    result = Path(step_state.executed).parent / step_state.name / "result.json"
    return result_records(str(result), {r["name"] for r in step_state.inputs}
                          | set(step_state.outputs))


def _datasets(records: list[dict], pipeline: str, folder: Path) -> list[tuple[str, str]]:
    out = []
    for rec in records:
        role = rec.get("role") or "variable"
        if role == "file":
            name = Path(rec["name"])
            out.append(("file", str(name if name.is_absolute() else folder / name)))
        elif role == "dataset":
            out.append(("same-nb-dataset", rec.get("url") or rec["name"]))
        else:
            out.append((NAMESPACE, f"{pipeline}.{rec['name']}"))
    return out
