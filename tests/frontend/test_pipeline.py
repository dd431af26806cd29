"""same_nb.frontend.pipeline (+ dataflow, dag): notebook → Pipeline IR. Exact inputs, outputs, edges and
diagnostics for each fixture, the structural errors, and the IR's JSON round trip."""
from __future__ import annotations

import json

import pytest

from same_nb.errors import SameError
from same_nb.frontend.dag import find_cycle, levels, topological_order
from same_nb.frontend.ir import Edge, Pipeline
from same_nb.frontend.pipeline import build_pipeline

from conftest import NOTEBOOKS


def build(fixture: str) -> Pipeline:
    return build_pipeline(NOTEBOOKS / f"{fixture}.ipynb")


def flows(p: Pipeline) -> dict[str, tuple[list[str], list[str]]]:
    """step -> (inputs as `name<-producer` / `name(param)`, outputs)."""
    return {s.name: (sorted(f"{i.name}<-{i.producer}" if i.kind == "variable" else f"{i.name}(param)"
                            for i in s.inputs), s.outputs) for s in p.steps}


def edges(p: Pipeline) -> list[tuple]:
    return sorted((e.src, e.dst, e.kind, tuple(e.names)) for e in p.edges)


def reachable(p: Pipeline, src: str, dst: str) -> bool:
    todo, seen = [src], set()
    while todo:
        node = todo.pop()
        for e in p.edges:
            if e.src == node and e.dst not in seen:
                seen.add(e.dst)
                todo.append(e.dst)
    return dst in seen


def warnings_of(p: Pipeline) -> list[tuple]:
    return [(d.code, d.step, d.cell, d.line) for d in p.diagnostics]


