"""Every generated file is built from escaped data: hostile notebook file names, step names, parameter
values and same.yaml fields, compiled for both targets (`same-nb compile`, in-process through the CLI's
``main`` so a crash is a test failure with its traceback).

A case is *held* when no file named PWNED appears (under the case's folder, which is the working
directory, or the starting one), the compile ends within TIMEOUT seconds, and either
- it succeeds and every generated file parses and carries the exact values: pipeline.yaml with
  ``yaml.safe_load`` and kfp's loader (each parameter default equal to the original value), pipeline.py
  with ``ast`` (defaults, docstrings, image, env), each launcher script with ``sh -n``, each step
  notebook's parameters cell with ``ast``, the Markdown (step headers, README) with its lines unchanged; or
- it is refused: exit 1, one ``error: ...`` line naming the problem, no traceback.

Compiling for Kubeflow locks every step against the package index; every case starts from one warm
lock cache (``.same/locks``, made once per module), so a Kubeflow case costs about a second. Default
sample: every hostile value for the local target, and for Kubeflow the ones that carry a payload or
break lines, quotes or YAML (16); SAME_NB_SECURITY_CASES=N|all scales both (hostile.py).
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from same_nb.cli import main
from tests.security import hostile

from conftest import notebook_data

TIMEOUT = 120                   # seconds for one compile (a Kubeflow one takes about 1 s warm)
PLAIN = "plain"                 # the benign value every baseline is compiled with
# For Kubeflow by default: the payloads and what breaks a line, a quote, a comment or YAML.
KUBEFLOW_PICKS = ("\n", "\r\n", "\x00", "\u2028", 'a"""b')


def _kubeflow(values: list[str]) -> list[str]:
    if os.environ.get("SAME_NB_SECURITY_CASES"):
        return values
    return [v for v in values if hostile.MARKER in v or v in KUBEFLOW_PICKS]


STRINGS = hostile.strings()
NAMES = hostile.names()
CASES = ([("local", v) for v in STRINGS] + [("kubeflow", v) for v in _kubeflow(STRINGS)])
NAME_CASES = ([("local", v) for v in NAMES] + [("kubeflow", v) for v in _kubeflow(NAMES)])


def _ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{target}-{label}" for (target, _), label in zip(cases, hostile.ids([v for _, v in cases]))]


# -- the notebook, same.yaml and the compile ------------------------------------------------------

def _notebook(folder: Path, name: str, params: str, first_step: str = "load") -> Path:
    cells = [(["parameters"], params), ([f"step:{first_step}"], "x = n * 2\nprint(q, r, l, d)"),
             (["step:use"], "y = x + 1")]
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(notebook_data(cells)), encoding="utf-8")
    return path


def _params(value: str) -> tuple[str, dict]:
    """The parameters cell with ``value`` as a string, in a list and as a dict key and value."""
    values = {"q": value, "r": PLAIN, "n": 3, "l": [value, 1], "d": {value: value}}
    return "\n".join(f"{k} = {v!r}" for k, v in values.items()), values


