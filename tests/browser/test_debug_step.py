""""Debug in notebook" on a failed step, in a real JupyterLab, Chromium and kernel: the sidebar's button
binds the step's inputs and parameters in the notebook's own kernel (the failure then reproduces there),
never modifies the notebook, and shows the user what it bound or why it could not.

Runs are started through the REST API (what the sidebar's Run button does). The notebook's kernel is
read back through the application object, which this module's lab exposes (``expose_app_in_browser``).
"""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest

from .conftest import _start_lab, open_with_sidebar

pytestmark = pytest.mark.slow


def code(source: str, tags: list[str]) -> dict:
    return {"cell_type": "code", "id": secrets.token_hex(4), "metadata": {"tags": tags},
            "source": source, "outputs": [], "execution_count": None}


def write_fixtures(work: Path) -> None:
    nb = json.dumps({
        "cells": [code("divisor = 0", ["parameters"]),
                  code("values = [1, 2, 3]", ["step:make"]),
                  code("ratio = [v / divisor for v in values]", ["step:divide"])],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5})
    # Two folders, two run stores: the tampered artifact of one cannot break the other.
    for folder in (work / "divide", work / "tampered", work / "palette"):
        folder.mkdir()
        (folder / "div.ipynb").write_text(nb)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from _start_lab(tmp_path_factory, expose_app=True, fixtures=write_fixtures)


