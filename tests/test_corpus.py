"""The compatibility corpus: the peers' own notebooks and manifests (tests/corpus/, see its README) load,
inspect and compile unmodified, unless the notebook itself is broken, and then the message says why.

Every notebook that is runnable here (its imports are installed, and top to bottom it runs without the
network or data files it does not carry) runs top to bottom with papermill and as a pipeline with
`same-nb run`, each in a fresh copy of its folder, and every variable each ends with must be equal
(tests/fidelity/harness.py does the runs and the comparison). A pipeline that exits 0 with other values
fails the test; a refusal that names a step or cell is recorded and listed, not failed. A sample runs by
default, SAME_NB_CORPUS_RUN=all runs every notebook (~5 min), SAME_NB_CORPUS_RUN=N a sample of N.

`pytest tests/test_corpus.py -s` prints the table of the issue's goals; `python bench/corpus_table.py`
runs the whole corpus and writes it to bench/corpus_table.md. Compiling for Kubeflow locks every step
against the package index (~10 s a notebook): a sample runs by default, the whole corpus with
SAME_NB_CORPUS_KUBEFLOW=all.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.frontend.inspection import inspect_notebook
from same_nb.frontend.manifest import load_manifest

from conftest import ROOT, TESTS

CORPUS = TESTS / "corpus"
NOTEBOOKS = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.ipynb"))
MANIFESTS = sorted(p.relative_to(CORPUS).as_posix() for p in (CORPUS / "same").rglob("*.yaml"))

# Notebooks that are broken as they are (their repositories keep them to test failure handling), with
# the message same-nb gives: inspect refuses them or reports an error naming the cell.
BROKEN = {
    "papermill/papermill/tests/notebooks/blank-vscode.ipynb": "the notebook has no code cells",
    "papermill/papermill/tests/notebooks/broken.ipynb": "syntax error: Missing parentheses in call to 'print'",
    "papermill/papermill/tests/notebooks/broken1.ipynb": "syntax error: Missing parentheses in call to 'print'",
    "papermill/papermill/tests/notebooks/broken2.ipynb": "syntax error: Missing parentheses in call to 'print'",
    "papermill/papermill/tests/notebooks/complex_parameters.ipynb": "line 14: parameters cell: syntax error",
    "papermill/papermill/tests/notebooks/notimplemented_translator.ipynb": "the notebook's kernel is 'r'",
    "same/test/data/testdata/same_configs/good_notebook.ipynb": "the notebook has no code cells",
    "same/test/data/testdata/same_configs/no_apiVersion.ipynb": "the notebook has no code cells",
    "same/test/data/testdata/same_configs/notebook_no_config.ipynb": "the notebook has no code cells",
    "same/test/testdata/tagged/tag.ipynb": "the notebook has no code cells",
    "same/test/testdata/tagged/tag_tag.ipynb": "the notebook has no code cells",
}
KUBEFLOW_SAMPLE = {
    "kale/examples/base/candies_sharing.ipynb",
    "papermill/binder/cli-simple/simple_output.ipynb",
    "same/test/ops/testdata/same_notebooks/multienv/multiple_images.ipynb",
}


# Run and compare (SAME_NB_CORPUS_RUN): the default sample covers the three peers and each way a run ends
# here (equal, refused, nondeterministic, needs data, sys.exit); two at a time, about 1.5 minutes on 2 cores.
ENV_RUN = "SAME_NB_CORPUS_RUN"
RUN_SAMPLE = {
    "kale/backend/kale/tests/assets/notebooks/pipeline_parameters_and_metrics.ipynb",   # refused (recorded)
    "kale/examples/base/candies_sharing.ipynb",                                         # unseeded random draws
    "kale/examples/taxi-cab-classification/read_data.ipynb",                            # needs data: skipped
    "papermill/papermill/tests/notebooks/report_mode_test.ipynb",
    "papermill/papermill/tests/notebooks/sysexit0.ipynb",                               # ends at sys.exit(0)
    "same/test/ops/testdata/same_notebooks/multienv/multiple_images.ipynb",
    "same/test/testdata/features/multistep/multistep.ipynb",
    "same/test/testdata/features/serialised_modules/serialised_modules.ipynb",
}
KERNEL_START_TIMEOUT = "Kernel didn't respond in"
RUN_TIMEOUT_S = 120            # per run (top to bottom, then same-nb): keyboard_interrupt.ipynb sleeps 60 s
RUN_JOBS = 2
RUN_WORKERS = int(os.environ.get("SAME_NB_CORPUS_WORKERS", "2"))   # notebooks run at once
NONDETERMINISM_RERUNS = 4      # top-to-bottom reruns that look for values which differ from run to run
# A top-to-bottom failure that says the notebook needs what this machine has not: the network (no internet
# at test time), or files its repository does not carry (CalledProcessError: papermill's binder.ipynb runs
# a `%%bash` cell on notebooks of the papermill checkout).
NEEDS_NETWORK_OR_DATA = re.compile(
    r"FileNotFoundError|No such file or directory|URLError|HTTPError|ConnectionError|ConnectTimeout|gaierror|"
    r"Name or service not known|name resolution|Max retries exceeded|Network is unreachable|NoCredentialsError|"
    r"CalledProcessError")
RUN_PASSES = {"EQUAL", "REPAIRED"}
RUN_REFUSALS = {"REFUSED", "WARNED+EXIT≠0"}          # same-nb exits != 0 and says why: recorded, listed
RUN_SKIPS = {"SKIPPED", "NEEDS-DATA", "BASELINE-FAILS"}
RUNS: dict[str, dict] = {}     # this session's run-and-compare records, for the summary table


def copy_notebook(relative: str, into: Path) -> Path:
    """The notebook and its same.yaml, in a folder of its own: compiling and running write beside it."""
    source = CORPUS / relative
    into.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, into / source.name)
    if (source.parent / "same.yaml").is_file():
        shutil.copy(source.parent / "same.yaml", into / "same.yaml")
    return into / source.name


def outcome(path: Path) -> tuple[str, object]:
    """("ok", Inspection) | ("errors", Inspection) | ("refused", SameError)."""
    try:
        insp = inspect_notebook(path)
    except SameError as exc:
        return "refused", exc
    return ("ok" if insp.ok else "errors"), insp


def _code_trees(relative: str):
    """The parsed code cells of a corpus notebook, IPython syntax turned into Python as same-nb does."""
    from same_nb.frontend.magics import parse_cell

    for cell in json.loads((CORPUS / relative).read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            with warnings.catch_warnings():       # the notebooks' own invalid escapes ('\.' in a str)
                warnings.simplefilter("ignore")
                yield parse_cell("".join(cell["source"]))[0]
        except Exception:             # a cell that does not parse imports and installs nothing a run could reach
            continue


def imported_modules(relative: str) -> set[str]:
    """Top-level modules that any code cell imports: papermill runs every cell (Kale's `skip` ones too)."""
    found = set()
    for tree in _code_trees(relative):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


_INSTALL = re.compile(r"\b(pip3?|conda|mamba|uv pip)\s+install\b")
_SHELL = {"system", "getoutput", "run_line_magic", "run_cell_magic"}


def installs_packages(relative: str) -> bool:
    """A `!pip install`, `%pip install` or `%%bash` pip line: running the notebook would install into this
    python (SAME's bad_python_lines.ipynb installs `minimal` from PyPI), so it is not run here."""
    for tree in _code_trees(relative):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in _SHELL:
                args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if node.func.attr == "run_line_magic" and args[:1] in (["pip"], ["conda"], ["mamba"]):
                    args = [" ".join(["pip", *args[1:]])]
                if any(_INSTALL.search(a) for a in args):
                    return True
    return False


def missing_modules(relative: str) -> list[str]:
    return sorted(m for m in imported_modules(relative) if importlib.util.find_spec(m) is None)


def not_runnable(relative: str) -> str | None:
    """Why a notebook is not run here, decided before running it (a run that needs the network or data
    is found by running it: top to bottom fails)."""
    missing = missing_modules(relative)
    if missing:
        return f"imports {', '.join(missing)}: not installed here"
    if installs_packages(relative):
        return "installs packages (`pip install` in a cell): a run would change this python"
    return None


def run_selection(value: str | None) -> list[str]:
    """Unset: RUN_SAMPLE; "all": every notebook that is not broken (the rest skip with their reason);
    N: a deterministic sample of N of those that are not known to be unrunnable (see not_runnable)."""
    candidates = sorted(set(NOTEBOOKS) - set(BROKEN))
    if value in (None, ""):
        return [n for n in candidates if n in RUN_SAMPLE]
    if value == "all":
        return candidates
    runnable = [n for n in candidates if not not_runnable(n)]
    chosen = set(sorted(runnable, key=lambda n: hashlib.sha256(n.encode()).hexdigest())[:int(value)])
    return [n for n in runnable if n in chosen]


def _fidelity_harness():
    sys.path.insert(0, str(TESTS / "fidelity"))
    import harness

    return harness


def _nondeterministic(base: dict, again: dict) -> tuple[set[str], set[str]]:
    """Names and files that differ between two top-to-bottom runs (unseeded random draws, clocks):
    no pipeline can be held to them."""
    from equality import call_functions, diff_values

    as_run = {"values": again["values"], "files": again["files"], "folder": again["folder"], "records": {}}
    names = (set(base["values"]) | set(again["values"])) - base["lost"] - again["lost"]
    varying = {n for n in names if diff_values([n], base["values"], again["values"])
               or call_functions([n], base, as_run)}
    files = {f for f in set(base["files"]) | set(again["files"]) if base["files"].get(f) != again["files"].get(f)}
    return varying, files


def run_and_compare(relative: str, work: Path, timeout: float = RUN_TIMEOUT_S) -> dict:
    """One corpus notebook top to bottom (papermill) and with `same-nb run -j 2`, each in a fresh copy of
    its folder (the notebook and its same.yaml), classified by the fidelity harness. Runs in this process:
    call it through run_isolated. Outcomes: the harness's classes, and SKIPPED (not runnable here),
    NEEDS-DATA and BASELINE-FAILS (top to bottom fails here and same-nb fails too)."""
    started = time.monotonic()
    record = {"notebook": relative, "outcome": "SKIPPED", "reason": "", "baseline_ok": False, "rc": None,
              "nondeterministic": [], "seconds": 0.0}

    def done(outcome: str, reason: str) -> dict:
        record.update(outcome=outcome, reason=reason, seconds=round(time.monotonic() - started, 1))
        return record

    if relative in BROKEN:
        return done("SKIPPED", f"broken as it stands: {BROKEN[relative]}")
    status, result = outcome(CORPUS / relative)
    if status != "ok":
        return done("SKIPPED", f"does not inspect: {result if status == 'refused' else result.pipeline.errors[0].render()}")
    why = not_runnable(relative)
    if why:
        return done("SKIPPED", why)
    harness = _fidelity_harness()
    source = copy_notebook(relative, work / "source")
    pipeline = result.pipeline
    meta = {"case": source.stem, "steps": [s.name for s in pipeline.steps],
            "params": [p.name for p in pipeline.parameters]}
    fresh_copy = harness._fresh_copy

    def copy_with_manifest(nb_path: Path, folder: Path) -> Path:   # the run reads same.yaml beside the notebook
        target = fresh_copy(nb_path, folder)
        if (nb_path.parent / "same.yaml").is_file():
            shutil.copy(nb_path.parent / "same.yaml", folder / "same.yaml")
        return target

    harness._fresh_copy = copy_with_manifest
    try:
        base = harness.run_baseline(source, work, timeout)
        if not base["ok"] and KERNEL_START_TIMEOUT in (base.get("error") or ""):
            # papermill gives a kernel 60 s to start; on a loaded machine that is the machine, not the notebook
            base = harness.run_baseline(source, work, timeout)
    except FileNotFoundError:          # no values saved: top to bottom ended before the harness's last cell
        exit_cell = _clean_exit_cell(work / "base-executed.ipynb")
        if exit_cell is None:
            raise
        return done(*_compare_clean_exit(harness, source, work, timeout, exit_cell, record))
    run = harness.run_same_nb(source, work, RUN_JOBS, timeout)
    record.update(baseline_ok=base["ok"], rc=run["rc"], baseline_seconds=round(base["seconds"], 1),
                  same_nb_seconds=round(run["seconds"], 1))
    try:
        cls, reason = harness.classify(meta, harness.fresh_values(base), run)
        varying, files = set(), set()
        for attempt in range(NONDETERMINISM_RERUNS):
            if cls != "SILENT-DIFF" or not base["ok"]:
                break
            again = harness.run_baseline(source, work / f"again{attempt}", timeout)
            if not again["ok"]:
                break
            more, more_files = _nondeterministic(harness.fresh_values(base), harness.fresh_values(again))
            if more <= varying and more_files <= files:
                continue
            varying, files = varying | more, files | more_files
            base_now = harness.fresh_values(base)
            base_now["lost"] = base_now["lost"] | varying
            base_now["files"] = {f: h for f, h in base["files"].items() if f not in files}
            run["files"] = {f: h for f, h in run.get("files", {}).items() if f not in files}
            cls, reason = harness.classify(meta, base_now, run)
        record["nondeterministic"] = sorted(varying) + [f"file {f}" for f in sorted(files)]
    except Exception as exc:          # a harness bug must show, not pass as EQUAL
        cls, reason = "HARNESS-ERROR", f"{type(exc).__name__}: {exc}"[:300]
    if cls == "BASELINE-FAILS":
        cls = "NEEDS-DATA" if NEEDS_NETWORK_OR_DATA.search(base["error"]) else cls
    if record["nondeterministic"]:
        reason = "; ".join(filter(None, [reason, "differ between top-to-bottom runs, not compared: "
                                         + ", ".join(record["nondeterministic"])]))
    return done(cls, reason)


def _clean_exit_cell(executed: Path) -> int | None:
    """The cell (numbered as same-nb does, markdown included) where top to bottom stopped on SystemExit
    without failing: papermill takes `sys.exit(0)` and a bare `raise SystemExit` as the notebook's end."""
    if not executed.is_file():
        return None
    for number, cell in enumerate(json.loads(executed.read_text())["cells"], 1):
        if any(o.get("output_type") == "error" and o.get("ename") == "SystemExit" for o in cell.get("outputs", [])):
            return number
    return None


def _compare_clean_exit(harness, source: Path, work: Path, timeout: float, cell: int, record: dict) -> tuple[str, str]:
    """Top to bottom ended at `cell` before its values could be saved: the pipeline must end there too."""
    run = harness.run_same_nb(source, work, RUN_JOBS, timeout)
    record.update(baseline_ok=True, rc=run["rc"], same_nb_seconds=round(run["seconds"], 1))
    output = run.get("output", "")
    if run["rc"] != 0:
        return "REFUSED", harness._error_summary(output)
    if re.search(rf"\bcell {cell}\b[^\n]*the notebook ends here", output):
        return "EQUAL", f"both end at the SystemExit in cell {cell}; no values to compare (top to bottom saves none)"
    return "SILENT-DIFF", f"top to bottom ends at the SystemExit in cell {cell}; same-nb exits 0 without ending there"


def run_isolated(relative: str, work: Path, timeout: float = RUN_TIMEOUT_S) -> dict:
    """run_and_compare in a fresh interpreter (`python tests/test_corpus.py --run-one`), as the fidelity
    suite does: values loaded and functions called for the comparison stay out of this process, and a
    hung run is killed with everything it started."""
    why = f"broken as it stands: {BROKEN[relative]}" if relative in BROKEN else not_runnable(relative)
    if why:                                      # decided without starting an interpreter
        return {"notebook": relative, "outcome": "SKIPPED", "reason": why, "baseline_ok": False, "rc": None,
                "nondeterministic": [], "seconds": 0.0}
    work.mkdir(parents=True, exist_ok=True)
    out = work / "record.json"
    env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}       # each run's store goes beside it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))   # same_nb from here
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-one", relative, "--work", str(work),
           "--out", str(out), "--timeout", str(timeout)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout * 3 + 60)   # the harness bounds each run; this is the backstop
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"notebook": relative, "outcome": "TIMEOUT", "reason": "the run-and-compare process did not finish",
                "baseline_ok": False, "rc": None, "nondeterministic": [], "seconds": round(time.monotonic() - started, 1)}
    if proc.returncode != 0 or not out.is_file():
        tail = " | ".join(ln for ln in (log or "").splitlines()[-3:] if ln.strip())
        return {"notebook": relative, "outcome": "HARNESS-ERROR", "reason": f"exit {proc.returncode}: {tail}"[:300],
                "baseline_ok": False, "rc": None, "nondeterministic": [], "seconds": round(time.monotonic() - started, 1)}
    return json.loads(out.read_text())


