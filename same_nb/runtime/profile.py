"""A small, bounded profile of each DataFrame, Series and numpy array a step saves (whichever serializer
wrote it: a frame with object columns is pickled), for drift checks.

The profile is a JSON sidecar beside the artifact, named by its sha256 (``<store>/<sha[:2]>/<sha>.profile.json``):
the same bytes have the same profile, so a cached step's outputs keep theirs and nothing is computed
twice. It holds rows, columns and dtypes, and per column the null fraction, min/max/mean/std and a
fixed-size quantile sketch for numeric columns, or the most frequent categories for the others.

Cost is bounded whatever the value's size: above ``SAMPLE_ROWS`` rows (fewer for a wide value, see
``_sample_rows``) every statistic comes from that many rows drawn with a fixed seed (the profile says so
under ``sample``), at most ``MAX_COLUMNS`` columns are profiled, categories are at most ``TOP_K`` and
their text is cut at ``MAX_TEXT`` characters. numpy and pandas are touched only for values already of their types, so this
module stays standard library at import (a bare pod imports it). ``SAME_NB_PROFILE=0`` turns
profiling off (the benchmark's baseline).
"""
from __future__ import annotations

import functools
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

PROFILE_VERSION = 1
SAMPLE_ROWS = 5_000       # rows the statistics are computed from, at most ...
SAMPLE_CELLS = 200_000    # ... fewer for a wide value, to look at about this many cells ...
MIN_SAMPLE_ROWS = 2_000   # ... but never fewer rows than this
SAMPLE_BLOCKS = 100       # sampled rows come in this many runs of consecutive rows
SAMPLE_SEED = 0           # fixed: one artifact always gets one profile
MAX_COLUMNS = 100         # columns profiled, at most; the rest are only counted
TOP_K = 10                # categories kept per non-numeric column
MAX_TEXT = 40             # characters kept of a category or column name
QUANTILES = 21            # the sketch: values at 0%, 5%, ..., 100% of a numeric column
# A frame with text columns is pickled, not written as Arrow: what is profiled is the value's type, not
# how it was stored. These are the stored records' ``type`` of the values ``profile_value`` accepts
# (pandas 3 names its classes' module ``pandas``, pandas 2 ``pandas.core.frame``).
PROFILED_TYPES = frozenset({"pandas.DataFrame", "pandas.Series", "pandas.core.frame.DataFrame",
                            "pandas.core.series.Series", "numpy.ndarray"})
ENV_SWITCH = "SAME_NB_PROFILE"
SUFFIX = ".profile.json"      # an artifact is named by its bare sha256: nothing else there ends so


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


def profile_path(root: str | os.PathLike, sha256: str) -> Path:
    # Beside the artifact, in the directory its save has just made: a directory of its own would cost
    # two mkdirs per new prefix, a fifth of the profile's whole cost on a 1M-row frame.
    return Path(root) / sha256[:2] / f"{sha256}{SUFFIX}"


def read_profile(root: str | os.PathLike, sha256: str, name: str | None = None) -> dict | None:
    """The stored profile of artifact ``sha256`` (of its member ``name`` when it is a group of values
    saved together), or None (no profile, or an unreadable one)."""
    data = read_profile_file(profile_path(root, sha256))
    if data is None:                   # stores written before profiles moved beside their artifacts
        data = read_profile_file(Path(root) / "profiles" / sha256[:2] / f"{sha256}.json")
    if data is None:
        return None
    if "group" in data:
        member = data["group"].get(name) if isinstance(data["group"], dict) else None
        return member if isinstance(member, dict) else None
    return data


def save_profile(root: str | os.PathLike, record: dict, obj: Any) -> bool:
    """Write the profile of ``obj`` (stored as ``record``) beside the store once; True when one exists
    afterwards. Advisory: a value that cannot be profiled never fails the step that saves it."""
    if record.get("kind") == "group" or not enabled():      # a group's one sha256 holds several values
        return False
    if not profiled(obj):
        return False
    path = profile_path(root, record["sha256"])
    if path.is_file():
        return True
    try:
        profile = profile_value(obj)
    except Exception:
        return False
    return profile is not None and _write(path, profile)


