"""A parameter sweep from the sidebar's sweep form to the Sweep view's table and chart, in a real
JupyterLab and Chromium; the runs are real local runs of the sweep process the server starts."""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest

from .conftest import SIDEBAR, _start_lab, open_with_sidebar

pytestmark = pytest.mark.slow


def code(source: str, tags: list[str]) -> dict:
    return {"cell_type": "code", "id": secrets.token_hex(4), "metadata": {"tags": tags}, "source": source,
            "outputs": [], "execution_count": None}


def write_fixtures(work: Path) -> None:
    # score peaks at C = 0.5 and grows a little with seed: the best (highest) run is C=0.5, seed=1.
    cells = [
        code("C = 1.0\nseed = 0", ["parameters"]),
        code("import time\ntime.sleep(0.2)\nbase = list(range(20))", ["step:load"]),
        code("from same_nb import log_metric\nscore = round(sum(base) / 190 - (C - 0.5) ** 2 + seed / 100, 4)\n"
             "log_metric('score', score)", ["step:score"]),
    ]
    write_notebook(work / "sweepme.ipynb", cells)
    write_notebook(work / "slow.ipynb", [
        code("wait = 1", ["parameters"]),
        code("import time\ntime.sleep(60 * wait)\ndone = wait", ["step:sleep"]),
    ])


