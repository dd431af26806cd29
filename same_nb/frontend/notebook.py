"""Load a notebook from disk into plain cells, with errors that name the file and the problem."""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from same_nb.errors import SameError


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
    except RecursionError:
        raise SameError("not a notebook: the JSON is nested too deeply", path=str(path)) from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise SameError("not a notebook: the JSON has no 'cells' (is this a .ipynb file?)", path=str(path))
    if type(data.get("nbformat")) is not int:   # bool is an int subclass
        raise SameError("not a notebook: missing or invalid 'nbformat' version", path=str(path))
    if not isinstance(data.get("cells", data.get("worksheets")), list):
        raise SameError("invalid notebook: 'cells' is not a list", path=str(path))
    return data


def _describe(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "the JSON is nested too deeply"
    return f"{type(exc).__name__}: {exc}"


def _fill_cell_ids(data: dict) -> None:
    """Give missing or duplicate cell ids (nbformat >= 4.5) stable values before nbformat would
    replace them with random ones: recompiling must give the same files."""
    cells = data.get("cells")
    if data.get("nbformat") != 4 or not isinstance(data.get("nbformat_minor"), int) \
            or data["nbformat_minor"] < 5 or not isinstance(cells, list):
        return
    seen: set[str] = set()
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        cid = cell.get("id")
        if not isinstance(cid, str) or not cid or cid in seen:
            base = cid if isinstance(cid, str) and cid else f"cell-{i + 1}"
            cid, n = base, 1
            while cid in seen:
                n += 1
                cid = f"{base}-{n}"
            cell["id"] = cid
        seen.add(cid)


def _to_v4(path: Path, data: dict) -> dict:
    # nbformat costs ~1.4 s to import here (jsonschema format checkers), so it is imported only
    # when a notebook is actually loaded; cached IRs skip this module entirely.
    import nbformat

    major = data["nbformat"]
    if major > nbformat.current_nbformat:
        raise SameError(f"notebook format {major} is newer than this nbformat supports "
                        f"({nbformat.current_nbformat}); upgrade nbformat", path=str(path))
    _fill_cell_ids(data)
    # nbformat raises assorted errors (KeyError, TypeError, RecursionError, ...) on malformed input.
    # A v4 notebook stays a plain dict: converting it to a NotebookNode costs time and buys nothing.
    nb = data
    if major < 4:
        try:
            nb = nbformat.convert(nbformat.from_dict(data), 4)
        except Exception as exc:
            raise SameError(f"cannot upgrade notebook format {major} to 4: {_describe(exc)}",
                            path=str(path)) from None
    try:
        with warnings.catch_warnings():    # nbformat warns about what it repairs; the ids are fixed above
            warnings.simplefilter("ignore")
            nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        where = "/".join(str(p) for p in getattr(exc, "absolute_path", ()))
        msg = (str(getattr(exc, "message", exc)).splitlines() or ["schema mismatch"])[0]
        raise SameError(f"invalid notebook: {msg}" + (f" (at {where})" if where else ""), path=str(path)) from None
    except Exception as exc:
        raise SameError(f"invalid notebook: {_describe(exc)}", path=str(path)) from None
    return nb


def _language(nb) -> tuple[str, str]:
    meta = nb.get("metadata", {}) or {}
    spec = meta.get("kernelspec", {}) or {}
    kernel = spec.get("name") or "python3"
    language = (spec.get("language") or (meta.get("language_info", {}) or {}).get("name") or "python")
    return kernel, str(language).lower()


def load_notebook(path: str | Path) -> LoadedNotebook:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SameError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise SameError("is a directory, not a notebook", path=str(path)) from None
    except (OSError, ValueError) as exc:   # ValueError: a NUL byte in the path
        raise SameError(f"cannot read the notebook: {getattr(exc, 'strerror', None) or exc}",
                        path=str(path)) from None
    return load_notebook_bytes(path, raw)


def load_notebook_bytes(path: str | Path, raw: bytes) -> LoadedNotebook:
    """A notebook from its file's bytes (an editor's unsaved content), reported as the file at ``path``."""
    path = Path(path)
    data = _parse_json(path, raw)
    nb = _to_v4(path, data)
    kernel, language = _language(nb)
    if language != "python":
        raise SameError(f"the notebook's kernel is {language!r} ({kernel}); same-nb runs Python notebooks only",
                        path=str(path))
    cells = []
    for i, cell in enumerate(nb["cells"]):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        tags = list((cell.get("metadata", {}) or {}).get("tags", []) or [])
        cells.append(NotebookCell(number=i + 1, id=str(cell.get("id") or f"cell-{i + 1}"),
                                  cell_type=cell["cell_type"], source=source, tags=[str(t) for t in tags]))
    if not any(c.cell_type == "code" and c.source.strip() for c in cells):
        raise SameError("the notebook has no code cells", path=str(path))
    return LoadedNotebook(path=path, sha256=hashlib.sha256(raw).hexdigest(), kernel=kernel,
                          language=language, cells=cells, nbformat=4, nbformat_minor=int(nb["nbformat_minor"]))