def _manifest(value: str) -> dict:
    """same.yaml with ``value`` in every free-text field that reaches generated files."""
    return {"apiVersion": "same-nb/v1", "metadata": {"name": value, "labels": {"team": value}},
            "environment": {"base_image": value},
            "run": {"parameters": {"r": value}, "env": {"SHARED": value}},
            "steps": {"load": {"env": {"ONLY_LOAD": value}, "resources": {"gpu": 1}}}}


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: int):
    def expired(signum, frame):
        raise _Timeout(f"the compile did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _compile(notebook: Path, target: str, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with _deadline(TIMEOUT):
        code = main(["compile", str(notebook), "--target", target, "-o", "out"])
    out, err = capsys.readouterr()
    return code, out, err


def _pwned(*folders: Path) -> list[str]:
    return [os.path.join(root, hostile.MARKER) for folder in folders
            for root, dirs, files in os.walk(folder) if hostile.MARKER in files + dirs]


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A lock cache for the cases' two-step notebooks (no imports: every step locks the same), and the
    shape of the Markdown a benign compile writes."""
    folder = tmp_path_factory.mktemp("warm")
    params, _ = _params(PLAIN)
    notebook = _notebook(folder, PLAIN, params)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        mp.chdir(folder)
        assert main(["compile", str(notebook), "--target", "kubeflow", "-o", "out"]) == 0
    shape = {"header": len(_header(folder / "out" / "steps" / "load.ipynb")),       # lines besides one per step:
             "readme": len((folder / "out" / "README.md").read_text(encoding="utf-8").splitlines()) - 2}
    return folder / ".same" / "locks", shape


@pytest.fixture
def case(tmp_path, monkeypatch, warm):
    """A fresh folder, the working directory, with the warm lock cache; checks no PWNED appeared."""
    locks, shape = warm
    start = Path.cwd()
    shutil.copytree(locks, tmp_path / ".same" / "locks")
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path, shape
    assert not _pwned(tmp_path) and not (start / hostile.MARKER).exists(), "a hostile value was executed"


# -- checks of what was written -------------------------------------------------------------------

def _refused(code: int, err: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1, err
    assert "Traceback" not in err
    error = [line for line in lines if line.startswith("error: ")]
    assert len(error) == 1 and len(error[0]) > len("error: ") + 10, err


def _header(step_notebook: Path) -> list[str]:
    cells = json.loads(step_notebook.read_text(encoding="utf-8"))["cells"]
    assert cells[0]["id"] == "same-nb-header" and cells[0]["cell_type"] == "markdown"
    return "".join(cells[0]["source"]).splitlines()


def _check_bundle(out: Path, shape: dict, params: dict, step: str | None = "load") -> None:
    """Step notebooks: the parameters cell holds the notebook's exact defaults; Markdown keeps its shape."""
    json.loads((out / "pipeline.json").read_text(encoding="utf-8"))
    readme = (out / "README.md").read_text(encoding="utf-8").splitlines()
    steps = sorted((out / "steps").glob("*.ipynb"))
    assert len(readme) == shape["readme"] + len(steps) and readme[0].startswith("# Pipeline ")
    assert sum(line.startswith("#") for line in readme) == 1
    for path in steps:
        header = _header(path)
        assert len(header) == shape["header"] and header[0].startswith("# Step ")
        assert sum(line.startswith("#") for line in header) == 1
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        source = "".join(cells[1]["source"])
        assigned = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(source).body}
        for name, value in assigned.items():
            if name in params:
                assert value == params[name], name
        if path.stem == step:
            assert set(params) <= set(assigned)


def _literal(text: object, type_name: str) -> object:
    return ast.literal_eval(text) if type_name in ("list", "dict") else text


