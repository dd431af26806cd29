"""Large steps: a one-step notebook of N small cells, `same-nb run --no-cache` against papermill with its
per-cell saving turned off (`--no-request-save-on-cell-execute`: papermill then writes the executed
notebook once, at the end). Goal: same-nb within 1.5x at 1,000 cells, and time linear in cells.

Each figure is a whole fresh process (kernel start included on both sides; papermill's CLI with the
same start-up trim as same-nb's, see same_nb/lean.py), the two commands
alternate within each round, and the table shows medians. A warm-up run of each comes first and is
not counted (it also compiles the notebook into same-nb's compile cache, as a second `run` would find
it). `--per-cell-save` also times papermill's default (a save at every cell start and end) once per
size, for reference: it is quadratic, so it takes minutes at 1,000 cells.

Usage: python bench/large_steps.py [--sizes 200 500 1000] [--repeat 3] [--per-cell-save]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.5          # same-nb / papermill without per-cell saving, at 1,000 cells
GOAL_CELLS = 1000


def notebook(cells: int) -> dict:
    """One `step:big` tag on the first cell; every cell adds to x and prints it (one output each)."""
    sources = ["x = 0"] + [f"x = x + {i}\nprint(x)" for i in range(1, cells)]
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": ["step:big"] if i == 0 else []},
                       "source": s, "outputs": [], "execution_count": None} for i, s in enumerate(sources)]}


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def step_seconds(stdout: str) -> float:
    """The step's own time from same-nb's summary line `big  success  12.34s`."""
    m = re.search(r"^\s*big\s+success\s+([\d.]+)s", stdout, re.M)
    return float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--per-cell-save", action="store_true", help="also time papermill's default saving, once")
    args = ap.parse_args()
    same = [sys.executable, "-m", "same_nb.cli", "run", "--no-cache", "big.ipynb"]
    # papermill's CLI with the one start-up trim same-nb's CLI makes too (same_nb/lean.py): jsonschema's
    # optional IRI grammar costs ~2 s per process and no notebook needs it.
    papermill = [sys.executable, "-c", "import sys; sys.modules['rfc3987_syntax'] = None; "
                 "sys.argv[0] = 'papermill'; from papermill.cli import papermill; papermill()",
                 "big.ipynb", "out.ipynb", "--no-progress-bar"]
    plain = papermill + ["--no-request-save-on-cell-execute"]
    root = Path(tempfile.mkdtemp(prefix="same-nb-bench-large-"))
    rows = []
    try:
        for n in args.sizes:
            d = root / str(n)
            d.mkdir()
            (d / "big.ipynb").write_text(json.dumps(notebook(n)))
            timed(same, d)
            timed(plain, d)
            pm, sn, steps = [], [], []
            for r in range(args.repeat):
                for which in (("pm", "sn") if r % 2 == 0 else ("sn", "pm")):
                    if which == "pm":
                        pm.append(timed(plain, d)[0])
                    else:
                        secs, out = timed(same, d)
                        sn.append(secs)
                        steps.append(step_seconds(out))
            per_cell = timed(papermill, d)[0] if args.per_cell_save else None
            executed = json.loads(next((d / ".same" / "runs").glob("*/steps/big.ipynb")).read_text())
            outputs = sum(bool(c.get("outputs")) for c in executed["cells"] if c.get("metadata", {}).get("same_nb"))
            if outputs != n - 1:
                sys.exit(f"{n} cells: the executed notebook has {outputs} cells with outputs, expected {n - 1}")
            rows.append((n, statistics.median(pm), statistics.median(sn), statistics.median(steps), per_cell))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'cells':>6} {'papermill no-save s':>20} {'same-nb run s':>14} {'(step s)':>9} {'ratio':>6} "
          f"{'goal':>5}  result" + ("   papermill per-cell save s" if args.per_cell_save else ""))
    for n, pm, sn, step, per_cell in rows:
        ratio = sn / pm
        verdict = ("PASS" if ratio <= GOAL else "MISS") if n == GOAL_CELLS else ""
        goal = f"{GOAL:5.2f}" if n == GOAL_CELLS else ""
        extra = f"   {per_cell:27.2f}" if per_cell is not None else ""
        print(f"{n:6d} {pm:20.2f} {sn:14.2f} {step:9.2f} {ratio:6.3f} {goal:>5}  {verdict}{extra}")
    if len(rows) > 1:
        (n0, _, s0, st0, _), (n1, _, s1, st1, _) = rows[0], rows[-1]
        print(f"growth {n0} -> {n1} cells (x{n1 / n0:.1f}): same-nb run x{s1 / s0:.2f}, step x{st1 / st0:.2f}")
    print(f"(median of {args.repeat}, alternated; every figure a whole fresh process, kernel start included)")


if __name__ == "__main__":
    main()
