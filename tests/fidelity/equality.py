"""Robust equality between a top-to-bottom value and a pipeline value, for the fidelity harness.

Strict where a difference would change what code computes (dtype, shape, index, frequency, attrs,
container types, key order), tolerant where it would not: floats within rtol 1e-9 (a frame read
back from Arrow has another memory layout, so BLAS sums in another order), memory addresses in reprs.
"""
from __future__ import annotations

import enum
import functools
import inspect
import math
import os
import re
import types

FLOAT_RTOL = 1e-9
MAX_DEPTH = 8
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def _short(value, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    text = _ADDRESS.sub("0x…", text).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def _pandas_diff(a, b) -> str | None:
    import pandas as pd

    check = {pd.DataFrame: pd.testing.assert_frame_equal, pd.Series: pd.testing.assert_series_equal}
    try:
        if isinstance(b, pd.Index):
            pd.testing.assert_index_equal(a, b, exact="equiv", check_exact=False, rtol=FLOAT_RTOL)
        elif type(b) in check:
            check[type(b)](a, b, check_exact=False, rtol=FLOAT_RTOL, atol=0, check_freq=True, check_flags=True)
            if a.attrs != b.attrs:
                return f"attrs {a.attrs!r} vs {b.attrs!r}"
        else:
            pd.testing.assert_extension_array_equal(a, b, check_exact=False, rtol=FLOAT_RTOL)
    except AssertionError as exc:
        return " ".join(str(exc).split())[:160]
    return None


def _is_pandas(value) -> bool:
    pd = __import__("sys").modules.get("pandas")
    return pd is not None and isinstance(value, (pd.DataFrame, pd.Series, pd.Index, pd.api.extensions.ExtensionArray))


def _is_numpy(value) -> bool:
    np = __import__("sys").modules.get("numpy")
    return np is not None and isinstance(value, (np.ndarray, np.generic))


def _numpy_diff(a, b) -> str | None:
    import numpy as np

    if (type(a), a.dtype, a.shape) != (type(b), b.dtype, b.shape):
        return f"{type(a).__name__} {a.dtype} {a.shape} vs {type(b).__name__} {b.dtype} {b.shape}"
    if isinstance(b, np.ma.MaskedArray) and not np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)):
        return "masks differ"
    if b.dtype.kind in "fc":
        same = np.allclose(a, b, rtol=FLOAT_RTOL, atol=0, equal_nan=True)
    else:
        try:
            same = bool(np.array_equal(a, b))
        except Exception:              # object arrays of things without ==: compare element by element
            same = all(same_value(x, y) is None for x, y in zip(np.ravel(a), np.ravel(b)))
    return None if same else f"{_short(a)} vs {_short(b)}"


def _attributes(obj) -> dict | None:
    """Instance state for objects without an __eq__ of their own (notebook classes, estimators)."""
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return dict(vars(obj))
    slots = [s for k in type(obj).__mro__ for s in getattr(k, "__slots__", ()) if isinstance(s, str)]
    if slots:
        return {s: getattr(obj, s, "<unset>") for s in slots}
    return None


def _class_state(cls: type) -> dict:
    """A class's plain attributes (not methods): `Cfg.level = 3` must show."""
    return {k: v for k, v in vars(cls).items()
            if not (k.startswith("__") and k.endswith("__")) and not callable(v)
            and not isinstance(v, (staticmethod, classmethod, property, functools.cached_property))}


