"""A cloudpickle Pickler that writes notebook values portably and byte-stably.

cloudpickle already pickles ``__main__`` functions and classes by value. On top of it:
- code objects drop the kernel's pid from their file name (ipykernel compiles cells as
  ``/tmp/ipykernel_<pid>/<hash>.py``), so a notebook function hashes the same in every kernel;
- a notebook class gets a class-tracker id derived from its content instead of a random uuid,
  so it (and instances of it) hash the same in every kernel;
- an ``lru_cache``/``cache`` wrapper of a notebook function, which plain pickle looks up by name
  in ``__main__`` (absent in another kernel), is written as "apply lru_cache(params) to f";
- a ``functools.cached_property`` is written without its lock (Python < 3.12 cannot pickle it).
The class-tracker part uses cloudpickle internals; if they change it is skipped (hashes then
vary per process, loading still works).
"""
from __future__ import annotations

import functools
import hashlib
import io
import re
import sys
import types
from collections import ChainMap

from .rebind import is_notebook_cached_function, is_notebook_class

_KERNEL_CELL_DIR = re.compile(r"^.*ipykernel_\d+(?=[\\/])")
_PENDING_TRACKER = "same-nb-pending"


class _Call:
    """Pickles as ``func(*args)``, so a reduction can call the result of another call."""

    def __init__(self, func: object, args: tuple):
        self.func = func
        self.args = args

    def __call__(self, *args: object) -> object:  # pickle requires a reduction's callable to be callable
        return self.func(*self.args)(*args)

    def __reduce__(self) -> tuple:
        return self.func, self.args


def _portable_filename(filename: str) -> str:
    return _KERNEL_CELL_DIR.sub("ipykernel", filename)


@functools.lru_cache(maxsize=None)
def pickler_class() -> type:
    import cloudpickle

    base_dispatch = cloudpickle.Pickler.dispatch_table
    reduce_code = base_dispatch.get(types.CodeType)

    def reduce_portable_code(code: types.CodeType) -> tuple:
        # Nested code objects (inner functions, lambdas) are reached through co_consts and come back here.
        filename = _portable_filename(code.co_filename)
        return reduce_code(code if filename == code.co_filename else code.replace(co_filename=filename))

    class NotebookPickler(cloudpickle.Pickler):
        dispatch_table = ChainMap({types.CodeType: reduce_portable_code}, base_dispatch) \
            if reduce_code is not None else base_dispatch

        def reducer_override(self, obj: object) -> object:
            if is_notebook_cached_function(obj):
                params = obj.cache_parameters()
                return _Call(functools.lru_cache, (params["maxsize"], params["typed"])), (obj.__wrapped__,)
            if isinstance(obj, functools.cached_property):
                # On Python < 3.12 it holds an RLock, which cannot be pickled; the rest can.
                return functools.cached_property, (obj.func,), {"attrname": obj.attrname}
            if is_notebook_class(obj):
                _pin_class_tracker(obj, type(self))
            return super().reducer_override(obj)

    return NotebookPickler


def _pin_class_tracker(cls: type, pickler: type) -> None:
    """Give ``cls`` a tracker id computed from its pickled content (cloudpickle would use a uuid4)."""
    internals = sys.modules.get("cloudpickle.cloudpickle")
    by_class = getattr(internals, "_DYNAMIC_CLASS_TRACKER_BY_CLASS", None)
    by_id = getattr(internals, "_DYNAMIC_CLASS_TRACKER_BY_ID", None)
    lock = getattr(internals, "_DYNAMIC_CLASS_TRACKER_LOCK", None)
    if by_class is None or by_id is None or lock is None or cls in by_class:
        return
    by_class[cls] = _PENDING_TRACKER  # a fixed id while hashing, so the digest is stable
    try:
        buffer = io.BytesIO()
        pickler(buffer, protocol=5).dump(cls)
    except BaseException:
        by_class.pop(cls, None)
        raise
    tracker = "same-nb-" + hashlib.sha256(buffer.getvalue()).hexdigest()[:32]
    with lock:
        by_class[cls] = tracker
        by_id.setdefault(tracker, cls)
