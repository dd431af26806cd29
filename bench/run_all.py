"""Run every benchmark in bench/ as its own process and print one table: figure, measured, goal, PASS/MISS.

Run: python bench/run_all.py [--quick] [--only NAME ...]
--quick passes smaller sizes / fewer repeats to each script (a smoke run: figures are noisier and
compile's 50k-cell growth figure is skipped). Each script's own output is parsed, so the goals and
verdicts are the scripts' own; a script that fails or prints nothing parseable shows as ERROR.
Exit code: 0 when every figure passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
TIMEOUT_SECONDS = 1800


@dataclass
class Figure:
    name: str
    measured: str
    goal: str
    passed: bool | None  # None: the script failed to produce it


def _compile(out: str) -> list[Figure]:
    figures = []
    result = next((line for line in out.splitlines() if line.startswith("RESULT: ")), "")
    for item in filter(None, result[len("RESULT: "):].split("; ")):
        m = re.fullmatch(r"(.+?) (PASS|MISS) \((.+)\)", item)
        if m:
            label, verdict, value = m.groups()
            goal = label.split("<=", 1)[1].split(" ")[0] if "<=" in label else ""
            figures.append(Figure(f"compile {label}", value, f"<= {goal}", verdict == "PASS"))
    return figures


def _lock(out: str) -> list[Figure]:
    m = re.search(r"median of 5: ([\d.]+) s \((meets|MISSES) the ([\d.]+) s goal\)", out)
    return [Figure("lock detection, 100 steps", f"{m[1]} s", f"<= {m[3]} s", m[2] == "meets")] if m else []


def _runner(out: str) -> list[Figure]:
    rows = re.finditer(r"^(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(PASS|MISS)$", out, re.M)
    return [Figure(f"runner {m[1].strip()}", f"x{m[3]} ({m[2]} s)", f"<= x{m[4]}", m[5] == "PASS") for m in rows]


def _server(out: str) -> list[Figure]:
    patterns = [("server inspect, median", r"^inspect .*median ([\d.]+) ms.*\(goal < (\d+) ms\)"),
                ("server runs page, worst", r"^runs list: .*worst ([\d.]+) ms.*\(goal < (\d+) ms\)"),
                ("server /api/status while busy, worst", r"^/api/status .*worst ([\d.]+) ms.*\(goal < (\d+) ms\)")]
    figures = []
    for name, pattern in patterns:
        if m := re.search(pattern, out, re.M):
            figures.append(Figure(name, f"{m[1]} ms", f"< {m[2]} ms", float(m[1]) < float(m[2])))
    return figures


def _store(out: str) -> list[Figure]:
    rows = re.finditer(r"^(.+?)\s+([\d.]+)ms\s+(\d+)ms\s+(ok|MISSED)$", out, re.M)
    return [Figure(f"store {m[1].strip()}", f"{m[2]} ms", f"<= {m[3]} ms", m[4] == "ok") for m in rows]


def _profile(out: str) -> list[Figure]:
    m = re.search(r"^profile overhead ratio ([\d.]+) \(.*goal <= ([\d.]+)\) (PASS|MISS)$", out, re.M)
    return [Figure("profile overhead, 1M-row DataFrame save", f"x{m[1]}", f"<= x{m[2]}", m[3] == "PASS")] if m else []


# script, its arguments in --quick mode, the parser of its output
BENCHMARKS: list[tuple[str, list[str], Callable[[str], list[Figure]]]] = [
    ("compile_scaling.py", ["--sizes", "500,5000", "--repeat", "1"], _compile),
    ("runner_ratios.py", ["--repeat", "1"], _runner),
    ("lock_detection.py", [], _lock),
    ("store_queries.py", ["--step-runs", "10000"], _store),
    ("server_responsiveness.py", ["--runs", "200", "--repeat", "5"], _server),
    ("profile_overhead.py", ["--repeat", "5"], _profile),
]


def run_one(script: str, args: list[str], parse: Callable[[str], list[Figure]]) -> tuple[list[Figure], float]:
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS, cwd=BENCH.parent)
        out, detail = done.stdout, (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    except subprocess.TimeoutExpired:
        out, detail = "", f"timed out after {TIMEOUT_SECONDS} s"
    figures = parse(out)
    return figures or [Figure(script, "ERROR", detail, None)], time.perf_counter() - started


def print_table(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    print(f"{'figure':{width}}  {'measured':>18}  {'goal':>12}  result")
    for f in figures:
        verdict = "ERROR" if f.passed is None else ("PASS" if f.passed else "MISS")
        print(f"{f.name:{width}}  {f.measured:>18}  {f.goal:>12}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only scripts whose name contains NAME")
    args = parser.parse_args(argv)
    figures = []
    for script, quick_args, parse in BENCHMARKS:
        if args.only and not any(name in script for name in args.only):
            continue
        print(f"running {script}{' --quick' if args.quick else ''} ...", file=sys.stderr, flush=True)
        found, seconds = run_one(script, quick_args if args.quick else [], parse)
        print(f"  {script}: {seconds:.0f} s", file=sys.stderr, flush=True)
        figures += found
    if not figures:
        parser.error("no benchmark matches --only")
    print_table(figures)
    return 0 if all(f.passed for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
