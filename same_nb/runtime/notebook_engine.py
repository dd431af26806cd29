"""The papermill engine that runs step notebooks, locally and in Kubeflow pods: papermill's nbclient
engine with a manager that writes the executed notebook at a bounded rate.

Standard library only at import, relative imports only (this folder is shipped to pods on its own):
papermill and nbformat are imported by ``register()`` and by the writes, when a step runs.
``register()`` adds the engine to papermill's registry under ``ENGINE``; then pass
``engine_name=ENGINE, autosave_cell_every=SAVE_INTERVAL`` to ``papermill.execute_notebook``.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time

# papermill writes the whole executed notebook at every cell's start and end: quadratic in cells (a
# 1,000-cell step took 212 s). Ours writes at most once a second, and never spends more than about a
# tenth of the run writing (a write of a big notebook waits ten times its own length before the next),
# plus always at the start, and at the end or on failure, so a failed step shows where it stopped.
SAVE_INTERVAL = 1.0         # seconds between two writes of the executed notebook while it runs
SAVE_SHARE = 10             # ... and at least this many times the last write's duration
ENGINE = "same-nb"          # the papermill engine name
GENERATED_TAG = "same-nb-generated"     # as bundle/writer.py marks the cells it writes
_ENGINE_LOCK = threading.Lock()


_SPLIT_MIMES = ("application/javascript", "image/svg+xml")    # split into lines like text/* (nbformat)


def _notebook_text(nb) -> str:
    """The notebook's JSON as nbformat writes it (multi-line strings as lists of lines, transient keys
    dropped), without nbformat's deep copy of the whole notebook or its schema validation: three
    times cheaper. Only papermill's final write of the executed notebook validates it."""
    from nbformat.v4.nbjson import BytesEncoder

    def lines(value):
        return value.splitlines(True) if isinstance(value, str) else value

    def bundle(data: dict) -> dict:
        return {k: lines(v) if k.startswith("text/") or k in _SPLIT_MIMES else v for k, v in data.items()}

    cells = []
    for cell in nb.cells:
        out = {**cell, "source": lines(cell.get("source", "")),
               "metadata": {k: v for k, v in cell.get("metadata", {}).items() if k != "trusted"}}
        if "attachments" in cell:
            out["attachments"] = {name: bundle(b) for name, b in cell["attachments"].items()}
        if "outputs" in cell:
            out["outputs"] = [{**o, "data": bundle(o["data"])} if "data" in o
                              else {**o, "text": lines(o["text"])} if o.get("output_type") == "stream" else o
                              for o in cell["outputs"]]
        cells.append(out)
    skip = ("orig_nbformat", "orig_nbformat_minor", "signature")
    doc = {**nb, "cells": cells, "metadata": {k: v for k, v in nb.get("metadata", {}).items() if k not in skip}}
    return json.dumps(doc, cls=BytesEncoder, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False)


def _write_atomically(text: str, path: str) -> None:
    """Readers (the server's live view) never see half a notebook."""
    tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"    # open() keeps the umask's mode
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def mark_injected(nb) -> None:
    """papermill's injected-parameters cell is generated like the bundle's own: tag it and collapse its input."""
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and GENERATED_TAG not in tags:
            cell.metadata["tags"] = [*tags, GENERATED_TAG]
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True


def register():
    """papermill's nbclient engine with the throttled manager, registered once under ENGINE; returns it."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
    from papermill.exceptions import PapermillException

    with _ENGINE_LOCK:      # steps run on several threads
        try:
            return papermill_engines.get_engine(ENGINE)
        except PapermillException:
            engine = _throttled_engine(NBClientEngine, NotebookExecutionManager)
            papermill_engines.register(ENGINE, engine)
            return engine


def _throttled_engine(base_engine, base_manager):
    class ThrottledManager(base_manager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.next_write = 0.0           # monotonic time before which save() does not write
            self.writes = 0

        def save(self, **kwargs):
            if kwargs.get("nb"):
                self.nb = kwargs["nb"]
            if self.output_path and time.monotonic() >= self.next_write:
                self.write()

        def write(self) -> None:
            began = time.monotonic()
            _write_atomically(_notebook_text(self.nb), self.output_path)
            done = time.monotonic()
            self.next_write = done + max(SAVE_INTERVAL, SAVE_SHARE * (done - began))
            self.writes += 1
            self.last_save_time = self.now()    # papermill's autosave_cell: a cell printing for long is saved

        def finish(self, *, write: bool) -> None:
            if write:
                self.next_write = 0.0       # notebook_complete's save() always writes
            else:
                self.next_write = math.inf  # papermill writes the final notebook itself
            self.notebook_complete()

    class ThrottledEngine(base_engine):
        manager_class = ThrottledManager

        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):
            mark_injected(nb)
            nb_man = cls.manager_class(nb, output_path=output_path, progress_bar=progress_bar,
                                      log_output=log_output, autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            except BaseException:
                # Kernel died, timed out, interrupted: papermill marks the cell completed and writes
                # nothing more. Mark the cell that was running as failed (later ones stay pending) and write.
                started = [c for c in nb_man.nb.cells if c.get("metadata", {}).get("papermill", {}).get("start_time")]
                if started:
                    nb_man.cell_exception(started[-1])
                nb_man.cleanup_pbar()
                nb_man.finish(write=True)
                raise
            nb_man.cleanup_pbar()
            nb_man.finish(write=False)
            return nb_man.nb

    return ThrottledEngine
