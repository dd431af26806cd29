"""The Pipelines sidebar in a real JupyterLab and Chromium: steps, runs, lineage, commands, safety."""
from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import open_palette

pytestmark = pytest.mark.slow
SIDEBAR = "#same-nb-sidebar"
NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def open_notebook(page, lab, path: str):
    from playwright.sync_api import expect

    page.goto(lab.tree(path))
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel.locator(".jp-Cell").first).to_be_visible(timeout=60_000)
    tab = page.locator(f'.jp-SideBar [data-id="{SIDEBAR[1:]}"]')
    tab.click()
    expect(page.locator(SIDEBAR)).to_be_visible()
    return panel


def write_variant(lab, name: str, edit) -> str:
    nb = json.loads((NOTEBOOKS / "branching.ipynb").read_text())
    edit(nb["cells"])
    (lab.root / "work" / name).write_text(json.dumps(nb))
    return f"work/{name}"


def test_sidebar_steps_run_lineage_and_executed_notebook(page, lab, shoot):
    from playwright.sync_api import expect

    open_notebook(page, lab, "work/branching.ipynb")
    sidebar = page.locator(SIDEBAR)
    steps = sidebar.locator(".same-nb-step .same-nb-step-name")
    expect(steps).to_have_text(["load", "left", "right", "join"])
    expect(sidebar.locator(".same-nb-graph g.same-nb-node")).to_have_count(4)
    expect(sidebar.locator('.same-nb-step[data-step="join"] .same-nb-io').first).to_have_text(
        "in: left ← left, right ← right")
    expect(sidebar.locator('input[name="n"]')).to_have_value("6")
    shoot(page, "01-sidebar-steps")

    sidebar.locator('input[name="n"]').fill("4")
    sidebar.get_by_role("button", name="Run as pipeline").click()
    first = sidebar.locator(".same-nb-runs tr").first
    expect(first.locator(".same-nb-status")).to_have_text("success", timeout=90_000)
    detail = sidebar.locator(".same-nb-step-run")
    expect(detail).to_have_count(4)
    expect(detail.locator(".same-nb-status")).to_have_text(["success"] * 4)
    expect(sidebar.locator(".same-nb-run-summary")).to_contain_text("n=4")
    shoot(page, "02-run-success")

    sidebar.locator(".same-nb-lineage-button").click()
    graph = sidebar.locator(".same-nb-lineage svg")
    expect(graph.locator("g.same-nb-node-step_run")).to_have_count(4)
    expect(graph.locator("g.same-nb-node-artifact")).to_have_count(3)
    graph.scroll_into_view_if_needed()
    shoot(page, "03-lineage-run")
    graph.locator('g.same-nb-node-artifact[data-label="right"]').click()
    expect(sidebar.locator("h3", has_text="Lineage of right")).to_be_visible()
    expect(graph.locator("g.same-nb-node")).to_have_count(4)       # right ← right step ← base ← load
    shoot(page, "04-lineage-trace")

    sidebar.locator('.same-nb-step-run[data-step="join"]').get_by_role(
        "button", name="open executed notebook").click()
    executed = page.locator(".jp-NotebookPanel:visible")
    expect(page.locator(".lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel", has_text="join.ipynb")).to_be_visible()
    expect(executed.locator(".jp-Cell", has_text="joined = list(zip(left, right))")).to_be_visible()
    shoot(page, "05-executed-notebook")
    assert not page.errors, page.errors


def test_toolbar_button_palette_and_metrics_chart(page, lab, shoot):
    from playwright.sync_api import expect

    def log_score(cells):
        cells[4]["source"] += "\nfrom same_nb import log_metric\nlog_metric('score', count / 10)"

    path = write_variant(lab, "toolbar.ipynb", log_score)
    open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.locator(".same-nb-step")).to_have_count(4)
    page.locator(".jp-NotebookPanel:visible .same-nb-toolbar-run").click()
    runs = sidebar.locator(".same-nb-runs tr")
    expect(runs.first.locator(".same-nb-status")).to_have_text("success", timeout=90_000)
    sidebar.locator('input[name="n"]').fill("3")
    sidebar.get_by_role("button", name="Run as pipeline").click()
    expect(runs).to_have_count(2)
    expect(runs.first.locator(".same-nb-status")).to_have_text("success", timeout=90_000)
    expect(sidebar.locator('.same-nb-step-run[data-step="join"]')).to_contain_text("score = 0.3")
    chart = sidebar.locator("svg.same-nb-chart")
    expect(chart.locator("circle")).to_have_count(2)
    expect(chart.locator("title")).to_have_text([re.compile(r"#\d+: 0.6"), re.compile(r"#\d+: 0.3")])
    chart.scroll_into_view_if_needed()
    shoot(page, "06-metrics-chart")

    palette = open_palette(page)
    palette.locator("input").fill("pipeline")
    items = palette.locator(".lm-CommandPalette-itemLabel")
    expect(items.filter(has_text="Run as pipeline")).to_have_count(1)
    expect(items.filter(has_text="Start pipeline step here")).to_have_count(1)
    shoot(page, "07-palette")
    page.keyboard.press("Escape")
    assert not page.errors, page.errors


