"""Runner benchmarks: same-nb against papermill, measured in the same run on this machine.

1. Linear 4-step notebook (~1.5 s of numpy/pandas work per step, a 200k-row DataFrame passed along):
   cold `same-nb run` vs `papermill` on the whole notebook, each as a fresh process. Goal <= 1.15x.
2. Two independent ~2 s branches: `--jobs 2` vs `--jobs 1`. Goal <= 0.75x.
3. Cached rerun vs cold run, whole process. Goal <= 5%.

Usage: python bench/runner_ratios.py [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORK = """
t0 = time.perf_counter()
acc = 0.0
while time.perf_counter() - t0 < {seconds}:
    m = np.random.default_rng(1).standard_normal((300, 300))
    acc += float(np.linalg.svd(m, compute_uv=False)[0])
"""

LINEAR = [
    (["parameters"], "rows = 200_000"),
    (["step:load"], "import time\nimport numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import Ridge\n"
                    "df = pd.DataFrame(np.random.default_rng(0).standard_normal((rows, 10)),"
                    " columns=[f'c{i}' for i in range(10)])" + WORK.format(seconds=1.5)),
    (["step:features"], "df['c10'] = df['c0'] * df['c1']" + WORK.format(seconds=1.5)),
    (["step:train"], "model = Ridge().fit(df.drop(columns='c0'), df['c0'])" + WORK.format(seconds=1.5)),
    (["step:report"], "score = float(model.score(df.drop(columns='c0'), df['c0']))" + WORK.format(seconds=1.5)),
]

BRANCHES = [
    (["step:start"], "import time\nimport numpy as np\nbase = np.arange(1000)"),
    (["step:left"], "left = base * 2" + WORK.format(seconds=2.0)),
    (["step:right"], "right = base + 1" + WORK.format(seconds=2.0)),
    (["step:join"], "total = int(left.sum() + right.sum())"),
]


def notebook(cells) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": t}, "source": s,
                       "outputs": [], "execution_count": None} for i, (t, s) in enumerate(cells)]}


def timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def fresh(cells, root: Path, name: str) -> Path:
    d = Path(tempfile.mkdtemp(dir=root))
    (d / f"{name}.ipynb").write_text(json.dumps(notebook(cells)))
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    same = [sys.executable, "-m", "same_nb.cli"]
    root = Path(tempfile.mkdtemp(prefix="same-nb-bench-"))
    try:
        pm, cold, cached = [], [], []
        for _ in range(args.repeat):
            d = fresh(LINEAR, root, "linear")
            pm.append(timed([sys.executable, "-m", "papermill", "linear.ipynb", "out.ipynb", "--no-progress-bar"], d))
            cold.append(timed(same + ["run", "linear.ipynb", "-q"], d))
            cached.append(timed(same + ["run", "linear.ipynb", "-q"], d))
        j1, j2 = [], []
        for _ in range(args.repeat):
            j1.append(timed(same + ["run", "branches.ipynb", "-q", "--jobs", "1"], fresh(BRANCHES, root, "branches")))
            j2.append(timed(same + ["run", "branches.ipynb", "-q", "--jobs", "2"], fresh(BRANCHES, root, "branches")))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = statistics.median
    rows = [
        ("linear 4 steps: papermill, whole notebook", med(pm), None, None),
        ("linear 4 steps: same-nb run, cold", med(cold), med(cold) / med(pm), 1.15),
        ("two branches: --jobs 1", med(j1), None, None),
        ("two branches: --jobs 2", med(j2), med(j2) / med(j1), 0.75),
        ("cached rerun (whole process)", med(cached), med(cached) / med(cold), 0.05),
    ]
    print(f"{'benchmark':44} {'median s':>9} {'ratio':>7} {'goal':>6}  result")
    for name, secs, ratio, goal in rows:
        verdict = "" if goal is None else ("PASS" if ratio <= goal else "MISS")
        print(f"{name:44} {secs:9.2f} {'' if ratio is None else f'{ratio:7.3f}':>7} "
              f"{'' if goal is None else f'{goal:6.2f}':>6}  {verdict}")
    print(f"(median of {args.repeat}; every figure is a whole process, measured in this run)")


if __name__ == "__main__":
    main()
