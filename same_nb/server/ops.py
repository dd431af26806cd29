"""What the server's worker processes do (:mod:`same_nb.server.worker`): each op takes the request's
arguments and answers ``(header, body)``: a header with the HTTP ``status`` (and what else the handler
needs), and the reply body, already made relative to the server root, or empty."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _inspection_reply(inspection, root: str, api_path: str) -> tuple[dict, bytes]:
    from same_nb.server.paths import relative_to_root

    data = inspection.to_dict()
    data["path"] = data["pipeline"]["notebook"] = api_path
    return {"status": 200}, json.dumps(relative_to_root(data, root), default=_json_default).encode()


def _op_inspect(notebook: str, root: str, api_path: str) -> tuple[dict, bytes]:
    from same_nb.service import inspect_notebook

    return _inspection_reply(inspect_notebook(Path(notebook)), root, api_path)


def _op_inspect_content(notebook: str, content: dict, root: str, api_path: str) -> tuple[dict, bytes]:
    from same_nb.service import inspect_notebook_content

    return _inspection_reply(inspect_notebook_content(Path(notebook), content), root, api_path)


def _op_check_run(notebook: str, params: dict[str, str], root: str | None = None) -> tuple[dict, bytes]:
    from same_nb.service import check_run_params

    return {"status": 200, "params": check_run_params(Path(notebook), params)}, b""


def _op_kubeflow_run(notebook: str, host: str, params: dict[str, str], root: str | None = None) -> tuple[dict, bytes]:
    from same_nb.service import run_on_kubeflow

    run_id, submitted = run_on_kubeflow(Path(notebook), host, params=list(params.items()))
    return {"status": 202, "run_id": run_id, "state": submitted.state, "remote_url": submitted.url}, b""


OPS = {"inspect": _op_inspect, "inspect_content": _op_inspect_content, "check_run": _op_check_run,
       "kubeflow_run": _op_kubeflow_run}