def put_settings(lab, values: dict) -> None:
    request = urllib.request.Request(
        f"{lab.url}/lab/api/settings/same-nb:plugin", method="PUT",
        data=json.dumps({"raw": json.dumps(values)}).encode(),
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 204


def test_kubeflow_target_takes_its_host_and_default_from_the_settings(page, lab, shoot):
    from playwright.sync_api import expect

    path = write_variant(lab, "kubeflow.ipynb", lambda cells: None)
    open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.locator("select.same-nb-target")).to_have_value("local")
    sidebar.locator("select.same-nb-target").select_option("kubeflow")
    sidebar.get_by_role("button", name="Run as pipeline").click()
    expect(sidebar.locator(".same-nb-notice")).to_contain_text("Set the Kubeflow Pipelines host")
    shoot(page, "08-kubeflow-no-host")

    put_settings(lab, {"defaultTarget": "kubeflow", "kfpHost": "http://127.0.0.1:9"})
    try:
        open_notebook(page, lab, path)
        expect(sidebar.locator("select.same-nb-target")).to_have_value("kubeflow")
        expect(sidebar).to_contain_text("Host: http://127.0.0.1:9")
        sidebar.get_by_role("button", name="Run as pipeline").click()
        expect(sidebar.locator(".same-nb-notice")).to_contain_text(
            "cannot reach Kubeflow Pipelines at http://127.0.0.1:9", timeout=60_000)
        shoot(page, "09-kubeflow-unreachable")
    finally:
        put_settings(lab, {})
    assert not page.errors, page.errors


def test_diagnostics_jump_to_cells_and_start_step_here_tags_the_cell(page, lab, shoot):
    from playwright.sync_api import expect

    def add_warning(cells):
        cells[4]["source"] = "joined = list(zip(left, right))\ncount = len(joined) + mystery"

    path = write_variant(lab, "diagnostics.ipynb", add_warning)
    panel = open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    diagnostic = sidebar.locator(".same-nb-diagnostic")
    expect(diagnostic).to_have_count(1)
    expect(diagnostic).to_contain_text("'mystery' is not defined")
    panel.locator(".jp-Cell").nth(1).click()
    diagnostic.click()
    expect(panel.locator(".jp-Cell").nth(4)).to_have_class(re.compile(r"\bjp-mod-active\b"))
    shoot(page, "10-diagnostic-jump")

    def start_step_here(name: str) -> None:
        open_palette(page).locator("input").fill("Start pipeline step here")
        page.keyboard.press("Enter")
        dialog = page.locator(".jp-Dialog")
        dialog.locator("input").fill(name)
        dialog.locator(".jp-mod-accept").click()

    panel.locator(".jp-Cell").nth(3).click()                      # the `right` step's cell
    start_step_here("bad name!")
    expect(page.locator(".jp-Dialog-header", has_text="Invalid step name")).to_be_visible()
    shoot(page, "11-invalid-step-name")
    page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
    start_step_here("shift")
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    # The analysis follows the unsaved notebook: the step shows before any save.
    expect(sidebar.locator(".same-nb-step .same-nb-step-name")).to_have_text(["load", "left", "shift", "join"])
    assert json.loads((lab.root / path).read_text())["cells"][3]["metadata"]["tags"] == ["step:right"]
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        saved = json.loads((lab.root / path).read_text())
        if saved["cells"][3]["metadata"].get("tags") == ["step:shift"]:
            break
        time.sleep(0.2)
    assert saved["cells"][3]["metadata"]["tags"] == ["step:shift"]
    shoot(page, "12-step-tagged")
    assert not page.errors, page.errors


def test_markup_in_notebook_strings_is_rendered_as_text(page, lab, shoot):
    from playwright.sync_api import expect

    payload = '<img src=x onerror="window.__sameNbInjected=1">'

    def inject(cells):
        cells[0]["source"] = f"n = 6\ntitle = {payload!r}"
        cells[1]["metadata"]["tags"] = ["step:<script>window.__sameNbInjected=2</script>"]

    path = write_variant(lab, "markup.ipynb", inject)
    open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    error = sidebar.locator(".same-nb-inspect-error")
    expect(error).to_contain_text("invalid step name '<script>window.__sameNbInjected=2</script>'")
    shoot(page, "13-markup-step-name")

    def fix(cells):
        cells[0]["source"] = f"n = 6\ntitle = {payload!r}"
        cells[1]["metadata"]["tags"] = ["step:load"]
        cells[1]["source"] = f"base = list(range(n))\n# {payload}\nlabel = title + {payload!r}"

    write_variant(lab, "markup.ipynb", fix)
    sidebar.locator(".same-nb-reanalyze").click()                   # reload from disk, analyze again
    expect(sidebar.locator('input[name="title"]')).to_have_value(payload)
    shoot(page, "14-markup-parameter")
    assert page.evaluate("window.__sameNbInjected") is None
    assert sidebar.locator("img, script").count() == 0
    assert not page.errors, page.errors
