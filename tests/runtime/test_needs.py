"""What a value needs installed to cross a step boundary (``serializers.KIND_NEEDS``), and which
third-party modules a step's process had loaded at its end (``step.loaded_modules``)."""
from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from same_nb.runtime import ArtifactStore, save_outputs
from same_nb.runtime.serializers import KIND_NEEDS, SERIALIZERS, dump_value, value_needs
from same_nb.runtime.step import loaded_modules


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path / "artifacts")


def needs_of(store, value) -> list[str]:
    record = dump_value("v", value, store)
    return value_needs(record["kind"], value)


def test_the_needs_table_has_a_row_for_every_serializer_kind():
    assert set(KIND_NEEDS) == {s.kind for s in SERIALIZERS}
    assert all(isinstance(v, tuple) and all(isinstance(n, str) for n in v) for v in KIND_NEEDS.values())


def test_a_dataframe_or_series_needs_pandas_and_pyarrow(store):
    assert needs_of(store, pd.DataFrame({"a": [1, 2]})) == ["pandas", "pyarrow"]
    assert needs_of(store, pd.Series([1.0, 2.0], name="s")) == ["pandas", "pyarrow"]


def test_a_dataframe_arrow_cannot_hold_is_pickled_and_still_needs_pandas(store):
    odd = pd.DataFrame({1: [object()]})          # a non-string column label: not Arrow-exact
    assert dump_value("v", odd, store)["kind"] == "pickle"
    assert needs_of(store, odd) == ["cloudpickle", "pandas"]


def test_arrays_need_numpy(store):
    assert needs_of(store, np.arange(4)) == ["numpy"]
    strided = np.arange(10)[::2]
    assert dump_value("v", strided, store)["kind"] == "numpy-layout"
    assert needs_of(store, strided) == ["cloudpickle", "numpy"]


def test_an_estimator_needs_its_library_and_cloudpickle(store):
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert needs_of(store, model) == ["cloudpickle", "sklearn"]


def test_containers_need_what_their_items_need(store):
    assert needs_of(store, [pd.DataFrame({"a": [1]}), {"x": np.float64(1.5)}]) == ["cloudpickle", "numpy", "pandas"]
    assert needs_of(store, {"depth": 3, "name": "x"}) == ["cloudpickle"]


def test_a_module_needs_itself_unless_it_is_the_standard_library(store):
    assert needs_of(store, np) == ["numpy"]
    assert needs_of(store, json) == []


def test_notebook_functions_need_cloudpickle_only(store):
    ns = {"__name__": "__main__"}
    exec("def f(x):\n    return x + 1\n", ns)
    assert needs_of(store, ns["f"]) == ["cloudpickle"]


def test_loaded_modules_are_third_party_top_levels(monkeypatch):
    found = loaded_modules()
    assert {"numpy", "pandas", "sklearn"} <= set(found)
    assert not set(found) & set(sys.stdlib_module_names)
    assert "same_nb" not in found and "__main__" not in found
    monkeypatch.setitem(sys.modules, "blocked_module_q3", None)      # a blocked import loaded nothing
    assert "blocked_module_q3" not in loaded_modules()


def test_a_namespace_package_is_named_by_its_loaded_subpackages(tmp_path, monkeypatch):
    (tmp_path / "nsq7" / "alpha").mkdir(parents=True)       # no __init__.py: a namespace package
    (tmp_path / "nsq7" / "alpha" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("nsq7", "nsq7.alpha"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    __import__("nsq7.alpha")
    try:
        found = loaded_modules()
        assert "nsq7.alpha" in found and "nsq7" not in found
    finally:
        for name in ("nsq7.alpha", "nsq7"):
            sys.modules.pop(name, None)


def test_save_outputs_reports_the_loaded_modules_and_each_outputs_needs(tmp_path):
    spec = tmp_path / "spec.json"
    result_path = tmp_path / "result.json"
    spec.write_text(json.dumps({"step": "prep", "store": str(tmp_path / "artifacts"), "result": str(result_path),
                                "outputs": {"df": ["train"], "model": ["train"], "n": ["train"]}}))
    namespace = {"__name__": "__main__"}
    exec(textwrap.dedent('''
        import pandas as pd
        from sklearn.linear_model import LogisticRegression
        df = pd.DataFrame({"x": [0.0, 1.0], "y": [0, 1]})
        model = LogisticRegression().fit(df[["x"]], df["y"])
        n = 3
    '''), namespace)
    result = save_outputs(str(spec), namespace)
    assert json.loads(result_path.read_text())["needs"] == result["needs"] == {
        "df": ["pandas", "pyarrow"], "model": ["cloudpickle", "sklearn"], "n": ["cloudpickle"]}
    assert {"pandas", "sklearn", "numpy"} <= set(result["modules"])
