"""Run one fidelity notebook top to bottom (papermill, one kernel) and as a same-nb pipeline, and
classify the difference.

    python harness.py NB.ipynb [--jobs 2 1] [--work DIR] [--out RESULT.json] [--timeout 120]

Each run gets its own copy of the notebook in a fresh folder. The top-to-bottom run appends a
hidden last cell that cloudpickles every global; the pipeline run goes through the real CLI
(`same-nb run NB --no-cache -j J`, same output and exit code) with the service's `snapshot` option
switched on, which saves every variable each step ends with. Files the notebook leaves in its
folder are compared by sha256. Classes, in the order they are decided:

  TIMEOUT          same-nb did not finish within the timeout
  BASELINE-FAILS   top to bottom fails and so does same-nb (a pass here would be SILENT-DIFF)
  REFUSED          same-nb exits != 0 with an error naming a step or cell
  WARNED+EXIT≠0    same-nb exits != 0 naming no step, after printing a warning
  FAILED-UNNAMED   same-nb exits != 0 naming neither a step nor a cell
  SILENT-DIFF      same-nb exits 0 but a value or file differs (or top to bottom fails)
  REPAIRED         exits 0, everything equal, and the output says it repaired something
  EQUAL            exits 0, everything equal
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # equality.py beside this file
from equality import call_functions, diff_values  # noqa: E402

TIMEOUT_S = 120
# Both runs see the same hash seed (same-nb pins 0 in its kernels), so set and dict-of-str orders match.
RUN_ENV = {"PYTHONHASHSEED": "0", "FID_PRESET": "preset"}

# The hidden last cell of the top-to-bottom run: each global pickled on its own, so one value that
# can't be pickled only loses itself; warnings are silenced because a notebook may have made them errors.
DUMP_CELL = """
def _fid_dump(path, ns):
    import cloudpickle, io as _io, types, warnings
    values, lost = {{}}, []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name, value in list(ns.items()):
            if name.startswith('_') or name in ('In', 'Out', 'get_ipython', 'exit', 'quit', 'open') \\
                    or isinstance(value, types.ModuleType):
                continue
            try:
                values[name] = cloudpickle.dumps(value)
            except Exception:
                lost.append(name)
    with _io.open(path, 'wb') as f:
        cloudpickle.dump({{'values': values, 'lost': lost}}, f)
_fid_dump({path!r}, globals())
"""

# Runs the real CLI in a subprocess with snapshots on. `same-nb run` has no --snapshot flag, so the
# service's run_notebook is wrapped; it also records where the run folder is and the step order.
DRIVER = """
import json, sys
import same_nb.service as service
from same_nb import cli
info_path, argv = sys.argv[1], sys.argv[2:]
original, info = service.run_notebook, {}
def run_with_snapshot(*args, **kwargs):
    kwargs['snapshot'] = True
    result = original(*args, **kwargs)
    info.update(run_dir=str(result.run_dir), steps=[s.name for s in result.pipeline.steps])
    return result
service.run_notebook = run_with_snapshot
try:
    rc = cli.main(argv)
finally:
    with open(info_path, 'w') as f:
        json.dump(info, f)
