"""Run many fidelity cases two at a time and render the class table (used by test_fidelity.py and
bench/fidelity_table.py).

Each case runs in its own `python harness.py` process: a fresh interpreter per case, so a notebook
value loaded or called during comparison can't leak into the next case, and a hung case can be
killed with everything it started. A thread per worker just waits on its process.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import CLASSES, TIMEOUT_S  # noqa: E402

ENV_CASES = "SAME_NB_FIDELITY_CASES"


def sample(names: list[str], limit: str | int | None) -> list[str]:
    """All names, or a deterministic sample of ``limit`` of them (by hash of the name, so the sample
    mixes categories and stays the same from run to run), kept in table order."""
    if limit in (None, "", "all"):
        return list(names)
    chosen = set(sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())[:int(limit)])
    return [n for n in names if n in chosen]


def _failed(nb: Path, jobs, cls: str, reason: str, seconds: float) -> list[dict]:
    meta = json.loads(nb.read_text())["metadata"].get("fidelity", {})
    return [{"case": nb.stem, "category": meta.get("category", "?"), "jobs": j, "class": cls, "reason": reason,
             "expect": meta.get("expect"), "false_alarm": False, "seconds": round(seconds, 1)} for j in jobs]


def run_one(nb: Path, jobs, work_root: Path, timeout: float) -> list[dict]:
    """One case in its own process; bounded by ``timeout`` per run (top to bottom, then each -j)."""
    work = work_root / nb.stem
    work.mkdir(parents=True, exist_ok=True)
    out = work / "records.json"
    cmd = [sys.executable, str(HERE / "harness.py"), str(nb), "--jobs", *map(str, jobs), "--work", str(work),
           "--out", str(out), "--timeout", str(timeout)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        # The harness bounds each of its runs itself; this is the backstop for a hung harness.
        log, _ = proc.communicate(timeout=timeout * (len(jobs) + 1) + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return _failed(nb, jobs, "TIMEOUT", "the harness process did not finish", time.monotonic() - started)
    if proc.returncode != 0 or not out.is_file():
        tail = " | ".join(ln for ln in (log or "").splitlines()[-3:] if ln.strip())
        return _failed(nb, jobs, "HARNESS-ERROR", f"harness exit {proc.returncode}: {tail}"[:300],
                       time.monotonic() - started)
    return json.loads(out.read_text())


def run_suite(notebooks: list[Path], work_root: Path, jobs=(2, 1), workers: int = 2,
              timeout: float = TIMEOUT_S, progress=None) -> list[dict]:
    """Records for every notebook and -j, in the notebooks' order."""
    work_root.mkdir(parents=True, exist_ok=True)
    by_case: dict[str, list[dict]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_one, Path(nb), jobs, work_root, timeout): Path(nb) for nb in notebooks}
        for done, future in enumerate(as_completed(futures), 1):
            records = future.result()
            by_case[futures[future].stem] = records
            if progress:
                progress(done, len(futures), records)
    return [r for nb in notebooks for r in by_case[Path(nb).stem]]


def markdown(records: list[dict], seconds: float | None = None) -> str:
    """Class counts per category for each -j, then every SILENT-DIFF and every noisy control."""
    jobs_values = sorted({r["jobs"] for r in records}, reverse=True)
    classes = [c for c in CLASSES if any(r["class"] == c for r in records)] or ["EQUAL"]
    categories = list(dict.fromkeys(r["category"] for r in records))
    cases = len({r["case"] for r in records})
    lines = [f"# same-nb fidelity suite: {cases} notebooks"
             + (f", {seconds / 60:.1f} min" if seconds is not None else ""), ""]
    for j in jobs_values:
        rows = [r for r in records if r["jobs"] == j]
        lines += [f"## -j {j}", "", "| category | cases | " + " | ".join(classes) + " |",
                  "|---|---:|" + "---:|" * len(classes)]
        for cat in categories + ["**total**"]:
            sel = rows if cat == "**total**" else [r for r in rows if r["category"] == cat]
            counts = [sum(r["class"] == c for r in sel) for c in classes]
            lines.append(f"| {cat} | {len(sel)} | " + " | ".join(str(n) if n else "·" for n in counts) + " |")
        lines.append("")
    silent = [r for r in records if r["class"] == "SILENT-DIFF"]
    lines += [f"## SILENT-DIFF ({len({r['case'] for r in silent})} cases)", ""]
    lines += [f"- `{r['case']}` (-j {r['jobs']}): {r['reason']}" for r in silent] or ["none"]
    noisy = [r for r in records if r["false_alarm"]]
    lines += ["", f"## Controls that were not clean EQUAL ({len({r['case'] for r in noisy})} cases)", ""]
    lines += [f"- `{r['case']}` (-j {r['jobs']}): {r['class']} {r['reason']}" for r in noisy] or ["none"]
    other = [r for r in records if r["class"] in ("TIMEOUT", "HARNESS-ERROR", "FAILED-UNNAMED")]
    if other:
        lines += ["", "## Timeouts, harness errors and unnamed failures", ""]
        lines += [f"- `{r['case']}` (-j {r['jobs']}): {r['class']} {r['reason']}" for r in other]
    return "\n".join(lines) + "\n"
