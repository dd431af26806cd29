"""The pipeline inside the notebook, in a real JupyterLab and Chromium: step badges from the unsaved
model, empty and untagged states, typed parameters, trustworthy cancel, live runs, renames, dirty
notebooks and shipped examples."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SIDEBAR = "#same-nb-sidebar"
EXAMPLES = Path(__file__).parents[2] / "examples"


def notebook(*cells: tuple[str, list[str]] | str) -> dict:
    """A small nbformat 4.5 notebook: each cell is source or (source, tags)."""
    out = []
    for i, cell in enumerate(cells):
        source, tags = (cell, []) if isinstance(cell, str) else cell
        out.append({"cell_type": "code", "id": f"c{i + 1}", "metadata": {"tags": tags} if tags else {},
                    "source": source, "outputs": [], "execution_count": None})
    return {"nbformat": 4, "nbformat_minor": 5, "cells": out,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}


def write(lab, name: str, nb: dict) -> str:
    (lab.root / "work" / name).write_text(json.dumps(nb, indent=1) + "\n")
    return f"work/{name}"


def open_notebook(page, lab, path: str):
    from playwright.sync_api import expect

    page.goto(lab.tree(path))
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel.locator(".jp-Cell").first).to_be_visible(timeout=60_000)
    page.locator(f'.jp-SideBar [data-id="{SIDEBAR[1:]}"]').click()
    expect(page.locator(SIDEBAR)).to_be_visible()
    return panel


def type_in_cell(page, panel, index: int, text: str) -> None:
    panel.locator(".jp-Cell").nth(index).locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)
    page.keyboard.press("Escape")


def name_step(page, name: str) -> None:
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill(name)
    dialog.locator(".jp-mod-accept").click()


def test_step_badges_follow_edits_without_saving(page, lab, shoot):
    from playwright.sync_api import expect

    path = write(lab, "badges.ipynb", notebook("a = 1", "b = a + 1", "c = b * 2", "d = c - 1"))
    on_disk = (lab.root / path).read_bytes()
    panel = open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    hint = sidebar.locator(".same-nb-untagged-state")
    expect(hint).to_contain_text("No step: tags: the notebook runs as one step, “badges”")
    expect(hint).to_contain_text("New step here")
    expect(sidebar.locator(".same-nb-inspect-error")).to_have_count(0)
    shoot(page, "notebook-untagged")

    # "New step here" from the cell toolbar of the first cell.
    cells = panel.locator(".jp-Cell")
    cells.nth(0).click()
    started = time.monotonic()
    cells.nth(0).locator('.jp-cell-toolbar [data-command="same-nb:start-step-here"]').click()
    name_step(page, "load")
    badges = panel.locator(".same-nb-step-badge .same-nb-step-pill")
    expect(badges).to_have_text(["step load"])
    # … and from the cell's context menu on the third.
    cells.nth(2).click(button="right")
    page.locator(".lm-Menu-item", has_text="New step here").click()
    name_step(page, "train")
    expect(badges).to_have_text(["step load", "step train"])
    assert time.monotonic() - started < 20
    expect(sidebar.locator(".same-nb-step .same-nb-step-name")).to_have_text(["load", "train"])
    expect(hint).to_have_count(0)
    # Every cell is striped with its step's colour; the cells after a tag join its step.
    stripes = [cells.nth(i).get_attribute("data-same-nb-step") for i in range(4)]
    assert stripes == ["load", "load", "train", "train"]
    colour = cells.nth(0).evaluate("n => getComputedStyle(n).getPropertyValue('--same-nb-step-color')")
    assert colour.strip() and colour == cells.nth(1).evaluate(
        "n => getComputedStyle(n).getPropertyValue('--same-nb-step-color')")

    # Typing code is analysed too (debounced, unsaved): the problem is marked on its cell and line.
    type_in_cell(page, panel, 3, "\ne = mystery")
    problem = cells.nth(3).locator(".same-nb-cell-problem")
    expect(problem).to_contain_text("line 2: 'mystery' is not defined")
    expect(cells.nth(3).locator(".same-nb-problem-line")).to_have_count(1)
    expect(cells.nth(3).locator(".same-nb-problem-line")).to_contain_text("e = mystery")
    page.wait_for_timeout(300)
    shoot(page, "notebook-badges")

    # Rename a step and add a dependency from the sidebar: tags change in the open notebook.
    step = sidebar.locator('.same-nb-step[data-step="train"]')
    step.locator(".same-nb-edit-step").click()
    editor = step.locator(".same-nb-step-editor")
    editor.locator('input[name="step-name"]').fill("bad name")
    expect(editor.locator(".same-nb-param-problem")).to_contain_text("not a valid step name")
    expect(editor.get_by_role("button", name="Apply")).to_be_disabled()
    editor.locator('input[name="step-name"]').fill("fit")
    editor.locator(".same-nb-after-option", has_text="load").locator("input").check()
    shoot(page, "sidebar-step-editor")
    editor.get_by_role("button", name="Apply").click()
    expect(badges).to_have_text(["step load", "step fit"])
    expect(panel.locator(".same-nb-step-badge", has_text="step fit")).to_contain_text("after load")
    expect(sidebar.locator(".same-nb-step .same-nb-step-name")).to_have_text(["load", "fit"])

    assert (lab.root / path).read_bytes() == on_disk, "the notebook was written"
    assert not page.errors, page.errors


def test_new_notebook_is_not_an_error(page, lab, shoot):
    from playwright.sync_api import expect

    path = write(lab, "empty.ipynb", notebook(""))
    open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    state = sidebar.locator(".same-nb-empty-state")
    expect(state).to_contain_text("No steps yet. Tag a cell step:load")
    expect(state).to_contain_text("cells up to the next tag join it")
    expect(sidebar.locator(".same-nb-inspect-error")).to_have_count(0)
    expect(sidebar.locator(".same-nb-error-text")).to_have_count(0)
    shoot(page, "notebook-empty")
    assert not page.errors, page.errors


def test_typed_parameters_are_checked_as_you_type(page, lab, shoot):
    from playwright.sync_api import expect

    path = write(lab, "params.ipynb", notebook(
        ("n = 3\nalpha = 1.0\nflag = True\nlabel = 'x'\nxs = [1, 2]", ["parameters"]),
        ("total = n * alpha if flag else 0\nsize = len(xs)\nname = label", ["step:calc"])))
    open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    form = sidebar.locator(".same-nb-params")
    expect(form.locator('input[name="alpha"]')).to_have_value("1.0")
    expect(form.locator('input[name="n"]')).to_have_value("3")
    expect(form.locator('input[name="flag"]')).to_be_checked()
    expect(form.locator('input[name="xs"]')).to_have_value("[1, 2]")
    run = sidebar.get_by_role("button", name="Run as pipeline")
    expect(run).to_be_enabled()

    form.locator('input[name="n"]').fill("2.5")
    form.locator('input[name="xs"]').fill("[1, 2")
    problems = form.locator(".same-nb-param-problem")
    expect(problems).to_have_text(["n must be a whole number (like 3)", re.compile(r"^xs must be a list, e\.g\. \[1, 2, 3\]")])
    expect(run).to_be_disabled()
    shoot(page, "params-validation")

    form.locator('input[name="n"]').fill("4")
    form.locator('input[name="xs"]').fill("[1, 2, 3]")
    form.locator('input[name="flag"]').uncheck()
    expect(problems).to_have_count(0)
    expect(run).to_be_enabled()
    run.click()
    card = sidebar.locator(".same-nb-current-run")
    expect(card.locator(".same-nb-run-summary .same-nb-status")).to_have_text("success", timeout=90_000)
    expect(card.locator(".same-nb-run-summary")).to_contain_text("n=4")
    run_id = int(re.search(r"#(\d+)", card.locator("h3").inner_text()).group(1))
    recorded = lab.api(f"runs/{run_id}", path=path)
    assert recorded["params"] == {"n": 4, "alpha": 1.0, "flag": False, "label": "x", "xs": [1, 2, 3]}
    step = card.locator('.same-nb-step-run[data-step="calc"]')
    expect(step.locator(".same-nb-timing")).to_contain_text(re.compile(r"\d\.\d\d s"))
    shoot(page, "sidebar-run")
    assert not page.errors, page.errors


def test_cancel_says_what_happened_when_the_server_ignores_sigint(browser, lab_ignoring_sigint, shoot):
    from playwright.sync_api import expect

    lab = lab_ignoring_sigint
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        path = write(lab, "slow.ipynb", notebook(("import time\ntime.sleep(120)\ndone = True", ["step:wait"])))
        open_notebook(page, lab, path)
        sidebar = page.locator(SIDEBAR)
        sidebar.get_by_role("button", name="Run as pipeline").click()
        card = sidebar.locator(".same-nb-current-run")
        expect(card.locator('.same-nb-step-run[data-step="wait"] .same-nb-status')).to_have_text(
            "running", timeout=60_000)
        run_id = int(re.search(r"#(\d+)", card.locator("h3").inner_text()).group(1))
        cancel = card.get_by_role("button", name="Cancel")
        cancel.click()
        notice = sidebar.locator(".same-nb-notice")
        expect(notice).to_have_text(re.compile(rf"Cancelling run {run_id}…|Run {run_id} cancelled\."))
        expect(notice).to_have_text(f"Run {run_id} cancelled.", timeout=30_000)
        expect(card.locator(".same-nb-run-summary .same-nb-status")).to_have_text("cancelled")
        shoot(page, "cancel")
        recorded = lab.api(f"runs/{run_id}", path=path)
        assert recorded["status"] == "cancelled"
        assert all(s["status"] != "success" for s in recorded.get("steps", []))
        assert not errors, errors
    finally:
        context.close()


def test_run_started_from_the_terminal_appears_within_2s(page, lab, shoot):
    from playwright.sync_api import expect

    path = write(lab, "cli.ipynb", notebook(("x = 1", ["step:one"]), ("y = x + 1", ["step:two"])))
    open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.locator(".same-nb-step")).to_have_count(2)
    expect(sidebar.locator(".same-nb-runs tr")).to_have_count(0)
    page.wait_for_timeout(500)
    proc = subprocess.Popen([sys.executable, "-m", "same_nb.cli", "run", path, "-q"], cwd=lab.root, env=lab.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not lab.api("runs", path=path, limit=1, offset=0)["runs"]:
            time.sleep(0.1)
        seen = time.monotonic()
        row = sidebar.locator(".same-nb-runs tr").first
        expect(row).to_be_visible(timeout=2_000)
        assert time.monotonic() - seen < 2.0
        # The newest run is followed live: its steps show at the top and finish.
        card = sidebar.locator(".same-nb-current-run")
        expect(card.locator(".same-nb-run-summary .same-nb-status")).to_have_text("success", timeout=90_000)
        expect(card.locator(".same-nb-step-run .same-nb-status")).to_have_text(["success", "success"])
        shoot(page, "sidebar-cli-run")
    finally:
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()
    assert not page.errors, page.errors


def test_sidebar_follows_a_rename(page, lab, shoot):
    from playwright.sync_api import expect

    path = write(lab, "before.ipynb", notebook(("x = 1", ["step:one"]), ("y = x + 1", ["step:two"])))
    open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.locator(".same-nb-notebook")).to_have_text("before.ipynb")
    expect(sidebar.locator(".same-nb-step")).to_have_count(2)
    page.locator(".lm-DockPanel .lm-TabBar-tab.lm-mod-current").click(button="right")
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Rename Notebook")).click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("after.ipynb")
    dialog.locator(".jp-mod-accept").click()
    expect(sidebar.locator(".same-nb-notebook")).to_have_text("after.ipynb")
    expect(sidebar.locator(".same-nb-step .same-nb-step-name")).to_have_text(["one", "two"])
    expect(sidebar.locator(".same-nb-inspect-error")).to_have_count(0)
    sidebar.get_by_role("button", name="Run as pipeline").click()
    card = sidebar.locator(".same-nb-current-run")
    expect(card.locator(".same-nb-run-summary .same-nb-status")).to_have_text("success", timeout=90_000)
    assert lab.api("runs", path="work/after.ipynb", limit=5, offset=0)["total"] == 1
    shoot(page, "sidebar-renamed")
    assert not page.errors, page.errors


def test_run_of_a_dirty_notebook_never_writes_it(page, lab, shoot):
    from playwright.sync_api import expect

    path = write(lab, "dirty.ipynb", notebook(("x = 1", ["step:one"]), ("y = x + 1", ["step:two"])))
    on_disk = (lab.root / path).read_bytes()
    panel = open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.locator(".same-nb-step")).to_have_count(2)
    type_in_cell(page, panel, 1, "\nz = y * 10")
    sidebar.get_by_role("button", name="Run as pipeline").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("A pipeline runs the notebook as it is saved on disk")
    expect(dialog.get_by_role("button", name="Save and run")).to_be_visible()
    shoot(page, "run-dirty-dialog")
    dialog.get_by_role("button", name="Run the saved version").click()
    card = sidebar.locator(".same-nb-current-run")
    expect(card.locator(".same-nb-run-summary .same-nb-status")).to_have_text("success", timeout=90_000)
    assert (lab.root / path).read_bytes() == on_disk, "running wrote the notebook"
    tab = page.locator(".lm-DockPanel .lm-TabBar-tab.lm-mod-current")
    expect(tab).to_have_class(re.compile(r"\bjp-mod-dirty\b"))
    assert not page.errors, page.errors


@pytest.mark.parametrize("example", ["quickstart", "branching"])
def test_shipped_example_opens_clean(page, lab, shoot, example):
    from playwright.sync_api import expect

    source = EXAMPLES / example / f"{example}.ipynb"
    target = lab.root / "work" / source.name
    shutil.copy(source, target)
    panel = open_notebook(page, lab, f"work/{source.name}")
    expect(page.locator(SIDEBAR).locator(".same-nb-step").first).to_be_visible()
    # The kernel starts and writes its metadata into the model: identical values leave it clean.
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first).to_be_attached(timeout=60_000)
    page.wait_for_timeout(1500)
    tab = page.locator(".lm-DockPanel .lm-TabBar-tab.lm-mod-current")
    expect(tab).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"))
    expect(panel.locator(".same-nb-step-badge").first).to_be_visible()
    shoot(page, "example-clean")
    assert target.read_bytes() == source.read_bytes()
    assert not page.errors, page.errors


def test_a_failed_run_is_marked_on_the_failing_cell(page, lab, shoot):
    from playwright.sync_api import expect

    path = write(lab, "fails.ipynb", notebook(("x = 1", ["step:one"]), ("y = x + 1\nz = y / 0", ["step:two"])))
    panel = open_notebook(page, lab, path)
    sidebar = page.locator(SIDEBAR)
    sidebar.get_by_role("button", name="Run as pipeline").click()
    card = sidebar.locator(".same-nb-current-run")
    expect(card.locator(".same-nb-run-summary .same-nb-status")).to_have_text("failed", timeout=90_000)
    marker = panel.locator(".jp-Cell").nth(1).locator(".same-nb-cell-problem-error")
    expect(marker).to_contain_text("line 2: run #")
    expect(marker).to_contain_text("step two failed here: ZeroDivisionError")
    expect(panel.locator(".jp-Cell").nth(1).locator(".same-nb-problem-line-error")).to_contain_text("z = y / 0")
    expect(card.locator('.same-nb-step-run[data-step="two"] .same-nb-error-text')).to_contain_text("cell 2, line 2")
    shoot(page, "run-error-on-cell")
    assert not page.errors, page.errors