def write_notebook(path: Path, cells: list[dict]) -> None:
    path.write_text(json.dumps({
        "cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from _start_lab(tmp_path_factory, expose_app=True, fixtures=write_fixtures)


def wait_sweep(lab, path: str, sweep_id: str, until, timeout: float = 180) -> list[dict]:
    """The sweep's runs once ``until(runs)`` holds (a sweep's first run appears a moment after it starts)."""
    deadline, runs = time.time() + timeout, []
    while time.time() < deadline:
        try:
            runs = lab.api(f"sweeps/{sweep_id}", path=path)["runs"]
        except OSError:                                # 404 until its first run is recorded
            runs = []
        if until(runs):
            return runs
        time.sleep(0.5)
    raise AssertionError(f"sweep {sweep_id}: not there after {timeout}s: {runs}")


def test_sweep_form_starts_a_grid_and_the_sweep_table_marks_the_best_run(page, lab, shoot):
    from playwright.sync_api import expect

    nb = lab.root / "work" / "sweepme.ipynb"
    before = nb.read_bytes()
    sidebar = open_with_sidebar(page, lab, "work/sweepme.ipynb")
    sidebar.locator('[data-section="sweep"] .same-nb-section-toggle').click()
    form = sidebar.locator('[data-section="sweep"]')
    button = form.locator(".same-nb-sweep-button")
    expect(button).to_be_disabled()                                # no values yet

    # a value that is not a number is refused in the form, before anything starts
    form.locator('input[data-param="C"]').fill("0.1, abc")
    expect(form.locator(".same-nb-param-problem")).to_contain_text("C must be a number")
    expect(button).to_be_disabled()
    form.locator('input[data-param="C"]').fill("0.1, 0.5, 1.0")
    form.locator('input[data-param="seed"]').fill("0, 1")
    expect(form.locator(".same-nb-sweep-summary")).to_have_text("C (3) × seed (2) = 6 runs")
    shoot(page, "sweep-form")
    button.click()

    view = page.locator(".same-nb-v-sweep:visible")
    rows = view.locator("tbody tr[data-run-id]")
    expect(rows).to_have_count(6, timeout=240_000)
    expect(view.locator(".same-nb-v-sweep-progress")).to_contain_text("6 success", timeout=240_000)
    sweep_id = view.get_attribute("data-sweep-id")
    assert sweep_id
    expect(form.locator(".same-nb-sweep-notice")).to_have_text(f"Sweep {sweep_id} started: 6 runs.")

    # the swept parameters and the metric are columns; every combination is there once
    heads = view.locator("thead th").all_inner_texts()
    assert "C" in heads and "seed" in heads and "score" in heads, heads
    combos = {(r.locator('[data-param="C"]').inner_text(), r.locator('[data-param="seed"]').inner_text())
              for r in rows.all()}
    assert combos == {(c, s) for c in ("0.1", "0.5", "1") for s in ("0", "1")}, combos

    # the best run by score (highest, from the metric's name) is C=0.5, seed=1, and is marked
    best = view.locator("tbody tr.same-nb-v-best")
    expect(best).to_have_count(1)
    expect(best.locator('[data-param="C"]')).to_have_text("0.5")
    expect(best.locator('[data-param="seed"]')).to_have_text("1")
    expect(best.locator(".same-nb-v-best-mark")).to_have_count(1)
    expect(view.locator(".same-nb-v-sweep-best")).to_contain_text("score = 1.01 (highest)")

    # asking for the lowest moves the mark: C=1.0, seed=0 scores 0.75
    view.locator(".same-nb-v-sweep-direction").select_option("min")
    expect(view.locator(".same-nb-v-sweep-best")).to_contain_text("score = 0.75 (lowest)")
    expect(best.locator('[data-param="C"]')).to_have_text("1")
    expect(best.locator('[data-param="seed"]')).to_have_text("0")

    # the chart: one point per run, the swept values on the x axis
    chart = view.locator("svg.same-nb-v-chart")
    expect(chart.locator("g.same-nb-v-point")).to_have_count(6)
    expect(chart).to_contain_text("C (swept)")
    expect(chart.locator(".same-nb-v-legend-item")).to_have_text(["seed = 0", "seed = 1"])   # one line per seed
    expect(chart.locator("polyline.same-nb-v-series-line")).to_have_count(2)
    titles = " ".join(chart.locator("g.same-nb-v-point title").all_text_contents())
    assert all(f"C = {c}, seed = {s}" in titles for c in ("0.1", "0.5", "1") for s in ("0", "1")), titles
    shoot(page, "sweep-table")

    # the REST table agrees, and the step that reads no swept parameter ran once for all six runs
    table = lab.api(f"sweeps/{sweep_id}", path="work/sweepme.ipynb", best="score")
    assert table["best"]["value"] == 1.01 and len(table["runs"]) == 6
    executed = []
    for run in table["runs"]:
        detail = lab.api(f"runs/{run['id']}", path="work/sweepme.ipynb")
        executed += [s["step_name"] for s in detail["steps"] if not s["cache_hit"] and s["status"] == "success"]
    assert executed.count("load") == 1, executed
    assert executed.count("score") == 6, executed

    # two ticked runs open the Compare view
    rows.nth(0).locator("input[type=checkbox]").check()
    rows.nth(1).locator("input[type=checkbox]").check()
    view.locator(".same-nb-v-compare-button").click()
    expect(page.locator(".same-nb-v-compare:visible")).to_be_visible(timeout=30_000)

    assert nb.read_bytes() == before                               # the user's notebook is never modified
    assert not page.errors, page.errors


def test_runs_table_links_each_run_to_its_sweep(page, lab, shoot):
    from playwright.sync_api import expect

    started = lab.api("sweeps", method="POST", body={"path": "work/sweepme.ipynb", "grid": {"C": ["0.2", "0.4"]}})
    assert started["runs"] == 2
    wait_sweep(lab, "work/sweepme.ipynb", started["sweep_id"],
               lambda runs: len(runs) == 2 and all(r["status"] not in ("pending", "running") for r in runs))
    open_with_sidebar(page, lab, "work/sweepme.ipynb")
    page.locator(SIDEBAR).locator(".same-nb-open-runs").click()
    runs = page.locator(".same-nb-v-runs:visible")
    link = runs.locator(".same-nb-v-open-sweep", has_text=started["sweep_id"])
    expect(link).to_have_count(2, timeout=30_000)
    link.first.click()
    view = page.locator(".same-nb-v-sweep:visible")
    expect(view).to_have_attribute("data-sweep-id", started["sweep_id"])
    expect(view.locator("tbody tr[data-run-id]")).to_have_count(2)
    expect(view.locator("thead th", has_text="seed")).to_have_count(0)   # only C was swept
    shoot(page, "sweep-from-runs-table")
    assert not page.errors, page.errors


def test_cancel_sweep_stops_every_run_from_the_sweep_view(page, lab, shoot):
    from playwright.sync_api import expect

    started = lab.api("sweeps", method="POST", body={"path": "work/slow.ipynb", "grid": {"wait": ["1", "2", "3"]},
                                                     "jobs": 2})
    sweep_id = started["sweep_id"]
    wait_sweep(lab, "work/slow.ipynb", sweep_id, lambda runs: any(r["status"] == "running" for r in runs))
    open_with_sidebar(page, lab, "work/slow.ipynb")
    page.locator(SIDEBAR).locator(".same-nb-open-runs").click()
    page.locator(".same-nb-v-runs:visible .same-nb-v-open-sweep").first.click()
    view = page.locator(".same-nb-v-sweep:visible")
    expect(view.locator(".same-nb-v-sweep-progress")).to_contain_text("of 3 runs")
    expect(view.locator(".same-nb-v-sweep-progress")).to_contain_text("following")
    view.locator(".same-nb-v-sweep-cancel").click()
    expect(view.locator(".same-nb-v-sweep-cancel-reply")).to_contain_text(
        f"sweep {sweep_id} cancelled after SIGINT", timeout=60_000)
    expect(view.locator(".same-nb-v-sweep-cancel")).to_have_count(0)
    expect(view.locator(".same-nb-v-sweep-progress")).not_to_contain_text("following", timeout=15_000)
    shoot(page, "sweep-cancelled")
    table = lab.api(f"sweeps/{sweep_id}", path="work/slow.ipynb")
    assert table["runs"] and {r["status"] for r in table["runs"]} == {"cancelled"}, table["runs"]
    assert table["process"]["running"] is False
    assert not page.errors, page.errors
