"""How each kind of value is written to and read from an artifact file.

The registry is one ordered table, ``SERIALIZERS``: the first serializer whose ``matches`` accepts a value
writes it;
if it cannot write that value exactly it raises ``_Inexact`` and the next one is tried, ending at
pickle (cloudpickle, protocol 5), which accepts anything picklable. ``matches`` never imports a
heavy module: a value can only be a DataFrame if pandas is already in ``sys.modules``.

Bytes are made deterministic where the formats allow, since artifacts are named by their hash:
the same DataFrame, array, plain container or notebook function gives the same sha256 in any
process. Exceptions: a set or frozenset of strings (iteration order follows PYTHONHASHSEED).
"""
from __future__ import annotations

import itertools
import json
import pickle
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import notebook_pickle
from . import serializers_ml as ml
from .artifacts import ArtifactStore, hash_file
from .errors import ModuleValueError, SpecError
from .rebind import is_notebook_cached_function, is_notebook_class, is_notebook_function, rebind

PICKLE_PROTOCOL = 5
_META_KEY = b"same_nb"
_SERIES_COLUMN = "__series__"


@dataclass(frozen=True)
class Serializer:
    kind: str
    matches: Callable[[Any], bool]
    dump: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


_Inexact = ml.Inexact     # this serializer cannot write this value so that it loads back identical


def qualified_type_name(obj: object) -> str:
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# -- pickle -------------------------------------------------------------------------------------

def _dump_pickle(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        notebook_pickle.pickler_class()(f, protocol=PICKLE_PROTOCOL).dump(obj)


def _load_pickle(path: Path) -> Any:
    # Plain pickle: cloudpickle is imported only if the stream needs it.
    with open(path, "rb") as f:
        return pickle.load(f)


# -- pandas -------------------------------------------------------------------------------------

def _is_dataframe(obj: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and type(obj) is pd.DataFrame


def _is_series(obj: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and type(obj) is pd.Series


def _arrow_exact_dtype(dtype: Any, in_index: bool) -> bool:
    """dtypes that pyarrow round-trips exactly (checked on a matrix of frames in the tests)."""
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype):
        return dtype.kind in "biufMm"  # not object, complex, bytes/str or void
    if isinstance(dtype, pd.CategoricalDtype):
        return dtype.categories.dtype != object and _arrow_exact_dtype(dtype.categories.dtype, in_index)
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage.startswith("pyarrow")  # python-storage strings come back pyarrow-backed
    if isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype, pd.IntervalDtype)):
        return True
    masked = (pd.BooleanDtype, pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype, pd.UInt8Dtype,
              pd.UInt16Dtype, pd.UInt32Dtype, pd.UInt64Dtype, pd.Float32Dtype, pd.Float64Dtype)
    # Nullable Int64/boolean/Float64 come back as float/object when they are an index level.
    return not in_index and isinstance(dtype, masked)


def _arrow_exact(df: Any) -> bool:
    import pandas as pd

    columns = df.columns
    if isinstance(columns, pd.RangeIndex) or not columns.is_unique or not df.flags.allows_duplicate_labels:
        return False
    labels = (part for label in columns for part in label) if isinstance(columns, pd.MultiIndex) else columns
    if not all(isinstance(label, str) for label in labels):
        return False
    names = list(columns.names) + list(df.index.names)
    if not all(n is None or isinstance(n, str) for n in names):
        return False
    index_dtypes = df.index.dtypes if isinstance(df.index, pd.MultiIndex) else [df.index.dtype]
    return (all(_arrow_exact_dtype(d, in_index=True) for d in index_dtypes)
            and all(_arrow_exact_dtype(d, in_index=False) for d in df.dtypes))


def _index_freqs(index: Any) -> list[str | None]:
    levels = getattr(index, "levels", [index])
    return [getattr(level, "freqstr", None) for level in levels]


def _with_freqs(index: Any, freqs: list[str | None]) -> Any:
    """Arrow keeps index values, not the ``freq`` of a DatetimeIndex/TimedeltaIndex: put it back."""
    import pandas as pd

    if isinstance(index, pd.MultiIndex):
        levels = [level if f is None else type(level)(level, freq=f) for level, f in zip(index.levels, freqs)]
        return index.set_levels(levels) if any(freqs) else index
    return index if freqs[0] is None else type(index)(index, freq=freqs[0])