def test_the_corpus_is_pinned_with_its_licenses():
    sources = json.loads((CORPUS / "SOURCES.json").read_text())
    assert set(sources) == {"kale", "same", "papermill"}
    for name, record in sources.items():
        assert len(record["commit"]) == 40 and record["license"] in ("Apache-2.0", "BSD-3-Clause")
        assert (CORPUS / record["license_file"]).is_file()
        assert all((CORPUS / name / f).is_file() for f in record["files"])
    listed = {f"{n}/{f}" for n, r in sources.items() for f in r["files"] if f.endswith(".ipynb")}
    assert listed == set(NOTEBOOKS)


@pytest.mark.parametrize("relative", MANIFESTS)
def test_every_same_manifest_loads(relative):
    manifest = load_manifest(CORPUS / relative)
    assert manifest.api_version                       # SAME fields same-nb ignores are warnings
    assert all(": " in w for w in manifest.warnings)


@pytest.mark.parametrize("relative", NOTEBOOKS)
def test_every_notebook_inspects_and_compiles_unless_it_is_broken(relative, tmp_path):
    from same_nb.bundle.build import compile_notebook

    path = copy_notebook(relative, tmp_path / "nb")
    status, result = outcome(path)
    if relative in BROKEN:
        assert status != "ok", f"{relative} is listed as broken but inspects cleanly: drop it from BROKEN"
        text = str(result) if status == "refused" else "\n".join(d.render() for d in result.pipeline.errors)
        assert BROKEN[relative] in text
        return
    assert status == "ok", str(result) if status == "refused" else [d.render() for d in result.pipeline.errors]
    compiled = compile_notebook(path, tmp_path / "bundle")
    assert {p.stem for p in (tmp_path / "bundle" / "steps").glob("*.ipynb")} == \
        {s.name for s in compiled.inspection.pipeline.steps}


