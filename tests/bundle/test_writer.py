"""same_nb.bundle.writer: the compiled bundle (same.yaml, pipeline.json, one papermill-ready notebook per step)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from same_nb.bundle.writer import to_json, write_bundle
from same_nb.errors import SameError
from same_nb.frontend.ir import Pipeline
from same_nb.frontend.pipeline import build_pipeline
from same_nb.service import compile_notebook

from conftest import NOTEBOOKS


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def step_nb(out: Path, step: str) -> dict:
    return json.loads((out / "steps" / f"{step}.ipynb").read_text())


def sources(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"]]


def test_bundle_files_and_step_notebook_layout(notebook_copy, tmp_path):
    nb = notebook_copy("tags_code_before_first")
    out = tmp_path / "out"
    result = compile_notebook(nb, out)
    assert sorted(str(f.relative_to(out)) for f in result.files) == [
        "README.md", "pipeline.json", "same.yaml", "steps/load.ipynb", "steps/report.ipynb"]
    load = step_nb(out, "load")
    ids = [c["id"] for c in load["cells"]]
    assert ids == ["same-nb-header", "same-nb-parameters", "same-nb-prologue", "c1", "c2", "c3", "c4",
                   "same-nb-epilogue"]
    assert [c["cell_type"] for c in load["cells"]][3:7] == ["code", "markdown", "code", "code"]
    assert load["cells"][1]["metadata"]["tags"] == ["parameters", "same-nb-generated"]
    assert sources(load)[3:7] == ["import math\nbase = 10", "## Load", "data = [base, base + 1]",
                                  "data.append(math.floor(2.5))"]
    assert [c["metadata"]["same_nb"]["cell"] for c in load["cells"][3:7]] == [1, 2, 3, 4]
    assert "save_outputs" in sources(load)[-1] and "data" in sources(load)[-1]
    assert "load_inputs" in sources(step_nb(out, "report"))[2]


def test_generated_cells_are_tagged_and_collapsed_and_the_user_cells_are_not(notebook_copy, tmp_path):
    out = tmp_path / "out"
    compile_notebook(notebook_copy("tags_code_before_first"), out)
    load = step_nb(out, "load")
    generated = {c["id"]: c["metadata"] for c in load["cells"] if "same-nb-generated" in c["metadata"].get("tags", [])}
    assert list(generated) == ["same-nb-header", "same-nb-parameters", "same-nb-prologue", "same-nb-epilogue"]
    assert all(generated[i]["jupyter"] == {"source_hidden": True}
               for i in ("same-nb-parameters", "same-nb-prologue", "same-nb-epilogue"))
    assert "jupyter" not in generated["same-nb-header"]                  # a markdown header stays readable
    header = sources(load)[0]
    assert header.startswith("# Step `load` of pipeline `tags-code-before-first`\n")
    assert "collapsed cells tagged `same-nb-generated`" in header
    assert not any("jupyter" in c["metadata"] for c in load["cells"] if c["id"].startswith("c"))


def test_step_notebooks_are_valid_and_in_nbformat_canonical_form(notebook_copy, tmp_path):
    out = tmp_path / "out"
    compile_notebook(notebook_copy("kale_conventions"), out)
    for path in sorted((out / "steps").glob("*.ipynb")):
        text = path.read_text()
        node = nbformat.reads(text, as_version=4)
        nbformat.validate(node)
        assert nbformat.writes(node) + "\n" == text, path.name


def test_user_cells_are_copied_without_outputs(tmp_path):
    data = json.loads((NOTEBOOKS / "tags_first_cell.ipynb").read_text())
    data["cells"][0].update(execution_count=3, outputs=[{"output_type": "stream", "name": "stdout", "text": "hi"}])
    nb = tmp_path / "ran.ipynb"
    nb.write_text(json.dumps(data))
    compile_notebook(nb, tmp_path / "out")
    for cell in step_nb(tmp_path / "out", "load")["cells"]:
        assert cell.get("outputs", []) == [] and cell.get("execution_count") is None


def test_parameters_cell_holds_the_defaults_the_step_reads(notebook_copy, tmp_path):
    out = tmp_path / "out"
    pipeline = compile_notebook(notebook_copy("tags_parameters"), out).inspection.pipeline
    namespace: dict = {}
    exec(sources(step_nb(out, "prep"))[1], namespace)
    assert {k: v for k, v in namespace.items() if not k.startswith("__")} == {
        "alpha": 0.5, "epochs": 3, "_same_nb_spec": None}
    defaults = {p.name: p.default for p in pipeline.parameters}
    exec(sources(step_nb(out, "label"))[1], namespace)
    assert namespace["name"] == defaults["name"]


def test_prologue_replays_the_imports_a_step_uses(write_notebook, tmp_path):
    nb = write_notebook([(["step:a"], "import math as m\nfrom os import sep\nx = 1"),
                         (["step:b"], "y = m.floor(x) + len(sep)")])
    compile_notebook(nb, tmp_path / "out")
    prologue = sources(step_nb(tmp_path / "out", "b"))[2]
    assert "import math as m\nfrom os import sep\n" in prologue
    assert prologue.index("from os import sep") < prologue.index("load_inputs")


def test_papermill_injection_keeps_every_user_cell(notebook_copy, tmp_path):
    # A user cell tagged `injected-parameters` would be *replaced* by papermill; the bundle drops that tag.
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    out = tmp_path / "out"
    compile_notebook(notebook_copy("tags_other_ignored"), out)
    node = load_notebook_node(str(out / "steps" / "load.ipynb"))     # as papermill.execute_notebook does
    injected = parameterize_notebook(node, {"_same_nb_spec": "/tmp/spec.json"}, kernel_name="python3",
                                     language="python")
    assert sources(injected)[:2] == sources(node)[:2]
    assert injected["cells"][2]["metadata"]["tags"] == ["injected-parameters"]
    assert sources(injected)[4:6] == ["v = 1", "w = v + 1"]
    assert [c["metadata"]["tags"] for c in injected["cells"][4:6]] == [["step:load", "hide-input"],
                                                                       ["remove-output"]]


def test_pipeline_json_is_the_ir(notebook_copy, tmp_path):
    out = tmp_path / "out"
    pipeline = compile_notebook(notebook_copy("functions_across_steps"), out).inspection.pipeline
    text = (out / "pipeline.json").read_text()
    expected = pipeline.to_dict() | {"notebook": "functions_across_steps.ipynb"}
    assert text == json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert Pipeline.from_dict(json.loads(text)).steps == pipeline.steps


def test_compiling_twice_is_byte_identical_and_leaves_the_source_alone(notebook_copy, tmp_path):
    nb = notebook_copy("kale_conventions")
    source = (nb.read_bytes(), nb.stat().st_mtime_ns)
    compile_notebook(nb, tmp_path / "one")
    first = snapshot(tmp_path / "one")
    compile_notebook(nb, tmp_path / "one")
    assert snapshot(tmp_path / "one") == first                   # same bytes, files not even rewritten
    compile_notebook(nb, tmp_path / "two")
    assert {k: v[0] for k, v in snapshot(tmp_path / "two").items()} == {k: v[0] for k, v in first.items()}
    assert (nb.read_bytes(), nb.stat().st_mtime_ns) == source


def test_stale_step_notebooks_are_removed(write_notebook, tmp_path):
    nb = write_notebook([(["step:old_name"], "x = 1"), (["step:b"], "y = x")])
    out = tmp_path / "out"
    compile_notebook(nb, out)
    write_notebook([(["step:new_name"], "x = 1"), (["step:b"], "y = x")])
    compile_notebook(nb, out)
    assert sorted(p.name for p in (out / "steps").iterdir()) == ["b.ipynb", "new_name.ipynb"]


def test_write_errors_are_same_errors(notebook_copy, tmp_path):
    nb = notebook_copy("tags_none")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SameError, match="cannot write the bundle") as info:
        compile_notebook(nb, blocker)
    assert str(blocker) in str(info.value)
    with pytest.raises(SameError, match="cannot go in the notebook's own folder"):
        compile_notebook(nb, nb.parent)
    assert sorted(p.name for p in nb.parent.iterdir()) == ["a_file", "tags_none.ipynb"]


def test_write_bundle_with_a_prebuilt_ir(tmp_path):
    src = tmp_path / "nb"
    src.mkdir()
    shutil.copy(NOTEBOOKS / "branching.ipynb", src)
    pipeline = build_pipeline(src / "branching.ipynb")
    bundle = write_bundle(pipeline, tmp_path / "b", "apiVersion: same-nb/v1\n")
    assert (tmp_path / "b" / "same.yaml").read_text() == "apiVersion: same-nb/v1\n"
    readme = (tmp_path / "b" / "README.md").read_text()
    assert "| `join` | left, right | - | left, right |" in readme
    assert bundle.step_notebook("left") == tmp_path / "b" / "steps" / "left.ipynb"


@pytest.mark.parametrize("value", [
    {}, [], "", {"b": [1, 2.5, None, True, False], "a": {"x": []}, "é": "ünïcode \u2028 \" \\ \n\t"},
    [[], {}, [[1]], {"k": {}}], 1e-300, -0.0, 12345678901234567890, {"s": "\x00\x1f"},
])
def test_to_json_matches_the_stdlib_encoder(value):
    assert to_json(value) == json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)
