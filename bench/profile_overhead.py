"""What the data profile adds to saving a step output: a 1M-row DataFrame saved as a step saves it
(serializer → content-addressed store, then the profile sidecar), with profiling on and off
(``SAME_NB_PROFILE=0``), alternated so drift in disk or CPU speed hits both alike; medians.

Run: python bench/profile_overhead.py [--rows N] [--repeat N]
Goal: profiling adds <= 5% to the save time (ratio of medians <= 1.05).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from same_nb.runtime import profile  # noqa: E402
from same_nb.runtime.artifacts import ArtifactStore  # noqa: E402
from same_nb.runtime.serializers import dump_value  # noqa: E402

GOAL = 1.05


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "income": rng.normal(50, 10, rows), "age": rng.normal(40, 12, rows), "score": rng.random(rows),
        "weight": rng.lognormal(0, 1, rows), "count": rng.integers(0, 1000, rows),
        "city": pd.array(rng.choice([f"city-{i}" for i in range(50)], rows), dtype="string[pyarrow]"),
    })


def save_once(df: pd.DataFrame, root: Path, profiled: bool) -> tuple[float, float]:
    """(seconds to save as a step does, of which the profile), into a fresh store: nothing deduplicated."""
    os.environ[profile.ENV_SWITCH] = "1" if profiled else "0"
    store = ArtifactStore(root)
    started = time.perf_counter()
    record = dump_value("df", df, store)
    t0 = time.perf_counter()
    profile.save_profile(store.root, record, df)
    done = time.perf_counter()
    shutil.rmtree(root)
    return done - started, done - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="saves of each kind (at least 5)")
    args = parser.parse_args()
    df = frame(args.rows)
    with_profile, without, profile_only = [], [], []
    scratch = Path(tempfile.mkdtemp(prefix="same-nb-bench-profile-"))
    try:
        save_once(df, scratch / "warm", True)            # first-touch costs (imports, page cache) out of the figures
        save_once(df, scratch / "warm", False)
        for i in range(max(args.repeat, 5)):
            order = (True, False) if i % 2 == 0 else (False, True)
            for profiled in order:
                seconds, in_profile = save_once(df, scratch / f"s{i}-{profiled}", profiled)
                (with_profile if profiled else without).append(seconds)
                if profiled:
                    profile_only.append(in_profile)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.environ.pop(profile.ENV_SWITCH, None)
    on, off = statistics.median(with_profile), statistics.median(without)
    ratio = on / off
    size_mb = df.memory_usage(deep=True).sum() / 1e6
    print(f"DataFrame: {args.rows:,} rows x {df.shape[1]} columns ({size_mb:.0f} MB in memory), "
          f"{len(with_profile)} saves of each kind, alternated")
    print(f"save without profile: median {off * 1000:.1f} ms  (all: {', '.join(f'{s * 1000:.0f}' for s in without)})")
    print(f"save with profile:    median {on * 1000:.1f} ms  (all: {', '.join(f'{s * 1000:.0f}' for s in with_profile)})")
    print(f"the profile itself:   median {statistics.median(profile_only) * 1000:.1f} ms")
    verdict = "PASS" if ratio <= GOAL else "MISS"
    print(f"profile overhead ratio {ratio:.3f} (goal <= {GOAL}) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