CASES = {
    "tags_none": ({"tags_none": ([], [])}, []),
    "tags_first_cell": ({"load": ([], ["data"]), "total": (["data<-load"], [])},
                        [("load", "total", "data", ("data",))]),
    "tags_code_before_first": ({"load": ([], ["data"]), "report": (["data<-load"], [])},
                               [("load", "report", "data", ("data",))]),
    "tags_consecutive": ({"a": ([], ["a"]), "b": ([], ["b"]), "c": (["a<-a", "b<-b"], [])},
                         [("a", "c", "data", ("a",)), ("b", "c", "data", ("b",))]),
    "tags_skip": ({"load": ([], ["data"]), "use": (["data<-load"], [])}, [("load", "use", "data", ("data",))]),
    "tags_skip_step": ({"load": ([], ["data"]), "debug": (["data<-load"], [])},
                       [("load", "debug", "data", ("data",))]),
    "tags_parameters": ({"prep": (["alpha(param)", "epochs(param)"], ["scaled"]),
                         "label": (["name(param)", "scaled<-prep"], [])}, [("prep", "label", "data", ("scaled",))]),
    "tags_after": ({"write": ([], []), "read": ([], [])}, [("write", "read", "after", ()), ("write", "read", "file", ())]),
    "tags_other_ignored": ({"load": ([], [])}, []),
    "kale_conventions": ({"load": ([], ["values"]), "scale": (["factor(param)", "values<-load"], ["scaled"]),
                          "summarize": (["scaled<-scale"], [])},
                         [("load", "scale", "after", ()), ("load", "scale", "data", ("values",)),
                          ("scale", "summarize", "after", ()), ("scale", "summarize", "data", ("scaled",))]),
    "same_conventions": ({"same_step_0": ([], ["numbers"]), "same_step_1": (["numbers<-same_step_0"], ["doubled"]),
                          "same_step_2": (["doubled<-same_step_1"], [])},
                         [("same_step_0", "same_step_1", "data", ("numbers",)),
                          ("same_step_1", "same_step_2", "data", ("doubled",))]),
    "magics": ({"load": ([], ["data"]), "stats": (["data<-load"], ["total"]), "quiet": (["total<-stats"], [])},
               [("load", "stats", "data", ("data",)), ("stats", "quiet", "data", ("total",))]),
    # In-place changes make the mutating step the producer later steps read from.
    "mutation": ({"load": ([], ["config", "plain", "rows"]), "sort": (["config<-load", "rows<-load"], ["config", "rows"]),
                  "use": (["config<-sort", "plain<-load", "rows<-sort"], [])},
                 [("load", "sort", "data", ("config", "rows")), ("load", "use", "data", ("plain",)),
                  ("sort", "use", "data", ("config", "rows"))]),
    "parameter_mutation": ({"extend": (["flags(param)", "limit(param)"], ["flags"]), "use": (["flags<-extend"], [])},
                           [("extend", "use", "data", ("flags",))]),
    # random.shuffle is a known in-place call: the shuffled list is what later steps read.
    "opaque_mutation": ({"load": ([], ["items"]), "shuffle": (["items<-load"], ["items"]),
                         "use": (["items<-shuffle"], [])},
                        [("load", "shuffle", "data", ("items",)), ("shuffle", "use", "data", ("items",))]),
    # Functions travel by value; the globals they read come from the calling step's point in the notebook.
    "functions_across_steps": ({"define": ([], ["Counter", "above"]), "change": ([], ["threshold"]),
                                "use": (["Counter<-define", "above<-define", "threshold<-change"], [])},
                               [("change", "use", "data", ("threshold",)),
                                ("define", "use", "data", ("Counter", "above"))]),
    "comprehension_scope": ({"make": ([], ["i", "pairs", "squares"]), "use": (["i<-make", "pairs<-make", "squares<-make"], [])},
                            [("make", "use", "data", ("i", "pairs", "squares"))]),
    "redefinition": ({"first": ([], ["value"]), "second": (["value<-first"], ["value"]), "third": (["value<-second"], [])},
                     [("first", "second", "data", ("value",)), ("second", "third", "data", ("value",))]),
    "del_name": ({"make": ([], ["keep"]), "use": (["keep<-make"], [])}, [("make", "use", "data", ("keep",))]),
    "star_import": ({"join": ([], ["full"]), "split": (["full<-join"], [])}, [("join", "split", "data", ("full",))]),
    "branching": ({"load": (["n(param)"], ["base"]), "left": (["base<-load"], ["left"]),
                   "right": (["base<-load"], ["right"]), "join": (["left<-left", "right<-right"], [])},
                  [("left", "join", "data", ("left",)), ("load", "left", "data", ("base",)),
                   ("load", "right", "data", ("base",)), ("right", "join", "data", ("right",))]),
    "old_format_v3": ({"one": ([], ["a"]), "two": (["a<-one"], [])}, [("one", "two", "data", ("a",))]),
}


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_exact_inputs_outputs_and_edges(fixture):
    p = build(fixture)
    expected_flows, expected_edges = CASES[fixture]
    assert flows(p) == expected_flows
    assert edges(p) == expected_edges
    assert not p.errors


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_ir_round_trips_through_json(fixture):
    p = build(fixture)
    again = Pipeline.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p
    assert again.to_dict() == p.to_dict()


def test_building_twice_gives_the_same_ir():
    assert build("kale_conventions") == build("kale_conventions")


def test_independent_steps_have_no_path_between_them():
    p = build("branching")
    assert not reachable(p, "left", "right") and not reachable(p, "right", "left")
    assert reachable(p, "load", "join")
    assert levels([s.name for s in p.steps], p.edges) == [["load"], ["left", "right"], ["join"]]
    f = build("functions_across_steps")
    assert not reachable(f, "define", "change") and not reachable(f, "change", "define")


def test_parameters_are_typed_and_read_by_the_steps_that_use_them():
    p = build("tags_parameters")
    assert [(x.name, x.type) for x in p.parameters] == [
        ("alpha", "float"), ("name", "str"), ("epochs", "int"), ("flags", "list"), ("opts", "dict"),
        ("nothing", "NoneType"), ("verbose", "bool")]
    assert (sorted(p.step("prep").params), p.step("label").params) == (["alpha", "epochs"], ["name"])
    assert p.parameters_cell.number == 1


