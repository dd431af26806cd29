"""load_inputs / save_outputs through spec files, as the generated prologue and epilogue call them."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import same_nb.runtime
from same_nb.runtime import (
    CorruptArtifactError,
    MissingOutputError,
    SpecError,
    StepBoundaryError,
    load_inputs,
    save_outputs,
)


def kernel(source: str = "", **variables) -> dict:
    ns = {"__name__": "__main__", **variables}
    exec(compile(textwrap.dedent(source), "<cell>", "exec", dont_inherit=True), ns)
    return ns


def write_spec(tmp_path, step, inputs=None, outputs=None, watch=None) -> str:
    spec = {"step": step, "store": str(tmp_path / ".same" / "artifacts"),
            "inputs": inputs or {}, "outputs": outputs or {}, "watch": watch or [],
            "result": str(tmp_path / ".same" / "runs" / "1" / "steps" / step / "result.json")}
    path = tmp_path / f"{step}.spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_outputs_saved_by_one_step_load_in_the_next(tmp_path):
    prep = kernel('''
        import pandas as pd, numpy as np
        threshold = 1
        df = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=pd.Index(["a", "b", "c"], name="id"))
        X = np.arange(6).reshape(2, 3)
        def score(v): return v * threshold
        config = {"depth": 3}
    ''')
    spec = write_spec(tmp_path, "prep", outputs={"df": ["train"], "X": ["train", "report"],
                                                   "score": ["train"], "config": ["train"]})
    result = save_outputs(spec, prep)

    on_disk = json.loads((tmp_path / ".same/runs/1/steps/prep/result.json").read_text())
    assert on_disk == result
    assert set(result["outputs"]) == {"df", "X", "score", "config"}
    assert result["outputs"]["df"]["kind"] == "pandas-dataframe"
    assert result["outputs"]["X"] == {"name": "X", "sha256": result["outputs"]["X"]["sha256"],
                                      "kind": "numpy-array", "type": "numpy.ndarray",
                                      "size": result["outputs"]["X"]["size"]}
    assert result["warnings"] == []
    assert set(result["durations"]) == {"load_inputs", "save_outputs", "inputs", "outputs"}
    assert set(result["durations"]["outputs"]) == {"df", "X", "score", "config"}
    assert all(isinstance(s, float) and s >= 0 for s in result["durations"]["outputs"].values())
    assert list((tmp_path / ".same/runs/1/steps/prep").iterdir()) == [
        tmp_path / ".same/runs/1/steps/prep/result.json"]  # no temp file left beside it

    train = kernel(threshold=10)
    load_inputs(write_spec(tmp_path, "train", inputs=result["outputs"]), train)
    pd.testing.assert_frame_equal(train["df"], prep["df"], check_exact=True)
    np.testing.assert_array_equal(train["X"], prep["X"])
    assert train["config"] == {"depth": 3}
    assert train["score"](2) == 20  # sees train's threshold


def test_load_durations_reach_the_result(tmp_path):
    store_ns = kernel("import pandas as pd\ndf = pd.DataFrame({'a': range(1000)})")
    produced = save_outputs(write_spec(tmp_path, "a", outputs={"df": ["b"]}), store_ns)["outputs"]
    ns = kernel()
    spec = write_spec(tmp_path, "b", inputs=produced, outputs={"n": []})
    load_inputs(spec, ns)
    ns["n"] = len(ns["df"])
    durations = save_outputs(spec, ns)["durations"]
    assert durations["load_inputs"] > 0 and set(durations["inputs"]) == {"df"}
    assert durations["save_outputs"] >= durations["outputs"]["n"]


def test_missing_output_names_it_and_its_consumers(tmp_path):
    spec = write_spec(tmp_path, "prep", outputs={"df": ["train"], "y": ["train", "report"]})
    with pytest.raises(MissingOutputError) as info:
        save_outputs(spec, kernel("y = 1"))
    assert str(info.value) == ("step 'prep' was expected to define 'df' for step 'train' but it is not "
                               "defined after the step ran")
    with pytest.raises(MissingOutputError, match="'df' for step 'train'; 'y' for steps 'train' and 'report' "
                                                 "but they are not defined"):
        save_outputs(spec, kernel())
    assert not (tmp_path / ".same/runs/1/steps/prep/result.json").exists()


def test_output_that_cannot_cross_the_boundary(tmp_path):
    ns = kernel(f"fh = open({str(tmp_path / 'log.txt')!r}, 'w')")
    try:
        with pytest.raises(StepBoundaryError, match=r"^variable 'fh' \(_io.TextIOWrapper, an open file\) cannot "
                                                    r"be passed from step 'load' to step 'train'\."):
            save_outputs(write_spec(tmp_path, "load", outputs={"fh": ["train"]}), ns)
    finally:
        ns["fh"].close()


def test_output_that_fails_to_serialize_is_a_boundary_error(tmp_path):
    ns = kernel("import threading\nclass Holder:\n    def __init__(self): self.lock = threading.Lock()\nh = Holder()")
    with pytest.raises(StepBoundaryError) as info:
        save_outputs(write_spec(tmp_path, "make", outputs={"h": ["use"]}), ns)
    message = str(info.value)
    assert message.startswith("variable 'h' (__main__.Holder) cannot be passed from step 'make' to step 'use': "
                              "it could not be serialized (TypeError: cannot pickle '_thread.lock' object).")
    assert [p for p in (tmp_path / ".same/artifacts").rglob("*") if p.is_file()] == []


def _watched_step(tmp_path, body: str) -> dict:
    produced = save_outputs(write_spec(tmp_path, "load", outputs={"df": ["clean"], "n": ["clean"]}),
                            kernel("import pandas as pd\ndf = pd.DataFrame({'a': [1.0, None]})\nn = 1"))
    ns = kernel()
    spec = write_spec(tmp_path, "clean", inputs=produced["outputs"], outputs={"total": ["report"]},
                      watch=["df"])
    load_inputs(spec, ns)
    exec(textwrap.dedent(body), ns)
    return save_outputs(spec, ns)


def test_in_place_change_of_a_watched_input_is_reported(tmp_path):
    result = _watched_step(tmp_path, "df.fillna(0, inplace=True)\ntotal = df['a'].sum()")
    assert result["warnings"] == [{"name": "df", "message": (
        "input 'df' was modified in place by this step but is not an output; later steps read the "
        "unmodified value")}]


def test_unchanged_watched_input_gives_no_warning(tmp_path):
    assert _watched_step(tmp_path, "total = df['a'].sum()")["warnings"] == []


def test_reassigned_watched_input_is_reported_as_such(tmp_path):
    result = _watched_step(tmp_path, "df = df.dropna()\ntotal = df['a'].sum()")
    assert [w["message"] for w in result["warnings"]] == [
        "input 'df' was reassigned by this step but is not an output; later steps read the value it had "
        "before this step"]


def test_corrupt_input_names_the_variable(tmp_path):
    produced = save_outputs(write_spec(tmp_path, "a", outputs={"model": ["b"]}), kernel("model = [1, 2, 3]"))
    record = produced["outputs"]["model"]
    artifact = tmp_path / ".same/artifacts" / record["sha256"][:2] / record["sha256"]
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\x00")
    with pytest.raises(CorruptArtifactError) as info:
        load_inputs(write_spec(tmp_path, "b", inputs=produced["outputs"]), kernel())
    assert info.value.name == "model" and info.value.sha256 == record["sha256"]


def test_unreadable_spec(tmp_path):
    with pytest.raises(SpecError, match="cannot read step spec"):
        load_inputs(str(tmp_path / "absent.json"), {})
    (tmp_path / "bad.json").write_text('{"step": "x"}')
    with pytest.raises(SpecError, match="lacks store, result"):
        save_outputs(str(tmp_path / "bad.json"), {})


def test_dataframe_round_trip_goes_through_arrow_exactly(tmp_path):
    """A DataFrame travels as an Arrow file, not a pickle (its speed is bench/large_steps.py's)."""
    df = pd.DataFrame(np.random.default_rng(0).random((200_000, 10)), columns=[f"c{i}" for i in range(10)])
    ns = {"df": df}
    produced = save_outputs(write_spec(tmp_path, "a", outputs={"df": ["b"]}), ns)
    assert produced["outputs"]["df"]["kind"] == "pandas-dataframe"
    loaded: dict = {}
    load_inputs(write_spec(tmp_path, "b", inputs=produced["outputs"]), loaded)
    pd.testing.assert_frame_equal(loaded["df"], df, check_exact=True)


_STANDALONE = textwrap.dedent('''
    import importlib.abc, json, sys

    class NoSameNb(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "same_nb" or name.startswith("same_nb."):
                raise ImportError(f"standalone runtime imported {name}")
    sys.meta_path.insert(0, NoSameNb())

    import same_nb_runtime as rt
    heavy_at_import = [m for m in ("pandas", "numpy", "pyarrow", "cloudpickle") if m in sys.modules]

    import pandas as pd
    producer = {"__name__": "__main__"}
    exec("import pandas as pd\\nk = 1\\ndf = pd.DataFrame({'a': [1, 2]})\\ndef f(): return k", producer)
    result = rt.save_outputs(sys.argv[1], producer)
    spec = json.loads(open(sys.argv[2]).read())
    spec["inputs"] = result["outputs"]
    open(sys.argv[2], "w").write(json.dumps(spec))
    consumer = {"__name__": "__main__", "k": 7}
    rt.load_inputs(sys.argv[2], consumer)
    print(json.dumps({"heavy_at_import": heavy_at_import, "f": consumer["f"](),
                      "df": consumer["df"]["a"].tolist(),
                      "kinds": sorted(r["kind"] for r in result["outputs"].values()),
                      "same_nb_loaded": any(m.split(".")[0] == "same_nb" for m in sys.modules)}))
''')


def test_runtime_works_as_a_standalone_copy(tmp_path):
    package_dir = tmp_path / "pod"
    shutil.copytree(same_nb.runtime.__path__[0], package_dir / "same_nb_runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    produce = write_spec(tmp_path, "a", outputs={"df": ["b"], "f": ["b"]})
    consume = write_spec(tmp_path, "b")
    out = subprocess.run([sys.executable, "-c", _STANDALONE, produce, consume], cwd=package_dir,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"heavy_at_import": [], "f": 7, "df": [1, 2],
                                      "kinds": ["function", "pandas-dataframe"], "same_nb_loaded": False}


def _verify_spec(tmp_path, step, inputs, verify, outputs=None) -> str:
    path = write_spec(tmp_path, step, inputs=inputs, outputs=outputs)
    spec = json.loads(open(path).read())
    spec["verify"] = verify
    open(path, "w").write(json.dumps(spec))
    return path


@pytest.mark.parametrize("code,how", [
    ("b = a\nb.append(3)", "in place"),
    ("globals()['a'] = [9]", "reassigned"),
    ("del globals()['a']", "deleted"),
])
def test_an_unplanned_change_to_an_input_later_steps_read_fails_the_step(tmp_path, code, how):
    from same_nb.runtime.errors import UnplannedEffectError

    made = save_outputs(write_spec(tmp_path, "make", outputs={"a": ["alias", "use"]}), kernel("a = [1, 2]"))
    spec = _verify_spec(tmp_path, "alias", {"a": made["outputs"]["a"]},
                        {"a": {"producer": "make", "readers": ["use"]}})
    ns = kernel()
    load_inputs(spec, ns)
    exec(code, ns)
    with pytest.raises(UnplannedEffectError) as info:
        save_outputs(spec, ns)
    message = str(info.value)
    assert "step 'alias'" in message and "'a'" in message and "step 'use'" in message
    assert "run again" in message
    result = json.loads((tmp_path / ".same/runs/1/steps/alias/result.json").read_text())
    assert result["unplanned"] == [{"kind": "mutation", "name": "a", "how": how, "producer": "make",
                                    "readers": ["use"]}]


def test_unchanged_inputs_and_planned_outputs_pass_the_check(tmp_path):
    made = save_outputs(write_spec(tmp_path, "make", outputs={"a": ["s"], "df": ["s"]}),
                        kernel("import pandas as pd\na = [1]\ndf = pd.DataFrame({'x': [1.0, 2.0]})"))
    inputs = {n: made["outputs"][n] for n in ("a", "df")}
    verify = {n: {"producer": "make", "readers": ["later"]} for n in ("a", "df")}
    spec = _verify_spec(tmp_path, "s", inputs, verify, outputs={"a": ["later"]})
    ns = kernel()
    load_inputs(spec, ns)
    exec("total = df['x'].sum() + len(a)\na.append(2)", ns)   # `a` is this step's output: planned
    result = save_outputs(spec, ns)
    assert result["unplanned"] == []


def test_outputs_that_are_one_object_load_as_one_object(tmp_path):
    """`b = a`, a bound method and its object, a list holding another output: saved together, loaded together."""
    made = save_outputs(write_spec(tmp_path, "make", outputs={n: ["use"] for n in ("a", "b", "pair", "shared", "g", "c", "z")}),
                        kernel('''
        class C:
            def __init__(self): self.v = 1
            def get(self): return self.v
        a = [1]; b = a
        shared = [0]; pair = [shared, shared]
        c = C(); g = c.get
        z = [2]
    '''))
    kinds = {n: r["kind"] for n, r in made["outputs"].items()}
    assert kinds == {"a": "group", "b": "group", "pair": "group", "shared": "group", "g": "group", "c": "group",
                     "z": "pickle"}
    assert made["outputs"]["a"]["sha256"] == made["outputs"]["b"]["sha256"] != made["outputs"]["pair"]["sha256"]
    ns = kernel()
    load_inputs(write_spec(tmp_path, "use", inputs=made["outputs"]), ns)
    assert ns["a"] is ns["b"] and ns["pair"][0] is ns["shared"] and ns["g"].__self__ is ns["c"]
    ns["c"].v = 5
    assert ns["g"]() == 5


def test_a_value_changed_through_another_it_was_saved_with_fails_the_step_and_names_both(tmp_path):
    from same_nb.runtime.errors import UnplannedEffectError

    made = save_outputs(write_spec(tmp_path, "make", outputs={"shared": ["late"], "pair": ["change"]}),
                        kernel("shared = [0]\npair = [shared, shared]"))
    spec = write_spec(tmp_path, "change", inputs={"pair": made["outputs"]["pair"]})
    ns = kernel()
    load_inputs(spec, ns)
    assert "shared" not in ns                      # not asked for: held, not bound
    exec("pair[0].append(1)", ns)
    with pytest.raises(UnplannedEffectError, match="step 'change' changed 'shared' through 'pair'"):
        save_outputs(spec, ns)
    result = json.loads((tmp_path / ".same/runs/1/steps/change/result.json").read_text())
    assert result["unplanned"] == [{"kind": "mutation", "name": "shared", "how": "through 'pair'", "via": "pair",
                                    "producer": None, "readers": []}]


def test_reading_a_group_member_without_changing_it_passes(tmp_path):
    made = save_outputs(write_spec(tmp_path, "make", outputs={"shared": ["late"], "pair": ["read"]}),
                        kernel("shared = [0]\npair = [shared, shared]"))
    spec = write_spec(tmp_path, "read", inputs={"pair": made["outputs"]["pair"]}, outputs={"n": ["x"]})
    ns = kernel()
    load_inputs(spec, ns)
    exec("n = len(pair[1])", ns)
    assert save_outputs(spec, ns)["unplanned"] == []
