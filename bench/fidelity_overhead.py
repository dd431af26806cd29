"""Cost of the fidelity checks: the shipped examples and the linear runner benchmark, each run cold
(`--no-cache`) with the run-time checks (input fingerprints, state channels, file-order check) and
without them, alternated, medians of N whole processes. Goal: checks add <= 5%.

"Without" runs the same CLI with the runner's check hooks replaced by no-ops in that process (the
product has no switch for it on purpose).

Usage: python bench/fidelity_overhead.py [--repeat N]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner_ratios import LINEAR, notebook  # noqa: E402

WITHOUT_CHECKS = (
    "import sys\n"
    "from same_nb.local import runner\n"
    "runner.Runner._verify = lambda self, step: {}\n"
    "runner.Runner._state_check = lambda self, step: False\n"
    "runner.Runner._file_hazard = lambda self, name, files_in, files_out: None\n"
    "from same_nb.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n")
GOAL = 1.05


def _cases(root: Path) -> dict[str, Path]:
    cases = {}
    for name in ("quickstart", "branching"):
        folder = root / name
        shutil.copytree(ROOT / "examples" / name, folder, ignore=shutil.ignore_patterns(".same", "*-pipeline"))
        cases[name] = folder / f"{name}.ipynb"
    linear = root / "linear"
    linear.mkdir()
    (linear / "linear.ipynb").write_text(json.dumps(notebook(LINEAR)))
    cases["linear 4 steps"] = linear / "linear.ipynb"
    return cases


def _timed(notebook: Path, checks: bool) -> float:
    head = [sys.executable, "-m", "same_nb.cli"] if checks else [sys.executable, "-c", WITHOUT_CHECKS]
    t0 = time.perf_counter()
    proc = subprocess.run([*head, "run", notebook.name, "--no-cache", "-q"], cwd=notebook.parent,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{notebook.name} failed ({'with' if checks else 'without'} checks):\n{proc.stdout[-1500:]}"
                 f"\n{proc.stderr[-1500:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="same-nb-fidelity-bench-"))
    try:
        cases = _cases(root)
        for nb in cases.values():                     # compile once: both variants reuse it
            _timed(nb, True)
        print(f"{'case':<16}{'without s':>11}{'with s':>9}{'ratio':>8}{'goal':>7}  verdict")
        for label, nb in cases.items():
            with_, without = [], []
            for _ in range(args.repeat):              # alternated, so drift hits both alike
                without.append(_timed(nb, False))
                with_.append(_timed(nb, True))
            a, b = statistics.median(without), statistics.median(with_)
            ratio = b / a
            print(f"{label:<16}{a:>11.2f}{b:>9.2f}{ratio:>8.3f}{GOAL:>7.2f}  {'PASS' if ratio <= GOAL else 'MISS'}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
