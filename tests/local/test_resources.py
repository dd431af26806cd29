"""Resources per step run, from real kernels: peak memory and CPU time of each step's own execution
(children included), artifact bytes in and out, the same figures in forked and fresh kernels, and
`show` / `compare` as a user reads them."""
from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from same_nb.cli import main
from same_nb.local.forked import fork_supported
from same_nb.local.progress import make_progress
from same_nb.runtime.resources import supported
from same_nb.service import run_notebook

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (supported() and fork_supported()), reason="needs Linux /proc and fork")]
MB = 1_000_000
EXECUTED = ("prepare", "light", "frames", "heavy", "busy", "idle", "child", "report")


def cli(*args) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(a) for a in args]) == 0
    return out.getvalue()


def run(nb, kernel: str, *params: tuple[str, str], use_cache: bool = True) -> dict:
    result = run_notebook(nb, kernel=kernel, params=list(params), use_cache=use_cache,
                          progress=make_progress(quiet=True))
    assert result.ok, {n: st.error for n, st in result.states.items()}
    shown = json.loads(cli("show", result.run_id, "--dir", nb.parent, "--json"))
    return {"run_id": result.run_id, "run_dir": result.run_dir,
            "steps": {s["step_name"]: s for s in shown["steps"]}}


@pytest.fixture(scope="module")
def both_kernels(module_notebook_copy):
    nb = module_notebook_copy("resources")
    return {"notebook": nb, **{kernel: run(nb, kernel, use_cache=False) for kernel in ("fork", "fresh")}}


@pytest.mark.parametrize("kernel", ["fork", "fresh"])
def test_every_executed_step_records_its_figures(both_kernels, kernel):
    steps = both_kernels[kernel]["steps"]
    for name in EXECUTED:
        assert steps[name]["status"] == "success"
        assert steps[name]["cpu_s"] > 0, name
        assert steps[name]["peak_rss_bytes"] is not None, name
    # bytes: the 100,000 int64 `sizes` (800 kB as .npy) leave prepare once, and light loads them
    assert steps["prepare"]["bytes_in"] == 0 and steps["prepare"]["bytes_out"] > 800_000
    assert steps["light"]["bytes_in"] == steps["prepare"]["bytes_out"]
    assert steps["report"]["bytes_in"] > steps["light"]["bytes_out"] > 0


@pytest.mark.parametrize("kernel", ["fork", "fresh"])
def test_heavy_busy_and_child_steps_stand_out(both_kernels, kernel):
    steps = both_kernels[kernel]["steps"]
    peak = {n: s["peak_rss_bytes"] for n, s in steps.items()}
    cpu = {n: s["cpu_s"] for n, s in steps.items()}
    assert 190 * MB <= peak["heavy"] < 260 * MB
    assert peak["heavy"] > peak["light"] + 150 * MB
    assert cpu["busy"] >= 0.95 and cpu["busy"] > cpu["idle"] + 0.7
    # the child process allocated 150 MB and spun 0.5 s, and exited before the step ended
    assert peak["child"] >= 150 * MB and cpu["child"] >= 0.5


def test_forked_kernels_do_not_count_the_zygotes_preload(both_kernels):
    """A forked light step's kernel holds pandas (preloaded for `frames`), a fresh one does not: the
    step's figure is what the step added, the same in both modes."""
    kernels = json.loads((both_kernels["fork"]["run_dir"] / "kernels.json").read_text())
    assert any("pandas" in z["preloaded"] for z in kernels["zygotes"])
    fork, fresh = both_kernels["fork"]["steps"], both_kernels["fresh"]["steps"]
    assert fork["light"]["peak_rss_bytes"] < 20 * MB and fresh["light"]["peak_rss_bytes"] < 20 * MB
    assert abs(fork["heavy"]["peak_rss_bytes"] - fresh["heavy"]["peak_rss_bytes"]) < 20 * MB
    folder = both_kernels["notebook"].parent
    diff = cli("compare", both_kernels["fresh"]["run_id"], both_kernels["fork"]["run_id"], "--dir", folder)
    assert "peak memory" not in diff.split("step ")[0]      # no growth flagged for a change of kernel mode


def test_show_and_compare_memory_growth(module_notebook_copy, monkeypatch):
    nb = module_notebook_copy("resources")
    small, large, larger = (run(nb, "fork", ("heavy_mb", mb))["run_id"] for mb in ("60", "200", "220"))
    monkeypatch.setenv("COLUMNS", "160")
    table = cli("show", large, "--dir", nb.parent)
    assert re.search(r"┃ memory +┃ CPU +┃", table)
    heavy = next(line for line in table.splitlines() if line.startswith("│ heavy "))
    assert re.search(r"│ 20\d MB +│ \d", heavy), heavy
    monkeypatch.setenv("COLUMNS", "80")              # narrow: the figures go under the step's time
    assert re.search(r"memory 20\d MB", cli("show", large, "--dir", nb.parent))
    grew = cli("compare", small, large, "--dir", nb.parent)
    assert "grew more than 2x:\n  heavy: peak memory 3." in grew
    flagged = [line for line in grew.splitlines() if line.startswith("  heavy: peak memory")]
    assert len(flagged) == 1 and "(6" in flagged[0] and "→ 20" in flagged[0]
    steady = cli("compare", large, larger, "--dir", nb.parent)
    assert "grew more than 2x" not in steady
    assert re.search(r"step heavy:\n(  .*\n)*  resources: peak memory 20\d MB → 22\d MB, CPU", steady), steady
    assert "step busy:" not in steady           # cached in both runs: nothing differs
    cached = json.loads(cli("show", larger, "--dir", nb.parent, "--json"))["steps"]
    busy = next(s for s in cached if s["step_name"] == "busy")
    assert busy["status"] == "cached" and busy["cpu_s"] is None and busy["peak_rss_bytes"] is None
    assert busy["bytes_in"] is None and busy["bytes_out"] > 0


def test_a_step_whose_cell_raised_keeps_its_figures(notebook_copy):
    nb = notebook_copy("resources_failing")
    result = run_notebook(nb, progress=make_progress(quiet=True))
    assert not result.ok
    shown = json.loads(cli("show", result.run_id, "--dir", nb.parent, "--json"))
    boom = next(s for s in shown["steps"] if s["step_name"] == "boom")
    assert boom["status"] == "failed" and boom["error"]["ename"] == "ValueError"
    assert boom["peak_rss_bytes"] >= 80 * MB and boom["cpu_s"] > 0 and boom["bytes_in"] > 0
