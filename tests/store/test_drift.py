"""PSI and schema changes from two stored profiles (store/drift.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from same_nb.runtime.profile import profile_value
from same_nb.store.drift import compare_profiles, psi_reading, worst_column


def _frame(shift: float = 0.0, n: int = 5000, seed: int = 1, cities=("paris", "rome", "oslo")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": rng.normal(50 + shift, 10, n), "age": rng.normal(40, 12, n),
                         "city": rng.choice(list(cities), n)})


def _columns(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    return {c["name"]: c for c in compare_profiles(profile_value(a), profile_value(b))["columns"]}


def test_a_shifted_column_drifts_and_the_others_do_not():
    cols = _columns(_frame(seed=1), _frame(shift=10, seed=2))      # income moves by one standard deviation
    assert psi_reading(cols["income"]["psi"]) == "significant" and cols["income"]["ks"] > 0.3
    assert cols["age"]["psi"] < 0.1 and cols["city"]["psi"] < 0.1      # fresh samples, same distributions


def test_identical_profiles_have_zero_psi():
    df = _frame()
    drift = compare_profiles(profile_value(df), profile_value(df))
    assert drift["schema"] == [] and all(c["psi"] == 0 for c in drift["columns"])


def test_a_new_category_drifts():
    cols = _columns(_frame(), _frame(seed=2, cities=("paris", "rome", "lima")))
    assert cols["city"]["psi"] > 0.25 and cols["income"]["psi"] < 0.1


def test_nulls_appearing_drift():
    a, b = _frame(), _frame(seed=2)
    b.loc[: len(b) // 2, "age"] = np.nan
    assert _columns(a, b)["age"]["psi"] > 0.25


def test_schema_changes_are_named():
    a = _frame()
    b = a.drop(columns=["age"]).assign(score=1.0, city=a["city"].astype("category"))
    drift = compare_profiles(profile_value(a), profile_value(b))
    changes = {(c["change"], c["column"]) for c in drift["schema"]}
    assert changes == {("removed", "age"), ("added", "score"), ("dtype", "city")}
    assert worst_column(drift)["name"] in ("income", "city")


def test_constant_columns_compare():
    a = pd.DataFrame({"k": np.full(100, 5.0)})
    assert _columns(a, a)["k"]["psi"] == 0
    assert _columns(a, pd.DataFrame({"k": np.full(100, 6.0)}))["k"]["psi"] > 1


def test_arrays_compare_by_position():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (4000, 2)), rng.normal(0, 1, (4000, 2))
    b[:, 1] += 2
    cols = {c["name"]: c for c in compare_profiles(profile_value(a), profile_value(b))["columns"]}
    assert cols["0"]["psi"] < 0.1 and cols["1"]["psi"] > 0.25


@pytest.mark.parametrize("kind", ["dataframe", "ndarray"])
def test_kind_change_is_a_schema_change(kind):
    df = pd.DataFrame({"0": np.arange(10.0)})
    other = df.to_numpy() if kind == "ndarray" else df["0"]
    drift = compare_profiles(profile_value(df), profile_value(other))
    assert drift["schema"][0]["change"] == "kind"