def _write_arrow(df: Any, path: Path, meta: dict) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather

    if not _arrow_exact(df):
        raise _Inexact
    try:
        table = pa.Table.from_pandas(df, preserve_index=None)  # a RangeIndex is kept as metadata
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise _Inexact from exc
    meta = {**meta, "index_freqs": _index_freqs(df.index)}
    table = table.replace_schema_metadata({**table.schema.metadata, _META_KEY: json.dumps(meta).encode()})
    feather.write_feather(table, str(path), compression="uncompressed")


def _read_arrow(path: Path) -> tuple[Any, dict]:
    import pyarrow.feather as feather

    table = feather.read_table(str(path), memory_map=False)
    meta = json.loads(table.schema.metadata.get(_META_KEY, b"{}"))
    df = table.to_pandas()
    df.index = _with_freqs(df.index, meta.get("index_freqs", [None]))
    return df, meta


def _dump_dataframe(df: Any, path: Path) -> None:
    _write_arrow(df, path, {})


def _load_dataframe(path: Path) -> Any:
    return _read_arrow(path)[0]


def _dump_series(series: Any, path: Path) -> None:
    if series.name is not None and not isinstance(series.name, str):
        raise _Inexact
    _write_arrow(series.to_frame(name=_SERIES_COLUMN), path, {"series_name": series.name})


def _load_series(path: Path) -> Any:
    df, meta = _read_arrow(path)
    series = df[_SERIES_COLUMN]
    series.name = meta["series_name"]
    return series


# -- numpy --------------------------------------------------------------------------------------

