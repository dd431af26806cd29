"""Mutation through another name for the same object (issue 13, item 4): aliases, views, shared identity,
loop variables and call results are attributed to the object's source name, and the mutating step
becomes that name's producer for later readers."""
from __future__ import annotations

import textwrap

import pytest

from same_nb.frontend.analysis import analyze_cell
from same_nb.frontend.ir import Pipeline
from same_nb.frontend.pipeline import build_pipeline


def statements(source: str):
    result = analyze_cell(textwrap.dedent(source).strip("\n"))
    assert not result.findings, result.findings
    return result.statements


def changed(source: str) -> list[str]:
    return [m.name for st in statements(source) for m in st.mutations]


def flows(p: Pipeline) -> dict[str, tuple[list[str], list[str]]]:
    return {s.name: (sorted(f"{i.name}<-{i.producer}" if i.kind == "variable" else f"{i.name}(param)"
                            for i in s.inputs), s.outputs) for s in p.steps}


def codes(p: Pipeline) -> list[tuple]:
    return [(d.code, d.step, d.cell, d.line) for d in p.diagnostics]


# -- the walker: what a statement binds to what ------------------------------------------------
@pytest.mark.parametrize("source, aliases", [
    ("b = a", {"b": ["a"]}),
    ("v = a[1:3]", {"v": ["a"]}),
    ("v = df.values", {"v": ["df"]}),
    ("v = df.loc[rows, 'x']", {"v": ["df"]}),
    ("t = m.T", {"t": ["m"]}),
    ("r = a.reshape(2, 3)", {"r": ["a"]}),
    ("w = a.view()", {"w": ["a"]}),
    ("x = d.get('k')", {"x": ["d"]}),
    ("fitted = model.fit(X, y)", {"fitted": ["model"]}),
    ("z = np.asarray(a)", {"z": ["a"]}),
    ("a = b = []", {"a": ["b"], "b": ["a"]}),
    ("c, d = a, b", {"c": ["a"], "d": ["b"]}),
    ("first, second = pair", {"first": ["pair"], "second": ["pair"]}),
    ("x += [1]", {"x": ["x"]}),
    # copies: a list or mask index, a method or function that builds a new object
    ("sub = df[['a', 'b']]", {}),
    ("pos = df[df.x > 0]", {}),
    ("both = a[(a > 0) & mask]", {}),
    ("c = a.copy()", {}),
    ("c = list(a)", {}),
    ("n = a + b", {}),
])
def test_names_a_binding_may_share_its_object_with(source, aliases):
    (st,) = statements(source)
    assert st.aliases == aliases


def test_loop_and_comprehension_variables_take_the_elements_of_what_they_iterate():
    (st,) = statements("for i, r in enumerate(sorted(rows)):\n    pass")
    assert st.aliases == {"i": ["rows"], "r": ["rows"]}
    (st,) = statements("for m in models.values():\n    pass")
    assert st.aliases == {"m": ["models"]}
    assert changed("[v.append(1) for v in values]") == ["values"]
    assert changed("[x.clear() for row in table for x in row]") == ["table"]


def test_rebinding_a_name_ends_its_aliases_within_the_statement():
    (st,) = statements("""
        if ready:
            b = a
            a = []
            b.append(1)
    """)
    assert st.aliases == {} and st.mutations == []


@pytest.mark.parametrize("source, expected", [
    # a name bound earlier in the statement is the statement's own: the names it aliases change
    ("for r in rows:\n    r['v'] = 1", ["rows"]),
    ("for m in models.values():\n    m.fit(X, y)", ["models"]),
    ("for k, v in cfg.items():\n    v['n'] += 1", ["cfg"]),
    ("if flag:\n    z = [1]\n    z.append(2)", []),
    ("with open(p) as fh:\n    fh.seek(0)\n    lines = []\n    lines.append(fh)", []),
    # call results that are a part of their receiver
    ("d.get('k').append(2)", ["d"]),
    ("d['k'].append(2)", ["d"]),
    ("obj.attr.append(1)", ["obj"]),
    ("groups.setdefault('a', []).append(1)", ["groups", "groups"]),
    # known in-place library calls
    ("np.multiply(arr, 2, out=arr)", ["arr"]),
    ("random.shuffle(items)", ["items"]),
    ("rng.shuffle(deck)", ["deck"]),
    ("first = next(it)", ["it"]),
])
def test_what_a_statement_changes_in_place(source, expected):
    assert changed(source) == expected