@pytest.mark.parametrize("relative", sorted(set(NOTEBOOKS) - set(BROKEN)) if os.environ.get(
    "SAME_NB_CORPUS_KUBEFLOW") == "all" else sorted(KUBEFLOW_SAMPLE))
def test_notebooks_compile_for_kubeflow(relative, tmp_path):
    pytest.importorskip("kfp")
    from same_nb.kubeflow.compiler import compile_kubeflow

    path = copy_notebook(relative, tmp_path / "nb")
    result = compile_kubeflow(path, tmp_path / "kfp")
    assert "pipelineInfo:" in result.pipeline_yaml.read_text()


def test_papermill_output_notebook_runs_with_its_injected_values_and_p_wins(tmp_path):
    """papermill's binder/cli-simple/simple_output.ipynb was run by papermill with msg="Hello": its
    injected-parameters cell makes that the default, and `-p msg Bonjour` overrides it for the run."""
    from same_nb.local.progress import make_progress
    from same_nb.service import run_notebook

    path = copy_notebook("papermill/binder/cli-simple/simple_output.ipynb", tmp_path / "nb")
    pipeline = inspect_notebook(path).pipeline
    assert [(p.name, p.default, p.type) for p in pipeline.parameters] == [("msg", "Hello", "str")]
    assert all("injected-parameters" not in c.tags for s in pipeline.steps for c in s.cells)
    printed = {}
    for params in ([], [("msg", "Bonjour")]):
        result = run_notebook(path, params=params, jobs=1, progress=make_progress(quiet=True))
        assert result.ok, result.states
        executed = next((result.run_dir / "steps").rglob("*.ipynb"))
        outputs = [o for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])]
        printed[tuple(params)] = "".join("".join(o.get("text", "")) for o in outputs if o.get("name") == "stdout")
    assert printed[()].strip() == "Hello"
    assert printed[(("msg", "Bonjour"),)].strip() == "Bonjour"


