"""Serializer backends for xgboost, LightGBM, PyTorch and Keras: exact round trips, deterministic bytes,
used only when the library is imported. Each test runs where its library installs (xgboost, LightGBM
and Keras on the JAX backend do here; PyTorch's wheel is too large for this machine, so its tests run
where torch is installed)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from same_nb.runtime import ArtifactStore, StepBoundaryError, dump_value, load_value
from same_nb.runtime.serializers import SERIALIZERS


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path / "artifacts")


def round_trip(store, obj, name="x"):
    record = dump_value(name, obj, store)
    return record, load_value(record, store, {"__name__": "__main__"})


def test_the_registry_is_one_table_with_the_ml_rows_before_the_fallbacks():
    kinds = [s.kind for s in SERIALIZERS]
    ml = ["xgboost-booster", "xgboost-dmatrix", "lightgbm-booster", "torch-tensor", "torch-module", "keras-model"]
    assert [k for k in kinds if k in ml] == ml
    # "group" never matches a value (a step chooses it for outputs that share objects): pickle is the fallback.
    assert max(kinds.index(k) for k in ml) < kinds.index("function") < kinds.index("pickle") == len(kinds) - 2
    assert kinds[-1] == "group" and not SERIALIZERS[-1].matches(object())


def test_matching_never_imports_a_library():
    code = textwrap.dedent("""
        import sys
        from same_nb.runtime.serializers import SERIALIZERS
        for s in SERIALIZERS:
            s.matches(object()); s.matches(1.5)
        heavy = {"xgboost", "lightgbm", "torch", "keras", "tf_keras", "tensorflow", "jax"} & set(sys.modules)
        print(sorted(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- xgboost ------------------------------------------------------------------------------------

@pytest.fixture
def xgb():
    return pytest.importorskip("xgboost")


def _dmatrix(xgb):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    X[3, 1] = np.nan
    return xgb.DMatrix(X, label=(X[:, 0] > 0).astype(int), weight=np.linspace(1, 2, 40),
                       feature_names=["a", "b", "c"], feature_types=["float", "float", "q"])


def test_xgboost_booster_round_trips_exactly(store, xgb):
    d = _dmatrix(xgb)
    booster = xgb.train({"max_depth": 3, "objective": "binary:logistic", "seed": 1}, d, num_boost_round=5)
    booster.set_attr(note="kept")
    record, loaded = round_trip(store, booster)
    assert record["kind"] == "xgboost-booster" and record["type"] == "xgboost.core.Booster"
    assert type(loaded) is xgb.Booster
    assert bytes(loaded.save_raw("ubj")) == bytes(booster.save_raw("ubj"))
    assert loaded.feature_names == ["a", "b", "c"] and loaded.attr("note") == "kept"
    np.testing.assert_array_equal(loaded.predict(d), booster.predict(d))
    assert dump_value("x", booster, store)["sha256"] == record["sha256"]          # deterministic


def test_xgboost_dmatrix_crosses_steps_with_its_data(store, xgb):
    d = _dmatrix(xgb)
    record, loaded = round_trip(store, d)
    assert record["kind"] == "xgboost-dmatrix"
    assert (loaded.num_row(), loaded.num_col()) == (40, 3)
    assert loaded.feature_names == ["a", "b", "c"] and loaded.feature_types == ["float", "float", "q"]
    np.testing.assert_array_equal(loaded.get_label(), d.get_label())
    np.testing.assert_array_equal(loaded.get_weight(), d.get_weight())
    booster = xgb.train({"max_depth": 2, "seed": 1}, d, 3)
    np.testing.assert_array_equal(booster.predict(loaded), booster.predict(d))   # the data itself
    assert dump_value("x", d, store)["sha256"] == record["sha256"]


def test_a_dmatrix_xgboost_cannot_save_is_refused_with_the_fix(store, xgb):
    q = xgb.QuantileDMatrix(np.ones((4, 2), dtype=np.float32), label=np.array([0, 1, 0, 1]))
    with pytest.raises(StepBoundaryError) as info:
        dump_value("dtrain", q, store)
    msg = str(info.value)
    assert "xgboost.QuantileDMatrix cannot be saved between steps" in msg
    assert "build it in the step that uses it" in msg
    assert not store.tmp_dir.exists() or list(store.tmp_dir.iterdir()) == []      # no half-written file left


def test_xgboost_sklearn_wrapper_still_uses_pickle(store, xgb):
    pytest.importorskip("sklearn")
    model = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
    record, loaded = round_trip(store, model)
    assert record["kind"] == "pickle"
    np.testing.assert_array_equal(loaded.predict_proba(np.ones((1, 2))), model.predict_proba(np.ones((1, 2))))


# -- LightGBM -----------------------------------------------------------------------------------

def test_lightgbm_booster_round_trips(store):
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 4)), rng.normal(size=200)
    booster = lgb.train({"verbose": -1, "num_leaves": 4, "seed": 1, "deterministic": True},
                        lgb.Dataset(X, y, feature_name=["w", "x", "y", "z"]), num_boost_round=4)
    record, loaded = round_trip(store, booster)
    assert record["kind"] == "lightgbm-booster" and type(loaded) is lgb.Booster
    assert loaded.model_to_string() == booster.model_to_string()
    assert loaded.feature_name() == ["w", "x", "y", "z"]
    np.testing.assert_array_equal(loaded.predict(X), booster.predict(X))
    assert dump_value("x", booster, store)["sha256"] == record["sha256"]


# -- PyTorch (runs where torch is installed) ----------------------------------------------------

def test_torch_tensor_round_trips(store):
    torch = pytest.importorskip("torch")
    t = torch.arange(12, dtype=torch.float64).reshape(3, 4)[:, 1:]
    record, loaded = round_trip(store, t)
    assert record["kind"] == "torch-tensor"
    assert torch.equal(loaded, t) and loaded.dtype == t.dtype and loaded.shape == t.shape


def test_torch_module_keeps_its_weights_and_notebook_class(store):
    torch = pytest.importorskip("torch")
    namespace: dict = {"__name__": "__main__", "torch": torch}
    exec(textwrap.dedent("""
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(3, 2)
            def forward(self, x):
                return self.fc(x).relu()
        net = Net()
    """), namespace)
    net = namespace["net"]
    record, loaded = round_trip(store, net)
    assert record["kind"] == "torch-module"
    x = torch.ones(1, 3)
    assert torch.equal(loaded(x), net(x))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))


# -- Keras (on the JAX backend here) ------------------------------------------------------------

KERAS_SCRIPT = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np, keras
from same_nb.runtime import ArtifactStore, dump_value, load_value
store = ArtifactStore(sys.argv[1])
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
record = dump_value("model", model, store)
again = dump_value("model", model, store)
loaded = load_value(record, store)
x = np.arange(6.0).reshape(2, 3)
print(record["kind"], type(loaded).__name__, record["sha256"] == again["sha256"],
      bool(np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))),
      all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights())),
      loaded.optimizer.__class__.__name__)
"""


def test_keras_model_round_trips_as_a_dot_keras_file(tmp_path):
    # Importing keras picks its backend for the whole process: the model lives in a child process.
    backend = os.environ.get("KERAS_BACKEND", "jax")
    for module in ("keras", backend):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    result = subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(tmp_path / "artifacts")], capture_output=True,
                            text=True, env={**os.environ, "KERAS_BACKEND": backend}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-6:] == ["keras-model", "Sequential", "True", "True", "True", "Adam"]
