"""The compatibility corpus (issue 14) as a table: every notebook of tests/corpus/ inspected, compiled and,
where it is runnable here, run top to bottom with papermill and as a same-nb pipeline and compared
(tests/test_corpus.py's run_and_compare, one fresh interpreter per notebook). Writes bench/corpus_table.md.

    python bench/corpus_table.py [--only RELATIVE...] [--workers 2] [--json FILE] [--out bench/corpus_table.md]
    python bench/corpus_table.py --from-json FILE      # the table again from saved run records, no runs

Every notebook that is not broken goes through the run: one that is not runnable here is listed with why.
Measured on 2 busy cores, two at a time: about 10 minutes (keyboard_interrupt.ipynb alone sleeps 2 x 60 s).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))            # same_nb from this checkout
import test_corpus as corpus  # noqa: E402


def run_all(args, ap) -> tuple[dict[str, dict], float]:
    names = corpus.run_selection("all")
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            ap.error(f"not unbroken corpus notebooks: {', '.join(unknown)}")
        names = [n for n in names if n in args.only]
    started = time.monotonic()
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="same-nb-corpus-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = {pool.submit(corpus.run_isolated, n, work / f"{i:02d}", args.timeout): n
                       for i, n in enumerate(names)}
            for done, future in enumerate(as_completed(futures), 1):
                record = future.result()
                runs[futures[future]] = record
                print(f"[{time.monotonic() - started:6.0f}s] {done}/{len(names)} {record['outcome']:14} "
                      f"{record['notebook']}", file=sys.stderr, flush=True)
    return {n: runs[n] for n in names}, time.monotonic() - started


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="RELATIVE", help="run just these notebooks (paths under tests/corpus/)")
    ap.add_argument("--workers", type=int, default=2, help="notebooks run at once (default: 2)")
    ap.add_argument("--timeout", type=float, default=corpus.RUN_TIMEOUT_S, help="seconds per run")
    ap.add_argument("--work", help="keep the run folders here (default: a temporary folder, removed)")
    ap.add_argument("--json", help="also write the run records as JSON")
    ap.add_argument("--from-json", help="build the table from run records saved with --json; run nothing")
    ap.add_argument("--out", default=str(ROOT / "bench" / "corpus_table.md"), help="the markdown file to write")
    args = ap.parse_args(argv)

    if args.from_json:
        runs = {r["notebook"]: r for r in json.loads(Path(args.from_json).read_text())}
        how = f"from the run records in `{Path(args.from_json).name}`"
    else:
        runs, seconds = run_all(args, ap)
        how = f"{seconds / 60:.1f} min, {args.workers} at a time, same-nb run -j {corpus.RUN_JOBS}"
        if args.json:                    # first: the table below inspects again, the records are the costly part
            Path(args.json).write_text(json.dumps(list(runs.values()), indent=1))
    _, table = corpus.corpus_table(runs)
    text = (f"# Compatibility corpus: {len(corpus.NOTEBOOKS)} notebooks\n\n"
            f"Written by `python bench/corpus_table.py` ({how}).\n\n" + table
            + "\n## Run and compare, per notebook\n\n" + corpus.run_outcomes(runs)
            + "\n## Inspect's warnings\n\n" + corpus.warning_list())
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
