"""The main-area views (Pipeline, Runs, Compare, Lineage) in a real JupyterLab and Chromium.

The views open through the command palette when index.ts lists them there; otherwise through the
application object, which this module's own lab fixture exposes (``expose_app_in_browser``).
Runs are started through the REST API (what the sidebar's button does) to keep the tests short.
"""
from __future__ import annotations

import json
import secrets
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import _start_lab

pytestmark = pytest.mark.slow

PALETTE_LABELS = {
    "same-nb:open-pipeline-view": "Open the Pipeline view",
    "same-nb:open-runs-view": "Open the runs table",
    "same-nb:open-lineage-view": "Open the lineage view",
}


def code(source: str, tags: list[str] | None = None) -> dict:
    return {"cell_type": "code", "id": secrets.token_hex(4), "metadata": {"tags": tags or []},
            "source": source, "outputs": [], "execution_count": None}


def notebook(cells: list[dict]) -> str:
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                   "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """conftest's lab with this module's notebooks, plus ``window.jupyterapp`` (a fallback when a command is
    not in the palette)."""
    yield from _start_lab(tmp_path_factory, expose_app=True, fixtures=write_fixtures)


def write_fixtures(work: Path) -> None:
    # A step that sleeps: live status colours.
    (work / "slow.ipynb").write_text(notebook([
        code("n = 3", ["parameters"]),
        code("base = list(range(n))", ["step:load"]),
        code("import time\nfor i in range(6):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.5)\n"
             "left = [b * 2 for b in base]", ["step:slow_left"]),
        code("right = [b + 1 for b in base]", ["step:right"]),
        code("total = sum(left) + sum(right)\nprint(total)", ["step:join"]),
    ]))
    # Parameters, a metric and a file: compare, chart and lineage.
    (work / "data.txt").write_text("alpha beta gamma delta\n")
    (work / "train.ipynb").write_text(notebook([
        code("learning_rate = 0.1\nmodel_name = 'ridge'", ["parameters"]),
        code("text = open('data.txt').read().strip()\nwords = text.split()", ["step:read_raw_text_file"]),
        code("features_for_training = [len(w) * learning_rate for w in words]", ["step:build_features"]),
        code("from same_nb import log_metric\nscale = sum(features_for_training) * 0\n"
             "accuracy = round(1 - abs(0.3 - learning_rate) + scale, 3)\n"
             "log_metric('accuracy', accuracy)\nlog_metric('loss', round(abs(0.3 - learning_rate) * 2, 3))",
             ["step:train_model"]),
    ]))
    # Fifty steps: five layers of ten, each step reading two steps of the layer above.
    cells = [code("seed = 1", ["parameters"])]
    for layer in range(5):
        for i in range(10):
            name = f"l{layer}_feature_{i:02d}"
            if layer == 0:
                src = f"{name} = seed + {i}"
            else:
                a, b = f"l{layer - 1}_feature_{i:02d}", f"l{layer - 1}_feature_{(i + 3) % 10:02d}"
                src = f"{name} = {a} + {b}"
            cells.append(code(src, [f"step:{name}"]))
    (work / "fifty.ipynb").write_text(notebook(cells))


def api(lab, method: str, endpoint: str, body: dict | None = None, **query) -> dict:
    qs = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in query.items())
    request = urllib.request.Request(
        f"{lab.url}/same-nb/api/{endpoint}{'?' + qs if qs else ''}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read() or b"{}")


def start_run(lab, path: str, params: dict[str, str]) -> int:
    return api(lab, "POST", "runs", {"path": path, "params": params, "target": "local"})["run_id"]


def wait_run(lab, path: str, run_id: int, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = api(lab, "GET", f"runs/{run_id}", path=path)
        if run["status"] not in ("pending", "running"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s")


def open_lab(page, lab, path: str) -> None:
    from playwright.sync_api import expect

    page.goto(lab.tree(path))
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_be_visible(timeout=60_000)


def _click_first(page, selectors: list[str], timeout: float = 3000) -> bool:
    for selector in selectors:
        target = page.locator(selector).first
        try:
            target.wait_for(state="visible", timeout=timeout)
            target.click()
            return True
        except Exception:
            continue
    return False


def _sidebar(page) -> bool:
    tab = page.locator('.jp-SideBar [data-id="same-nb-sidebar"]')
    try:
        if not page.locator("#same-nb-sidebar").is_visible():
            tab.click(timeout=3000)
        page.locator("#same-nb-sidebar").wait_for(state="visible", timeout=3000)
        return True
    except Exception:
        return False


def command(page, command_id: str, args: dict) -> str:
    """Open a view as a user would: the notebook toolbar's "Pipeline" button, the sidebar's "Runs
    table" and "Lineage" buttons, else the command palette; the application object only when none of
    those exists (yet). Returns how the view was opened."""
    if command_id == "same-nb:open-pipeline-view" and "runId" not in args:
        if _click_first(page, [".jp-NotebookPanel:visible .same-nb-toolbar-pipeline"]):
            return "toolbar"
    if command_id == "same-nb:open-runs-view" and _sidebar(page):
        if _click_first(page, ["#same-nb-sidebar .same-nb-open-runs"]):
            return "sidebar"
    if command_id == "same-nb:open-lineage-view" and "runId" in args and _sidebar(page):
        row = page.locator(f'#same-nb-sidebar .same-nb-runs tr[data-run-id="{args["runId"]}"]')
        try:
            row.click(timeout=10_000)
            if _click_first(page, ["#same-nb-sidebar .same-nb-open-lineage"]):
                return "sidebar"
        except Exception:
            pass
    label = PALETTE_LABELS.get(command_id)
    if label and set(args) <= {"path"}:
        page.keyboard.press("Control+Shift+C")
        palette = page.locator("#command-palette")
        palette.locator("input").fill(label)
        item = palette.locator(".lm-CommandPalette-item", has_text=label)
        try:
            item.first.wait_for(timeout=1500)
            item.first.click()
            return "palette"
        except Exception:
            page.keyboard.press("Escape")
    page.evaluate("([id, args]) => window.jupyterapp.commands.execute(id, args).then(() => null)",
                  [command_id, args])
    return "app"


def text_boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(selector, """els => els.filter(e => e.textContent).map(e => {
        const r = e.getBoundingClientRect();
        const g = e.closest('g[data-node-id], g[data-step]');
        const title = g ? (g.querySelector(':scope > title') || {}).textContent || '' : '';
        return {text: e.textContent, height: r.height, width: r.width, top: r.top, left: r.left,
                font: parseFloat(getComputedStyle(e).fontSize), title,
                zoom: parseFloat(e.closest('.same-nb-v-canvas').dataset.zoom)};
    })""")


def test_pipeline_view_shows_live_status_and_the_step_log(page, lab, shoot):
    from playwright.sync_api import expect

    open_lab(page, lab, "work/slow.ipynb")
    print("opened by", command(page, "same-nb:open-pipeline-view", {"path": "work/slow.ipynb"}))
    view = page.locator(".same-nb-v-pipeline:visible")
    expect(view.locator("g.same-nb-v-step")).to_have_count(4, timeout=30_000)
    expect(view.locator("g.same-nb-v-edge-label")).to_have_count(4)       # base ×2, left, right
    run_id = start_run(lab, "work/slow.ipynb", {"n": "4"})
    slow = view.locator('g.same-nb-v-step[data-step="slow_left"]')
    expect(slow).to_have_attribute("data-status", "running", timeout=60_000)
    fill = slow.locator("rect.same-nb-v-box").evaluate("e => getComputedStyle(e).fill")
    slow.click()
    side = view.locator(".same-nb-v-side")
    expect(side.locator(".same-nb-v-steplog")).to_contain_text("tick", timeout=20_000)
    shoot(page, "pipeline-view-running")
    expect(slow).to_have_attribute("data-status", "success", timeout=60_000)
    done = slow.locator("rect.same-nb-v-box").evaluate("e => getComputedStyle(e).fill")
    assert fill != done, "the running and the success colours are the same"
    for step in ("load", "right", "join"):
        expect(view.locator(f'g.same-nb-v-step[data-step="{step}"]')).to_have_attribute("data-status", "success")
    expect(side.locator(".same-nb-v-steplog")).to_contain_text("tick 5")
    expect(view.locator(".same-nb-v-run-picker")).to_contain_text(f"#{run_id}")
    expect(slow.locator("text.same-nb-v-line").first).to_contain_text("success ·")
    shoot(page, "pipeline-view")
    assert not page.errors, page.errors


def test_fifty_steps_are_readable_at_fit_and_zoom_and_pan_work(page, lab, shoot):
    from playwright.sync_api import expect

    open_lab(page, lab, "work/fifty.ipynb")
    print("opened by", command(page, "same-nb:open-pipeline-view", {"path": "work/fifty.ipynb"}))
    view = page.locator(".same-nb-v-pipeline:visible")
    expect(view.locator("g.same-nb-v-step")).to_have_count(50, timeout=60_000)
    canvas = view.locator(".same-nb-v-canvas")
    view.locator(".same-nb-v-zoom-fit").click()
    page.wait_for_timeout(200)
    names = text_boxes(page, ".same-nb-v-pipeline:visible g.same-nb-v-step text.same-nb-v-name")
    lines = text_boxes(page, ".same-nb-v-pipeline:visible g.same-nb-v-step text.same-nb-v-line")
    labels = text_boxes(page, ".same-nb-v-pipeline:visible g.same-nb-v-edge-label text")
    assert len(names) == 50
    for box in names + lines + labels:
        assert box["height"] >= 11, box
        assert box["font"] * box["zoom"] >= 11 - 1e-6, box
    assert not [b for b in names if b["text"].endswith("…") and b["text"][:-1] not in b["title"]]
    shoot(page, "pipeline-view-50")

    zoom = float(canvas.get_attribute("data-zoom"))
    view.locator(".same-nb-v-zoom-in").click()
    assert float(canvas.get_attribute("data-zoom")) > zoom
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, 400)                                                # wheel down: zoom out
    page.wait_for_timeout(100)
    assert float(canvas.get_attribute("data-zoom")) < zoom * 1.25
    before = view.locator(".same-nb-v-viewport").get_attribute("transform")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 200, cy - 150, steps=8)
    page.mouse.up()
    after = view.locator(".same-nb-v-viewport").get_attribute("transform")
    assert before != after
    expect(view.locator(".same-nb-v-side")).to_have_count(0)              # a drag is not a click
    assert not page.errors, page.errors


@pytest.fixture(scope="module")
def train_runs(lab):
    ids = [start_run(lab, "work/train.ipynb", {"learning_rate": lr}) for lr in ("0.1",)]
    wait_run(lab, "work/train.ipynb", ids[0])
    for lr in ("0.3", "0.5", "0.2"):
        ids.append(start_run(lab, "work/train.ipynb", {"learning_rate": lr}))
        wait_run(lab, "work/train.ipynb", ids[-1])
    return ids


def test_runs_table_compare_and_metric_chart(page, lab, shoot, train_runs):
    from playwright.sync_api import expect

    first, second = train_runs[0], train_runs[1]
    open_lab(page, lab, "work/train.ipynb")
    print("opened by", command(page, "same-nb:open-runs-view", {"path": "work/train.ipynb"}))
    view = page.locator(".same-nb-v-runs:visible")
    rows = view.locator("tbody tr[data-run-id]")
    expect(rows).to_have_count(len(train_runs), timeout=30_000)
    expect(view.locator("thead th", has_text="learning_rate")).to_have_count(1)
    expect(view.locator("thead th", has_text="train_model.accuracy")).to_have_count(1)
    row = view.locator(f'tr[data-run-id="{first}"]')
    expect(row.locator('[data-param="learning_rate"]')).to_have_text("0.1")
    expect(row.locator('[data-metric="train_model.accuracy"]')).to_have_text("0.8")

    # name a run inline; sort by the metric; filter
    row.locator(".same-nb-v-name-edit").click()
    view.locator("input.same-nb-v-edit").fill("baseline")
    page.keyboard.press("Enter")
    expect(row.locator(".same-nb-v-name-edit")).to_have_text("baseline")
    assert api(lab, "GET", f"runs/{first}", path="work/train.ipynb")["name"] == "baseline"
    view.locator("thead th", has_text="train_model.accuracy").click()
    view.locator("thead th", has_text="train_model.accuracy").click()        # descending
    expect(rows.first).to_have_attribute("data-run-id", str(second))          # lr 0.3: accuracy 1.0
    view.locator(".same-nb-v-filter").fill("baseline")
    expect(rows).to_have_count(1)
    view.locator(".same-nb-v-filter").fill("")
    expect(rows).to_have_count(len(train_runs))
    view.locator(f'tr[data-run-id="{first}"] input[type=checkbox]').check()
    view.locator(f'tr[data-run-id="{second}"] input[type=checkbox]').check()
    shoot(page, "runs-table")

    # the chart: accuracy against the parameter, with its values on the x axis
    chart = view.locator("svg.same-nb-v-chart")
    view.locator(".same-nb-v-metric-picker").select_option("train_model.accuracy")
    view.locator(".same-nb-v-axis-picker").select_option("p:learning_rate")
    expect(chart.locator("g.same-nb-v-point")).to_have_count(len(train_runs))
    ticks = chart.locator(".same-nb-v-xtick").all_text_contents()
    assert {"0.1", "0.2", "0.3", "0.4", "0.5"} <= set(ticks), ticks
    yticks = chart.locator(".same-nb-v-yticks text").all_text_contents()
    assert len(set(yticks)) >= 3, yticks
    expect(chart.locator(f'g.same-nb-v-point[data-run="{first}"] title')).to_contain_text(f"run #{first}")
    chart.scroll_into_view_if_needed()
    shoot(page, "metrics-chart")

    view.locator(".same-nb-v-compare-button").click()
    cmp = page.locator(".same-nb-v-compare:visible")
    params = cmp.locator('[data-section="params"]')
    expect(params.locator('tr.same-nb-v-differs[data-key="learning_rate"]')).to_have_count(1, timeout=30_000)
    expect(params.locator('tr.same-nb-v-differs[data-key="learning_rate"] td.same-nb-v-changed')).to_have_text("0.3")
    metrics = cmp.locator('[data-section="metrics"]')
    expect(metrics.locator('tr.same-nb-v-differs[data-key="train_model.accuracy"]')).to_have_count(1)
    expect(cmp.locator('[data-section="packages"] h3')).to_contain_text("no differences")
    highlighted = params.locator("td.same-nb-v-changed").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert highlighted not in ("rgba(0, 0, 0, 0)", "transparent")
    shoot(page, "compare")
    assert not page.errors, page.errors


def test_lineage_view_is_readable_and_traces_artifacts(page, lab, shoot, train_runs):
    from playwright.sync_api import expect

    (lab.root / "work" / "data.txt").write_text("alpha beta gamma delta epsilon\n")   # changed since the runs
    open_lab(page, lab, "work/train.ipynb")
    print("opened by", command(page, "same-nb:open-lineage-view", {"path": "work/train.ipynb", "runId": train_runs[-1]}))
    view = page.locator(".same-nb-v-lineage:visible")
    expect(view.locator("g.same-nb-v-lnode-step")).to_have_count(3, timeout=30_000)
    expect(view.locator("g.same-nb-v-lnode-artifact").first).to_be_visible()
    boxes = text_boxes(page, ".same-nb-v-lineage:visible g.same-nb-v-node text.same-nb-v-label")
    assert boxes
    for box in boxes:
        assert box["height"] >= 11, box
        assert box["font"] * box["zoom"] >= 11 - 1e-6, box
    for box in boxes:
        if box["text"].endswith("…"):
            assert box["title"], box                                      # every node has its full name
    titles = view.locator("g.same-nb-v-node > title").all_text_contents()
    assert any("read_raw_text_file" in t for t in titles)
    shoot(page, "lineage-view")

    features = view.locator('g.same-nb-v-lnode-artifact[data-label="features_for_training"]')
    features.click()
    expect(view.locator(".same-nb-v-title")).to_contain_text("Upstream of features_for_training")
    expect(view.locator("g.same-nb-v-lnode-step")).to_have_count(2)      # build_features ← read_raw_text_file
    # the server checks files when it traces: data.txt changed since the run that read it
    expect(view.locator("g.same-nb-v-modified")).to_have_count(1)
    expect(view.locator("g.same-nb-v-modified")).to_contain_text("modified since run")
    expect(view.locator("g.same-nb-v-modified")).to_have_attribute("data-label", "data.txt")
    shoot(page, "lineage-view-trace")
    view.get_by_role("button", name="‹ back").click()
    expect(view.locator(".same-nb-v-title")).to_contain_text(f"Lineage of run #{train_runs[-1]}")
    assert not page.errors, page.errors