def _check_kubeflow(out: Path, notebook: Path, defaults: dict, manifest: dict | None) -> None:
    """pipeline.yaml and pipeline.py carry every default exactly; nothing else runs in them."""
    from kfp.components import load_component_from_file

    bundle = str((out / "kfp" / "bundle.tar.gz").resolve())      # pods import the bundle from here
    defaults = {**defaults, "same_nb_bundle_uri": bundle}
    types = {k: type(v).__name__ for k, v in defaults.items()}
    with open(out / "pipeline.yaml", encoding="utf-8", newline="") as file:
        text = file.read()
    spec = yaml.safe_load(text)
    header = text[:text.index("\ncomponents:")].splitlines()
    assert all(line.startswith("#") for line in header), header
    declared = spec["root"]["inputDefinitions"]["parameters"]
    assert {k: _literal(v["defaultValue"], types[k]) for k, v in declared.items()} == defaults
    inputs = load_component_from_file(str(out / "pipeline.yaml")).component_spec.inputs
    assert {k: _literal(v.default, types[k]) for k, v in inputs.items()} == defaults

    tree = ast.parse((out / "pipeline.py").read_text(encoding="utf-8"))
    assert f"`{notebook.name}`" in ast.get_docstring(tree, clean=False)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    for name, function in functions.items():
        if name.startswith("step_"):
            assert ast.get_docstring(function, clean=False).endswith(f" of {notebook.name}.")
    pipeline = functions["notebook_pipeline"].args
    names = [a.arg for a in pipeline.args]
    values = {n: _literal(ast.literal_eval(d), types[n]) for n, d in zip(names[-len(pipeline.defaults):],
                                                                        pipeline.defaults)}
    assert values == defaults
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))]
    called = {getattr(c.func, "id", None) or c.func.attr for c in calls}
    assert not called & {"system", "__import__", "eval", "exec", "popen", "str"}, called

    executors = {k: e for k, e in spec["deploymentSpec"]["executors"].items() if "container" in e}
    for executor in executors.values():
        command = executor["container"]["command"]      # kfp's: [sh -c <install kfp>] sh -ec <program> <source>
        for i, flag in enumerate(command[:-1]):
            if flag in ("-c", "-ec"):
                script = out / "launcher.sh"
                script.write_text(command[i + 1], encoding="utf-8")
                done = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stderr
        source = ast.parse(command[-1])                   # the step function kfp ships: only its own calls
        called = {getattr(n.func, "id", None) or getattr(n.func, "attr", None)
                  for n in ast.walk(source) if isinstance(n, ast.Call)}
        assert not called & {"system", "__import__", "eval", "exec", "popen"}, called
    if manifest:
        value = manifest["environment"]["base_image"]
        images = {e["container"]["image"] for e in executors.values()}
        assert images == {value}
        load = executors["exec-load"]["container"]["env"]
        assert {e["name"]: e["value"] for e in load} == {"SHARED": value, "ONLY_LOAD": value}
        env_calls = [tuple(ast.literal_eval(a) for a in c.args) for c in calls
                     if getattr(c.func, "attr", None) == "set_env_variable"]
        assert set(env_calls) == {("SHARED", value), ("ONLY_LOAD", value)}
        accelerators = [ast.literal_eval(c.args[0]) for c in calls
                        if getattr(c.func, "attr", None) == "set_accelerator_type"]
        assert accelerators == ["nvidia.com/gpu"]     # names come from a table (kubeflow/tasks.py), never as given


# -- the cases ------------------------------------------------------------------------------------

@pytest.mark.parametrize("target, value", CASES, ids=_ids(CASES))
def test_parameter_values_and_file_names(case, capsys, target, value):
    """The value as a parameter default (a string, in a list, as a dict key and value) in a notebook
    named with it (when a file may be)."""
    folder, shape = case
    params, defaults = _params(value)
    notebook = _notebook(folder, value if value in NAMES else "nb", params)
    code, out, err = _compile(notebook, target, capsys)
    if code != 0:
        return _refused(code, err)
    assert out.startswith("Compiled "), out
    _check_bundle(folder / "out", shape, defaults)
    if target == "kubeflow":
        _check_kubeflow(folder / "out", notebook, defaults, None)


