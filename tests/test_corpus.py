"""The compatibility corpus: the peers' own notebooks and manifests (tests/corpus/, see its README) load,
inspect and compile unmodified, unless the notebook itself is broken, and then the message says why.

`pytest tests/test_corpus.py -s` prints the table of the issue's goals. Compiling for Kubeflow locks
every step against the package index (~10 s a notebook): a sample runs by default, the whole corpus
with SAME_NB_CORPUS_KUBEFLOW=all.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.frontend.inspection import inspect_notebook
from same_nb.frontend.manifest import load_manifest

from conftest import TESTS

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


def test_summary_table(capsys):
    """The issue's table: notebooks, inspected, compiled (see the test above), warnings by kind."""
    rows: dict[str, Counter] = {}
    warnings: Counter = Counter()
    for relative in NOTEBOOKS:
        source = relative.split("/", 1)[0]
        row = rows.setdefault(source, Counter())
        row["notebooks"] += 1
        status, result = outcome(CORPUS / relative)
        row["broken"] += relative in BROKEN
        row["inspected"] += status == "ok"
        if status != "refused":
            for d in result.pipeline.diagnostics:
                if d.severity == "warning":
                    row["warnings"] += 1
                    warnings[d.code] += 1
    manifests_loaded = sum(1 for m in MANIFESTS if load_manifest(CORPUS / m))
    with capsys.disabled():
        print(f"\n{'source':10} {'notebooks':>9} {'broken':>6} {'inspected':>9} {'warnings':>8}")
        for source, row in sorted(rows.items()):
            print(f"{source:10} {row['notebooks']:9} {row['broken']:6} {row['inspected']:9} {row['warnings']:8}")
        total = sum(rows.values(), Counter())
        print(f"{'total':10} {total['notebooks']:9} {total['broken']:6} {total['inspected']:9} {total['warnings']:8}")
        print(f"manifests loaded: {manifests_loaded}/{len(MANIFESTS)}; warnings by kind: {dict(warnings.most_common())}")
    unbroken = total["notebooks"] - total["broken"]
    assert manifests_loaded == len(MANIFESTS)
    assert total["inspected"] >= 0.95 * unbroken