def test_imports_are_replayed_not_passed_as_data(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "import numpy as np\nfrom os import path as p\nimport os.path\nx = 1"),
        (["step:b"], "y = np.zeros(x)\nz = p.join('a')\nw = os.sep")]))
    b = p.step("b")
    assert [i.statement for i in b.replay_imports] == ["import numpy as np", "from os import path as p",
                                                       "import os.path"]
    assert flows(p)["b"] == (["x<-a"], [])
    assert p.step("a").outputs == ["x"]
    assert [i.module for i in p.step("a").imports] == ["numpy", "os", "os.path"]


def test_kale_prelude_runs_in_every_step_and_metrics_are_recorded():
    p = build("kale_conventions")
    assert [c.number for c in p.prelude] == [1, 2]
    assert all("statistics" in [i.module for i in s.imports] for s in p.steps)
    assert p.metrics == ["mean"]
    assert [s.after for s in p.steps] == [[], ["load"], ["scale"]]


def test_kale_and_same_tags_compile_like_their_same_nb_equivalents(write_notebook):
    kale = write_notebook([(["pipeline-parameters"], "k = 2"), (["block:a"], "x = k"), (["skip"], "x = 99"),
                           (["block:b", "prev:a"], "y = x * 2")], name="kale")
    ours = write_notebook([(["parameters"], "k = 2"), (["step:a"], "x = k"), (["skip"], "x = 99"),
                           (["step:b", "after:a"], "y = x * 2")], name="ours")
    pk, po = build_pipeline(kale), build_pipeline(ours)
    assert (flows(pk), edges(pk), pk.parameters) == (flows(po), edges(po), po.parameters)
    same = write_notebook([(["same_step_0"], "x = 1"), (["same_step_1"], "y = x")], name="same")
    ours = write_notebook([(["step:same_step_0"], "x = 1"), (["step:same_step_1"], "y = x")], name="ours2")
    assert (flows(build_pipeline(same)), edges(build_pipeline(same))) == (flows(build_pipeline(ours)),
                                                                          edges(build_pipeline(ours)))


def test_magics_are_understood():
    p = build("magics")
    assert p.step("quiet").requirements == ["pyyaml>=6"]
    assert not p.diagnostics


def test_a_name_read_by_a_function_is_an_input_of_the_calling_step_only(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "rate = 2\ndef scale(v):\n    return v * rate"),
        (["step:b"], "rate = 3"),
        (["step:c"], "r = scale(1)"),
        (["step:d"], "rate = 4\nr2 = scale(2)")]))
    assert flows(p) == {"a": ([], ["scale"]), "b": ([], ["rate"]), "c": (["rate<-b", "scale<-a"], []),
                        "d": (["scale<-a"], [])}
    assert p.step("a").definitions == ["scale"]


def test_a_function_changed_in_place_still_carries_its_globals(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "t = 1\ndef f():\n    return t"), (["step:b"], "f.calls = 0"),
        (["step:c"], "t = 5"), (["step:d"], "r = f()")]))
    assert flows(p)["d"] == (["f<-b", "t<-c"], [])


def test_del_of_an_earlier_steps_name_makes_it_an_input(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:make"], "big = [0] * 10\nsmall = [1]"), (["step:drop"], "del big\nkept = small + [2]"),
        (["step:use"], "total = sum(kept)\nsize = len(big)")]))
    assert flows(p) == {"make": ([], ["big", "small"]), "drop": (["big<-make", "small<-make"], ["kept"]),
                        "use": (["kept<-drop"], [])}
    [d] = p.diagnostics
    assert (d.code, d.step, d.cell, d.line) == ("read-after-del", "use", 3, 2)
    assert "'big' is read after `del big` in step 'drop'" in d.message


