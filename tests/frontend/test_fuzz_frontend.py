"""Property test of the whole front end: whatever the file holds, `build_pipeline` returns a
consistent Pipeline or raises SameError, never anything else.

Random cells (python-ish source with magics, tags from the grammar plus junk), random metadata and
corrupted JSON (truncated, bytes flipped). ~200 examples by default; a long run:
    SAME_NB_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz_frontend.py -q
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import IPython.core.inputtransformer2  # noqa: F401  jedi raises the recursion limit on import: before Hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from same_nb.bundle.writer import step_notebook, to_json
from same_nb.errors import SameError
from same_nb.frontend.dag import find_cycle
from same_nb.frontend.ir import Pipeline
from same_nb.frontend.pipeline import build_pipeline

EXAMPLES = int(os.environ.get("SAME_NB_FUZZ_EXAMPLES", "200"))

NAMES = ["x", "y", "data", "df", "model", "f", "g", "C", "np", "os", "i", "alpha", "_", "é"]
STEP_NAMES = ["load", "train", "a", "b", "c", "d", "same_step_1", "load", "train"]
BAD_STEP_NAMES = ["bad name", "", "x" * 70, "2x"]

name = st.sampled_from(NAMES)
snippet = st.one_of(
    st.builds("{} = {} + 1".format, name, name),
    st.builds("{} = [{} for {} in range(3)]".format, name, name, name),
    st.builds("{}.append({})".format, name, name),
    st.builds("{}[0] = {}".format, name, name),
    st.builds("{} += {}".format, name, name),
    st.builds("del {}".format, name),
    st.builds("def {}(v):\n    return v + {}".format, name, name),
    st.builds("class {}:\n    k = {}\n    def m(self):\n        return {}".format, name, name, name),
    st.builds("{} = lambda v: v * {}".format, name, name),
    st.builds("for {} in {}:\n    {}.update({})".format, name, name, name, name),
    st.builds("with open({}) as {}:\n    pass".format, name, name),
    st.builds("shuffle({})".format, name),
    st.sampled_from([
        "import numpy as np", "import os.path", "from os import *", "from . import sibling",
        "import importlib\nm = importlib.import_module('json')", "exec('z = 1')", "eval('1')", "globals()['q'] = 1",
        "%matplotlib inline", "%time y = 1", "%%time\nz = 2", "%%capture out\nprint(1)", "%%bash\necho hi",
        "%%writefile f.py\nx = 1", "!ls -la", "files = !ls", "%pip install 'pandas>=2'", "!pip install requests",
        "x?", "%timeit -n1 sum(data)", "%%timeit\nsum(data)", "%load_ext autoreload", "%run other.py",
        "try:\n    import yaml\nexcept ImportError:\n    yaml = None", "match x:\n    case [a, *rest]:\n        pass",
        "async def co():\n    await thing", "global gx\ngx = 1", "x = (", "def broken(:", "\t x = 1", "x = 1\x00",
        "x = " + "(" * 250 + ")" * 250, "x = " + "-" * 2000 + "1", "if True:\n", "# only a comment", "",
        "@decorator\ndef h():\n    pass", "print(f'{x!r:>{y}}')", "y = [*x, **{}]", "(a := 1)",
    ]),
    st.text(max_size=40),
)
source = st.lists(snippet, max_size=4).map("\n".join)
tag = st.one_of(
    st.builds("step:{}".format, st.sampled_from(STEP_NAMES)),
    st.builds("step:{}".format, st.sampled_from(STEP_NAMES)),
    st.builds("step:{}".format, st.sampled_from(BAD_STEP_NAMES)),
    st.builds("block:{}".format, st.sampled_from(STEP_NAMES)),
    st.builds("after:{}".format, st.sampled_from(STEP_NAMES)),
    st.builds("prev:{}".format, st.sampled_from(STEP_NAMES)),
    st.builds("same_step_{}".format, st.integers(0, 3)),
    st.sampled_from(["parameters", "pipeline-parameters", "skip", "imports", "functions", "pipeline-metrics",
                     "injected-parameters", "hide-input", "step:", "after:"]),
    st.text(max_size=12),
)
parameters_source = st.sampled_from(["alpha = 0.5\nn = 3", "alpha = [1, (2, 3)]", "x = alpha * 2", "import os",
                                     "d = {1: 2}", "big = 1e999", "s = {'a': None}", "a, b = 1, 2", ""])
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=8)
cell_metadata = st.one_of(st.just({}), st.just({"collapsed": True}),
                          st.dictionaries(st.sampled_from(["tags", "jupyter", "same_nb", "x"]), json_value, max_size=2))
extra_tag = st.sampled_from([None] * 6 + ["skip", "parameters", "imports", "pipeline-metrics", "hide-input",
                                          "injected-parameters"])


@st.composite
def cells(draw) -> list[dict]:
    # Mostly well-formed step structure (so multi-step pipelines get built), sometimes anything.
    structured = draw(st.sampled_from([True, True, False]))
    out = []
    for i in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["code"] * 6 + ["markdown", "raw"]))
        if structured:
            tags = []
            if draw(st.booleans()):
                tags.append(draw(st.sampled_from([f"step:s{i}", f"step:s{i}", f"block:s{i}", f"same_step_{i}"])))
            if i and draw(st.integers(0, 4)) == 4:
                tags.append(f"after:s{draw(st.integers(0, i - 1))}")
            extra = draw(extra_tag)
            tags += [extra] if extra else []
        else:
            tags = draw(st.lists(tag, max_size=2, unique=True)) if draw(st.booleans()) else []
        src = draw(parameters_source) if "parameters" in tags and draw(st.booleans()) else draw(source)
        cell = {"cell_type": kind, "id": draw(st.sampled_from([f"c{i}", f"c{i}", "dup"])),
                "metadata": {"tags": tags} if tags else draw(cell_metadata),
                "source": draw(st.sampled_from([src, src.splitlines(True)]))}
        if kind == "code":
            cell.update(outputs=[], execution_count=draw(st.sampled_from([None, 1])))
        out.append(cell)
    return out


python_kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
metadata = st.one_of(st.just(python_kernel), st.just(python_kernel), st.just({}), st.fixed_dictionaries({}, optional={
    "kernelspec": st.one_of(st.fixed_dictionaries({"name": st.sampled_from(["python3", "ir", ""]),
                                                   "display_name": st.just("K"),
                                                   "language": st.sampled_from(["python", "Python", "R"])}),
                            json_value),
    "language_info": st.one_of(st.fixed_dictionaries({"name": st.sampled_from(["python", "julia"])}), json_value),
    "same_nb": json_value,
}))


@st.composite
def notebook_bytes(draw) -> bytes:
    nb = {"nbformat": draw(st.sampled_from([4] * 12 + [3, 5, "4"])),
          "nbformat_minor": draw(st.sampled_from([5] * 6 + [4, 0, 99])),
          "metadata": draw(metadata), "cells": draw(cells())}
    if nb["nbformat_minor"] < 5:
        for cell in nb["cells"]:
            cell.pop("id", None)
    missing = draw(st.sampled_from([None] * 9 + ["metadata", "cells", "nbformat_minor"]))
    if missing:
        del nb[missing]
    raw = json.dumps(nb, indent=draw(st.sampled_from([None, 1]))).encode()
    corruption = draw(st.sampled_from(["none"] * 6 + ["truncate", "flip"]))
    if corruption == "truncate" and raw:
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif corruption == "flip" and raw:
        data = bytearray(raw)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        raw = bytes(data)
    return raw


def check_consistent(p: Pipeline) -> None:
    names = [s.name for s in p.steps]
    assert names and len(set(names)) == len(names)
    assert find_cycle(names, p.edges) is None
    for e in p.edges:
        assert e.src in names and e.dst in names
    for s in p.steps:
        for i in s.variable_inputs:
            assert names.index(i.producer) < names.index(s.name) and i.name in p.step(i.producer).outputs
        json.loads(to_json(step_notebook(p, s)))
    assert Pipeline.from_dict(json.loads(json.dumps(p.to_dict()))) == p


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])
@given(raw=notebook_bytes())
def test_build_pipeline_returns_a_consistent_ir_or_raises_same_error(raw):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.ipynb"
        path.write_bytes(raw)
        try:
            pipeline = build_pipeline(path)
        except SameError as exc:
            assert exc.path == str(path) and str(exc)
            return
        check_consistent(pipeline)
