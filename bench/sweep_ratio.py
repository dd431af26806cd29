"""Sweep benchmark: a 3x2 grid over the quickstart's C and seed as one `same-nb run --sweep`, against the
same six grid points as six separate `same-nb run -p` processes; whole processes, fresh copies, both sides
alternated, medians of N, `--no-cache` on both (the sweep still computes its shared step once).

Goal: sweep / separate <= 0.8 (the shared `load` step runs once instead of six times, one process
compiles and opens the store, and the grid points run side by side within --jobs).

Usage: python bench/sweep_ratio.py [--repeat N] [--jobs N]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner_ratios import SAME, Bench, environment  # noqa: E402

C_VALUES, SEEDS = ("0.1", "1.0", "10"), ("0", "1")
GOAL = 0.8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="same-nb-bench-sweep-"))
    try:
        bench = Bench(root, environment(root / "pycache", Path(__file__).resolve().parents[1]), None)
        jobs = ["-j", str(args.jobs), "--no-cache", "-q"]
        sweep_cmd = SAME + ["run", "quickstart.ipynb", "--sweep", "C=" + ",".join(C_VALUES),
                            "--sweep", "seed=" + ",".join(SEEDS), *jobs]
        single = [SAME + ["run", "quickstart.ipynb", "-p", "C", c, "-p", "seed", s, *jobs]
                  for c in C_VALUES for s in SEEDS]
        bench.timed(sweep_cmd, bench.folder())                      # untimed warm-up
        swept, separate = [], []
        for i in range(args.repeat):
            def run_sweep() -> None:
                swept.append(bench.timed(sweep_cmd, bench.folder()))

            def run_separate() -> None:
                folder = bench.folder()
                separate.append(sum(bench.timed(cmd, folder) for cmd in single))

            for side in ((run_sweep, run_separate) if i % 2 == 0 else (run_separate, run_sweep)):
                side()
        a, b = statistics.median(swept), statistics.median(separate)
        verdict = "PASS" if a / b <= GOAL else "MISS"
        print(f"3x2 sweep of the quickstart, -j {args.jobs}: one `run --sweep` / six `run -p` = "
              f"{a:.2f} s / {b:.2f} s = {a / b:.3f} (goal <= {GOAL}) {verdict}")
        print(f"  sweep runs: {', '.join(f'{t:.2f}' for t in swept)}; separate: {', '.join(f'{t:.2f}' for t in separate)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
