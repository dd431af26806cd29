"""content_hash: the run-time check of inputs. It must change when a value changes (in place, through
any alias) and stay put when it does not, including pandas' in-place block consolidation."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from same_nb.runtime.fingerprints import UNHASHABLE, content_hash


def frame() -> pd.DataFrame:
    return pd.DataFrame({"i": [1, 2, 3], "f": [0.5, np.nan, 2.0], "s": ["a", "b", None],
                         "c": pd.Categorical(["x", "y", "x"]), "n": pd.array([1, None, 3], dtype="Int64"),
                         "t": pd.date_range("2026-01-01", periods=3, tz="UTC")})


@pytest.mark.parametrize("change", [
    lambda d: d.__setitem__("z", 1),
    lambda d: d.loc.__setitem__((0, "i"), 9),
    lambda d: d.loc.__setitem__((1, "s"), "q"),
    lambda d: d.loc.__setitem__((0, "c"), "y"),
    lambda d: d.loc.__setitem__((1, "n"), 7),
    lambda d: setattr(d, "columns", ["j", *d.columns[1:]]),
    lambda d: setattr(d, "index", pd.Index([5, 6, 7])),
    lambda d: d.attrs.__setitem__("k", 1),
])
def test_any_change_to_a_dataframe_changes_its_hash(change):
    df = frame()
    before = content_hash(df)
    change(df)
    assert content_hash(df) != before


def test_unchanged_values_keep_their_hash_through_consolidation():
    df = frame()
    df["extra"] = 1.0                       # a second float block: consolidation merges them
    before = content_hash({"train": df, "cols": list(df.columns)})
    df._consolidate_inplace()
    _ = df.values
    assert content_hash({"train": df, "cols": list(df.columns)}) == before
    assert content_hash(frame()) == content_hash(frame())


def test_views_lists_dicts_and_functions():
    a = np.arange(10)
    before = content_hash(a)
    view = a[2:5]
    view[:] = 0
    assert content_hash(a) != before
    rows = [{"v": 0}, {"v": 1}]
    before = content_hash(rows)
    for r in rows:
        r["v"] = 1
    assert content_hash(rows) != before
    nested = {"k": [1]}
    before = content_hash(nested)
    nested.get("k").append(2)
    assert content_hash(nested) != before

    def f(x, acc=[]):                       # noqa: B006  (the accumulating default is the point)
        acc.append(x)
        return acc

    before = content_hash(f)
    f(1)
    assert content_hash(f) != before
    part = functools.partial(sorted, reverse=True)
    assert content_hash(part) == content_hash(functools.partial(sorted, reverse=True))


def test_series_and_structured_arrays():
    s = pd.Series([1, 2], name="x")
    before = content_hash(s)
    s.iloc[0] = 5
    assert content_hash(s) != before
    rec = np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])
    before = content_hash(rec)
    rec["a"][0] = 1
    assert content_hash(rec) != before


def test_a_value_that_cannot_be_pickled_is_unhashable():
    import threading

    assert content_hash(threading.Lock()) == UNHASHABLE
