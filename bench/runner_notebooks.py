"""The notebooks of bench/runner_ratios.py: generated, so each benchmark states exactly what it runs."""
from __future__ import annotations

WORK = """
t0 = time.perf_counter()
acc = 0.0
while time.perf_counter() - t0 < {seconds}:
    m = np.random.default_rng(1).standard_normal((300, 300))
    acc += float(np.linalg.svd(m, compute_uv=False)[0])
"""

# Four steps of ~1.5 s of numpy/pandas work each, a 200k-row DataFrame passed along.
LINEAR = [
    (["parameters"], "rows = 200_000"),
    (["step:load"], "import time\nimport numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import Ridge\n"
                    "df = pd.DataFrame(np.random.default_rng(0).standard_normal((rows, 10)),"
                    " columns=[f'c{i}' for i in range(10)])" + WORK.format(seconds=1.5)),
    (["step:features"], "df['c10'] = df['c0'] * df['c1']" + WORK.format(seconds=1.5)),
    (["step:train"], "model = Ridge().fit(df.drop(columns='c0'), df['c0'])" + WORK.format(seconds=1.5)),
    (["step:report"], "score = float(model.score(df.drop(columns='c0'), df['c0']))" + WORK.format(seconds=1.5)),
]

# load -> two independent ~2.5 s branches -> merge.
DIAMOND = [
    (["step:load"], "import time\nimport numpy as np\nbase = np.arange(1000)"),
    (["step:left"], "left = base * 2" + WORK.format(seconds=2.5)),
    (["step:right"], "right = base + 1" + WORK.format(seconds=2.5)),
    (["step:merge"], "total = int(left.sum() + right.sum())"),
]


def small_steps(n: int = 20) -> list[tuple[list[str], str]]:
    """``n`` steps of ~50 ms each, a 100k-row DataFrame changed by each and passed to the next."""
    cells = [(["parameters"], "rows = 100_000"),
             (["step:s01"], "import time\nimport numpy as np\nimport pandas as pd\n"
                            "df = pd.DataFrame({'a': np.arange(rows, dtype='float64')})" + WORK.format(seconds=0.05))]
    cells += [([f"step:s{i:02d}"], f"df['c{i}'] = df['a'] * {i}" + WORK.format(seconds=0.05)) for i in range(2, n + 1)]
    return cells


def notebook(cells) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": t}, "source": s,
                       "outputs": [], "execution_count": None} for i, (t, s) in enumerate(cells)]}
