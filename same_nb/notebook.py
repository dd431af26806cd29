"""Load a notebook from disk into plain cells, with errors that name the file and the problem."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SameError


@dataclass
class NotebookCell:
    number: int                  # 1-based position in the notebook
    id: str
    cell_type: str               # code | markdown | raw
    source: str
    tags: list[str] = field(default_factory=list)


@dataclass
class LoadedNotebook:
    path: Path
    sha256: str
    kernel: str
    language: str
    cells: list[NotebookCell]
    nbformat: int
    nbformat_minor: int

    @property
    def code_cells(self) -> list[NotebookCell]:
        return [c for c in self.cells if c.cell_type == "code"]


def _parse_json(path: Path, raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SameError(f"not a notebook: the file is not UTF-8 text (byte {exc.start})", path=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SameError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                        path=str(path)) from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise SameError("not a notebook: the JSON has no 'cells' (is this a .ipynb file?)", path=str(path))
    if not isinstance(data.get("nbformat"), int):
        raise SameError("not a notebook: missing or invalid 'nbformat' version", path=str(path))
    return data


def _to_v4(path: Path, data: dict):
    # nbformat costs ~1.4 s to import here (jsonschema format checkers), so it is imported only
    # when a notebook is actually loaded; cached IRs skip this module entirely.
    import nbformat

    major = data["nbformat"]
    if major > nbformat.current_nbformat:
        raise SameError(f"notebook format {major} is newer than this nbformat supports "
                        f"({nbformat.current_nbformat}); upgrade nbformat", path=str(path))
    try:
        nb = nbformat.from_dict(data)
        if major < 4:
            nb = nbformat.convert(nb, 4)
    except Exception as exc:  # nbformat raises assorted errors for malformed old notebooks
        raise SameError(f"cannot upgrade notebook format {major} to 4: {exc}", path=str(path)) from None
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) if hasattr(exc, "absolute_path") else ""
        msg = str(getattr(exc, "message", exc)).splitlines()[0]
        raise SameError(f"invalid notebook: {msg}" + (f" (at {where})" if where else ""), path=str(path)) from None
    return nb


def _language(nb) -> tuple[str, str]:
    meta = nb.get("metadata", {}) or {}
    spec = meta.get("kernelspec", {}) or {}
    kernel = spec.get("name") or "python3"
    language = (spec.get("language") or (meta.get("language_info", {}) or {}).get("name") or "python")
    return kernel, str(language).lower()


def load_notebook(path: str | Path) -> LoadedNotebook:
    path = Path(path)
    if not path.exists():
        raise SameError("no such file", path=str(path))
    if path.is_dir():
        raise SameError("is a directory, not a notebook", path=str(path))
    raw = path.read_bytes()
    data = _parse_json(path, raw)
    nb = _to_v4(path, data)
    kernel, language = _language(nb)
    if language != "python":
        raise SameError(f"the notebook's kernel is {language!r} ({kernel}); same-nb runs Python notebooks only",
                        path=str(path))
    cells = []
    for i, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        tags = list((cell.get("metadata", {}) or {}).get("tags", []) or [])
        cells.append(NotebookCell(number=i + 1, id=str(cell.get("id") or f"cell-{i + 1}"),
                                  cell_type=cell.cell_type, source=source, tags=[str(t) for t in tags]))
    if not any(c.cell_type == "code" and c.source.strip() for c in cells):
        raise SameError("the notebook has no code cells", path=str(path))
    return LoadedNotebook(path=path, sha256=hashlib.sha256(raw).hexdigest(), kernel=kernel,
                          language=language, cells=cells, nbformat=4, nbformat_minor=int(nb.nbformat_minor))