@pytest.fixture(scope="module")
def corpus_runs(request, tmp_path_factory) -> dict[str, dict]:
    """Run-and-compare records for the notebooks this session collected, RUN_WORKERS at a time."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = [item.callspec.params["relative"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_runnable_notebooks_run_as_pipelines_and_equal_papermill"
              and item.module is request.module]
    root = tmp_path_factory.mktemp("corpus-runs")
    with ThreadPoolExecutor(max_workers=RUN_WORKERS) as pool:
        futures = {n: pool.submit(run_isolated, n, root / f"{i:02d}") for i, n in enumerate(wanted)}
        RUNS.update({n: f.result() for n, f in futures.items()})
    return RUNS


@pytest.mark.slow
@pytest.mark.parametrize("relative", run_selection(os.environ.get(ENV_RUN)))
def test_runnable_notebooks_run_as_pipelines_and_equal_papermill(relative, corpus_runs):
    record = corpus_runs[relative]
    if record["outcome"] in RUN_SKIPS:
        why = {"NEEDS-DATA": "needs network/data", "BASELINE-FAILS": "fails top to bottom here"}
        pytest.skip(f"{why.get(record['outcome'], 'not runnable here')}: {record['reason']}")
    if record["outcome"] in RUN_REFUSALS:
        warnings.warn(f"same-nb refuses {relative} ({record['outcome']}): {record['reason']}", stacklevel=1)
        return
    # SILENT-DIFF (exit 0, other values) is the worst defect; an unnamed failure or a hang is one too.
    assert record["outcome"] in RUN_PASSES, f"{record['outcome']}: {record['reason']}"


# Inspect's warnings on the corpus that are false alarms: nothing they report can make the pipeline differ
# or fail (each warning was read against the notebook; bench/corpus_table.md lists them all, marked).
# (code, message pattern, notebooks or None for any).
FALSE_ALARMS = (
    ("manifest", r": (metadata\.sha|notebook\.name|run\.name|run\.sha): ", None),     # SAME's names and hashes
    ("manifest", r": run\.parameters\.\w+: '\w+' is not a parameter of the notebook", None),  # never read
    ("manifest", r"\.schema_uri: ", None),                            # a schema nothing checks, in SAME either
    ("manifest", r": datasets\.\w+\.environments\.", {                  # read through SAME's own SDK, which
        "same/test/testdata/features/datasets/datasets.ipynb"}),           # reads same.yaml itself
    ("empty-step", r"", None),                                         # an empty step runs nothing
    ("read-before-definition", r"^'i' is read before it is defined \(it is first defined later in this step\)", {
        # `for i, b in enumerate(loader): ...` then `print(loss / i)` after the loop, inside an outer loop
        "same/test/testdata/pytorch/a_gentle_introduction_to_pytorch/a_gentle_introduction_to_pytorch.ipynb",
        "same/test/testdata/pytorch/first_neural_network/first_neural_network.ipynb"}),
)


def is_false_alarm(relative: str, diagnostic) -> bool:
    return any(diagnostic.code == code and re.search(pattern, diagnostic.message) and (where is None or relative in where)
               for code, pattern, where in FALSE_ALARMS)


TABLE_COLUMNS = ("notebooks", "broken", "inspected", "compiled", "runnable", "ran", "equal", "refused",
                 "warnings", "false")


def corpus_table(runs: dict[str, dict]) -> tuple[dict[str, Counter], str]:
    """Per source and in total: notebooks; broken as they stand; inspected without errors; compiled to a
    local bundle; runnable here (imports installed, top to bottom runs without network or missing data);
    ran (`same-nb run` exits 0); equal (every value and file equals papermill's); refused (exit != 0 with
    a message); warnings (severity warning) from inspect, and how many of them are false alarms.
    The last four run columns count the notebooks in ``runs`` only."""
    from same_nb.bundle.build import compile_notebook

    rows: dict[str, Counter] = {}
    kinds: Counter = Counter()
    with tempfile.TemporaryDirectory(prefix="same-nb-corpus-") as tmp:
        for i, relative in enumerate(NOTEBOOKS):
            row = rows.setdefault(relative.split("/", 1)[0], Counter())
            row["notebooks"] += 1
            row["broken"] += relative in BROKEN
            status, result = outcome(CORPUS / relative)
            row["inspected"] += status == "ok"
            if status == "ok":
                try:
                    compile_notebook(copy_notebook(relative, Path(tmp) / str(i)), Path(tmp) / f"{i}-bundle")
                    row["compiled"] += 1
                except SameError:
                    pass
            if status != "refused":
                for d in result.pipeline.diagnostics:
                    if d.severity == "warning":
                        row["warnings"] += 1
                        row["false"] += is_false_alarm(relative, d)
                        kinds[d.code] += 1
            record = runs.get(relative)
            if record:
                row["runnable"] += record["baseline_ok"]
                row["ran"] += record["baseline_ok"] and record["rc"] == 0
                row["equal"] += record["outcome"] in RUN_PASSES
                row["refused"] += record["baseline_ok"] and record["rc"] not in (0, None)
    rows["**total**"] = sum(rows.values(), Counter())
    lines = ["| source | " + " | ".join(TABLE_COLUMNS) + " |", "|---|" + "---:|" * len(TABLE_COLUMNS)]
    lines += [f"| {source} | " + " | ".join(str(row[c]) for c in TABLE_COLUMNS) + " |"
              for source, row in sorted(rows.items(), key=lambda kv: kv[0] == "**total**")]
    total = rows["**total**"]
    lines += ["", f"Run and compared: {len(runs)} of {total['notebooks'] - total['broken']} unbroken notebooks. "
              f"False alarms: {total['false']} of {total['warnings']} warnings "
              f"({100 * total['false'] / max(total['warnings'], 1):.0f}%). Warnings by code: {dict(kinds.most_common())}."]
    return rows, "\n".join(lines) + "\n"


def warning_list() -> str:
    """Every warning inspect gives on the corpus, with whether it is a known false alarm."""
    lines = ["| notebook | cell, line | code | message | false alarm |", "|---|---|---|---|---|"]
    cell = str.maketrans({"|": "\\|", "\n": " "})
    for relative in NOTEBOOKS:
        status, result = outcome(CORPUS / relative)
        if status == "refused":
            continue
        for d in result.pipeline.diagnostics:
            if d.severity == "warning":
                where = "-" if d.cell is None else f"{d.cell}" + (f", {d.line}" if d.line else "")
                lines.append(f"| `{relative}` | {where} | {d.code} | {d.message.translate(cell)} | "
                             f"{'yes' if is_false_alarm(relative, d) else ''} |")
    return "\n".join(lines) + "\n"


def run_outcomes(runs: dict[str, dict]) -> str:
    """Every run-and-compare outcome, worst first."""
    order = ["SILENT-DIFF", "HARNESS-ERROR", "TIMEOUT", "FAILED-UNNAMED", "REFUSED", "WARNED+EXIT≠0",
             "REPAIRED", "EQUAL", "BASELINE-FAILS", "NEEDS-DATA", "SKIPPED"]
    ranked = sorted(runs.values(), key=lambda r: (order.index(r["outcome"]) if r["outcome"] in order else -1,
                                                  r["notebook"]))
    lines = ["| notebook | outcome | seconds | why |", "|---|---|---:|---|"]
    cell = str.maketrans({"|": "\\|", "\n": " "})
    lines += [f"| `{r['notebook']}` | {r['outcome']} | {r['seconds']} | {r['reason'].translate(cell)} |"
              for r in ranked]
    return "\n".join(lines) + "\n"


def test_summary_table(capsys):
    """The issue's table (see corpus_table); the run columns cover the notebooks this session ran."""
    rows, text = corpus_table(RUNS)
    manifests_loaded = sum(1 for m in MANIFESTS if load_manifest(CORPUS / m))
    with capsys.disabled():
        print("\n" + text + f"manifests loaded: {manifests_loaded}/{len(MANIFESTS)}")
        if RUNS:
            print(run_outcomes(RUNS))
    total = rows["**total**"]
    unbroken = total["notebooks"] - total["broken"]
    assert manifests_loaded == len(MANIFESTS)
    assert total["inspected"] >= 0.95 * unbroken
    assert total["compiled"] == total["inspected"]
    assert total["false"] < 0.10 * max(total["warnings"], 1), "false alarms must stay under 10% of the warnings"


def _main(argv=None) -> int:
    """`python tests/test_corpus.py --run-one REL --work DIR --out FILE`: run_and_compare, as JSON."""
    ap = argparse.ArgumentParser(description=_main.__doc__)
    ap.add_argument("--run-one", required=True, metavar="RELATIVE", help="a notebook path under tests/corpus/")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=RUN_TIMEOUT_S)
    args = ap.parse_args(argv)
    record = run_and_compare(args.run_one, Path(args.work), args.timeout)
    Path(args.out).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
