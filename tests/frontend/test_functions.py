"""Notebook functions are analysed, not opaque (issue 13, items 4 and 7): what their bodies change
(globals, `global` names, their own mutable defaults or caches, their arguments) is changed by every
step that uses them; lambdas, closures and partials read the globals their code reads when called."""
from __future__ import annotations

import textwrap

from same_nb.frontend.analysis import FunctionInfo, analyze_cell
from same_nb.frontend.ir import Pipeline
from same_nb.frontend.pipeline import build_pipeline


def info(source: str) -> dict[str, FunctionInfo]:
    result = analyze_cell(textwrap.dedent(source).strip("\n"))
    assert not result.findings, result.findings
    return {name: i for st in result.statements for name, i in st.functions.items()}


def flows(p: Pipeline) -> dict[str, tuple[list[str], list[str]]]:
    return {s.name: (sorted(f"{i.name}<-{i.producer}" if i.kind == "variable" else f"{i.name}(param)"
                            for i in s.inputs), s.outputs) for s in p.steps}


# -- what the walker finds in a body -----------------------------------------------------------
def test_a_function_body_that_changes_globals_assigns_them_and_changes_its_parameters():
    found = info("""
        def add(row, log, *, seen=None, cache={}):
            global total
            items.append(row)
            memo[row] = 1
            total = total + 1
            log.append(row)
            cache[row] = True
            local = []
            local.append(row)
            return row
    """)["add"]
    assert found.mutates == ["items", "memo"]
    assert found.assigns == ["total"]
    assert (found.params, found.mutated_params) == (["row", "log"], ["log", "cache"])
    assert found.stateful                 # cache={} is one dict shared by every call, and it changes
    assert not found.factory


def test_a_mutable_default_that_is_only_read_keeps_the_function_stateless():
    assert not info("def f(x, opts={}):\n    return opts.get(x)")["f"].stateful
    assert info("def f(x, acc=[]):\n    acc += [x]\n    return acc")["f"].stateful
    assert info("f = lambda x, acc=[]: acc.append(x) or acc")["f"].stateful


def test_cached_functions_factories_and_stateful_closures():
    found = info("""
        import functools
        @functools.lru_cache(maxsize=None)
        def cached():
            return k
        def make_adder(n):
            def add(x):
                return x + n + offset
            return add
        def counter():
            n = 0
            def inc():
                nonlocal n
                n += 1
                return n
            return inc
        def gen():
            yield 1
        def plain(x):
            return sorted(x, key=lambda v: -v)
        class Model:
            pass
    """)
    assert found["cached"].stateful
    assert found["make_adder"].factory and not found["make_adder"].stateful_results
    assert found["counter"].factory and found["counter"].stateful_results
    assert found["gen"].factory and found["Model"].factory
    assert not found["plain"].factory


def test_class_methods_changing_globals_belong_to_the_class():
    found = info("""
        class Registry:
            def add(self, item):
                self.items.append(item)
                seen.add(item)
    """)["Registry"]
    assert found.mutates == ["seen"] and found.mutated_params == []


# -- the data flow -------------------------------------------------------------------------------
def test_a_step_calling_a_function_that_changes_a_global_produces_it(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "items = []\ndef add(v):\n    items.append(v)"),
        (["step:b"], "add(1)\nadd(2)"),
        (["step:c"], "n = len(items)")]))
    assert flows(p) == {"a": ([], ["add", "items"]), "b": (["add<-a", "items<-a"], ["items"]),
                        "c": (["items<-b"], [])}


def test_functions_calling_functions_and_decorators_pass_their_changes_on(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "registry = []\nmemo = {}\ndef reg(fn):\n    registry.append(fn.__name__)\n    return fn\n"
                     "def remember(k):\n    memo[k] = 1\ndef outer(k):\n    remember(k)"),
        (["step:b"], "@reg\ndef one():\n    return 1\nouter(3)"),
        (["step:c"], "names = list(registry)\nsize = len(memo)")]))
    assert flows(p)["c"] == (["memo<-b", "registry<-b"], [])


