"""Serializer registry: each kind round-trips exactly, falls back to pickle when it can't, and is
deterministic across processes."""
from __future__ import annotations

import datetime
import decimal
import json
import subprocess
import sys
import textwrap
import types

import numpy as np
import pandas as pd
import pytest

from same_nb.runtime import ArtifactStore, CorruptArtifactError, ModuleValueError, SpecError, dump_value, load_value
from same_nb.runtime.serializers import qualified_type_name


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path / "artifacts")


def _round_trip(store, obj, name="x"):
    record = dump_value(name, obj, store)
    return record, load_value(record, store, {"__name__": "__main__"})


def _assert_frames_identical(a: pd.DataFrame, b: pd.DataFrame):
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True, check_column_type=True,
                                  check_frame_type=True, check_flags=True, check_freq=True)
    assert type(a.index) is type(b.index)
    assert a.attrs == b.attrs


ARROW_FRAMES = {
    "range index": lambda: pd.DataFrame({"a": [1, 2, 3], "b": [1.0, 2.5, np.nan]}),
    "stepped named range": lambda: pd.DataFrame({"a": [1, 2, 3]}, index=pd.RangeIndex(10, 40, 10, name="r")),
    "string index": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="k")),
    "multiindex": lambda: pd.DataFrame(
        {"a": [1, 2, 3, 4]}, index=pd.MultiIndex.from_product([["x", "y"], [1, 2]], names=["l", "n"])),
    "datetime columns": lambda: pd.DataFrame({
        "t": pd.date_range("2020", periods=3, freq="h"),
        "tz": pd.date_range("2020", periods=3, tz="Europe/Paris"),
        "s": np.array(["2020-01-01", "NaT", "2021-05-01"], dtype="datetime64[s]"),
        "td": pd.to_timedelta([1, 2, 3], unit="s")}),
    "datetime index with freq": lambda: pd.DataFrame({"a": [1, 2, 3]}, index=pd.date_range("2020", periods=3)),
    "multiindex with datetime level": lambda: pd.DataFrame(
        {"a": [1, 2]}, index=pd.MultiIndex.from_arrays([pd.date_range("2020", periods=2), ["a", "b"]])),
    "categorical": lambda: pd.DataFrame({"c": pd.Categorical(["a", "b", "a"], categories=["b", "a"], ordered=True)}),
    "categorical index": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.CategoricalIndex(["x", "y"])),
    "nullable": lambda: pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"),
                                      "b": pd.array([True, None, False], dtype="boolean"),
                                      "f": pd.array([1.5, None, 2.0], dtype="Float64"),
                                      "s": pd.array(["a", None, "c"], dtype="string")}),
    "strings": lambda: pd.DataFrame({"s": ["a", "b", None],
                                     "p": pd.array(["x", None, "z"], dtype="string[pyarrow]")}),
    "period and interval": lambda: pd.DataFrame({"p": pd.period_range("2020", periods=2, freq="M"),
                                                 "i": pd.interval_range(0, 2)}),
    "period index levels": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.MultiIndex.from_arrays(
        [pd.period_range("2020", periods=2, freq="Q"), [1, 2]])),
    "small numeric types": lambda: pd.DataFrame({"f16": np.array([1, 2], dtype=np.float16),
                                                 "u8": np.array([1, 2], dtype=np.uint8),
                                                 "b": [True, False]}),
    "column index name and tuples": lambda: pd.DataFrame(
        [[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")], names=["top", "sub"])),
    "empty with columns": lambda: pd.DataFrame({"a": pd.Series([], dtype="float64"),
                                                "b": pd.Series([], dtype="int64")}),
    "attrs": lambda: pd.DataFrame({"a": [1]}).pipe(lambda d: d.attrs.update(source="db") or d),
    "index named like a column": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index([5, 6], name="a")),
}

PICKLE_FRAMES = {
    "object mixed": lambda: pd.DataFrame({"o": pd.Series([1, "a", 2.5], dtype=object)}),
    "object strings": lambda: pd.DataFrame({"o": pd.Series(["a", None], dtype=object)}),
    "object ints with None": lambda: pd.DataFrame({"o": pd.Series([1, None, 3], dtype=object)}),
    "object lists": lambda: pd.DataFrame({"o": [[1, 2], [3]]}),
    "object dicts": lambda: pd.DataFrame({"o": [{"a": 1}, {"b": 2}]}),
    "decimals and dates": lambda: pd.DataFrame({"d": [decimal.Decimal("1.10"), decimal.Decimal("2")],
                                                "t": [datetime.date(2020, 1, 1), datetime.date(2021, 1, 1)]}),
    "integer column names": lambda: pd.DataFrame({0: [1], 1: [2]}),
    "duplicate column names": lambda: pd.DataFrame([[1, 2]], columns=["a", "a"]),
    "sparse": lambda: pd.DataFrame({"s": pd.arrays.SparseArray([0, 1, 0])}),
    "complex": lambda: pd.DataFrame({"c": [1 + 2j]}),
    "no columns": lambda: pd.DataFrame(),
    "nullable index": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index(pd.array([1, None], dtype="Int64"))),
    "object index": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", 1], dtype=object)),
    "integer index name": lambda: pd.DataFrame({"a": [1, 2]}).rename_axis(index=0),
    "python-storage strings": lambda: pd.DataFrame({"s": pd.array(["a", None], dtype="string[python]")}),
    "duplicate labels disallowed": lambda: pd.DataFrame({"a": [1]}).set_flags(allows_duplicate_labels=False),
}