def test_a_value_bound_to_a_mutating_method_changes_its_object_when_called():
    (st,) = statements("push = items.append")
    assert st.mutators == ["push"] and st.aliases == {"push": ["items"]}


# -- the data flow: the mutating step produces the source name ----------------------------------
@pytest.mark.parametrize("change", [
    "b = a\nb.append(1)",
    "b = a\nif b:\n    b.append(1)",
    "v = a[1:3]\nv[:] = 0",
    "w = a.T\nw.fill(0)",
    "for r in a:\n    r['v'] = 1",
    "for r in a:\n    pass\nr['v'] = 1",
    "a.get('k').append(2)",
    "a['k'].append(2)",
    "a.attr.append(1)",
    "b = a\nb += [1]",
])
def test_a_change_through_another_name_makes_the_step_the_producer(write_notebook, change):
    p = build_pipeline(write_notebook([(["step:make"], "a = [[1], [2]]"), (["step:change"], change),
                                       (["step:read"], "n = len(a)")]))
    assert flows(p)["change"][1] == ["a"] and flows(p)["read"] == (["a<-change"], [])
    assert p.diagnostics == []


def test_a_dataframe_alias_and_a_numpy_view(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "import numpy as np\nimport pandas as pd\ndf = pd.DataFrame({'x': [1, 2]})\narr = np.arange(5)"),
        (["step:b"], "df2 = df\ndf2['z'] = 1\nv = arr[1:3]\nv[:] = 0"),
        (["step:c"], "cols = list(df.columns)\ntotal = int(arr.sum())")]))
    assert flows(p)["c"] == (["arr<-b", "df<-b"], [])
    assert p.diagnostics == []


def test_a_copy_changed_in_place_leaves_the_source_alone(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "a = [1]"), (["step:b"], "b = list(a)\nb.append(2)"),
                                       (["step:c"], "n = len(a)")]))
    assert flows(p) == {"a": ([], ["a"]), "b": (["a<-a"], []), "c": (["a<-a"], [])}
    assert p.step("b").watch == ["a"]


def test_a_rebound_alias_no_longer_changes_its_old_source(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "a = [1]"), (["step:b"], "b = a\nb = [0]\nb.append(2)"),
                                       (["step:c"], "n = len(a)")]))
    assert flows(p)["c"] == (["a<-a"], [])


def test_one_object_under_two_names_changed_in_a_later_step_is_refused(write_notebook):
    # Each step receives its own copy of each input, so a and b are two objects in step b: the change
    # cannot reach a's readers. Both names are attributed to step b, and the pipeline is refused.
    p = build_pipeline(write_notebook([(["step:a"], "a = b = []"), (["step:b"], "b.append(1)"),
                                       (["step:c"], "n = len(a)")]))
    assert flows(p) == {"a": ([], ["a", "b"]), "b": (["a<-a", "b<-a"], ["a"]), "c": (["a<-b"], [])}
    [d] = p.diagnostics
    assert (d.severity, d.code, d.step, d.cell, d.line) == ("error", "shared-object", "b", 2, 1)
    assert "this step changes 'a' through 'b', which has shared its object since step 'a'" in d.message
    assert "Change 'a' itself here, or make 'b' from 'a' again in this step" in d.message