def save_group_profiles(root: str | os.PathLike, sha256: str, values: dict[str, Any]) -> list[str]:
    """Profiles of the values a step saved together as one group artifact (they share objects: a frame
    and a column of it, say), one per name in one sidecar; returns the names profiled."""
    if not enabled():
        return []
    path = profile_path(root, sha256)
    existing = read_profile_file(path)
    if existing is not None and "group" in existing:
        return sorted(existing["group"])
    members = {}
    for name, obj in values.items():
        if profiled(obj):
            try:
                members[name] = profile_value(obj)
            except Exception:
                continue
    members = {name: p for name, p in members.items() if p is not None}
    if not members or not _write(path, {"version": PROFILE_VERSION, "group": members}):
        return []
    return sorted(members)


def read_profile_file(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == PROFILE_VERSION else None


def _write(path: Path, data: dict) -> bool:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        text = json.dumps(data, sort_keys=True, allow_nan=False).encode("utf-8")
        try:
            tmp.write_bytes(text)
        except FileNotFoundError:      # the artifact's directory is normally there already
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(text)
        os.replace(tmp, path)
    except (OSError, ValueError):
        tmp.unlink(missing_ok=True)
        return False
    return True


def profiled(obj: Any) -> bool:
    """Whether ``obj`` gets a profile: a DataFrame, a Series or a numpy array of at least one dimension."""
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    return ((pd is not None and isinstance(obj, (pd.DataFrame, pd.Series)))
            or (np is not None and isinstance(obj, np.ndarray) and obj.ndim >= 1))


def profile_value(obj: Any) -> dict | None:
    """The profile of a DataFrame, Series or numpy array (None for anything else or a 0-d array)."""
    with warnings.catch_warnings():    # advisory: nothing of it in the step's own output
        warnings.simplefilter("ignore")
        return _profile_any(obj)


def _profile_any(obj: Any) -> dict | None:
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    if pd is not None and isinstance(obj, pd.DataFrame):
        return _profile_frame(obj, "dataframe")
    if pd is not None and isinstance(obj, pd.Series):
        name = "values" if obj.name is None else obj.name
        return _profile_frame(obj.to_frame(name=name), "series")
    if np is not None and isinstance(obj, np.ndarray) and obj.ndim >= 1:
        return _profile_array(obj)
    return None


def _sample_rows(columns: int) -> int:
    """Rows to sample: SAMPLE_ROWS, fewer for a wide value so the cells looked at stay near SAMPLE_CELLS."""
    return max(MIN_SAMPLE_ROWS, min(SAMPLE_ROWS, SAMPLE_CELLS // max(columns, 1)))


def _sample_index(n: int, columns: int = 1) -> tuple[Any, dict | None]:
    size = _sample_rows(columns)
    if n <= size:
        return None, None
    index, sample = _stratified(n, size)
    return index, dict(sample)


@functools.lru_cache(maxsize=16)
def _stratified(n: int, size: int) -> tuple[Any, dict]:
    """Stratified blocks: one run of consecutive rows at a random place in each 1/SAMPLE_BLOCKS of the value.
    Rows picked one by one at random cost a cache miss each; runs are read at memory speed, and every
    part of a sorted or time-ordered frame is still represented. Kept per row count (read-only): a
    step's values often share one, and seeding a generator costs as much as the statistics it feeds."""
    import numpy as np

    run = size // SAMPLE_BLOCKS
    stratum = n // SAMPLE_BLOCKS
    starts = np.arange(SAMPLE_BLOCKS) * stratum + np.random.default_rng(SAMPLE_SEED).integers(
        0, stratum - run + 1, SAMPLE_BLOCKS)
    index = (starts[:, None] + np.arange(run)[None, :]).ravel()
    index.flags.writeable = False
    return index, {"rows": len(index), "of": n, "seed": SAMPLE_SEED,
                   "method": f"{SAMPLE_BLOCKS} runs of {run} consecutive rows, one at a random place in each "
                             f"1/{SAMPLE_BLOCKS} of the rows"}


def _profile_frame(df: Any, kind: str) -> dict:
    import numpy as np

    rows, ncols = df.shape
    kept = min(ncols, MAX_COLUMNS)
    index, sample = _sample_index(rows, kept)
    part = df if kept == ncols else df.iloc[:, :kept]
    arrays = _column_arrays(part)
    dtypes = [array.dtype for array in arrays]
    numeric = [j for j, t in enumerate(dtypes) if _numeric_dtype(t)]
    if index is None:
        block = (part.iloc[:, numeric].to_numpy(dtype="float64", na_value=np.nan) if numeric
                 else np.empty((rows, 0)))
    else:
        # Column by column from the frame's own arrays: a sampled copy of the whole frame (``take``)
        # costs more than the statistics themselves on a large frame. Column-major, as pandas hands a
        # frame's block over: each column's sort and sums run over contiguous memory.
        block = np.empty((len(index), len(numeric)), order="F")
        for k, j in enumerate(numeric):
            block[:, k] = _sampled_floats(arrays[j], index)
    numbers = dict(zip(numeric, _numeric_block(block)))
    columns = []
    for j in range(kept):
        if j in numbers:
            stats = numbers[j]
        elif index is None:
            stats = _column_stats(part.iloc[:, j])
        else:
            stats = _arrow_text_stats(arrays[j], index) or _column_stats(part.iloc[:, j].take(index))
        columns.append({"name": _label(part.columns[j]), "dtype": str(dtypes[j]), **stats})
    return _profile(kind, rows, ncols, columns, sample, shape=[rows, ncols])


def _column_arrays(df: Any) -> list:
    """Each column's values by position (names may repeat): a numpy array or a pandas extension array.
    pandas' own accessor builds no Series per column, which costs more than sampling the column; it is
    private, so any pandas without it gets the Series' arrays instead."""
    import numpy as np

    get = getattr(df, "_get_column_array", None)
    if get is not None:
        try:
            return [get(j) for j in range(df.shape[1])]
        except Exception:
            pass
    return [column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array for _, column in df.items()]


def _numeric_dtype(dtype: Any) -> bool:
    """Numbers the statistics are about: pandas' is_numeric_dtype without bool and complex (a complex
    value has no order; its column gets categories, as a complex array does), answered directly for a
    numpy dtype."""
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype):
        return dtype.kind in "iuf"
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_complex_dtype(dtype))


def _sampled_floats(array: Any, index: Any) -> Any:
    """A numeric column's sampled values as float64, NaN for a missing one."""
    import numpy as np

    if isinstance(array, np.ndarray):
        return array[index].astype("float64", copy=False)          # the frame's own array: no copy
    return array.take(index).to_numpy(dtype="float64", na_value=np.nan)


def _arrow_text_stats(column: Any, index: Any) -> dict | None:
    """``_column_stats`` of a sampled pyarrow-backed string array, counted by Arrow itself (pandas'
    value_counts builds an index of the sample first); None for any other column."""
    if getattr(column.dtype, "storage", None) != "pyarrow" or getattr(column.dtype, "name", "") not in ("string", "str"):
        return None
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.chunked_array(column.__arrow_array__()).take(pa.array(np.asarray(index)))
    present = len(values) - values.null_count
    counts = pc.value_counts(values.drop_null())
    pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())
    return {"null_fraction": _fraction(values.null_count, len(values)), **_categories(list(pairs), present)}