@pytest.mark.parametrize("make", ARROW_FRAMES.values(), ids=ARROW_FRAMES.keys())
def test_dataframes_arrow_can_hold_exactly_are_written_as_arrow(store, make):
    df = make()
    record, back = _round_trip(store, df, "df")
    assert record["kind"] == "pandas-dataframe"
    assert record["type"] == f"{pd.DataFrame.__module__}.DataFrame"
    assert store.path(record["sha256"]).read_bytes()[:6] == b"ARROW1"
    _assert_frames_identical(df, back)


@pytest.mark.parametrize("make", PICKLE_FRAMES.values(), ids=PICKLE_FRAMES.keys())
def test_dataframes_arrow_would_change_fall_back_to_pickle(store, make):
    df = make()
    record, back = _round_trip(store, df, "df")
    assert record["kind"] == "pickle"
    _assert_frames_identical(df, back)
    if df.shape[1] and all(str(d) == "object" for d in df.dtypes):
        assert [type(v) for v in df.iloc[:, 0]] == [type(v) for v in back.iloc[:, 0]]


def test_dataframe_subclass_is_pickled_to_keep_its_type(store):
    class Frame(pd.DataFrame):
        pass
    record = dump_value("f", Frame({"a": [1]}), store)
    assert record["kind"] == "pickle"


@pytest.mark.parametrize("series", [
    pd.Series([1.0, 2.0, 3.0], name="price"),
    pd.Series([1, 2], index=pd.Index(["a", "b"], name="k")),  # unnamed
    pd.Series(pd.Categorical(["x", "y"])),
    pd.Series([1, 2, 3], index=pd.date_range("2021", periods=3, freq="W"), name="weekly"),
], ids=["named", "unnamed", "categorical", "datetime freq"])
def test_series_round_trip_through_arrow_keeping_name_and_index(store, series):
    record, back = _round_trip(store, series)
    assert record["kind"] == "pandas-series"
    pd.testing.assert_series_equal(series, back, check_exact=True, check_index_type=True, check_freq=True)
    assert back.name == series.name


@pytest.mark.parametrize("series", [pd.Series([1, 2], name=0), pd.Series(["a", 1], dtype=object, name="mixed")],
                         ids=["non-string name", "object values"])
def test_series_fallback_to_pickle(store, series):
    record, back = _round_trip(store, series)
    assert record["kind"] == "pickle"
    pd.testing.assert_series_equal(series, back, check_exact=True)


@pytest.mark.parametrize("array", [
    np.arange(12.0).reshape(3, 4),
    np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
    np.array([True, False]),
    np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"),
    np.array([(1, 2.5)], dtype=[("a", "i4"), ("b", "f8")]),
    np.array(["ab", "c"]),
    np.array(3.5),
], ids=["float 2d", "fortran", "bool", "datetime", "structured", "unicode", "0-d"])
def test_numpy_arrays_are_npy_without_pickle(store, array):
    record, back = _round_trip(store, array)
    assert record["kind"] == "numpy-array" and record["type"] == "numpy.ndarray"
    assert store.path(record["sha256"]).read_bytes()[:6] == b"\x93NUMPY"
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.flags.f_contiguous == array.flags.f_contiguous
    np.testing.assert_array_equal(back, array)


