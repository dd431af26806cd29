"""The per-folder JSON files same-nb keeps about notebooks (``.same/learned.json``,
``.same/observed.json``): ``{"notebooks": {"nb.ipynb": ...}}``, read with an error that says how to
recover, written atomically (readers never see half a file)."""
from __future__ import annotations

import json
from pathlib import Path

from same_nb.errors import SameError
from same_nb.runtime.step import write_json_atomic


def read_notebooks(path: Path, what: str, recover: str) -> dict:
    """The file's data; ``{"notebooks": {}}`` when it does not exist. ``what`` names the file's content
    in errors ("the learned effects"), ``recover`` says what to do ("delete the file to start afresh")."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"notebooks": {}}
    except (OSError, ValueError) as exc:
        raise SameError(f"cannot read {what}: {exc}; {recover}", path=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("notebooks"), dict):
        raise SameError(f"the file of {what} is not what same-nb writes; {recover}", path=str(path))
    return data


def write_notebooks(path: Path, data: dict) -> None:
    write_json_atomic(path, data, sort_keys=True)