@pytest.mark.parametrize("target, value", CASES, ids=_ids(CASES))
def test_manifest_fields(case, capsys, target, value):
    """The value in same.yaml: pipeline name and labels, base image, a parameter's default, run and
    step env values (accelerators are names from a table: tests/kubeflow/test_tasks.py)."""
    folder, shape = case
    params, defaults = _params(PLAIN)
    notebook = _notebook(folder, "nb", params)
    manifest = _manifest(value)
    (folder / "same.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    code, out, err = _compile(notebook, target, capsys)
    if code != 0:
        return _refused(code, err)
    _check_bundle(folder / "out", shape, defaults)
    written = yaml.safe_load((folder / "out" / "same.yaml").read_text(encoding="utf-8"))
    assert written["run"]["parameters"]["r"] == value and written["metadata"]["name"] == value
    if target == "kubeflow":
        _check_kubeflow(folder / "out", notebook, {**defaults, "r": value}, manifest)


@pytest.mark.parametrize("target, value", NAME_CASES, ids=_ids(NAME_CASES))
def test_step_names(case, capsys, target, value):
    """The value as a step name: refused unless the tag grammar allows it, then escaped."""
    folder, shape = case
    params, defaults = _params(PLAIN)
    notebook = _notebook(folder, "nb", params, first_step=value)
    code, out, err = _compile(notebook, target, capsys)
    if code != 0:
        return _refused(code, err)
    step = value if (folder / "out" / "steps" / f"{value}.ipynb").is_file() else None
    # A name the grammar allows names its step; any other line was no step tag (`step:a\nb` is not one).
    assert step or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,62}", value)
    _check_bundle(folder / "out", shape, defaults, step=step)
    if target == "kubeflow":
        _check_kubeflow(folder / "out", notebook, defaults, None)


@pytest.mark.parametrize("value", NAMES, ids=hostile.ids(NAMES))
def test_untagged_notebook_names(case, capsys, value):
    """An untagged notebook's one step is named after its file: the name is cleaned, the file name
    escaped wherever it is shown."""
    folder, _ = case
    notebook = folder / f"{value}.ipynb"
    notebook.write_text(json.dumps(notebook_data([(["parameters"], "q = 'x'"), ([], "y = q * 2")])),
                        encoding="utf-8")
    code, out, err = _compile(notebook, "local", capsys)
    if code != 0:
        return _refused(code, err)
    for path in (folder / "out" / "steps").glob("*.ipynb"):
        header = _header(path)
        assert header[0].startswith("# Step ") and sum(line.startswith("#") for line in header) == 1


def test_multiline_default_round_trips_through_kfp(case, capsys):
    """The issue's example: kfp pasted a multi-line default into its header comment, so pipeline.yaml
    did not load, and `compile` still said "Compiled"."""
    folder, _ = case
    notebook = _notebook(folder, "nb", "q = 'SELECT *\\nFROM t'\nr = 'x'\nn = 3\nl = []\nd = {}")
    code, out, err = _compile(notebook, "kubeflow", capsys)
    assert code == 0, err
    text = (folder / "out" / "pipeline.yaml").read_text(encoding="utf-8")
    assert "#    q: str [Default: 'SELECT *\\nFROM t']\n" in text
    assert yaml.safe_load(text)["root"]["inputDefinitions"]["parameters"]["q"]["defaultValue"] == "SELECT *\nFROM t"
    # pipeline.py rebuilds the same file (`python pipeline.py` goes through the same writer).
    copy = shutil.copytree(folder / "out", folder / "copy")
    (copy / "pipeline.yaml").unlink()
    subprocess.run(["python3", "pipeline.py"], cwd=copy, check=True, capture_output=True, timeout=120)
    assert (copy / "pipeline.yaml").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("value, problem", [
    (2 ** 53 + 1, "beyond 2**53"), (-(10 ** 30), "beyond 2**53"),
])
def test_integers_kfp_would_round_are_refused(case, capsys, value, problem):
    """KFP keeps numbers as doubles: an int default it would round is refused before anything is written."""
    folder, _ = case
    notebook = _notebook(folder, "nb", f"q = 'x'\nr = 'x'\nn = {value}\nl = []\nd = {{}}")
    code, out, err = _compile(notebook, "kubeflow", capsys)
    _refused(code, err)
    assert "parameter 'n'" in err and problem in err
    assert not (folder / "out").exists()