def _profile_array(array: Any) -> dict:
    import numpy as np

    rows = array.shape[0]
    if array.ndim > 2:                 # an image stack, say: its values as one column, sampled by element
        index, sample = _sample_index(array.size)
        values = array.reshape(-1) if index is None else array.flat[index]
        if sample is not None:
            sample = {**sample, "method": sample["method"].replace("rows", "elements")}
        matrix, ncols, names = np.asarray(values).reshape(-1, 1), 1, ["values"]
    else:
        ncols = 1 if array.ndim == 1 else array.shape[1]
        kept = min(ncols, MAX_COLUMNS)
        index, sample = _sample_index(rows, kept)
        sampled = array if index is None else array[index]
        matrix = sampled.reshape(len(sampled), 1) if array.ndim == 1 else sampled[:, :kept]
        names = [str(j) for j in range(kept)]
    if array.dtype.kind in "iuf":
        stats = _numeric_block(matrix.astype("float64", copy=False))
    else:
        stats = [_array_stats(matrix[:, j]) for j in range(matrix.shape[1])]
    columns = [{"name": name, "dtype": str(array.dtype), **s} for name, s in zip(names, stats)]
    return _profile("ndarray", rows, ncols, columns, sample, shape=list(array.shape))


def _profile(kind: str, rows: int, ncols: int, columns: list, sample: dict | None, shape: list) -> dict:
    return {"version": PROFILE_VERSION, "kind": kind, "rows": int(rows), "columns": int(ncols),
            "shape": [int(n) for n in shape], "sample": sample, "profiled_columns": len(columns),
            "column_stats": columns}


