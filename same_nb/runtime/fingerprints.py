"""Cheap content fingerprints of a step's inputs, taken after loading and again before saving, to catch
changes the plan did not predict (a mutation through an alias, a notebook function, a library call).

Arrays and DataFrames hash their buffers (no second serialization); other values hash their pickle.
A fingerprint is only compared with another one taken in the same kernel, so it needs to be stable
within a process, not across processes. Standard library only at import.
"""
from __future__ import annotations

import hashlib
import sys
from typing import Any

UNHASHABLE = "unhashable"     # the value could not be fingerprinted at all


def content_hash(obj: Any) -> str:
    h = hashlib.blake2b(digest_size=20)
    try:
        _feed(h, obj)
    except Exception:
        return UNHASHABLE
    return h.hexdigest()


_MAX_ITEMS = 10_000     # containers larger than this hash as one pickle


def _feed(h, obj: Any, depth: int = 0) -> None:
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if np is not None and isinstance(obj, np.ndarray) and obj.dtype != object and obj.dtype.fields is None:
        _feed_array(h, obj)
    elif pd is not None and isinstance(obj, pd.DataFrame):
        h.update(b"df")
        _feed_pickle(h, (list(obj.columns), [str(t) for t in obj.dtypes]))
        _feed_index(h, obj.index)
        for i in range(obj.shape[1]):
            _feed_series_values(h, obj.iloc[:, i])
        _feed_pickle(h, obj.attrs)
    elif pd is not None and isinstance(obj, pd.Series):
        h.update(b"series")
        _feed_pickle(h, (obj.name, str(obj.dtype)))
        _feed_index(h, obj.index)
        _feed_series_values(h, obj)
        _feed_pickle(h, obj.attrs)
    elif type(obj) in (list, tuple) and depth < 3 and len(obj) <= _MAX_ITEMS:
        # Element by element, so a DataFrame inside hashes by content, not by its block layout
        # (which pandas may consolidate in place without changing a value).
        h.update(f"{type(obj).__name__}{len(obj)}".encode())
        for item in obj:
            _feed(h, item, depth + 1)
    elif type(obj) is dict and depth < 3 and len(obj) <= _MAX_ITEMS:
        h.update(f"dict{len(obj)}".encode())
        for key, value in obj.items():
            _feed_pickle(h, key)
            _feed(h, value, depth + 1)
    else:
        _feed_pickle(h, obj)


def _feed_array(h, array) -> None:
    import numpy as np

    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(memoryview(np.ascontiguousarray(array)).cast("B"))


def _feed_index(h, index) -> None:
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        h.update(f"range{index.start},{index.stop},{index.step},{index.name}".encode())
    else:
        _feed_pickle(h, index)


def _feed_series_values(h, series) -> None:
    import numpy as np

    values = series.to_numpy(copy=False) if series.dtype != object else None
    if isinstance(values, np.ndarray) and values.dtype != object and values.dtype.fields is None:
        _feed_array(h, values)
        return
    try:                                # strings, categoricals, nullable dtypes: vectorized hashing
        import pandas as pd

        _feed_array(h, pd.util.hash_pandas_object(series, index=False).to_numpy())
        h.update(str(series.dtype).encode())
    except TypeError:                   # unhashable cells (lists, dicts): their pickle
        _feed_pickle(h, list(series))


def _code_identity(code) -> tuple:
    # Code objects are immutable, but CPython rewrites their inline caches as they run, which changes
    # their pickle: within one process their identity says whether a function's code was replaced.
    return str, (f"code:{id(code)}",)


_PICKLER = None


def _pickler():
    global _PICKLER
    if _PICKLER is None:
        import copyreg
        import types
        from collections import ChainMap
        try:
            from .notebook_pickle import pickler_class  # as artifacts are written: one class tracker id
            base = pickler_class()
        except ImportError:                              # no cloudpickle in this kernel
            import pickle
            base = pickle.Pickler
        table = getattr(base, "dispatch_table", None) or {}

        def reducer_override(self, obj):
            if isinstance(obj, type):
                # Pickling an instance caches __slotnames__ in its class's dict: cache it up front.
                copyreg._slotnames(obj)
            parent = getattr(super(self.__class__, self), "reducer_override", None)
            return parent(obj) if parent else NotImplemented

        _PICKLER = type("FingerprintPickler", (base,),
                        {"dispatch_table": ChainMap({types.CodeType: _code_identity}, table),
                         "reducer_override": reducer_override})
    return _PICKLER


def _feed_pickle(h, obj: Any) -> None:
    import io

    buffer = io.BytesIO()
    _pickler()(buffer, protocol=5).dump(obj)
    h.update(buffer.getbuffer())