def test_star_import_is_replayed_where_its_names_may_be_used():
    p = build("star_import")
    assert [i.statement for i in p.step("split").replay_imports] == ["from posixpath import *"]
    assert warnings_of(p) == [("star-import", "join", 1, 1)]


def test_an_unknown_call_is_no_warning_and_its_inputs_read_later_are_watched(write_notebook):
    # The runtime fingerprints watched inputs before and after the step, so an unknown library call
    # needs no warning: a change it makes is caught when the pipeline runs.
    p = build_pipeline(write_notebook([
        (["step:a"], "import mylib\nitems = [3, 1]\nkept = 1"),
        (["step:b"], "mylib.process(items)\nn = kept"),
        (["step:c"], "head = items[0]")]))
    assert p.diagnostics == []
    assert flows(p)["c"] == (["items<-a"], [])
    assert p.step("b").watch == ["items"]


def test_every_input_a_later_step_reads_at_the_same_version_is_watched(write_notebook):
    p = build_pipeline(write_notebook([
        (["parameters"], "flags = [3, 1]\nrate = 0.5\nopts = {'k': 1}"),
        (["step:a"], "x = [1]\ny = [2]"),
        (["step:b"], "s = len(x) + len(y) + rate + len(flags) + len(opts)"),
        (["step:c"], "x.append(3)\nt = len(flags) + rate"),
        (["step:d"], "u = x + y + flags")]))
    assert p.step("b").watch == ["x", "y", "flags"]   # rate cannot change in place; opts is read by no later step
    assert p.step("c").watch == ["flags"]             # c changes x: d reads c's x
    assert p.step("d").watch == []
    assert p.diagnostics == []


def test_a_known_in_place_call_on_a_list_parameter_changes_it_but_never_a_number(write_notebook):
    p = build_pipeline(write_notebook([
        (["parameters"], "flags = [3, 1]\nrate = 0.5"),
        (["step:a"], "import math, random\nrandom.shuffle(flags)\nm = math.floor(rate)"),
        (["step:b"], "y = flags\nz = rate")]))
    assert flows(p) == {"a": (["flags(param)", "rate(param)"], ["flags"]), "b": (["flags<-a", "rate(param)"], [])}
    assert p.diagnostics == []


def test_no_watch_when_no_later_step_reads_the_value(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "import random\nitems = [1, 2]"),
                                       (["step:b"], "random.shuffle(items)")]))
    assert p.diagnostics == [] and p.step("b").watch == []


@pytest.mark.parametrize("source, code, line", [
    ("from os.path import *\nx = join('a')", "star-import", 1),
    ("x = 1\nexec('y = 2')", "exec", 2),
    ("x = eval('1 + 1')", "eval", 1),
    ("x = 1\n\ng = globals()", "globals", 3),
])
def test_code_the_analysis_cannot_see_gives_warnings(write_notebook, source, code, line):
    p = build_pipeline(write_notebook([(["step:a"], "pass"), (["step:b"], source)]))
    assert (code, "b", 2, line) in warnings_of(p)
    assert not p.errors


def test_undefined_and_read_before_definition_names(write_notebook):
    p = build("undefined_name")
    assert warnings_of(p) == [("undefined-name", "a", 1, 1)]
    assert "'mystery' is not defined anywhere" in p.diagnostics[0].message
    p = build_pipeline(write_notebook([(["step:a"], "y = x"), (["step:b"], "x = 1\nprint(len)")]))
    assert warnings_of(p) == [("read-before-definition", "a", 1, 1)]
    assert "first defined in step 'b'" in p.diagnostics[0].message


def test_syntax_error_is_an_error_diagnostic_not_an_exception(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "x = 1"), (["step:b"], "y = (x\nz = 2")]))
    assert [(d.severity, d.step, d.cell) for d in p.errors] == [("error", "b", 2)]


