"""The terminal tables of report.py, at the width of a small terminal or a pipe (80 columns)."""
from __future__ import annotations

import datetime

from same_nb.report import print_runs


def _run(run_id: int, **extra) -> dict:
    return {"id": run_id, "pipeline_name": "quickstart", "status": "success", "duration_s": 6.4,
            "started_at": datetime.datetime(2026, 12, 3, 13, 52, 57), "target": "local",
            "step_counts": {"cached": 2, "success": 2}, **extra}


def _lines(capsys, monkeypatch, runs) -> list[str]:
    monkeypatch.setenv("COLUMNS", "80")
    print_runs(runs, len(runs))
    return capsys.readouterr().out.splitlines()


def test_ids_and_names_fold_rather_than_lose_their_ends(capsys, monkeypatch):
    runs = [_run(7, sweep_id="quickstart-grid-2026", name="baseline-with-long-label"), _run(6)]
    lines = _lines(capsys, monkeypatch, runs)
    assert all(len(line) <= 80 for line in lines) and not any("…" in line for line in lines), lines
    cells = "".join(line.split("│")[-2].strip() for line in lines if line.startswith("│"))
    assert cells == "quickstart-grid-2026"                  # the sweep column, read down its lines


def test_the_target_column_is_there_only_when_a_run_is_not_local(capsys, monkeypatch):
    assert "target" not in _lines(capsys, monkeypatch, [_run(1)])[2]
    header = _lines(capsys, monkeypatch, [_run(2, target="kubeflow"), _run(1)])[2]
    assert "target" in header