def test_a_view_made_in_an_earlier_step_and_changed_later_is_a_warning(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "import numpy as np\narr = np.arange(5)\nv = arr[1:3]"),
                                       (["step:b"], "v[:] = 0"), (["step:c"], "total = int(arr.sum())")]))
    assert [(d.severity, d.code, d.step) for d in p.diagnostics] == [("warning", "shared-object", "b")]
    assert "this step may change 'arr' through 'v'" in p.diagnostics[0].message


def test_immutable_values_are_never_shared_or_changed(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "i = j = 0\nname = 'x'\nalias = name"),
                                       (["step:b"], "i += 1\nalias += '!'"), (["step:c"], "k = j + len(name)")]))
    assert flows(p)["c"] == (["j<-a", "name<-a"], []) and p.diagnostics == []


def test_shared_identity_within_one_step_is_one_object(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "x = [0]"), (["step:b"], "a = b = x\nb.append(1)"),
                                       (["step:c"], "n = len(a) + len(x)")]))
    assert flows(p)["c"] == (["a<-b", "x<-b"], [])
    assert p.diagnostics == []


def test_no_shared_object_warning_when_no_later_step_reads_the_other_name(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "a = b = []"), (["step:b"], "b.append(1)"),
                                       (["step:c"], "n = len(b)")]))
    assert p.diagnostics == []


def test_loop_variables_in_a_later_step(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "from sklearn.linear_model import LinearRegression\nX, y = [[1.0], [2.0]], [1.0, 2.0]\n"
                     "models = {'lr': LinearRegression()}\nrows = [{'v': 0}]"),
        (["step:fit"], "for m in models.values():\n    m.fit(X, y)\nfor r in rows:\n    r['v'] = 1"),
        (["step:use"], "preds = {k: m.predict([[3.0]]) for k, m in models.items()}\ntotal = sum(r['v'] for r in rows)")]))
    assert flows(p)["fit"] == (["X<-a", "models<-a", "rows<-a", "y<-a"], ["models", "rows"])
    assert flows(p)["use"] == (["models<-fit", "rows<-fit"], [])
    assert p.diagnostics == []


def test_a_bound_mutating_method_called_later(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "lst = [1]"), (["step:b"], "push = lst.append\npush(2)"),
                                       (["step:c"], "n = len(lst)")]))
    assert flows(p)["c"] == (["lst<-b"], [])


def test_a_loop_over_a_list_of_frames_changes_the_frames_it_holds(write_notebook):
    # The Kaggle idiom: `data = [train_df, test_df]` then `for dataset in data: dataset[...] = ...`.
    p = build_pipeline(write_notebook([
        (["step:load"], "import pandas as pd\ntrain_df = pd.DataFrame({'a': [1]})\ntest_df = pd.DataFrame({'a': [2]})"),
        (["step:prep"], "data = [train_df, test_df]\nfor dataset in data:\n    dataset['b'] = dataset['a'] * 2"),
        (["step:more"], "data = [train_df, test_df]\nfor dataset in data:\n    dataset['c'] = 0"),
        (["step:use"], "cols = list(train_df.columns) + list(test_df.columns)")]))
    assert flows(p)["prep"] == (["test_df<-load", "train_df<-load"], ["test_df", "train_df"])
    assert flows(p)["more"] == (["test_df<-prep", "train_df<-prep"], ["test_df", "train_df"])
    assert flows(p)["use"] == (["test_df<-more", "train_df<-more"], [])
    assert p.diagnostics == []


def test_changing_a_containers_own_slots_leaves_what_it_held_alone(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "model = [0]\nother = [1]"),
                                       (["step:b"], "cfg = {'model': model}\ncfg['lr'] = 0.1\npair = [other]\npair.append(2)"),
                                       (["step:c"], "n = len(model) + len(other)")]))
    assert flows(p)["c"] == (["model<-a", "other<-a"], [])
    (st, _, _, _) = statements("cfg = {'model': model}\ncfg['lr'] = 0.1\npair = [other]\npair.append(2)")
    assert st.holds == {"cfg": ["model"]}
