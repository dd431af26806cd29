"""Profiles of the DataFrames, Series and arrays a step saves (runtime/profile.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from same_nb.runtime import profile
from same_nb.runtime.artifacts import ArtifactStore
from same_nb.runtime.serializers import dump_value


def _saved(tmp_path, name, value):
    store = ArtifactStore(tmp_path / "artifacts")
    record = dump_value(name, value, store)
    assert profile.save_profile(store.root, record, value)
    return profile.read_profile(store.root, record["sha256"]), record, store


def _column(prof, name):
    return next(c for c in prof["column_stats"] if c["name"] == name)


def test_dataframe_profile_has_schema_and_column_statistics(tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "city": ["a", "b", "a", None], "n": [1, 2, 3, 4]})
    prof, record, store = _saved(tmp_path, "df", df)
    assert profile.profile_path(store.root, record["sha256"]).is_file()
    assert (prof["kind"], prof["rows"], prof["columns"], prof["sample"]) == ("dataframe", 4, 3, None)
    x = _column(prof, "x")
    assert x["dtype"] == "float64" and x["null_fraction"] == 0.25
    assert (x["min"], x["max"]) == (1.0, 4.0) and x["mean"] == pytest.approx(7 / 3)
    assert len(x["quantiles"]) == profile.QUANTILES and x["quantiles"][0] == 1.0 and x["quantiles"][-1] == 4.0
    city = _column(prof, "city")
    assert city["numeric"] is False and city["top"][0] == ["a", pytest.approx(2 / 3, abs=1e-6)]
    assert _column(prof, "n")["dtype"] == "int64"


def test_series_and_ndarray_get_profiles(tmp_path):
    prof, _, _ = _saved(tmp_path, "s", pd.Series([1, 2, 3], name="price"))
    assert prof["kind"] == "series" and prof["column_stats"][0]["name"] == "price"
    prof, record, _ = _saved(tmp_path, "a", np.arange(12, dtype="float32").reshape(6, 2))
    assert record["kind"] == "numpy-array"
    assert (prof["kind"], prof["rows"], prof["columns"], prof["shape"]) == ("ndarray", 6, 2, [6, 2])
    assert _column(prof, "1")["max"] == 11.0
    prof, _, _ = _saved(tmp_path, "labels", np.array(["cat", "dog", "cat"]))
    assert prof["column_stats"][0]["top"][0][0] == "cat"


def test_huge_frames_are_sampled_and_bounded(tmp_path):
    rows = 3 * profile.SAMPLE_ROWS
    wide = pd.DataFrame({f"c{i}": np.arange(rows, dtype="float64") for i in range(profile.MAX_COLUMNS + 5)})
    wide["words"] = pd.array([f"w{i % 5000}" + "x" * 100 for i in range(rows)], dtype="string[pyarrow]")
    prof, record, store = _saved(tmp_path, "wide", wide)
    # a wide frame samples fewer rows: about SAMPLE_CELLS cells in all
    assert prof["sample"]["rows"] == profile.SAMPLE_CELLS // profile.MAX_COLUMNS and prof["sample"]["of"] == rows
    narrow = profile.profile_value(wide[["c0", "words"]])
    assert narrow["sample"]["rows"] == profile.SAMPLE_ROWS and narrow["column_stats"][0]["max"] <= rows - 1
    assert prof["columns"] == profile.MAX_COLUMNS + 6 and prof["profiled_columns"] == profile.MAX_COLUMNS
    assert profile.profile_path(store.root, record["sha256"]).stat().st_size < 60_000
    again = profile.profile_value(wide)
    assert again == prof                   # a fixed seed: one artifact, one profile


def test_category_text_and_count_are_bounded():
    words = pd.Series([str(i) + "é" * 500 for i in range(50)] + ["same"] * 50, name="w\n'\"")
    prof = profile.profile_value(words)
    col = prof["column_stats"][0]
    assert col["name"] == "w\n'\"" and len(col["top"]) == profile.TOP_K
    assert all(len(key) <= profile.MAX_TEXT for key, _ in col["top"])
    assert col["top"][0] == ["same", 0.5]
    json.dumps(prof, allow_nan=False)


def test_non_finite_values_and_empty_columns_stay_valid_json():
    df = pd.DataFrame({"x": [np.inf, -np.inf, np.nan, 1.0], "e": [None, None, None, None]})
    prof = profile.profile_value(df)
    text = json.dumps(prof, allow_nan=False)
    x = _column(json.loads(text), "x")
    assert x["non_finite_fraction"] == pytest.approx(2 / 3, abs=1e-6) and x["min"] == 1.0


def test_other_values_and_switch_off(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path / "artifacts")
    record = dump_value("d", {"a": 1}, store)
    assert not profile.save_profile(store.root, record, {"a": 1})
    monkeypatch.setenv(profile.ENV_SWITCH, "0")
    df = pd.DataFrame({"x": [1]})
    record = dump_value("df", df, store)
    assert not profile.save_profile(store.root, record, df)
    assert profile.read_profile(store.root, record["sha256"]) is None


def test_module_imports_only_the_standard_library():
    code = ("import sys; from same_nb.runtime import profile; "
            "print([m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_pickled_frame_is_profiled_too(tmp_path):
    df = pd.DataFrame({"mixed": pd.Series([1, "a", None, [1, 2]], dtype=object), "x": [1.0, 2.0, 3.0, 4.0]})
    prof, record, _ = _saved(tmp_path, "df", df)
    assert record["kind"] == "pickle"                # object columns do not round-trip through Arrow
    mixed = _column(prof, "mixed")
    assert mixed["null_fraction"] == 0.25 and {k for k, _ in mixed["top"]} == {"1", "a", "[1, 2]"}


def test_an_image_stack_is_one_column_sampled_by_element():
    images = np.arange(30 * 40 * 40, dtype="uint8").reshape(30, 40, 40)
    prof = profile.profile_value(images)
    assert (prof["rows"], prof["columns"], prof["shape"]) == (30, 1, [30, 40, 40])
    assert prof["sample"]["of"] == images.size and "consecutive elements" in prof["sample"]["method"]
    assert prof["column_stats"][0]["name"] == "values" and prof["column_stats"][0]["max"] <= 255
    assert profile.profile_value(np.float64(1.0)) is None and profile.profile_value(np.array(1.0)) is None


def test_values_saved_as_one_group_get_a_profile_each(tmp_path):
    from same_nb.runtime.serializers import dump_group

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    values = {"df": df, "x": df["x"], "n": 3}                  # a frame and its column share the index
    store = ArtifactStore(tmp_path / "artifacts")
    records = dump_group(values, store)
    sha = records["df"]["sha256"]
    assert profile.save_group_profiles(store.root, sha, values) == ["df", "x"]
    assert profile.read_profile(store.root, sha, "df")["kind"] == "dataframe"
    assert profile.read_profile(store.root, sha, "x")["kind"] == "series"
    assert profile.read_profile(store.root, sha, "n") is None and profile.read_profile(store.root, sha) is None


def test_empty_values_get_a_schema_profile_and_no_warnings(tmp_path):
    import warnings

    for value in (pd.DataFrame({"x": np.array([], dtype="float64"), "n": np.array([], dtype="int64")}),
                  np.empty((0, 3)), pd.Series([], dtype="Int64", name="k")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")          # a warning would land in the step's own output
            prof, _, _ = _saved(tmp_path / str(len(value.shape)), "empty", value)
        assert prof["rows"] == 0 and all(c["numeric"] and c["null_fraction"] == 0.0 for c in prof["column_stats"])
        assert not any("quantiles" in c for c in prof["column_stats"])


def test_the_sidecar_sits_beside_its_artifact_and_the_old_layout_still_reads(tmp_path):
    prof, record, store = _saved(tmp_path, "df", pd.DataFrame({"x": [1.0, 2.0]}))
    sha = record["sha256"]
    assert profile.profile_path(store.root, sha).parent == store.path(sha).parent
    assert not (store.root / "profiles").exists()
    old = store.root / "profiles" / sha[:2] / f"{sha}.json"
    old.parent.mkdir(parents=True)
    profile.profile_path(store.root, sha).rename(old)
    assert profile.read_profile(store.root, sha) == prof


def test_the_sample_is_the_same_whichever_value_asks_first():
    rows = 4 * profile.SAMPLE_ROWS
    frame = pd.DataFrame({"x": np.arange(rows, dtype="float64")})
    first = profile.profile_value(frame)
    index, _ = profile._sample_index(rows)
    assert not index.flags.writeable                  # shared between values of one length
    first["sample"]["rows"] = -1                      # a caller changing its profile changes no other
    assert profile.profile_value(frame)["sample"]["rows"] == len(index)
    assert profile.profile_value(frame.x.to_numpy())["column_stats"][0]["quantiles"] == \
        first["column_stats"][0]["quantiles"]


def test_complex_and_pandas_text_columns():
    rows = 3 * profile.SAMPLE_ROWS                     # sampled, through the frame's own arrays
    df = pd.DataFrame({"z": np.tile([1 + 1j, 2 - 1j], rows // 2),
                       "s": pd.array(np.tile(["a", None, "b"], rows // 3), dtype="str"),
                       "n": pd.array(np.tile([1, None, 3], rows // 3), dtype="Int64")})
    prof = profile.profile_value(df)
    z = _column(prof, "z")                            # no order: categories, not a real part's quantiles
    assert z["numeric"] is False and {k for k, _ in z["top"]} == {"(1+1j)", "(2-1j)"}
    s = _column(prof, "s")
    assert s["null_fraction"] == pytest.approx(1 / 3, abs=0.01) and {k for k, _ in s["top"]} == {"a", "b"}
    n = _column(prof, "n")
    assert n["numeric"] and n["null_fraction"] == pytest.approx(1 / 3, abs=0.01) and (n["min"], n["max"]) == (1.0, 3.0)


def test_a_pandas_without_the_column_accessor_gives_the_same_profile(monkeypatch):
    rows = 3 * profile.SAMPLE_ROWS
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=rows), "n": pd.array(rng.integers(0, 9, rows), dtype="Int64"),
                       "s": pd.array(rng.choice(["a", "b"], rows), dtype="string[pyarrow]"),
                       "c": pd.Categorical(rng.choice(["u", "v"], rows))})
    expected = profile.profile_value(df)
    monkeypatch.delattr(pd.DataFrame, "_get_column_array")          # private: gone in some pandas
    assert profile.profile_value(df) == expected
