"""Per-step resources and data drift in a real JupyterLab and Chromium: the Compare view's Resources and
Data drift sections, the Pipeline view's step panel, the sidebar's step rows and the Runs view's drift
button, over two real runs of a notebook that loads a CSV with pandas.

Run 1 uses the defaults; run 2 shifts one column by 5 and allocates 200 MB instead of 1 MB in a later
step, so `price` drifts (and `qty` does not) and that step's peak memory grows far more than 2x. Run 3
(defaults but `qty` cast to float) changes the schema only; `codes` is the same in every run.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import _start_lab
from .test_views import _sidebar, code, command, notebook, open_lab, start_run, wait_run

pytestmark = pytest.mark.slow

NB = "work/drift.ipynb"
MEMORY = re.compile(r"^\d+(\.\d+)? (kB|MB|GB)$")


def write_fixtures(work: Path) -> None:
    rows = ["price,qty"] + [f"{10 + (i * 7 % 41) / 10:.1f},{i % 20 + 1}" for i in range(400)]
    (work / "data.csv").write_text("\n".join(rows) + "\n")
    (work / "drift.ipynb").write_text(notebook([
        code("shift = 0\nmb = 1\ncast = False", ["parameters"]),
        code("import pandas as pd\nraw = pd.read_csv('data.csv')\nraw['price'] = raw['price'] + shift\n"
             "if cast:\n    raw['qty'] = raw['qty'].astype('float64')\n"
             "codes = pd.DataFrame({'code': list('abc') * 10})", ["step:load"]),
        # Written page by page: an untouched zeroed allocation is not resident memory.
        code("blob = bytearray(mb * 2**20)\nfor i in range(0, len(blob), 4096):\n    blob[i] = 1\n"
             "summary = raw.describe()\nheld = len(blob) + len(codes)", ["step:heavy"]),
        # Steps that read nothing: cache hits in later runs, and enough steps to fold those that did not grow.
        *[code(f"note_{c} = '{c}'", [f"step:note_{c}"]) for c in "abc"],
    ]))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from _start_lab(tmp_path_factory, expose_app=True, fixtures=write_fixtures)


@pytest.fixture(scope="module")
def runs(lab) -> tuple[int, int, int]:
    ids = []
    for params in ({}, {"shift": "5", "mb": "200"}, {"cast": "True"}):
        ids.append(start_run(lab, NB, params))
        assert wait_run(lab, NB, ids[-1])["status"] == "success"
    return tuple(ids)


def test_drift_button_and_compare_show_drift_and_resource_growth(page, lab, shoot, runs):
    from playwright.sync_api import expect

    base, shifted, _ = runs
    open_lab(page, lab, NB)
    command(page, "same-nb:open-runs-view", {"path": NB})
    table = page.locator(".same-nb-v-runs:visible")
    expect(table.locator("tbody tr[data-run-id]")).to_have_count(3, timeout=30_000)

    # The Runs view's drift button: run 2's inputs drifted from run 1, worst column price.
    table.locator(".same-nb-v-drift-button").click()
    pop = table.locator(".same-nb-v-drift-pop")
    drifted = pop.locator(f'li.same-nb-v-drifted-run[data-run-id="{shifted}"]')
    expect(drifted).to_contain_text("heavy.raw['price']", timeout=30_000)
    expect(drifted).to_contain_text("(significant)")
    expect(drifted).to_have_attribute("data-baseline", str(base))
    expect(pop.locator(f'li.same-nb-v-drifted-run[data-run-id="{base}"]')).to_have_count(0)
    expect(pop).to_contain_text(f"run(s) #{base}")            # the first run has no baseline
    shoot(page, "runs-drift")

    drifted.locator(".same-nb-v-drift-compare").click()
    cmp = page.locator(".same-nb-v-compare:visible")
    expect(cmp.locator(".same-nb-v-title")).to_contain_text(f"Compare #{base} · #{shifted}")

    drift = cmp.locator('[data-section="drift"]')
    price = drift.locator('tr.same-nb-v-drift-col[data-column="price"]')
    qty = drift.locator('tr.same-nb-v-drift-col[data-column="qty"]')
    expect(price).to_have_class(re.compile(r"\bsame-nb-v-drift-over\b"), timeout=30_000)
    assert float(price.get_attribute("data-psi")) > 0.25
    expect(price.locator(".same-nb-v-drift-reading")).to_have_text("significant")
    highlighted = price.evaluate("e => getComputedStyle(e).backgroundColor")
    assert highlighted not in ("rgba(0, 0, 0, 0)", "transparent"), highlighted
    expect(qty).to_have_count(1)
    expect(qty).not_to_have_class(re.compile(r"\bsame-nb-v-drift-over\b"))
    assert float(qty.get_attribute("data-psi")) < 0.1
    expect(qty.locator(".same-nb-v-drift-reading")).to_have_text("stable")
    expect(drift.locator("h3")).to_contain_text("1 column(s) at PSI ≥ 0.1")
    expect(drift.locator(".same-nb-v-drift-explain")).to_contain_text("<0.1 stable, 0.1–0.25 moderate, >0.25 significant")
    expect(drift.locator('[data-artifact="load.raw"]')).to_contain_text("mean")
    expect(drift.locator(".same-nb-v-drift-identical")).to_have_text("1 profiled output(s) identical: load.codes")
    expect(drift.locator('[data-artifact="load.codes"]')).to_have_count(0)
    expect(drift.locator(".same-nb-v-drift-schema")).to_have_count(0)

    res = cmp.locator('[data-section="resources"]')
    heavy_mem = res.locator('tr[data-step="heavy"][data-figure="peak_rss_bytes"]')
    first_mem = heavy_mem.locator(f'td[data-run="{base}"]')
    expect(first_mem).to_have_text(MEMORY)
    grown = heavy_mem.locator(f'td[data-run="{shifted}"]')
    expect(grown).to_have_class(re.compile(r"\bsame-nb-v-res-flagged\b"))
    flag = grown.locator(".same-nb-v-res-flag")
    expect(flag).to_have_text(re.compile(r"^▲ \d+(\.\d+)?×$"))
    assert "more than 2x" in flag.get_attribute("title")
    ratio = float(re.search(r"[\d.]+", flag.inner_text()).group())
    assert ratio > 2, ratio
    # (a time flag may join it on a loaded machine: writing 200 MB takes a while)
    memory_flags = res.locator(".same-nb-v-res-flagline", has_text="peak memory")
    expect(memory_flags).to_have_count(1)
    expect(memory_flags).to_contain_text(f"heavy: peak memory {flag.inner_text()[2:]} from run #{base} to run #{shifted}")
    # the steps that did not grow are folded (five steps); open them: measured, not flagged
    summary = res.locator("details > summary")
    expect(summary).to_have_text(re.compile(r"^\d step\(s\) that did not grow more than 2x$"))
    expect(res.locator('tr[data-step="load"]')).to_have_count(0)
    summary.click()
    expect(res.locator(f'tr[data-step="load"][data-figure="peak_rss_bytes"] td[data-run="{base}"]')).to_have_text(MEMORY)
    expect(res.locator('tr[data-step="load"] .same-nb-v-res-flag')).to_have_count(0)
    expect(res.locator(f'tr[data-step="load"][data-figure="cpu_s"] td[data-run="{base}"]')).to_have_text(re.compile(r" s$"))
    # a cache hit ran nothing: no memory or CPU, only the bytes it passed on
    note = res.locator('tr[data-step="note_a"][data-figure="peak_rss_bytes"]')
    expect(note.locator(f'td[data-run="{shifted}"]')).to_have_text("—")
    expect(note.locator(f'td[data-run="{base}"]')).to_have_text(MEMORY)
    res.scroll_into_view_if_needed()
    shoot(page, "compare-resources")
    drift.scroll_into_view_if_needed()
    shoot(page, "compare-drift")
    assert not page.errors, page.errors


def test_pipeline_panel_and_sidebar_show_step_memory(page, lab, shoot, runs):
    from playwright.sync_api import expect

    shifted = runs[1]
    open_lab(page, lab, NB)
    command(page, "same-nb:open-pipeline-view", {"path": NB, "runId": shifted})
    view = page.locator(".same-nb-v-pipeline:visible")
    heavy = view.locator('g.same-nb-v-step[data-step="heavy"]')
    expect(heavy).to_have_attribute("data-status", "success", timeout=30_000)
    heavy.click()
    side = view.locator('.same-nb-v-side[data-step="heavy"]')
    mem = side.locator(".same-nb-v-side-mem")
    expect(mem).to_have_text(MEMORY)
    recorded = lab.api(f"runs/{shifted}", path=NB)
    step = next(s for s in recorded["steps"] if s["step_name"] == "heavy")
    assert step["peak_rss_bytes"] > 150 * 10**6, step       # the 200 MB it held
    assert mem.inner_text().endswith("MB"), mem.inner_text()
    expect(side.locator(".same-nb-v-side-cpu")).to_have_text(re.compile(r"^\d+(\.\d+)? s$"))
    expect(side.locator(".same-nb-v-side-bytes")).to_have_text(re.compile(r"^\d+(\.\d+)? kB / 0 B$"))
    shoot(page, "pipeline-step-resources")

    # The sidebar's step rows: "· 226 MB" after the time, CPU and bytes in the title.
    assert _sidebar(page)
    page.locator(f'#same-nb-sidebar .same-nb-runs tr[data-run-id="{shifted}"]').click()
    card = page.locator("#same-nb-sidebar .same-nb-current-run")
    timing = card.locator('.same-nb-step-run[data-step="heavy"] .same-nb-timing')
    expect(timing.locator(".same-nb-timing-mem")).to_have_text(f" · {mem.inner_text()}", timeout=30_000)
    assert "CPU" in timing.get_attribute("title") and "data in" in timing.get_attribute("title")
    shoot(page, "sidebar-step-resources")
    assert not page.errors, page.errors


def test_compare_of_three_runs_calls_out_a_schema_change(page, lab, shoot, runs):
    from playwright.sync_api import expect

    base, shifted, cast = runs
    open_lab(page, lab, NB)
    command(page, "same-nb:open-runs-view", {"path": NB})
    table = page.locator(".same-nb-v-runs:visible")
    for run_id in runs:
        table.locator(f'tr[data-run-id="{run_id}"] input[type=checkbox]').check()
    table.locator(".same-nb-v-compare-button").click()
    cmp = page.locator(".same-nb-v-compare:visible")
    drift = cmp.locator('[data-section="drift"]')
    blocks = drift.locator(".same-nb-v-drift-run")
    expect(blocks).to_have_count(2, timeout=30_000)
    expect(blocks.locator("h4")).to_have_text([f"run #{base} → run #{shifted}", f"run #{base} → run #{cast}"])
    third = drift.locator(f'.same-nb-v-drift-run[data-run="{cast}"]')
    expect(third.locator('.same-nb-v-drift-schema li[data-change="dtype"]')).to_have_text(
        "schema: column 'qty' dtype int64 → float64")
    expect(third.locator(".same-nb-v-drift-over")).to_have_count(0)          # same values, new dtype
    expect(third.locator('tr[data-column="price"] .same-nb-v-drift-reading')).to_have_text("stable")
    expect(drift.locator("h3")).to_contain_text("1 column(s) at PSI ≥ 0.1, 1 schema change(s)")
    # growth is flagged against the base run, in the run that grew only
    mem = cmp.locator('[data-section="resources"] tr[data-step="heavy"][data-figure="peak_rss_bytes"]')
    expect(mem.locator(".same-nb-v-res-flag")).to_have_count(1, timeout=30_000)
    expect(mem.locator(f'td[data-run="{shifted}"] .same-nb-v-res-flag')).to_have_count(1)
    expect(mem.locator(f'td[data-run="{cast}"]')).to_have_text(MEMORY)
    third.scroll_into_view_if_needed()
    shoot(page, "compare-three-runs-drift")
    assert not page.errors, page.errors