def same_value(a, b, depth: int = 0, seen: set | None = None) -> str | None:
    """None if ``a`` (pipeline) equals ``b`` (top to bottom), else a short description of how not:
    "X vs Y" always reads same-nb's X against top to bottom's Y."""
    seen = set() if seen is None else seen
    if depth > MAX_DEPTH or (id(a), id(b)) in seen:
        return None
    seen.add((id(a), id(b)))
    if _is_pandas(b):
        if type(a) is not type(b):
            return f"{type(a).__name__} vs {type(b).__name__}"
        return _pandas_diff(a, b)
    if _is_numpy(b):
        return _numpy_diff(a, b) if _is_numpy(a) else f"{type(a).__name__} vs {type(b).__name__}"
    if type(a).__qualname__ != type(b).__qualname__ or type(a).__module__ != type(b).__module__:
        return f"{type(a).__name__} {_short(a)} vs {type(b).__name__} {_short(b)}"
    if isinstance(b, float):
        ok = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=FLOAT_RTOL, abs_tol=0)
        return None if ok and math.copysign(1, a) == math.copysign(1, b) else f"{a!r} vs {b!r}"
    if isinstance(b, complex):
        return None if same_value(a.real, b.real) is None and same_value(a.imag, b.imag) is None else f"{a!r} vs {b!r}"
    if isinstance(b, dict):
        if list(a) != list(b):
            return f"keys {_short(list(a))} vs {_short(list(b))}"
        return _first((f"[{k!r}]", lambda k=k: same_value(a[k], b[k], depth + 1, seen)) for k in b)
    if isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"length {len(a)} {_short(a)} vs {len(b)} {_short(b)}"
        return _first((f"[{i}]", lambda i=i: same_value(a[i], b[i], depth + 1, seen)) for i in range(len(b)))
    if isinstance(b, (set, frozenset)):
        return None if a == b else f"{_short(a)} vs {_short(b)}"
    if isinstance(b, (types.FunctionType, types.BuiltinFunctionType, functools.partial, types.MethodType)):
        return None if getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None) else "another function"
    if isinstance(b, type):
        if a.__qualname__ != b.__qualname__:
            return f"class {a.__qualname__} vs {b.__qualname__}"
        sa, sb = _class_state(a), _class_state(b)
        if list(sa) != list(sb):
            return f"class attributes {sorted(sa)} vs {sorted(sb)}"
        return _first((f".{k}", lambda k=k: same_value(sa[k], sb[k], depth + 1, seen)) for k in sb)
    if isinstance(b, enum.Enum):
        return None if (a.name, a.value) == (b.name, b.value) else f"{a!r} vs {b!r}"
    # Two unpickles of one notebook class are two class objects here, and a generated __eq__
    # (dataclass) checks `other.__class__ is self.__class__`: compare their state instead.
    if type(b).__eq__ is not object.__eq__ and (type(a) is type(b) or type(b).__module__ != "__main__"):
        try:
            equal = a == b
            if isinstance(equal, bool):
                return None if equal else f"{_short(a)} vs {_short(b)}"
        except Exception:
            pass
    state_a, state_b = _attributes(a), _attributes(b)
    if state_b is not None and state_a is not None:
        if sorted(state_a) != sorted(state_b):
            return f"attributes {sorted(state_a)} vs {sorted(state_b)}"
        return _first((f".{k}", lambda k=k: same_value(state_a[k], state_b[k], depth + 1, seen)) for k in state_b)
    ra, rb = _ADDRESS.sub("", repr(a)), _ADDRESS.sub("", repr(b))
    return None if ra == rb else f"{_short(a)} vs {_short(b)}"


def _first(items) -> str | None:
    """The first difference among (label, thunk) pairs, labelled; later ones are not computed."""
    for label, thunk in items:
        diff = thunk()
        if diff is not None:
            return f"{label}: {diff}"
    return None


def diff_values(names, base: dict, piped: dict) -> list[str]:
    """Differences over ``names``: missing on either side, or not equal."""
    diffs = []
    for name in names:
        if name not in base:
            diffs.append(f"{name} only in same-nb ({_short(piped.get(name))})")
        elif name not in piped:
            diffs.append(f"{name} missing in same-nb (top to bottom: {_short(base[name])})")
        else:
            try:
                diff = same_value(piped[name], base[name])
            except Exception as exc:      # the comparison itself failed: report, never hide
                diff = f"not comparable ({type(exc).__name__}: {exc})"
            if diff is not None:
                diffs.append(f"{name}: {diff}")
    return diffs


def _no_arg_callable(value) -> bool:
    if not isinstance(value, (types.FunctionType, functools.partial, types.MethodType)):
        return False
    try:
        inspect.signature(value).bind()
    except (TypeError, ValueError):
        return False
    return True


def _call(fn, folder) -> tuple[str, object]:
    cwd = os.getcwd()
    try:
        os.chdir(folder)                  # relative paths resolve in that run's own copy
        return "value", fn()
    except Exception as exc:
        return "raised", type(exc).__name__
    finally:
        os.chdir(cwd)


def call_functions(names, base: dict, run: dict) -> list[str]:
    """Functions that take no arguments are compared by calling them. The pipeline's is first rebound
    to the pipeline's final values (what a later step calling it would see); the top-to-bottom one
    carries the globals cloudpickle captured at the end. Called last: calls may mutate state."""
    diffs = []
    piped_records = run.get("records", {})
    for name in names:
        b = base["values"].get(name)
        if name not in run.get("values", {}) or not _no_arg_callable(b):
            continue
        a = run["values"][name]
        if name in piped_records and isinstance(a, types.FunctionType):
            from same_nb.runtime import load_value

            namespace = dict(run["values"])
            a = load_value(piped_records[name], run["store"], namespace)
        if not _no_arg_callable(a):
            continue
        (ka, va), (kb, vb) = _call(a, run["folder"]), _call(b, base["folder"])
        if ka != kb:
            diffs.append(f"{name}() {ka} {_short(va)} vs top to bottom {kb} {_short(vb)}")
            continue
        diff = same_value(va, vb) if ka == "value" else (None if va == vb else f"{va} vs {vb}")
        if diff is not None:
            diffs.append(f"{name}(): {diff}")
    return diffs