def test_a_global_statement_rebinds_the_name_in_the_calling_step(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "mode = 'a'\ndef set_mode(m):\n    global mode\n    mode = m"),
        (["step:b"], "set_mode('b')"),
        (["step:c"], "cur = mode")]))
    assert flows(p)["b"] == (["mode<-a", "set_mode<-a"], ["mode"]) and flows(p)["c"] == (["mode<-b"], [])


def test_a_global_first_bound_by_a_function_call(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "def init():\n    global config\n    config = {'k': 1}"),
        (["step:b"], "init()"),
        (["step:c"], "k = config['k']")]))
    assert flows(p)["c"] == (["config<-b"], [])


def test_a_mutable_default_and_a_cache_travel_with_the_function(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "import functools\nk = 1\ndef acc(v, bucket=[]):\n    bucket.append(v)\n    return len(bucket)\n"
                     "@functools.lru_cache\ndef g():\n    return k"),
        (["step:b"], "n1 = acc(1)\nfirst = g()"),
        (["step:c"], "n2 = acc(2)\nsecond = g()")]))
    assert flows(p)["b"][1] == ["acc", "g"]
    assert flows(p)["c"] == (["acc<-b", "g<-b", "k<-a"], [])


def test_a_closure_with_nonlocal_state_changes_itself_when_called(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "def make():\n    n = 0\n    def inc():\n        nonlocal n\n        n += 1\n        return n\n"
                     "    return inc\ninc = make()"),
        (["step:b"], "first = inc()"),
        (["step:c"], "second = inc()")]))
    assert "inc<-b" in flows(p)["c"][0]


def test_a_function_that_changes_its_argument_changes_the_callers_variable(write_notebook):
    p = build_pipeline(write_notebook([
        (["parameters"], "n = 3"),
        (["step:a"], "def add_feature(frame, value):\n    frame['f'] = value\ndf = {'x': 1}\nother = {'y': 2}"),
        (["step:b"], "add_feature(df, n)\nadd_feature(value=other, frame=df)\nfor row in [other]:\n    add_feature(row, 1)"),
        (["step:c"], "cols = list(df) + list(other)")]))
    assert flows(p)["b"] == (["add_feature<-a", "df<-a", "n(param)", "other<-a"], ["df", "other"])
    assert flows(p)["c"] == (["df<-b", "other<-b"], [])
    assert p.diagnostics == []


def test_an_int_passed_to_a_notebook_function_is_no_input_change_and_no_warning(write_notebook):
    p = build_pipeline(write_notebook([
        (["parameters"], "k = 2"),
        (["step:a"], "def bump(x):\n    x += 1\n    return x"),
        (["step:b"], "y = bump(k)"),
        (["step:c"], "z = k")]))
    assert flows(p)["c"] == (["k(param)"], []) and p.diagnostics == []


# -- late binding: lambdas, closures and partials read globals when called ------------------------
def test_a_lambda_reads_the_globals_of_the_step_that_calls_it(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "t = 1\nf = lambda: t * 2"), (["step:b"], "t = 5"),
                                       (["step:c"], "y = f()")]))
    assert flows(p) == {"a": ([], ["f"]), "b": ([], ["t"]), "c": (["f<-a", "t<-b"], [])}


def test_a_closure_returned_by_a_notebook_function_reads_globals_when_called(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "def make():\n    return lambda: scale * 2\nscale = 1\nf = make()"),
        (["step:b"], "scale = 4"),
        (["step:c"], "y = f()")]))
    assert "scale<-b" in flows(p)["c"][0]
    assert "scale" not in flows(p)["a"][1]


def test_a_partial_of_a_notebook_function_reads_its_globals_when_called(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "import functools\nt = 1\ndef g(k):\n    return t * k\nh = functools.partial(g, 3)"),
        (["step:b"], "t = 5"),
        (["step:c"], "y = h()")]))
    assert "t<-b" in flows(p)["c"][0]


def test_an_instance_reads_the_globals_of_its_methods_when_used(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "factor = 2\nclass M:\n    def go(self):\n        return factor * 10\nm = M()"),
        (["step:b"], "factor = 3"),
        (["step:c"], "y = m.go()")]))
    assert "factor<-b" in flows(p)["c"][0]