def test_empty_step_is_a_warning(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "x = 1"), (["step:b", "skip"], "y = 2"), (["step:c"], "z = x")]))
    assert ("empty-step", "b", 2, None) in warnings_of(p)


def test_after_can_name_a_later_step(write_notebook):
    p = build_pipeline(write_notebook([(["step:a", "after:b"], "x = 1"), (["step:b"], "y = 2")]))
    assert edges(p) == [("b", "a", "after", ())]
    assert topological_order(["a", "b"], p.edges) == ["b", "a"]


@pytest.mark.parametrize("fixture, message, cell", [
    ("error_cycle", "the steps form a cycle: a → b → c → a; remove an after:/prev: tag", None),
    ("error_after_missing", "tag 'after:nope' names a step that does not exist (steps: a, b)", 2),
    ("error_duplicate_step", "duplicate step name 'load': cell 1 (id c1) and cell 3 (id c3)", 3),
    ("error_invalid_step_name", "invalid step name 'bad name!'", 1),
    ("error_params_not_literal", "parameters cell: `alpha * 2` is not a literal", 1),
])
def test_structural_errors_are_refused_clearly(fixture, message, cell):
    with pytest.raises(SameError) as info:
        build(fixture)
    assert message in info.value.message
    assert info.value.path == str(NOTEBOOKS / f"{fixture}.ipynb")
    assert info.value.cell == cell


def test_prev_naming_a_missing_step_and_a_self_cycle(write_notebook):
    with pytest.raises(SameError, match="tag 'prev:ghost' names a step that does not exist"):
        build_pipeline(write_notebook([(["block:a", "prev:ghost"], "x = 1")]))
    with pytest.raises(SameError, match="cycle: a → a"):
        build_pipeline(write_notebook([(["step:a", "after:a"], "x = 1")]))


def test_dag_helpers_on_a_large_chain():
    names = [f"s{i}" for i in range(5000)]
    chain = [Edge(a, b, "data") for a, b in zip(names, names[1:])]
    assert find_cycle(names, chain) is None
    assert topological_order(names, chain) == names
    assert find_cycle(names, chain + [Edge("s4999", "s0", "after")])[:2] == ["s0", "s1"]


# -- cheap static fixes (issue 13, item 7) -----------------------------------------------------
@pytest.mark.parametrize("branch", [
    "if flag:\n    x = 2",
    "for x in items:\n    pass",
    "try:\n    x = int('bad')\nexcept ValueError:\n    pass",
    "import contextlib\nwith contextlib.suppress(ZeroDivisionError):\n    x = 1 / 0",
    "match flag:\n    case 'go':\n        x = 'changed'",
])
def test_a_name_bound_on_some_paths_keeps_the_earlier_value_as_a_fallback(write_notebook, branch):
    p = build_pipeline(write_notebook([(["step:a"], "x = 1\nflag = False\nitems = []"), (["step:b"], branch),
                                       (["step:c"], "y = x")]))
    assert "x<-a" in flows(p)["b"][0] and "x" in flows(p)["b"][1]
    assert flows(p)["c"] == (["x<-b"], [])
    assert p.diagnostics == []


def test_a_fallback_is_taken_only_when_the_name_is_read_after_the_branch(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "for i in range(3):\n    pass"),
                                       (["step:b"], "for i in range(2):\n    pass"),
                                       (["step:c"], "for x in []:\n    pass\ny = x"),
                                       (["parameters"], "x = 5")]))
    assert flows(p)["b"] == ([], []) and flows(p)["c"] == (["x(param)"], [])


def test_fallbacks_chain_through_steps_and_parameters(write_notebook):
    p = build_pipeline(write_notebook([(["parameters"], "flag = False\nx = 1"), (["step:a"], "if flag:\n    x = 2"),
                                       (["step:b"], "if flag:\n    x = 3"), (["step:c"], "y = x")]))
    assert flows(p) == {"a": (["flag(param)", "x(param)"], ["x"]), "b": (["flag(param)", "x<-a"], ["x"]),
                        "c": (["x<-b"], [])}