def test_object_and_masked_arrays_fall_back_to_pickle(store):
    obj = np.array([1, "a", None], dtype=object)
    record, back = _round_trip(store, obj)
    assert record["kind"] == "pickle" and list(back) == [1, "a", None]

    masked = np.ma.masked_array([1, 2, 3], mask=[False, True, False])
    record, back = _round_trip(store, masked)
    assert record["kind"] == "pickle"
    assert list(back.mask) == [False, True, False]


def test_plain_values_are_pickled(store):
    value = {"rows": [1, 2.5, "x", None], "t": (True, b"\x00"), "s": {3, 4}}
    record, back = _round_trip(store, value, "cfg")
    assert record == {"name": "cfg", "sha256": record["sha256"], "kind": "pickle", "type": "dict",
                      "size": store.path(record["sha256"]).stat().st_size}
    assert back == value


def test_notebook_functions_and_classes_have_their_own_kinds(store):
    ns = {"__name__": "__main__"}
    exec("def f(x):\n    return x + 1\nclass C:\n    pass\ng = lambda: 2\n", ns)
    assert dump_value("f", ns["f"], store)["kind"] == "function"
    assert dump_value("g", ns["g"], store)["kind"] == "function"
    assert dump_value("C", ns["C"], store)["kind"] == "class"
    # Library functions are pickled by reference, like any other value.
    assert dump_value("sqrt", np.sqrt, store)["kind"] == "pickle"


def test_a_module_in_a_variable_travels_by_name(store):
    """`fmt = json if flag else None`: the value is the module, imported again where it is loaded."""
    record = dump_value("fmt", json, store)
    assert record["kind"] == "module" and store.path(record["sha256"]).read_text() == '{"module": "json"}'
    assert load_value(record, store) is json


def test_a_module_made_at_run_time_is_refused_by_name(store):
    with pytest.raises(ModuleValueError, match="variable 'dyn' is the module dyn, which cannot be imported again"):
        dump_value("dyn", types.ModuleType("dyn"), store)
    assert [p for p in store.root.rglob("*") if p.is_file() and "tmp" not in p.parts] == []


@pytest.mark.parametrize("make", [
    lambda: np.arange(10)[::2],
    lambda: np.arange(12).reshape(3, 4)[:, ::-2],
    lambda: np.arange(12.0).reshape(3, 4).T[1:],
    lambda: np.broadcast_to(np.arange(3), (4, 3)),
    lambda: np.arange(0)[::2],
], ids=["step", "negative", "transposed-slice", "broadcast", "empty"])
def test_an_array_keeps_its_strides_and_flags(store, make):
    """Code may look at `a.flags`: a view arrives as a view with the same strides, read-only if it was."""
    array = make()
    loaded = load_value(dump_value("a", array, store), store)
    assert np.array_equal(loaded, array) and loaded.dtype == array.dtype
    assert loaded.strides == array.strides or array.size == 0
    for flag in ("C_CONTIGUOUS", "F_CONTIGUOUS", "WRITEABLE"):
        assert loaded.flags[flag] == array.flags[flag], flag


def test_a_read_only_array_arrives_read_only(store):
    array = np.arange(3)
    array.flags.writeable = False
    record = dump_value("ro", array, store)
    loaded = load_value(record, store)
    assert record["kind"] == "numpy-layout" and not loaded.flags.writeable
    with pytest.raises(ValueError):
        loaded[0] = 5


def test_loading_a_corrupt_artifact_names_it(store):
    record = dump_value("df", pd.DataFrame({"a": [1, 2]}), store)
    path = store.path(record["sha256"])
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError, match=f"artifact {record['sha256']} for variable 'df' is corrupt"):
        load_value(record, store, {})


def test_unknown_kind_is_a_spec_error(store):
    record = dump_value("x", 1, store)
    with pytest.raises(SpecError, match="input 'x' has unknown artifact kind 'parquet'"):
        load_value({**record, "kind": "parquet"}, store, {})