def test_big_integers_travel_exactly_as_literal_text(case, capsys):
    """A list or None-default parameter is Python-literal text in KFP: big integers in it stay exact."""
    folder, _ = case
    notebook = _notebook(folder, "nb", "q = 'x'\nr = None\nn = 3\nl = [2 ** 0]\nd = {}".replace("2 ** 0", str(10 ** 30)))
    (folder / "same.yaml").write_text(f"run:\n  parameters:\n    r: {2 ** 64}\n", encoding="utf-8")
    code, out, err = _compile(notebook, "kubeflow", capsys)
    assert code == 0, err
    declared = yaml.safe_load((folder / "out" / "pipeline.yaml").read_text(encoding="utf-8"))["root"]["inputDefinitions"]
    assert ast.literal_eval(declared["parameters"]["l"]["defaultValue"]) == [10 ** 30]
    assert ast.literal_eval(declared["parameters"]["r"]["defaultValue"]) == 2 ** 64


@pytest.mark.parametrize("same_yaml", ["n: .nan", "n: .inf", "n: -.inf", f"n: {'9' * 5000}", "l: [1, .nan]"])
def test_values_without_an_exact_form_are_refused(case, capsys, same_yaml):
    """NaN, infinity and integers past the interpreter's digit limit: refused with a message, no traceback,
    for both targets, before anything is written."""
    folder, _ = case
    notebook = _notebook(folder, "nb", "q = 'x'\nr = 'x'\nn = 1.5\nl = [1]\nd = {}")
    (folder / "same.yaml").write_text(f"run:\n  parameters:\n    {same_yaml}\n", encoding="utf-8")
    for target in ("local", "kubeflow"):
        code, out, err = _compile(notebook, target, capsys)
        _refused(code, err)
        assert "parameter" in err or "run.parameters" in err
        assert not (folder / "out").exists()


def test_run_arguments_kfp_cannot_carry_are_refused():
    """`same-nb run --target kubeflow -p`: values the pipeline would receive rounded or not at all."""
    from same_nb.errors import SameError
    from same_nb.kubeflow.submit import pipeline_arguments

    spec = {"root": {"inputDefinitions": {"parameters": {
        "n": {"parameterType": "NUMBER_INTEGER"}, "f": {"parameterType": "NUMBER_DOUBLE"},
        "l": {"parameterType": "STRING"}}}}}
    assert pipeline_arguments(spec, {"n": 2 ** 53, "f": 1, "l": [1, "a\nb"]}) == {"n": 2 ** 53, "f": 1.0,
                                                                                  "l": "[1, 'a\\nb']"}
    assert pipeline_arguments(spec, {"l": 10 ** 5000})["l"] == hex(10 ** 5000)     # literal text: exact
    for params in ({"n": 2 ** 53 + 1}, {"f": float("nan")}, {"l": [float("inf")]}):
        with pytest.raises(SameError, match="cannot be sent to Kubeflow"):
            pipeline_arguments(spec, params)


def test_escapers_round_trip():
    """bundle/escape.py on every hostile string: a docstring, a literal and a shell word give back the
    value; a comment and a Markdown code span stay on one printable line."""
    from same_nb.bundle.escape import docstring_text, markdown_code, python_literal, shell_word, visible

    words = []
    for value in STRINGS:
        assert ast.literal_eval(python_literal(value)) == value
        assert ast.get_docstring(ast.parse(f'"""{docstring_text(value)}."""'), clean=False) == value + "."
        for text in (visible(value), markdown_code(value), shell_word(value)):
            assert text.isprintable() and "\n" not in text
        if "\x00" not in value:
            words.append((value, shell_word(value)))
    script = "".join(f"printf '%s\\0' {word}\n" for _, word in words)
    done = subprocess.run(["bash", "-c", script], capture_output=True, timeout=60, env={**os.environ, "LANG": "C.UTF-8"})
    assert done.stdout.decode("utf-8").split("\0")[:-1] == [value for value, _ in words]
    for special in (float("nan"), float("inf"), -float("inf"), 10 ** 5000, [1, {"k": (2, 3.5)}], None, True):
        text = python_literal(special)
        back = eval(text, {"__builtins__": {"float": float}})       # float('nan') is the only call it writes
        assert back == special or (back != back and special != special), text