sys.exit(rc)
"""

CLASSES = ("EQUAL", "REPAIRED", "REFUSED", "WARNED+EXIT≠0", "FAILED-UNNAMED", "BASELINE-FAILS", "SILENT-DIFF",
           "TIMEOUT", "HARNESS-ERROR")
IGNORED = {".same", "__pycache__", ".ipynb_checkpoints"}
ERROR_LINE = re.compile(r"(?i)\berror\b|\w+Error\b|refus")
WARNING_LINE = re.compile(r"(?im)^\s*warning\b")
REPAIR = re.compile(r"(?i)\brepair")


def case_meta(nb_path: Path) -> dict:
    nb = json.loads(Path(nb_path).read_text())
    meta = dict(nb["metadata"].get("fidelity", {}))
    meta.setdefault("case", Path(nb_path).stem)
    tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
    meta["steps"] = [t[5:] for t in tags if t.startswith("step:")] or [Path(nb_path).stem]
    sources = ["".join(c["source"]) for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    meta["params"] = sorted({t.id for src in sources for node in ast.walk(ast.parse(src))
                             for t in getattr(node, "targets", []) if isinstance(t, ast.Name)})
    return meta


def folder_files(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of what the notebook left in its folder (run state excluded)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not IGNORED & set(rel.parts) and path.suffix != ".ipynb":
            found[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _fresh_copy(nb_path: Path, folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Path(shutil.copyfile(nb_path, folder / nb_path.name))


def run_baseline(nb_path: Path, work: Path, timeout: float = TIMEOUT_S) -> dict:
    """Top to bottom in one papermill kernel (in-process), cwd = a copy of the notebook's folder."""
    # jsonschema's optional rfc3987_syntax grammar costs ~2.5 s per import of papermill and is never
    # used for notebooks (same_nb/lean.py does the same for the CLI); this process runs one case.
    sys.modules.setdefault("rfc3987_syntax", None)
    import papermill as pm

    target = _fresh_copy(nb_path, work / "base")
    dump = work / "base-values.pkl"
    nb = json.loads(target.read_text())
    nb["cells"].append({"cell_type": "code", "id": "fidelity-dump", "metadata": {}, "outputs": [],
                        "execution_count": None, "source": DUMP_CELL.format(path=str(dump))})
    target.write_text(json.dumps(nb))
    os.environ.update(RUN_ENV)        # the kernel inherits this process's environment
    started = time.monotonic()
    try:
        pm.execute_notebook(str(target), str(work / "base-executed.ipynb"), kernel_name="python3",
                            cwd=str(target.parent), progress_bar=False, log_output=False,
                            execution_timeout=timeout)
    except Exception as exc:          # PapermillExecutionError names the failing cell's exception
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        return {"ok": False, "error": f"{ename}: {evalue}"[:300], "seconds": time.monotonic() - started}
    finally:
        target.write_text(nb_path.read_text())   # the appended cell is not the notebook's: drop it
    data = pickle.loads(dump.read_bytes())
    return {"ok": True, "blobs": data["values"], "kernel_lost": data["lost"], "files": folder_files(target.parent),
            "folder": target.parent, "seconds": time.monotonic() - started}


def fresh_values(base: dict) -> dict:
    """The baseline with its values unpickled anew: comparing calls functions, which may change them
    (a closure counter), and each -j must be compared against the untouched top-to-bottom state."""
    if not base["ok"]:
        return base
    values, lost = {}, set(base["kernel_lost"])
    for name, blob in base["blobs"].items():
        try:
            values[name] = pickle.loads(blob)
        except Exception:                 # pickled in the kernel but not loadable here: not comparable
            lost.add(name)
    return {**base, "values": values, "lost": lost}


