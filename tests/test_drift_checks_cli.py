"""same.yaml's data checks through `same-nb run`: drift beyond psi_warn warns, beyond psi_fail fails the run
(exit 1, step, variable, column, statistic and threshold named), a schema change fails with `schema: fail`;
`runs --drift` and `compare` print the drift."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from same_nb.cli import main

pytestmark = pytest.mark.slow

CHECKS = """\
checks:
  schema: fail
  drift:
    psi_warn: 0.05
    psi_fail: 0.25
    variables: [df]
"""


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def checked(module_notebook_copy):
    nb = module_notebook_copy("drift_shift")
    (nb.parent / "same.yaml").write_text(CHECKS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "200")
        yield nb, [cli("run", nb, "-q"),                                   # 1: no baseline yet
                   cli("run", nb, "-q", "-p", "shift", "3"),               # 2: a moderate shift: warns
                   cli("run", nb, "-q", "-p", "shift", "12"),              # 3: significant: fails
                   cli("run", nb, "-q", "-p", "shift", "3", "-p", "extra_column", "True")]   # 4: schema


def test_first_run_has_no_baseline_and_passes(checked):
    _, (first, *_) = checked
    rc, out, _ = first
    assert rc == 0 and "note: data checks skipped: no earlier successful run of this notebook" in out


def test_moderate_drift_warns_and_passes(checked):
    _, (_, warned, *_) = checked
    rc, out, _ = warned
    assert rc == 0, out
    assert "warning: data check: step 'load', variable 'df', column 'income': PSI" in out
    assert "> psi_warn 0.05 (baseline run 1)" in out
    assert "column 'age'" not in out and "error:" not in out


def test_significant_drift_fails_the_run_naming_step_column_and_threshold(checked):
    nb, (_, _, failed, _) = checked
    rc, out, _ = failed
    assert rc == 1
    assert "error: data check failed: step 'load', variable 'df', column 'income': PSI" in out
    assert "> psi_fail 0.25 (baseline run 2)" in out
    rc, shown, _ = cli("show", 3, "--notebook", nb, "--json")
    run = json.loads(shown)
    assert run["status"] == "failed" and "column 'income'" in run["error"]


def test_schema_change_fails_with_schema_fail_against_the_last_good_run(checked):
    _, (*_, schema) = checked
    rc, out, _ = schema
    assert rc == 1
    # run 3 failed its checks, so run 2 stays the baseline: shift 3 again drifts nowhere
    assert "error: data check failed: step 'load', variable 'df': column 'score' added (float64)" in out
    assert "column 'income'" not in out


def test_runs_drift_and_compare_print_the_worst_column(checked):
    nb, _ = checked
    rc, out, _ = cli("runs", nb, "--drift", "--baseline", 1)
    assert rc == 0 and "runs whose step inputs drifted from run 1" in out
    assert "run 3 vs run 1: worst report." in out and "['income'] PSI" in out and "(significant)" in out
    rc, out, _ = cli("compare", 1, 3, "--notebook", nb)
    assert rc == 0 and "data drift, run 1 → run 3" in out and "income: PSI" in out
    rc, out, err = cli("runs", nb, "--drift", "--threshold", "-1")
    assert rc == 1 and "--threshold must be a PSI above 0" in err


def test_unknown_check_variable_is_refused_before_running(module_notebook_copy):
    nb = module_notebook_copy("drift_shift")
    (nb.parent / "same.yaml").write_text("checks: {drift: {psi_fail: 0.2, variables: [dff]}}\n")
    rc, out, err = cli("run", nb, "-q")
    assert rc == 1 and "same.yaml: checks.drift.variables: 'dff' is not passed between steps" in err
    assert "df, incomes" in err and not (nb.parent / ".same" / "runs").exists()
    (nb.parent / "other.yaml").write_text("checks: {drift: {psi_fail: 0.2, variables: [dff]}}\n")
    rc, out, err = cli("run", nb, "-q", "--manifest", nb.parent / "other.yaml")
    assert rc == 1 and "other.yaml: checks.drift.variables: 'dff'" in err            # the file it is in