def failed_run(lab, path: str, timeout: float = 120) -> dict:
    run_id = lab.api("runs", "POST", {"path": path, "params": {}, "target": "local"})["run_id"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = lab.api(f"runs/{run_id}", path=path)
        if run["status"] not in ("pending", "running"):
            assert run["status"] == "failed", run
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s")


# Runs code in the kernel of the open notebook `path` (as the notebook's own session has it).
IN_KERNEL = """async ([path, code]) => {
  const app = window.jupyterapp;
  const panel = [...app.shell.widgets('main')].find(w => w.context && w.context.path === path);
  if (!panel) { return {missing: 'panel'}; }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) { return {missing: 'kernel'}; }
  const out = [];
  let ename = null;
  const future = kernel.requestExecute({code, store_history: false});
  future.onIOPub = msg => {
    if (msg.header.msg_type === 'stream') { out.push(msg.content.text); }
    if (msg.header.msg_type === 'error') { ename = msg.content.ename; }
  };
  const reply = await future.done;
  return {out: out.join(''), ename, status: reply.content.status};
}"""


# The notebook's cells as the lab holds them (its metadata changes as the kernel starts, whatever we do).
CELLS = """path => {
  const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path);
  return JSON.stringify(panel.context.model.toJSON().cells);
}"""


def in_kernel(page, path: str, source: str) -> dict:
    return page.evaluate(IN_KERNEL, [path, source])


def test_debug_in_notebook_binds_the_failed_steps_inputs_in_its_kernel(page, lab, shoot):
    from playwright.sync_api import expect

    path = "work/divide/div.ipynb"
    run = failed_run(lab, path)
    on_disk = lab.root / path
    before = on_disk.read_bytes()

    sidebar = open_with_sidebar(page, lab, path)
    step = sidebar.locator('.same-nb-step-run[data-step="divide"]')
    expect(step.locator(".same-nb-error-text")).to_contain_text("ZeroDivisionError", timeout=30_000)
    expect(sidebar.locator('.same-nb-step-run[data-step="make"] .same-nb-debug-step')).to_have_count(0)
    cells_before = page.evaluate(CELLS, path)
    step.locator(".same-nb-debug-step").click()

    output = step.locator(".same-nb-debug-output")
    expect(output).to_have_attribute("data-state", "bound", timeout=60_000)
    expect(output.locator(".same-nb-debug-summary")).to_contain_text("kernel of div.ipynb: values, divisor")
    expect(output.locator(".same-nb-debug-text")).to_contain_text(f"loaded step 'divide' of run {run['id']}")
    bound = output.locator(".same-nb-debug-bound li")
    expect(bound).to_have_count(2)
    expect(bound.nth(0)).to_have_attribute("data-name", "values")
    expect(bound.nth(0)).to_have_text("values = [1, 2, 3] list ← make")
    expect(bound.nth(1)).to_have_text("divisor = 0 int ← parameter")

    # The cursor waits on the failing cell, ready to run it again.
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell.jp-mod-active")).to_contain_text("ratio = [v / divisor")
    shoot(page, "debug-step-bound")

    # The values really are in the notebook's kernel, and the failure reproduces there.
    there = in_kernel(page, path, "print(values, divisor)")
    assert there["status"] == "ok" and there["out"] == "[1, 2, 3] 0\n", there
    again = in_kernel(page, path, "ratio = [v / divisor for v in values]")
    assert again["status"] == "error" and again["ename"] == "ZeroDivisionError", again

    # The user's notebook is not modified: no cell, no output, the same cells, the same bytes on disk.
    assert page.evaluate(CELLS, path) == cells_before
    expect(notebook.locator(".jp-Cell")).to_have_count(3)
    expect(notebook.locator(".jp-OutputArea-output")).to_have_count(0)
    assert on_disk.read_bytes() == before
    assert not page.errors, page.errors


def test_debug_in_notebook_shows_an_artifact_that_no_longer_verifies(page, lab, shoot):
    from playwright.sync_api import expect

    path = "work/tampered/div.ipynb"
    run = failed_run(lab, path)
    make = next(s for s in run["steps"] if s["step_name"] == "make")
    artifact = lab.root / make["outputs"][0]["location"]          # (relative to the server root)
    data = bytearray(artifact.read_bytes())
    data[-2] ^= 1
    artifact.write_bytes(bytes(data))

    sidebar = open_with_sidebar(page, lab, path)
    # No kernel: the action starts one rather than doing nothing.
    page.evaluate("""async path => {
      const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path);
      await panel.sessionContext.ready;
      await panel.sessionContext.shutdown();
    }""", path)
    step = sidebar.locator('.same-nb-step-run[data-step="divide"]')
    step.locator(".same-nb-debug-step").click()

    output = step.locator(".same-nb-debug-output")
    expect(output).to_have_attribute("data-state", "failed", timeout=60_000)
    expect(output.locator(".same-nb-debug-summary")).to_contain_text("could not be loaded")
    text = output.locator(".same-nb-debug-text")
    expect(text).to_contain_text("StepLoadError")
    expect(text).to_contain_text("no longer hash to the recorded sha256")
    expect(text).to_contain_text(make["outputs"][0]["sha256"][:12])
    shoot(page, "debug-step-corrupt")

    # A kernel was started, and nothing was bound in it.
    nothing = in_kernel(page, path, "print('values' in dir(), 'divisor' in dir())")
    assert nothing["out"] == "False False\n", nothing
    assert not page.errors, page.errors


def test_debug_step_from_the_command_palette_takes_the_sidebars_failed_step(page, lab, shoot):
    from playwright.sync_api import expect

    path = "work/palette/div.ipynb"
    run = failed_run(lab, path)
    sidebar = open_with_sidebar(page, lab, path)
    expect(sidebar.locator(".same-nb-current-run")).to_contain_text(f"Run #{run['id']}", timeout=30_000)

    # The palette through the View menu: its keyboard shortcut is at the mercy of where focus is.
    page.locator(".lm-MenuBar-itemLabel", has_text="View").click()
    page.locator(".lm-Menu-itemLabel", has_text="Command Palette").first.click()
    palette = page.locator("#command-palette")
    palette.locator("input").fill("Debug a failed step")
    palette.locator(".lm-CommandPalette-item", has_text="Debug a failed step in the notebook").first.click()

    # Without arguments it takes the sidebar's run and its one failed step, and says so in a toast too.
    output = sidebar.locator('.same-nb-step-run[data-step="divide"] .same-nb-debug-output')
    expect(output).to_have_attribute("data-state", "bound", timeout=60_000)
    expect(page.locator(".Toastify__toast", has_text=f"Step “divide” of run #{run['id']}: Now in the kernel")).to_be_visible()
    page.wait_for_timeout(800)                  # the toast slides in
    shoot(page, "debug-step-palette")
    there = in_kernel(page, path, "print(values, divisor)")
    assert there["out"] == "[1, 2, 3] 0\n", there

    # Other views call it with arguments; a step the run does not have is said, not ignored.
    result = page.evaluate("""([path, runId]) => window.jupyterapp.commands.execute(
        'same-nb:debug-step', {path, runId, step: 'nope'})""", [path, run["id"]])
    assert result["state"] == "failed" and "(HTTP 404)" in result["summary"], result
    assert f"run {run['id']} has no step 'nope'" in result["summary"], result
    expect(page.locator(".Toastify__toast", has_text="has no step 'nope'")).to_be_visible()
    assert not page.errors, page.errors
