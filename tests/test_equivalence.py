"""Equivalence: a pipeline run ends with the same variable values as running the notebook top to
bottom in one kernel. Every runnable notebook under examples/ and tests/notebooks/ is checked.

For each variable, the value compared is the one in the LAST step (notebook order) whose snapshot
has it: that is what a reader of the pipeline's final state would see.
"""
from __future__ import annotations

import json
import pickle
import shutil
import types
from pathlib import Path

import pytest

from same_nb.local.progress import make_progress
from same_nb.runtime import ArtifactStore, load_value
from same_nb.service import run_notebook
from same_nb.store.database import open_store

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"

# Files a notebook reads, created beside both copies before running.
SETUP_FILES = {
    "relative_file": {"data.txt": "one two three\n"},
    "resume_flag": {"flag.txt": "3"},
    "wait_for_file": {"go.txt": ""},
}

# Fixtures that cannot be compared, and why; `error_*` and `env_*` fixtures are skipped too.
NOT_COMPARABLE = {
    "failing_step": "raises on purpose",
    "kfp_failing": "raises on purpose",
    "unpassable_value": "passes an open file between steps on purpose (the pipeline must fail)",
    "undefined_name": "raises NameError top to bottom",
    "missing_module": "imports a module that is not installed, on purpose (the install hint)",
    "opaque_mutation": "random.shuffle without a seed: two plain runs differ too",
    "parallel_sleep": "records process ids, which differ in every run",
    "resources": "counts loop turns in a CPU-time budget, which differ in every run",
    "resources_failing": "raises on purpose (the resources of a failed step)",
}


def _candidates() -> list[Path]:
    found = sorted(ROOT.glob("examples/**/*.ipynb")) + sorted(NOTEBOOKS.glob("*.ipynb"))
    return [p for p in found if ".ipynb_checkpoints" not in p.parts and ".same" not in p.parts
            and "-pipeline" not in p.parent.name]


def _skip_reason(path: Path) -> str | None:
    if path.parent != NOTEBOOKS:
        return None
    if path.stem.startswith("error_"):
        return "an invalid notebook on purpose (analysis error fixture)"
    if path.stem.startswith("env_"):
        return "an environment/locking fixture (%pip install, local helper modules)"
    return NOT_COMPARABLE.get(path.stem)


def _params():
    for path in _candidates():
        reason = _skip_reason(path)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        yield pytest.param(path, id=str(path.relative_to(ROOT)), marks=marks)


# A final cell: each user global pickled on its own; the names that can't be pickled under _LOST.
_LOST = "__unpicklable__"
_DUMP_GLOBALS = """
import cloudpickle as _cp, types as _types
_values = {{}}
for _name, _value in list(globals().items()):
    if _name.startswith('_') or _name in ('In', 'Out', 'get_ipython', 'exit', 'quit', 'open') \\
            or isinstance(_value, _types.ModuleType):
        continue
    try:
        _values[_name] = _cp.dumps(_value)
    except Exception:
        _values.setdefault({lost!r}, []).append(_name)
with open({path!r}, 'wb') as _f:
    _cp.dump(_values, _f)
"""


def _copy_with_files(source: Path, folder: Path) -> Path:
    """The notebook and the files beside it (data, helper modules), without run state."""
    shutil.copytree(source.parent, folder, ignore=shutil.ignore_patterns(".same", "*.ipynb", "*-pipeline"))
    target = folder / source.name
    shutil.copyfile(source, target)
    for rel, text in SETUP_FILES.get(source.stem, {}).items() if source.parent == NOTEBOOKS else ():
        (folder / rel).write_text(text)
    return target


def _names_outside_the_pipeline(pipeline) -> set[str]:
    """Names bound in cells no step runs (e.g. tagged `skip`), and the parameters no step reads."""
    import ast

    import nbformat

    kept = {c.number for s in pipeline.steps for c in s.cells} | {c.number for c in pipeline.prelude}
    if pipeline.parameters_cell is not None:
        kept.add(pipeline.parameters_cell.number)
    names = {p.name for p in pipeline.parameters}
    for number, cell in enumerate(nbformat.read(pipeline.notebook, as_version=4).cells, 1):
        if cell.cell_type != "code" or number in kept:
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:                          # magics: no names can be checked, so accept all
            return {"*"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
    return names


def pipeline_values(nb_path: Path, kernel: str | None = None) -> tuple[dict[str, tuple[str, object]], dict, set[str]]:
    """Run as a pipeline with snapshots: ({variable: (last step that has it, value)}, parameters,
    names the pipeline does not run). ``kernel``: "fork" or "fresh" (default: the run's default)."""
    result = run_notebook(nb_path, snapshot=True, jobs=2, progress=make_progress(quiet=True), kernel=kernel)
    failed = {n: st.error for n, st in result.states.items() if st.status != "success"}
    assert result.ok, f"pipeline run failed: {failed}"
    with open_store(notebook_dir=nb_path.parent) as store:
        params = store.get_run(result.run_id)["params"]
    store = ArtifactStore(nb_path.parent / ".same" / "artifacts")
    values: dict[str, tuple[str, object]] = {}
    for step in result.pipeline.steps:                     # notebook order: later steps win
        snap = json.loads((result.run_dir / "steps" / step.name / "result.json").read_text())["snapshot"]
        for name, record in snap.items():
            values[name] = (step.name, load_value(record, store))
    return values, params, _names_outside_the_pipeline(result.pipeline)


def plain_run(nb_path: Path, params: dict) -> tuple[dict, set[str]]:
    """Run a copy top to bottom in one kernel, in the same folder and with the same parameter values;
    return (user globals, names of globals that could not be pickled or unpickled)."""
    import nbformat
    import papermill as pm

    folder = nb_path.parent
    dump = folder / "plain-globals.pkl"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_DUMP_GLOBALS.format(path=str(dump), lost=_LOST)))
    plain = folder / f"{nb_path.stem}.plain.ipynb"
    nbformat.write(nb, plain)
    pm.execute_notebook(str(plain), str(folder / f"{nb_path.stem}.plain-executed.ipynb"), parameters=params,
                        kernel_name="python3", cwd=str(folder), progress_bar=False, log_output=False)
    blobs = pickle.loads(dump.read_bytes())
    values, lost = {}, set(blobs.pop(_LOST, []))
    for name, blob in blobs.items():
        try:
            values[name] = pickle.loads(blob)
        except Exception:                  # e.g. an instance of a class the test process can't rebuild
            lost.add(name)
    return values, lost