def test_a_function_renamed_still_reads_its_globals(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "t = 1\ndef f():\n    return t\ng = f"), (["step:b"], "t = 2"),
                                       (["step:c"], "y = g()")]))
    assert flows(p)["c"] == (["g<-a", "t<-b"], [])   # g is f's very function: f itself is not needed


def test_an_instance_needs_its_class_only_once_the_class_was_changed_in_place(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "class K:\n    def val(self):\n        return 1\nk = K()\nk2 = K()"),
        (["step:b"], "acc = [k.val()]"),
        (["step:c"], "K.val = lambda self: 2"),
        (["step:d"], "v = k.val()"),
        (["step:e"], "class K:\n    pass"),
        (["step:f"], "w = k2.val()")]))
    assert flows(p)["b"] == (["k<-a"], [])
    assert flows(p)["d"] == (["K<-c", "k<-a"], [])
    assert flows(p)["f"] == (["k2<-a"], [])      # K now names another class, which k2 does not use


# -- what cannot cross steps -----------------------------------------------------------------------
def test_a_cache_filled_in_one_step_and_read_after_its_global_changed_is_refused(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "import functools\nk = 1\n@functools.lru_cache\ndef g():\n    return k"),
        (["step:b"], "first = g()"), (["step:c"], "k = 2"), (["step:d"], "second = g()")]))
    [d] = [d for d in p.diagnostics if d.code == "cache-across-steps"]
    assert (d.severity, d.step, d.cell, d.line) == ("error", "d", 4, 1)
    assert "step 'b' filled the cache" in d.message and "'k'" in d.message and "Pass k as arguments" in d.message


def test_a_cache_whose_globals_never_change_is_fine_across_steps(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "import functools\nk = 1\n@functools.cache\ndef g(x):\n    return k * x"),
        (["step:b"], "first = g(2)"), (["step:c"], "other = 3"), (["step:d"], "second = g(2)")]))
    assert not [d for d in p.diagnostics if d.code == "cache-across-steps"]


def test_subclasses_defined_in_another_step_are_refused(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "class Base:\n    pass"), (["step:b"], "class Sub(Base):\n    pass\nclass Leaf(Sub):\n    pass"),
        (["step:c"], "subs = [k.__name__ for k in Base.__subclasses__()]")]))
    [d] = [d for d in p.diagnostics if d.code == "subclasses-across-steps"]
    assert (d.severity, d.step, d.line) == ("error", "c", 1)
    assert "'Sub' (step 'b'), 'Leaf' (step 'b') are defined in another step" in d.message


def test_subclasses_in_the_same_step_are_fine(write_notebook):
    p = build_pipeline(write_notebook([
        (["step:a"], "x = 1"),
        (["step:c"], "class Base:\n    pass\nclass Sub(Base):\n    pass\nn = len(Base.__subclasses__())")]))
    assert not [d for d in p.diagnostics if d.code == "subclasses-across-steps"]


def test_a_conditional_import_is_a_value_not_a_replayed_import(write_notebook):
    """`if flag: import json as fmt else: fmt = None`: a later step gets what the branch bound."""
    p = build_pipeline(write_notebook([
        (["step:a"], "flag = False"), (["step:b"], "if flag:\n    import json as fmt\nelse:\n    fmt = None"),
        (["step:c"], "none = fmt is None")]))
    assert flows(p)["c"] == (["fmt<-b"], [])
    assert p.step("c").replay_imports == []



def test_a_try_import_fallback_travels_as_the_module_it_bound(write_notebook):
    """`try: import ujson as js` / `except ImportError: import json as js`: replaying the last import
    would give json where the notebook had ujson, so the module itself is passed (by name)."""
    p = build_pipeline(write_notebook([
        (["step:a"], "try:\n    import ujson as js\nexcept ImportError:\n    import json as js"),
        (["step:b"], "s = js.dumps([1])")]))
    assert flows(p)["b"] == (["js<-a"], []) and p.step("b").replay_imports == []


def test_a_top_level_import_is_still_replayed(write_notebook):
    p = build_pipeline(write_notebook([(["step:a"], "import json as js"), (["step:b"], "s = js.dumps([1])")]))
    assert flows(p)["b"] == ([], []) and [i.statement for i in p.step("b").replay_imports] == ["import json as js"]