def test_a_module_alias_is_replayed_like_an_import(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "import numpy as np\nimport os.path\nfrom math import sqrt as s\n"
                                                    "lib = np\nosmod = os\nroot = s"),
                                       (["step:b"], "z = lib.zeros(2)\nsep = osmod.sep\nr = root(4)")]))
    assert [i.statement for i in p.step("b").replay_imports] == [
        "import numpy as lib", "osmod = __import__('os.path')", "from math import sqrt as root"]
    assert flows(p)["b"] == ([], []) and p.step("a").outputs == []


@pytest.mark.parametrize("source, name", [("y = _ * 2", "_"), ("y = Out[1]", "Out"), ("y = __", "__"),
                                          ("y = _5 + 1", "_5"), ("print(In[-1])", "In")])
def test_reads_of_the_output_history_are_refused(write_notebook, source, name):
    p = build_pipeline(write_notebook([(["step:a"], "1 + 1"), (["step:b"], "x = 0\n" + source)]))
    assert warnings_of(p) == [("output-history", "b", 2, 2)]
    assert [d.severity for d in p.diagnostics] == ["error"]
    assert f"{name!r} is IPython's output history" in p.diagnostics[0].message


def test_an_underscore_the_notebook_binds_is_a_variable(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "_, b = 1, 2"), (["step:b"], "y = _ * 2")]))
    assert p.diagnostics == [] and flows(p)["b"] == (["_<-a"], [])


# -- no false alarms (issue 13 item 8, issue 14 item 7) -----------------------------------------
@pytest.mark.parametrize("source", [
    "total = 0\nfor r in rows:\n    total += r\n    print(r)",
    "for r in rows:\n    r['v'] = 1",
    "for m in rows:\n    m.append(1)",
    "for i in range(3):\n    acc = []\n    acc.append(i)",
    "if rows:\n    z = [1]\n    z.append(2)",
    "import io\nwith io.StringIO('abc') as f:\n    parts = []\n    parts.append(f.read())",
    "try:\n    x\nexcept NameError:\n    x = 1\ny = x",
    "import numpy as np\ni = int(np.argmax(rows))\ninfo = (len(rows), sorted(rows), sum(rows), isinstance(rows, list))",
])
def test_common_code_gives_no_warning(write_notebook, source):
    p = build_pipeline(write_notebook([(["step:a"], "rows = [[1], [2]]"), (["step:b"], source),
                                       (["step:c"], "n = len(rows)")]))
    assert p.diagnostics == []
    names_read = {i.name for i in p.step("b").inputs}
    assert names_read <= {"rows"}


def test_a_guarded_read_takes_the_earlier_value_when_there_is_one(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "x = 5"), (["step:b"], "try:\n    x\nexcept NameError:\n    x = 1\ny = x")]))
    assert flows(p)["b"] == (["x<-a"], []) and p.diagnostics == []


def test_model_fit_warns_about_nothing_and_carries_the_fitted_model(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "import numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
                     "X = np.arange(6.0).reshape(-1, 1)\ny = 3 * X.ravel()\nmodel = LinearRegression()"),
        (["step:b"], "model.fit(X, y)"),
        (["step:c"], "coef = float(model.coef_[0]) + X.sum() + y.sum()")]))
    assert p.diagnostics == []
    assert flows(p)["c"] == (["X<-a", "model<-b", "y<-a"], [])
    assert p.step("b").watch == ["X", "y"]


def test_a_parameter_listed_as_a_pipeline_metric_is_not_unassigned(write_notebook):
    p = build_pipeline(write_notebook([(["parameters"], "d1 = 0.5"), (["step:a"], "acc = d1 * 2"),
                                       (["pipeline-metrics"], "acc\nd1")]))
    assert not [d for d in p.diagnostics if d.code == "undefined-metric"]