def _is_plain_array(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and type(obj) is np.ndarray and not obj.dtype.hasobject


def _dump_array(array: Any, path: Path) -> None:
    import numpy as np

    if not array.flags.writeable or not (array.flags.c_contiguous or array.flags.f_contiguous):
        raise _Inexact                 # the .npy format keeps neither: numpy-layout does
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a bare path
        np.save(f, array, allow_pickle=False)


def _load_array(path: Path) -> Any:
    import numpy as np

    with open(path, "rb") as f:
        return np.load(f, allow_pickle=False)


# A strided view or a read-only array: code may look at its flags (`a.flags.writeable`, `C_CONTIGUOUS`),
# so it arrives with the same strides inside a fresh buffer, and read-only if it was.
_MAX_LAYOUT_WASTE = 64


def _dump_array_layout(array: Any, path: Path) -> None:
    import numpy as np

    data = np.ascontiguousarray(array)
    layout = {"strides": array.strides, "writeable": bool(array.flags.writeable)}
    if _layout_bytes(array.shape, array.strides, array.itemsize) > _MAX_LAYOUT_WASTE * max(data.nbytes, 1 << 16):
        layout["strides"] = None       # a huge buffer for a sparse view: keep the values, say the layout is lost
    _dump_pickle({"data": data, **layout}, path)


def _layout_bytes(shape: tuple, strides: tuple, itemsize: int) -> int:
    if 0 in shape:
        return 0
    low = sum(min(0, s * (n - 1)) for n, s in zip(shape, strides))
    high = sum(max(0, s * (n - 1)) for n, s in zip(shape, strides))
    return high - low + itemsize


def _load_array_layout(path: Path) -> Any:
    import numpy as np

    saved = _load_pickle(path)
    data, strides = saved["data"], saved["strides"]
    if strides is None or 0 in data.shape:
        array = data
    else:
        low = sum(min(0, s * (n - 1)) for n, s in zip(data.shape, strides))
        buffer = np.zeros(_layout_bytes(data.shape, strides, data.itemsize), dtype=np.uint8)
        array = np.ndarray(data.shape, data.dtype, buffer=buffer, offset=-low, strides=strides)
        array[...] = data
    array.flags.writeable = saved["writeable"]
    return array


# -- modules ------------------------------------------------------------------------------------
# `fmt = json if flag else None`: a module held in a variable travels as its name and is imported again.

def _is_importable_module(obj: Any) -> bool:
    return (isinstance(obj, types.ModuleType) and obj.__name__ != "__main__"
            and sys.modules.get(obj.__name__) is obj and getattr(obj, "__spec__", None) is not None)


def _dump_module(module: Any, path: Path) -> None:
    path.write_text(json.dumps({"module": module.__name__}), encoding="utf-8")


def _load_module(path: Path) -> Any:
    import importlib

    return importlib.import_module(json.loads(path.read_text(encoding="utf-8"))["module"])


def _is_notebook_callable(obj: Any) -> bool:
    return is_notebook_function(obj) or is_notebook_cached_function(obj)


SERIALIZERS: list[Serializer] = [
    Serializer("module", _is_importable_module, _dump_module, _load_module),
    Serializer("pandas-dataframe", _is_dataframe, _dump_dataframe, _load_dataframe),
    Serializer("pandas-series", _is_series, _dump_series, _load_series),
    Serializer("numpy-array", _is_plain_array, _dump_array, _load_array),
    Serializer("numpy-layout", _is_plain_array, _dump_array_layout, _load_array_layout),
    # Libraries' own formats, each used only when the library is imported (serializers_ml.py).
    Serializer("xgboost-booster", ml.is_xgboost_booster, ml.dump_xgboost_booster, ml.load_xgboost_booster),
    Serializer("xgboost-dmatrix", ml.is_xgboost_dmatrix, ml.dump_xgboost_dmatrix, ml.load_xgboost_dmatrix),
    Serializer("lightgbm-booster", ml.is_lightgbm_booster, ml.dump_lightgbm_booster, ml.load_lightgbm_booster),
    Serializer("torch-tensor", ml.is_torch_tensor, ml.dump_torch_tensor, ml.load_torch_tensor),
    Serializer("torch-module", ml.is_torch_module, ml.dump_torch_module, ml.load_torch_module),
    Serializer("keras-model", ml.is_keras_model, ml.dump_keras_model, ml.load_keras_model),
    Serializer("function", _is_notebook_callable, _dump_pickle, _load_pickle),
    Serializer("class", is_notebook_class, _dump_pickle, _load_pickle),
    Serializer("pickle", lambda obj: True, _dump_pickle, _load_pickle),
    # Outputs that are one object or hold one (runtime/sharing.py): a pickled {name: value}, chosen by
    # the step, never by matching one value.
    Serializer("group", lambda obj: False, _dump_pickle, _load_pickle),
]
_BY_KIND = {s.kind: s for s in SERIALIZERS}

# What a value of each kind needs installed to be written by its producer and read by its consumers, by
# import name. A step's lock adds these (``envs/sources.py``): a DataFrame crosses as an Arrow file, so
# pyarrow must be in the pod even when no cell imports it. The value's own class adds its library
# (``value_needs``): an sklearn estimator pickles by reference to sklearn.
KIND_NEEDS: dict[str, tuple[str, ...]] = {
    "module": (),                                  # the module itself, by its name (``value_needs``)
    "pandas-dataframe": ("pandas", "pyarrow"),
    "pandas-series": ("pandas", "pyarrow"),
    "numpy-array": ("numpy",),
    "numpy-layout": ("numpy", "cloudpickle"),
    "xgboost-booster": ("xgboost",),
    "xgboost-dmatrix": ("xgboost",),
    "lightgbm-booster": ("lightgbm",),
    "torch-tensor": ("torch",),
    "torch-module": ("torch", "cloudpickle"),
    "keras-model": (),                             # keras or tf_keras: the model's class says which
    "function": ("cloudpickle",),
    "class": ("cloudpickle",),
    "pickle": ("cloudpickle",),
    "group": ("cloudpickle",),
}
_NOT_DISTRIBUTIONS = frozenset({"builtins", "__main__", "same_nb"})
_WALK_LIMIT = 256          # objects looked at inside a pickled container: cheap, and catches a list of frames


def _type_tops(obj: Any, found: set[str]) -> None:
    """Top-level modules of the classes in ``obj`` and (bounded) its containers' items: a pickled
    list of DataFrames needs pandas to load even though a list needs nothing."""
    queue, seen = [obj], 0
    try:
        while queue and seen < _WALK_LIMIT:
            item = queue.pop()
            seen += 1
            cls = type(item)
            found.add(str(getattr(cls, "__module__", None) or "builtins").split(".")[0])
            if cls in (list, tuple, set, frozenset, dict):
                queue.extend(itertools.islice(item.values() if cls is dict else item, _WALK_LIMIT - seen))
    except Exception:                     # advisory: a value's odd class never fails the step that saves it
        pass


def value_needs(kind: str, obj: Any) -> list[str]:
    """Import names a value of ``kind`` needs installed to cross a step boundary (standard library,
    ``__main__`` and same-nb itself left out: they are always there)."""
    found = set(KIND_NEEDS.get(kind, ("cloudpickle",)))
    if kind == "module":
        found.add(obj.__name__.split(".")[0])
    else:
        _type_tops(obj, found)
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    return sorted(n for n in found if n not in stdlib and n not in _NOT_DISTRIBUTIONS and not n.startswith("_"))


def serialize(name: str, obj: Any, path: Path) -> str:
    """Write ``obj`` to ``path`` with the first serializer that can; returns the kind used."""
    if isinstance(obj, types.ModuleType) and not _is_importable_module(obj):
        raise ModuleValueError(
            f"variable '{name}' is the module {obj.__name__}, which cannot be imported again by name (it was "
            f"made at run time); import it at the top of each step that uses it instead")
    for serializer in SERIALIZERS:
        if serializer.matches(obj):
            try:
                serializer.dump(obj, path)
                return serializer.kind
            except _Inexact:
                continue
    raise AssertionError("the pickle serializer matches every value")


def _put(write: Callable[[Path], str], store: ArtifactStore) -> tuple[str, str, int]:
    """Run ``write(temp path)`` (returning the kind it wrote), then store the bytes under their hash:
    (kind, sha256, size). The temp file never outlives a failed write."""
    tmp = store.new_temp()
    try:
        kind = write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return (kind, *store.put_file(tmp))


def dump_value(name: str, obj: Any, store: ArtifactStore) -> dict:
    """Store ``obj``; returns its record ``{name, sha256, kind, type, size}``."""
    kind, sha256, size = _put(lambda tmp: serialize(name, obj, tmp), store)
    return {"name": name, "sha256": sha256, "kind": kind, "type": qualified_type_name(obj), "size": size}


def dump_group(values: dict[str, Any], store: ArtifactStore) -> dict[str, dict]:
    """Store values that share objects as one artifact; returns a record per name (same sha256).
    Names are pickled in sorted order: the bytes must not depend on the order a runner lists outputs."""
    values = dict(sorted(values.items()))
    kind, sha256, size = _put(lambda tmp: _dump_pickle(values, tmp) or "group", store)
    return {name: {"name": name, "sha256": sha256, "kind": kind, "type": qualified_type_name(obj), "size": size,
                   "group": list(values)} for name, obj in values.items()}


def load_group(record: dict, store: ArtifactStore) -> dict[str, Any]:
    """Every value of the group ``record`` belongs to, unbound: {name: value}."""
    return _load_pickle(store.verified_path(record["sha256"], record["name"]))


def fingerprint(name: str, obj: Any, store: ArtifactStore) -> str:
    """sha256 of the bytes ``obj`` would be stored as, without storing it."""
    tmp = store.new_temp()
    try:
        serialize(name, obj, tmp)
        return hash_file(tmp)[0]
    finally:
        tmp.unlink(missing_ok=True)


def load_value(record: dict, store: ArtifactStore, namespace: dict | None = None) -> Any:
    """Load a stored value after checking its hash; notebook functions/classes bind to ``namespace``."""
    serializer = _BY_KIND.get(record.get("kind"))
    if serializer is None:
        raise SpecError(f"input '{record.get('name')}' has unknown artifact kind {record.get('kind')!r}")
    if serializer.kind == "group":
        obj = load_group(record, store)[record["name"]]
    else:
        obj = serializer.load(store.verified_path(record["sha256"], record["name"]))
    return obj if namespace is None else rebind(obj, namespace)
