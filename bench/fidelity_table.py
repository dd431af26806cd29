"""The fidelity suite (issue #13) as a table: every adversarial notebook run top to bottom and as a
same-nb pipeline with -j 2 and -j 1, classified; prints the markdown table and every SILENT-DIFF.

    python bench/fidelity_table.py [--cases N | --only CASE...] [--jobs 2 1] [--work DIR] [--json FILE]

Measured on 2 cores, two notebooks at a time: 28-36 min for the 204 notebooks (about 8-11 s each:
one papermill run plus two same-nb runs, each paying kernel start-ups).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fidelity"))
import generate  # noqa: E402
import suite  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=os.environ.get(suite.ENV_CASES),
                    help="a deterministic sample of N cases (default: all)")
    ap.add_argument("--only", nargs="+", metavar="CASE", help="run just these cases")
    ap.add_argument("--jobs", type=int, nargs="+", default=[2, 1], help="the -j values to run (default: 2 1)")
    ap.add_argument("--workers", type=int, default=2, help="cases run at once (default: 2)")
    ap.add_argument("--work", help="keep the run folders here (default: a temporary folder, removed)")
    ap.add_argument("--json", help="also write the records as JSON")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="same-nb-fidelity-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        paths = {p.stem: p for p in generate.generate(work / "notebooks")}
        names = suite.sample(list(paths), args.cases)
        if args.only:
            unknown = sorted(set(args.only) - set(paths))
            if unknown:
                ap.error(f"no such cases: {', '.join(unknown)}")
            names = [n for n in names if n in args.only]
        print(f"{len(names)} notebooks, -j {' and '.join(map(str, args.jobs))}, {args.workers} at a time",
              file=sys.stderr, flush=True)
        started = time.monotonic()

        def progress(done, total, records):
            classes = ", ".join(f"-j{r['jobs']} {r['class']}" for r in records)
            print(f"[{time.monotonic() - started:6.0f}s] {done}/{total} {records[0]['case']}: {classes}",
                  file=sys.stderr, flush=True)

        records = suite.run_suite([paths[n] for n in names], work / "runs", jobs=args.jobs,
                                  workers=args.workers, progress=progress)
        seconds = time.monotonic() - started
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    print(suite.markdown(records, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
