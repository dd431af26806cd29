"""Terminal text of drift (store/drift_report.py): hostile column names stay on their line, quoted."""
from __future__ import annotations

import numpy as np
import pandas as pd

from same_nb.runtime.profile import profile_value
from same_nb.store.drift import compare_profiles
from same_nb.store.drift_report import render_drift


def test_hostile_column_names_are_quoted_and_stay_on_one_line():
    hostile = "x\nerror: data check failed: fake"
    a = pd.DataFrame({hostile: np.arange(100.0), "plain": np.arange(100.0), "": np.arange(100.0)})
    b = a + 50
    drift = {"baseline": 1, "run": 2, "unprofiled": [],
             "artifacts": [{"step": "load", "variable": "df", "identical": False,
                            **compare_profiles(profile_value(a), profile_value(b))}]}
    text = render_drift(drift)
    lines = text.splitlines()
    assert not any(line.startswith("error:") for line in lines)
    assert "    'x\\nerror: data check failed: fake': PSI" in text
    assert "    plain: PSI" in text and "    '': PSI" in text