def test_qualified_type_names():
    assert qualified_type_name(1) == "int"
    assert qualified_type_name(pd.DataFrame()) == f"{pd.DataFrame.__module__}.DataFrame"
    assert qualified_type_name(types.SimpleNamespace()) == "types.SimpleNamespace"


# -- across processes ---------------------------------------------------------------------------

_PRODUCER = textwrap.dedent('''
    import json, os, sys
    import numpy as np, pandas as pd
    from same_nb.runtime import ArtifactStore, dump_value

    # As ipykernel compiles cells: the file name holds the kernel's pid.
    cell = """
    import functools
    threshold = 1
    def helper(x):
        return [y * threshold for y in range(x)]
    def f(a, b=2, *, c=3):
        g = lambda z: z + threshold
        return helper(a), g(b) + c
    class Base:
        def m(self):
            return threshold
    class Model(Base):
        k = 3
        def __init__(self):
            self.weights = [1.0, 2.0]
        def predict(self):
            return super().m() * 2
    @functools.lru_cache(maxsize=8)
    def cached(x):
        return x * threshold
    model = Model()
    """
    ns = {"__name__": "__main__"}
    exec(compile(cell, f"/tmp/ipykernel_{os.getpid()}/3344.py", "exec"), ns)
    values = {
        "df": pd.DataFrame({"a": np.arange(5), "s": list("abcde"), "c": pd.Categorical(list("xyxyx"))},
                           index=pd.Index(list("vwxyz"), name="k")),
        "objdf": pd.DataFrame({"o": [[1], {"a": 1}]}),
        "arr": np.arange(12.0).reshape(3, 4),
        "plain": {"a": [1, 2.5, "x"], "b": (None, True), "c": {"nested": [b"x"]}},
        "f": ns["f"], "Model": ns["Model"], "model": ns["model"], "cached": ns["cached"],
    }
    store = ArtifactStore(sys.argv[1])
    print(json.dumps({n: dump_value(n, v, store) for n, v in values.items()}))
''')


def _produce(*store_roots) -> list[dict]:
    """Run one producer process per store, concurrently."""
    procs = [subprocess.Popen([sys.executable, "-c", _PRODUCER, str(root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for root in store_roots]
    outputs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    return [json.loads(out) for out, _ in outputs]


def test_serialization_is_byte_stable_across_processes(tmp_path):
    first, second = _produce(tmp_path / "a", tmp_path / "b")
    assert {n: r["sha256"] for n, r in first.items()} == {n: r["sha256"] for n, r in second.items()}
    assert {n: r["kind"] for n, r in first.items()} == {
        "df": "pandas-dataframe", "objdf": "pickle", "arr": "numpy-array", "plain": "pickle",
        "f": "function", "Model": "class", "model": "pickle", "cached": "function"}


def test_values_from_another_process_load_and_see_this_namespace(tmp_path):
    [records] = _produce(tmp_path)
    store = ArtifactStore(tmp_path)
    ns = {"__name__": "__main__", "threshold": 5}
    loaded = {name: load_value(record, store, ns) for name, record in records.items()}
    assert loaded["f"](3) == ([0, 5, 10], 2 + 5 + 3)
    assert loaded["cached"](2) == 10 and loaded["cached"].cache_parameters()["maxsize"] == 8
    assert loaded["model"].predict() == 10 and loaded["model"].weights == [1.0, 2.0]
    assert type(loaded["model"]) is loaded["Model"]  # one class, even from two artifacts
    assert loaded["Model"]().predict() == 10


def test_import_is_light_and_loading_plain_values_needs_no_cloudpickle(tmp_path):
    store = ArtifactStore(tmp_path)
    record = dump_value("plain", {"a": [1, 2]}, store)
    code = textwrap.dedent(f'''
        import json, sys
        import same_nb.runtime as rt
        heavy = [m for m in ("pandas", "numpy", "pyarrow", "cloudpickle") if m in sys.modules]
        value = rt.load_value(json.loads({json.dumps(json.dumps(record))}), rt.ArtifactStore({str(tmp_path)!r}), {{}})
        print(json.dumps([heavy, value, "cloudpickle" in sys.modules]))
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], {"a": [1, 2]}, False]
