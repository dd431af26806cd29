"""Runner benchmarks: same-nb against papermill (and against itself), whole processes measured in the
same run, the two sides of each ratio alternated, medians of N.

1. quickstart (examples/quickstart, fresh copy): cold `same-nb run --no-cache` / `papermill`. Goal <= 1.15.
2. 20 small steps (~50 ms each, a 100k-row DataFrame passed along) / papermill. Goal <= 1.5.
3. linear 4 steps (~1.5 s each, a 200k-row DataFrame) / papermill. Goal <= 1.05.
4. diamond (load -> two ~2.5 s branches -> merge): `-j 2` / `-j 1`. Goal <= 0.75.
5. quickstart cached rerun (nothing changed) / its cold run. Goal <= 3%.
6. per-step overhead: (same-nb - papermill) / steps, for the quickstart and the 20 steps (no goal).

Every process gets this checkout on PYTHONPATH and writes bytecode to a temporary PYTHONPYCACHEPREFIX
(an installed package has its .pyc; a checkout under PYTHONDONTWRITEBYTECODE would recompile
same-nb in every process); one untimed warm-up of each command comes first.

Usage: python bench/runner_ratios.py [--repeat N] [--kernel MODE ...] [--only NAME ...] [--checkout DIR]
--kernel is passed to `same-nb run` (each mode measured in turn) when given and when `same-nb run`
has that option.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner_notebooks import DIAMOND, LINEAR, notebook, small_steps  # noqa: E402,F401  (LINEAR: fidelity_overhead)

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart"
PAPERMILL = [sys.executable, "-m", "papermill", "--no-progress-bar"]
SAME = [sys.executable, "-m", "same_nb.cli"]


def environment(cache_dir: Path, checkout: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "SAME_NB_DB")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env


class Bench:
    def __init__(self, root: Path, env: dict[str, str], kernel: str | None):
        self.root, self.env, self.kernel = root, env, kernel

    def timed(self, cmd: list[str], cwd: Path) -> float:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=self.env)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"command failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return elapsed

    def same(self, name: str, *args: str) -> list[str]:
        return SAME + ["run", f"{name}.ipynb", "-q", *args] + (["--kernel", self.kernel] if self.kernel else [])

    def folder(self, cells=None, name: str = "nb") -> Path:
        d = Path(tempfile.mkdtemp(dir=self.root))
        if cells is None:
            shutil.copytree(QUICKSTART, d, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".same"))
        else:
            (d / f"{name}.ipynb").write_text(json.dumps(notebook(cells)))
        return d

    def versus_papermill(self, cells, name: str, repeat: int, cached: list[float] | None = None):
        """Medians of (same-nb cold, papermill), alternating which goes first; ``cached`` collects
        a rerun of each cold run's folder with nothing changed."""
        same, pm = [], []
        for i in range(repeat):
            d = self.folder(cells, name)
            sides = [lambda: same.append(self.timed(self.same(name, "--no-cache"), d)),
                     lambda: pm.append(self.timed(PAPERMILL + [f"{name}.ipynb", "out.ipynb"], d))]
            for side in (sides if i % 2 == 0 else sides[::-1]):
                side()
            if cached is not None:
                cached.append(self.timed(self.same(name), d))
        return statistics.median(same), statistics.median(pm)

    def jobs(self, repeat: int):
        j1, j2 = [], []
        for i in range(repeat):
            sides = [lambda: j1.append(self.timed(self.same("diamond", "-j", "1"), self.folder(DIAMOND, "diamond"))),
                     lambda: j2.append(self.timed(self.same("diamond", "-j", "2"), self.folder(DIAMOND, "diamond")))]
            for side in (sides if i % 2 == 0 else sides[::-1]):
                side()
        return statistics.median(j2), statistics.median(j1)


def kernel_option_supported(env: dict[str, str]) -> bool:
    done = subprocess.run(SAME + ["run", "--help"], capture_output=True, text=True, env=env)
    return "--kernel" in done.stdout


def measure(bench: Bench, repeat: int, only: list[str]) -> list[tuple]:
    """Rows: (name, seconds, ratio, goal) for verdict lines, (name, ms) for overheads."""
    def want(key: str) -> bool:
        return not only or key in only

    rows: list[tuple] = []
    label = f" [--kernel {bench.kernel}]" if bench.kernel else ""
    bench.timed(bench.same("quickstart", "--no-cache"), bench.folder())          # warm-up: bytecode, caches
    if want("quickstart") or want("cached"):
        cached: list[float] = []
        cold, pm = bench.versus_papermill(None, "quickstart", repeat, cached)
        rows += [(f"quickstart: same-nb cold / papermill{label}", cold, cold / pm, 1.15),
                 (f"quickstart: cached rerun / cold{label}", statistics.median(cached),
                  statistics.median(cached) / cold, 0.03),
                 (f"quickstart: per-step overhead{label}", (cold - pm) / 4 * 1000)]
    if want("small"):
        same, pm = bench.versus_papermill(small_steps(20), "small", repeat)
        rows += [(f"20 small steps: same-nb / papermill{label}", same, same / pm, 1.5),
                 (f"20 small steps: per-step overhead{label}", (same - pm) / 20 * 1000)]
    if want("linear"):
        same, pm = bench.versus_papermill(LINEAR, "linear", repeat)
        rows.append((f"linear 4 steps: same-nb / papermill{label}", same, same / pm, 1.05))
    if want("diamond"):
        j2, j1 = bench.jobs(repeat)
        rows.append((f"diamond: -j 2 / -j 1{label}", j2, j2 / j1, 0.75))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kernel", action="append", metavar="MODE", help="same-nb run --kernel MODE (repeatable)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="quickstart, cached, small, linear, diamond")
    ap.add_argument("--checkout", type=Path, default=ROOT, help="folder holding the same_nb package to measure "
                                                                  "(default: this checkout), e.g. an older copy")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="same-nb-bench-"))
    env = environment(root / "pycache", args.checkout.resolve())
    kernels: list[str | None] = args.kernel or [None]
    if args.kernel and not kernel_option_supported(env):
        print("note: this same-nb has no `run --kernel`; measuring its default kernels", file=sys.stderr)
        kernels = [None]
    started = time.time()
    try:
        rows = [row for k in kernels for row in measure(Bench(root, env, k), args.repeat, args.only or [])]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'benchmark':52} {'median s':>9} {'ratio':>7} {'goal':>6}  result")
    for row in rows:
        if len(row) == 2:
            print(f"{row[0]:52} {row[1]:8.0f} ms  (same-nb - papermill) / steps")
            continue
        name, secs, ratio, goal = row
        print(f"{name:52} {secs:9.2f} {ratio:7.3f} {goal:6.2f}  {'PASS' if ratio <= goal else 'MISS'}")
    load = os.getloadavg()
    print(f"(median of {args.repeat}; whole processes, both sides alternated, measured in this run; "
          f"{time.time() - started:.0f} s; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on "
          f"{os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