def _column_stats(values: Any) -> dict:
    """One non-numeric pandas column (already sampled): datetimes' range, or the top categories."""
    import pandas as pd

    nulls = values.isna()
    null_count = int(nulls.sum())
    present = values[~nulls] if null_count else values
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        stats = {"min": _text(present.min()), "max": _text(present.max())} if len(present) else {}
    else:
        try:
            counts = present.value_counts()
        except TypeError:          # unhashable values (lists in an object column): count their text
            counts = present.astype(object).map(_text).value_counts()
        stats = _categories(counts[counts > 0], len(present))
    return {"null_fraction": _fraction(null_count, len(values)), **stats}


def _array_stats(values: Any) -> dict:
    """One non-numeric numpy column (already sampled)."""
    import numpy as np

    if values.dtype.kind in "mM":
        present = values[~np.isnat(values)]
        return {"null_fraction": _fraction(len(values) - len(present), len(values)),
                **({"min": _text(present.min()), "max": _text(present.max())} if len(present) else {})}
    uniques, counts = np.unique(values, return_counts=True)
    merged: dict[str, int] = {}
    for position in np.argsort(-counts, kind="stable"):
        key = _text(uniques[position].item())
        merged[key] = merged.get(key, 0) + int(counts[position])
    return {"null_fraction": 0.0, **_categories(list(merged.items()), len(values))}


def _numeric_block(x: Any) -> list[dict]:
    """Per column of the 2-D float array ``x``: null fraction (NaN), min/max/mean/std and the quantile
    sketch of the finite values, non-finite ones counted. One sort for every column at once: a Python
    loop over columns would cost more than the statistics."""
    import numpy as np

    n, width = x.shape
    if n == 0:                         # an empty value still has a schema to compare
        return [{"null_fraction": 0.0, "numeric": True} for _ in range(width)]
    finite = np.isfinite(x)
    if finite.all():                   # the common case, in half the passes
        nulls, count = np.zeros(width, dtype=np.int64), np.full(width, n)
        ordered, mean, std = np.sort(x, axis=0), x.mean(axis=0), x.std(axis=0)
    else:
        nulls, count = np.isnan(x).sum(axis=0), finite.sum(axis=0)
        ordered = np.sort(np.where(finite, x, np.nan), axis=0)       # NaN sorts last
        mean = np.where(finite, x, 0.0).sum(axis=0) / np.maximum(count, 1)
        std = np.sqrt((np.where(finite, x - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1))
    safe = np.maximum(count, 1)
    position = np.linspace(0.0, 1.0, QUANTILES)[:, None] * (safe - 1)[None, :]
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, safe - 1)
    cols = np.arange(width)[None, :]
    quantiles = ordered[low, cols] + (ordered[high, cols] - ordered[low, cols]) * (position - low)
    # Plain Python numbers, converted once per array rather than element by element.
    nulls, count = nulls.tolist(), count.tolist()
    lows, highs = ordered[0].tolist(), ordered[safe - 1, cols[0]].tolist()
    mean, std, quantiles = mean.tolist(), std.tolist(), quantiles.T.tolist()
    out = []
    for j in range(width):
        stats: dict[str, Any] = {"null_fraction": _fraction(nulls[j], n), "numeric": True}
        non_finite = n - nulls[j] - count[j]
        if non_finite:
            stats["non_finite_fraction"] = _fraction(non_finite, n - nulls[j])
        if count[j]:
            stats.update(min=lows[j], max=highs[j], mean=_finite(mean[j]), std=_finite(std[j]),
                         quantiles=quantiles[j])
        out.append(stats)
    return out


def _categories(counts: Any, total: int) -> dict:
    """The TOP_K most frequent values (text cut at MAX_TEXT) and their share of the non-null values."""
    items = list(counts.items()) if hasattr(counts, "items") else counts
    top: dict[str, int] = {}
    for key, count in items:
        cut = _text(key)
        top[cut] = top.get(cut, 0) + int(count)
    ranked = sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = ranked[:TOP_K]
    return {"numeric": False, "distinct": len(ranked),
            "top": [[key, _fraction(count, total)] for key, count in kept],
            "other_fraction": _fraction(sum(c for _, c in ranked[TOP_K:]), total)}


def _label(label: Any) -> str:
    if isinstance(label, tuple):
        label = "/".join(map(str, label))
    return _text(label)


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _fraction(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