# Float results may differ in the last bits: a DataFrame read back from Arrow has another memory
# layout than the original, so BLAS sums in another order (seen: 2e-13 on StandardScaler output).
FLOAT_RTOL = 1e-9


def assert_same(name: str, piped, plain, depth: int = 0) -> None:
    """Equal values; containers and plain objects compared element by element."""
    import numpy as np
    import pandas as pd

    if depth > 8:
        return
    if isinstance(plain, pd.DataFrame):
        pd.testing.assert_frame_equal(piped, plain, check_exact=False, rtol=FLOAT_RTOL, atol=0, obj=name)
    elif isinstance(plain, pd.Series):
        pd.testing.assert_series_equal(piped, plain, check_exact=False, rtol=FLOAT_RTOL, atol=0, obj=name)
    elif isinstance(plain, np.ndarray):
        assert (type(piped), piped.dtype, piped.shape) == (type(plain), plain.dtype, plain.shape), name
        if plain.dtype.kind in "fc":
            np.testing.assert_allclose(piped, plain, rtol=FLOAT_RTOL, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(piped, plain, err_msg=name)
    elif isinstance(plain, (np.random.Generator, np.random.RandomState)):
        # A generator carried to a later step must go on with the very same stream: compare its state.
        assert type(piped) is type(plain), name
        state = (lambda g: g.bit_generator.state) if isinstance(plain, np.random.Generator) else (
            lambda g: g.get_state(legacy=False))
        assert_same(f"{name} state", state(piped), state(plain), depth + 1)
    elif isinstance(plain, (types.FunctionType, type)):
        assert (type(piped), piped.__qualname__) == (type(plain), plain.__qualname__), name
        if isinstance(plain, types.FunctionType):
            assert piped.__code__.co_code == plain.__code__.co_code, name
    elif isinstance(plain, dict):
        assert type(piped) is type(plain) and list(piped) == list(plain), name
        for key in plain:
            assert_same(f"{name}[{key!r}]", piped[key], plain[key], depth + 1)
    elif isinstance(plain, (list, tuple)):
        assert type(piped) is type(plain) and len(piped) == len(plain), name
        for i, (a, b) in enumerate(zip(piped, plain)):
            assert_same(f"{name}[{i}]", a, b, depth + 1)
    elif type(plain).__eq__ is object.__eq__ and hasattr(plain, "__dict__"):
        # No equality of its own (a notebook class instance, an estimator): compare its attributes.
        assert type(piped).__qualname__ == type(plain).__qualname__, name
        assert_same(f"{name}.__dict__", vars(piped), vars(plain), depth + 1)
    else:
        assert type(piped) is type(plain), name
        assert piped == plain, name


def _kernels() -> list[str]:
    """Both ways a step's kernel starts (local/forked.py), where forking is supported."""
    from same_nb.local.forked import fork_supported

    return ["fork", "fresh"] if fork_supported() else ["fresh"]


@pytest.mark.slow
@pytest.mark.parametrize("kernel", _kernels())
@pytest.mark.parametrize("notebook", list(_params()))
def test_pipeline_run_equals_top_to_bottom_run(notebook, kernel, tmp_path, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb_path = _copy_with_files(notebook, tmp_path / notebook.parent.name)
    piped, params, outside = pipeline_values(nb_path, kernel)  # first: its folder holds nothing from a plain run
    plain, lost = plain_run(nb_path, params)
    assert piped, "the pipeline snapshots hold no variables"
    assert sorted(set(piped) - set(plain) - lost) == [], "variables only the pipeline has"
    if "*" not in outside:
        assert sorted(set(plain) - set(piped) - lost - outside) == [], "variables the pipeline lost"
    for name, (step, value) in sorted(piped.items()):
        if name not in lost:
            assert_same(f"{name} (last in step {step})", value, plain[name])


def test_skip_list_names_only_existing_fixtures():
    names = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert set(NOT_COMPARABLE) <= names
