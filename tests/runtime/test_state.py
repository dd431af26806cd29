"""same_nb.runtime.state: generator state captured in one process continues in another; channel
fingerprints see configuration changes, not noise, and never import a library themselves."""
from __future__ import annotations

import decimal
import json
import os
import pickle
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest

from same_nb.runtime import state


def _in_fresh_process(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_random_continues_in_another_process():
    random.seed(11)
    random.random()
    saved = pickle.dumps(state.capture("random"))
    expected = [random.random() for _ in range(3)]
    got = _in_fresh_process(
        "import json, pickle, random, sys\nfrom same_nb.runtime import state\n"
        f"state.restore('random', pickle.loads({saved!r}))\n"
        "print(json.dumps([random.random() for _ in range(3)]))")
    assert got == expected


def test_numpy_global_generator_continues_in_another_process():
    np.random.seed(3)
    np.random.normal()                   # leaves a cached Gaussian in the state: it must travel too
    saved = pickle.dumps(state.capture("numpy.random"))
    expected = [float(v) for v in np.random.normal(size=3)]
    got = _in_fresh_process(
        "import json, pickle\nfrom same_nb.runtime import state\n"
        f"value = pickle.loads({saved!r})\nstate.restore('numpy.random', value)\nimport numpy as np\n"
        "print(json.dumps([float(v) for v in np.random.normal(size=3)]))")
    assert got == expected


def test_capture_without_the_library_and_restore_of_nothing():
    got = _in_fresh_process("import json, sys\nfrom same_nb.runtime import state\n"
                            "print(json.dumps([state.capture('numpy.random'), 'numpy' in sys.modules]))")
    assert got == [None, False]
    state.restore("numpy.random", None)               # a step that never imported numpy: nothing to do
    with pytest.raises(ValueError):
        state.restore("tensorflow", object())


def test_fingerprints_never_import_a_library():
    got = _in_fresh_process("import json, sys\nfrom same_nb.runtime import state\nfp = state.fingerprint_state()\n"
                            "print(json.dumps([sorted(fp), [m for m in ('numpy', 'pandas', 'matplotlib', 'sklearn',"
                            " 'torch') if m in sys.modules]]))")
    channels, heavy = got
    assert heavy == []
    assert {"os.environ", "cwd", "sys.path", "warnings", "logging", "random"} <= set(channels)
    assert "numpy.random" not in channels


@pytest.mark.parametrize("channel, change, undo", [
    ("os.environ", lambda: os.environ.__setitem__("SAME_NB_STATE_T", "1"), lambda: os.environ.pop("SAME_NB_STATE_T")),
    ("sys.path", lambda: sys.path.append("/nowhere"), lambda: sys.path.remove("/nowhere")),
    ("decimal", lambda: setattr(decimal.getcontext(), "prec", 5), lambda: setattr(decimal.getcontext(), "prec", 28)),
    ("numpy.printoptions", lambda: np.set_printoptions(precision=3), lambda: np.set_printoptions(precision=8)),
    ("numpy.random", lambda: np.random.rand(), lambda: None),
    ("random", lambda: random.random(), lambda: None),
])
def test_a_change_changes_only_its_channel(channel, change, undo):
    before = state.fingerprint_state()
    try:
        change()
        after = state.fingerprint_state()
    finally:
        undo()
    assert {c for c in before if before[c] != after.get(c)} == {channel}


def test_pandas_options_and_warning_filters(tmp_path):
    pd = pytest.importorskip("pandas")
    before = state.fingerprint_state()
    with warnings.catch_warnings(), pd.option_context("display.max_rows", 3):
        warnings.simplefilter("error")
        inside = state.fingerprint_state()
    assert {c for c in before if before[c] != inside[c]} == {"pandas.options", "warnings"}
    assert state.fingerprint_state() == before


def test_decimal_flags_are_not_configuration():
    before = state.fingerprint_state()["decimal"]
    decimal.Decimal(1) / decimal.Decimal(3)            # sets the Inexact and Rounded flags
    assert state.fingerprint_state()["decimal"] == before


def test_begin_and_unplanned():
    state.begin(["random"])
    random.random()                                    # planned
    assert state.unplanned() == []
    os.environ["SAME_NB_STATE_T2"] = "1"
    try:
        assert state.unplanned() == ["os.environ"]
        assert state.started()["os.environ"] != state.fingerprint_state()["os.environ"]
    finally:
        del os.environ["SAME_NB_STATE_T2"]