def run_same_nb(nb_path: Path, work: Path, jobs: int, timeout: float = TIMEOUT_S) -> dict:
    """`same-nb run NB --no-cache -j J` in a fresh copy, through the CLI, with snapshots on."""
    target = _fresh_copy(nb_path, work / f"j{jobs}")
    info_path = work / f"j{jobs}-info.json"
    env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}   # the store goes beside the notebook
    env.update(RUN_ENV)
    cmd = [sys.executable, "-c", DRIVER, str(info_path), "run", target.name, "--no-cache", "-j", str(jobs)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=target.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        output, timed_out = _stop(proc), True
    (work / f"j{jobs}-output.txt").write_text(output or "")     # kept for reading a classification by hand
    run = {"rc": proc.returncode, "output": output, "timed_out": timed_out, "folder": target.parent,
           "seconds": time.monotonic() - started}
    if not timed_out:
        run["files"] = folder_files(target.parent)
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        if info.get("run_dir"):
            run["values"], run["records"], run["store"] = _snapshot_values(target.parent, info)
    return run


def _stop(proc: subprocess.Popen) -> str:
    """Ctrl-C first (same-nb then shuts its kernels down), then kill the process group."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
    return (out or "") + "\n[harness: timed out]"


def _snapshot_values(folder: Path, info: dict) -> tuple[dict, dict, object]:
    """{name: value} as a reader of the finished pipeline sees it: from the LAST step (notebook order)
    whose snapshot has the name, as in tests/test_equivalence.py."""
    from same_nb.runtime import ArtifactStore, load_value

    store = ArtifactStore(folder / ".same" / "artifacts")
    records = {}
    for step in info["steps"]:
        result = Path(info["run_dir"]) / "steps" / step / "result.json"
        if result.is_file():
            records.update(json.loads(result.read_text()).get("snapshot", {}))
    values = {}
    for name, record in records.items():
        try:
            values[name] = load_value(record, store)
        except Exception as exc:          # stored but not loadable: a difference in its own right
            values[name] = f"<same-nb snapshot of {name!r} failed to load: {type(exc).__name__}: {exc}>"
    return values, records, store


def compare_runs(meta: dict, base: dict, run: dict) -> list[str]:
    """Differences between the runs' final values and files, as short sentences."""
    piped = run.get("values", {})
    lost = base["lost"]
    if meta.get("compare"):
        names = [n for n in meta["compare"] if n not in lost]
    else:
        names = sorted((set(base["values"]) | set(piped)) - lost
                       - {p for p in meta["params"] if p not in piped})
    diffs = diff_values(names, base["values"], piped)
    diffs += call_functions(names, base, run)
    bf, rf = base["files"], run.get("files", {})
    for rel in sorted(set(bf) | set(rf)):
        if rel not in rf:
            diffs.append(f"file {rel} only written top to bottom")
        elif rel not in bf:
            diffs.append(f"file {rel} only written by same-nb")
        elif bf[rel] != rf[rel]:
            diffs.append(f"file {rel} has other content")
    return diffs


def _error_summary(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ERROR_LINE.search(ln)]
    return (lines[0] if lines else (output.strip().splitlines() or ["(no output)"])[-1])[:240]


def classify(meta: dict, base: dict, run: dict) -> tuple[str, str]:
    out = run.get("output", "")
    warned = [ln.strip()[:200] for ln in out.splitlines() if WARNING_LINE.match(ln)]
    if run.get("timed_out"):
        return "TIMEOUT", f"same-nb still running after {run['seconds']:.0f}s"
    if not base["ok"]:
        if run["rc"] != 0:
            return "BASELINE-FAILS", f"top to bottom: {base['error']}; same-nb: {_error_summary(out)}"
        return "SILENT-DIFF", f"top to bottom fails ({base['error']}) but same-nb exits 0"
    if run["rc"] != 0:
        errors = "\n".join(ln for ln in out.splitlines() if ERROR_LINE.search(ln))
        # "step b failed", "steps 'a' and 'b'": a bare \bb\b would also match the English word "a".
        names_step = any(re.search(rf"\bstep {re.escape(step)}\b|\bsteps?\b[^\n]*'{re.escape(step)}'", errors)
                         for step in meta["steps"])
        if names_step or re.search(r"\bcell \d+", errors):
            return "REFUSED", _error_summary(out)
        if warned:
            return "WARNED+EXIT≠0", warned[0]
        return "FAILED-UNNAMED", _error_summary(out)
    diffs = compare_runs(meta, base, run)
    if diffs:
        note = f" [warned: {warned[0]}]" if warned else ""
        return "SILENT-DIFF", ("; ".join(diffs))[:400] + note
    repaired = [ln.strip() for ln in out.splitlines() if REPAIR.search(ln)]
    if repaired:
        return "REPAIRED", repaired[0][:240]
    return "EQUAL", f"warned: {warned[0]}" if warned else ""


def run_case(nb_path: str | Path, jobs=(2, 1), work: str | Path | None = None,
             timeout: float = TIMEOUT_S) -> list[dict]:
    """One record per -j: {case, category, jobs, class, reason, expect, false_alarm, seconds (of the
    same-nb run), baseline_seconds}."""
    import tempfile

    nb_path = Path(nb_path).resolve()
    meta = case_meta(nb_path)
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix=f"fid-{meta['case']}-"))
    base = run_baseline(nb_path, work, timeout)
    records = []
    for j in jobs:
        run = run_same_nb(nb_path, work, j, timeout)
        try:
            cls, reason = classify(meta, fresh_values(base), run)
        except Exception as exc:          # a harness bug must show, not pass as EQUAL
            cls, reason = "HARNESS-ERROR", f"{type(exc).__name__}: {exc}"[:300]
        warned = bool(WARNING_LINE.search(run.get("output", "")))
        records.append({"case": meta["case"], "category": meta.get("category", "?"), "jobs": j,
                        "class": cls, "reason": reason, "expect": meta.get("expect"),
                        "false_alarm": meta.get("expect") == "EQUAL" and (cls != "EQUAL" or warned),
                        "seconds": round(run["seconds"], 1), "baseline_seconds": round(base["seconds"], 1)})
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebook")
    ap.add_argument("--jobs", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--work", help="folder for the run copies (default: a new temporary folder)")
    ap.add_argument("--out", help="write the records as JSON here (default: print them)")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S)
    args = ap.parse_args(argv)
    records = run_case(args.notebook, args.jobs, args.work, args.timeout)
    text = json.dumps(records, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
