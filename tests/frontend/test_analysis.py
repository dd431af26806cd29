"""Tests for same_nb.frontend.analysis: per-statement reads, binds, mutations, imports and findings of a cell."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from same_nb.frontend.analysis import CellAnalysis, Statement, analyze_cell


def cell(source: str) -> CellAnalysis:
    return analyze_cell(textwrap.dedent(source).strip("\n"))


def one(source: str) -> Statement:
    result = cell(source)
    assert not result.findings, result.findings
    assert len(result.statements) == 1, result.statements
    return result.statements[0]


def mutations(source: str) -> list[tuple[str, str]]:
    return [(m.name, m.how) for s in cell(source).statements for m in s.mutations]


def opaque(source: str) -> list[tuple[str, str]]:
    return [(c.name, c.callee) for s in cell(source).statements for c in s.opaque_calls]


def codes(result: CellAnalysis) -> list[tuple[int, str]]:
    return [(f.line, f.code) for f in result.findings]


# -- reads and binds ---------------------------------------------------------------------------
def test_reads_are_names_loaded_before_bound_in_the_statement():
    result = cell("x = x + 1\ny = x * z\nprint(y)")
    assert [(s.line, s.reads, s.binds) for s in result.statements] == [
        (1, ["x"], ["x"]), (2, ["x", "z"], ["y"]), (3, ["print", "y"], [])]


def test_augmented_assignment_reads_then_rebinds_without_mutation():
    statement = one("total += i")
    assert (statement.reads, statement.binds, statement.mutations) == (["total", "i"], ["total"], [])


def test_for_binds_target_before_body():
    statement = one("""
        for i in items:
            total = total + i
            last = i
    """)
    assert statement.reads == ["items", "total"]
    assert statement.binds == ["i", "total", "last"]


def test_with_targets_and_tuple_unpacking():
    statement = one("""
        with open(path) as fh, lock:
            (a, *rest), b = fh.read(), a
    """)
    assert statement.reads == ["open", "path", "lock", "a"]
    assert statement.binds == ["fh", "a", "rest", "b"]


def test_name_bound_on_one_branch_only_is_still_a_read_later():
    conditional = one("""
        for item in items:
            if item:
                x = item
            print(x)
    """)
    assert conditional.reads == ["items", "print", "x"]
    both = one("""
        for item in items:
            if item:
                x = item
            else:
                x = 0
            print(x)
    """)
    assert both.reads == ["items", "print"]


def test_try_handler_may_run_before_the_body_bound_anything():
    statement = one("""
        try:
            a = load()
        except OSError as error:
            log(error, a)
    """)
    assert statement.reads == ["load", "OSError", "log", "a"]
    assert statement.binds == ["a", "error"]


def test_walrus_binds_in_enclosing_scope_even_inside_comprehensions():
    statement = one("[[y for y in row if (w := y) > limit] for row in matrix]")
    assert statement.reads == ["matrix", "limit"]
    assert statement.binds == ["w"]


def test_comprehension_variables_are_local_and_free_names_are_reads():
    statement = one("pairs = {k: [v * scale for v in vals] for k, vals in data.items() if k not in skip}")
    assert statement.reads == ["data", "skip", "scale"]
    assert statement.binds == ["pairs"]


def test_assigned_lambda_reads_its_free_names_when_called_like_a_def():
    statement = one("key = lambda row, n=default: row[column] * n")
    assert statement.reads == ["default"]
    assert statement.binds == ["key"]
    assert statement.defines == {"key": ["column"]}


def test_lambda_used_in_place_reads_its_free_names_immediately_but_not_its_parameters():
    statement = one("ranked = sorted(rows, key=lambda row, n=default: row[column] * n)")
    assert statement.reads == ["sorted", "rows", "default", "column"]
    assert statement.binds == ["ranked"]


def test_def_defaults_and_decorators_are_read_now_body_reads_are_deferred():
    result = cell("""
        @register(registry)
        def predict(x: Frame = sample, *, k=top_k) -> Out:
            scaled = scaler.transform(x)
            return model.predict(scaled)[:k]
    """)
    statement = result.statements[0]
    assert statement.line == 1
    assert statement.reads == ["register", "registry", "sample", "top_k", "Frame", "Out"]
    assert statement.binds == ["predict"]
    assert statement.defines == {"predict": ["scaler", "model"]}


def test_nested_function_closures_and_global_declarations():
    statement = one("""
        def outer():
            global counter
            counter = start
            local = 1
            def inner():
                return local + offset
            return inner
    """)
    assert statement.binds == ["outer"]
    assert statement.defines == {"outer": ["start", "counter", "offset"]}


def test_class_body_runs_now_while_method_bodies_are_deferred_to_the_class():
    statement = one("""
        class Model(Base, metaclass=Meta):
            size = default_size
            doubled = size * 2
            cached = [size for _ in range(repeats)]
            def fit(self, data):
                return train(data, size)
    """)
    assert statement.reads == ["Base", "Meta", "default_size", "range", "repeats", "size"]
    assert statement.binds == ["Model"]
    assert statement.defines == {"Model": ["train", "size"]}


def test_del_of_a_name_is_a_delete_and_del_of_an_item_a_mutation():
    result = cell("del cache\ndel table[key]")
    assert result.statements[0].deletes == ["cache"]
    assert result.statements[1].deletes == []
    assert [(m.name, m.how) for m in result.statements[1].mutations] == [("table", "del item")]


def test_match_captures_bind_and_class_patterns_read():
    statement = one("""
        match event:
            case Click(x=0, y=row) as click:
                last = row
            case [first, *others]:
                pass
            case {"k": value, **extra}:
                pass
    """)
    assert statement.reads == ["event", "Click"]
    assert statement.binds == ["row", "click", "last", "first", "others", "value", "extra"]


def test_builtins_are_reported_and_top_level_global_is_ignored():
    statement = one("global g\n")
    assert (statement.reads, statement.binds) == ([], [])
    assert one("n = len(items)").reads == ["len", "items"]


# -- mutations and opaque calls ----------------------------------------------------------------
@pytest.mark.parametrize("source, expected", [
    ("x[0] = 1", [("x", "item assignment")]),
    ("df.col = 1", [("df", "attribute assignment")]),
    ("x[0] += 1", [("x", "augmented assignment")]),
    ("obj.count += 1", [("obj", "augmented assignment")]),
    ("del x[k]", [("x", "del item")]),
    ("del obj.attr", [("obj", "del attribute")]),
    ("items.append(1)", [("items", "method append()")]),
    ("df.a.append(1)", [("df", "method append()")]),
    ("x[0].append(1)", [("x", "method append()")]),
    ("model.fit(X, y)", [("model", "method fit()")]),
    ("s.update(t); d.setdefault(k, []); arr.sort(); arr.fill(0)",
     [("s", "method update()"), ("d", "method setdefault()"), ("arr", "method sort()"), ("arr", "method fill()")]),
    ("df.drop(columns=['a'], inplace=True)", [("df", "inplace=True")]),
    ("df.fillna(0, inplace=True); df.reset_index(inplace=True)", [("df", "inplace=True"), ("df", "inplace=True")]),
    ("df.drop(columns=['a'])", []),
    ("df.fillna(0, inplace=False)", []),
    ("setattr(cfg, 'seed', 1)", [("cfg", "attribute assignment")]),
    ("x += 1", []),
    ("make().append(1)", []),
    ("[acc.append(v) for v in values]", [("acc", "method append()")]),
    ("[v.append(1) for v in values]", [("values", "method append()")]),
    ("def f():\n    items.append(1)", []),
])
def test_mutations(source, expected):
    assert mutations(source) == expected


def test_mutation_line_is_the_line_of_the_mutation():
    result = cell("""
        for row in rows:
            seen.add(row)
    """)
    assert [(m.name, m.line) for m in result.statements[0].mutations] == [("seen", 2)]


@pytest.mark.parametrize("source, expected", [
    ("process(df)", [("df", "process")]),
    ("np.random.shuffle(arr)", [("arr", "np.random.shuffle")]),
    ("model.fit(X, y)", []),
    ("f(df['a'], g(h), 1, df.b)", [("h", "g"), ("df", "f")]),
    ("run(*args, key=value, **options)", [("args", "run"), ("value", "run"), ("options", "run")]),
    ("print(df); len(df); sorted(items); isinstance(x, int)", []),
    ("f(x + 1, [y])", []),
    ("make()(data)", [("data", "make()")]),
    ("[process(v) for v in values]", [("values", "process")]),
    ("def f():\n    process(df)", []),
])
def test_opaque_calls(source, expected):
    assert opaque(source) == expected


# -- imports -----------------------------------------------------------------------------------
def test_import_forms():
    result = cell("""
        import numpy as np, os.path
        import sklearn.linear_model as lm
        from x.y import (p,
                         q as r)
        from . import local
        from ..pkg.mod import thing
    """)
    infos = [(i.module, i.top, i.statement, i.names, i.line) for s in result.statements for i in s.imports]
    assert infos == [
        ("numpy", "numpy", "import numpy as np", ["np"], 1),
        ("os.path", "os", "import os.path", ["os"], 1),
        ("sklearn.linear_model", "sklearn", "import sklearn.linear_model as lm", ["lm"], 2),
        ("x.y", "x", "from x.y import p, q as r", ["p", "r"], 3),
        (".", "", "from . import local", ["local"], 5),
        ("..pkg.mod", "", "from ..pkg.mod import thing", ["thing"], 6),
    ]
    assert [s.binds for s in result.statements] == [["np", "os"], ["lm"], ["p", "r"], ["local"], ["thing"]]
    for info in (i for s in result.statements for i in s.imports):
        compile(info.statement, "<import>", "exec")


def test_star_import_binds_nothing_known_and_warns():
    result = cell("from pylab import *")
    (info,) = result.statements[0].imports
    assert (info.module, info.names, info.statement) == ("pylab", [], "from pylab import *")
    assert codes(result) == [(1, "star-import")]


def test_nested_imports_are_reported_but_bind_only_outside_defs_and_classes():
    result = cell("""
        def load():
            import pandas as pd
        class Config:
            import json
        try:
            import yaml
        except ImportError:
            yaml = None
    """)
    infos = [(i.module, i.names, i.nested, i.line) for s in result.statements for i in s.imports]
    assert infos == [("pandas", [], True, 2), ("json", [], True, 4), ("yaml", ["yaml"], False, 6)]
    assert [s.binds for s in result.statements] == [["load"], ["Config"], ["yaml"]]


def test_dynamic_imports_with_literal_names():
    result = cell("""
        mod = importlib.import_module("pkg.sub")
        rel = importlib.import_module(".tools", "pkg")
        top = __import__("json")
        unknown = importlib.import_module(name)
    """)
    infos = [(i.module, i.top, i.statement, i.names, i.dynamic) for s in result.statements for i in s.imports]
    assert infos == [("pkg.sub", "pkg", "import pkg.sub", [], True),
                     ("pkg.tools", "pkg", "import pkg.tools", [], True),
                     ("json", "json", "import json", [], True)]


# -- findings ----------------------------------------------------------------------------------
def test_exec_eval_globals_locals_vars_findings():
    result = cell("""
        exec(code)
        value = eval(expression)
        globals()["x"] = 1
        locals()
        vars()
        vars(obj)
        def f():
            return locals()
    """)
    assert codes(result) == [(1, "exec"), (2, "eval"), (3, "globals"), (4, "globals"), (5, "globals")]
    assert all("cannot see" in f.message or "not tracked" in f.message for f in result.findings)


def test_syntax_error_is_a_finding_with_the_line():
    result = analyze_cell("x = 1\ny = (\n")
    assert result.statements == []
    assert [(f.line, f.code, f.severity) for f in result.findings] == [(2, "syntax-error", "error")]


def test_extremely_deep_nesting_is_a_finding_not_a_crash():
    result = analyze_cell("-" * 100_000 + "1")
    assert [(f.code, f.severity) for f in result.findings] == [("too-complex", "error")]


# -- IPython syntax ----------------------------------------------------------------------------
def test_time_line_magic_is_analyzed_as_code():
    result = cell("%time x = f(y)\nz = x")
    assert [(s.line, s.reads, s.binds) for s in result.statements] == [(1, ["f", "y"], ["x"]), (2, ["x"], ["z"])]


def test_timeit_reads_but_binds_nothing_because_ipython_runs_it_in_a_function():
    result = cell("%timeit -n 10 -r 2 best = items.pop(k)")
    (statement,) = result.statements
    assert (statement.reads, statement.binds) == (["items", "k"], [])
    assert [(m.name, m.how) for m in statement.mutations] == [("items", "method pop()")]


def test_magic_value_in_an_assignment():
    statement = one("result = %timeit -o compute(data)")
    assert (statement.reads, statement.binds) == (["compute", "data"], ["result"])


def test_time_cell_magic_body_keeps_its_line_numbers():
    result = cell("""

        %%time
        x = load(path)

        y = x + offset
    """)
    assert [(s.line, s.reads, s.binds) for s in result.statements] == [
        (2, ["load", "path"], ["x"]), (4, ["x", "offset"], ["y"])]


def test_capture_cell_magic_runs_its_body_then_binds_the_output_name():
    result = cell("""
        %%capture out --no-stderr
        %matplotlib inline
        fig = plot(data)
    """)
    assert [(s.line, s.reads, s.binds) for s in result.statements] == [
        (2, [], []), (3, ["plot", "data"], ["fig"]), (1, [], ["out"])]


def test_timeit_cell_magic_setup_and_body_share_a_local_scope():
    (statement,) = cell("%%timeit -n 5 a = make()\nb = a + c").statements
    assert (statement.line, statement.reads, statement.binds) == (1, ["make", "c"], [])


def test_other_cell_magics_are_opaque():
    assert cell("%%bash\necho $x > out.txt\npython -c 'import os'").statements == []
    assert [s.binds for s in cell("%%bash --out stdout --err stderr\nls").statements] == [["stdout", "stderr"]]
    assert cell("%%html\n<b>{x}</b>").statements == []
    written = cell("%%writefile helpers.py\nimport os\ndef f(): pass")
    assert written.statements == []
    assert codes(written) == [(1, "writefile")]


def test_cell_magic_body_errors_map_to_the_original_line():
    result = cell("%%time\nx = 1\ny = (")
    assert [(f.line, f.code) for f in result.findings] == [(3, "syntax-error")]


def test_shell_help_and_line_magics_parse_with_original_lines():
    result = cell("""
        !ls -l
        files = !ls {folder} $pattern $HOME
        %matplotlib inline
        data?
        %cd $workdir
        n = len(files)
    """)
    assert [(s.line, s.reads, s.binds) for s in result.statements] == [
        (1, [], []), (2, ["folder", "pattern"], ["files"]), (3, [], []), (4, [], []), (5, ["workdir"], []),
        (6, ["len", "files"], ["n"])]
    assert result.findings == []


def test_line_continuations_in_magics_keep_later_lines_right():
    result = cell("%time \\\n    x = f(y)\nz = x\n!ls \\\n    -l\nw = (")
    assert [(s.line, s.binds) for s in result.statements] == []
    assert [(f.line, f.code) for f in result.findings] == [(6, "syntax-error")]
    result = cell("%time \\\n    x = f(y)\nz = x\n!ls \\\n    -l\nw = z")
    assert [(s.line, s.binds) for s in result.statements] == [(1, ["x"]), (3, ["z"]), (4, []), (6, ["w"])]


def test_magics_inside_blocks_and_bad_code_in_time():
    result = cell("""
        if ready:
            %time model = train(data)
        %time broken = (
    """)
    assert result.statements[0].binds == ["model"]
    assert result.statements[0].reads == ["ready", "train", "data"]
    assert codes(result) == [(3, "syntax-error")]


def test_pip_installs_become_requirements():
    result = cell("""
        %pip install -q -U pandas>=2 "scikit-learn==1.5"
        !pip install -q "a>=1" b --index-url https://example.org/simple
        !{sys.executable} -m pip install 'c[extra]~=2.0' && pip list
        !pip install -r requirements.txt {package}
        %conda install numpy
    """)
    assert result.requirements == [(1, "pandas>=2"), (1, "scikit-learn==1.5"), (2, "a>=1"), (2, "b"),
                                   (3, "c[extra]~=2.0")]
    assert codes(result) == [(4, "pip-install"), (4, "pip-install")]
    assert "requirements.txt" in result.findings[0].message
    assert result.statements[2].reads == ["sys"]


def test_run_magic_is_flagged():
    assert codes(cell("%run helpers.py")) == [(1, "opaque-magic")]


def test_indented_cell_is_dedented_like_ipython_does():
    result = cell("    x = 1\n    y = x")
    assert [(s.line, s.binds) for s in result.statements] == [(1, ["x"]), (2, ["y"])]


def test_plain_cells_never_import_ipython():
    code = ("import sys; from same_nb.frontend.analysis import analyze_cell\n"
            "analyze_cell('x = 10 % 3\\nprint(x != 1)\\ny = f(')\n"
            "assert 'IPython' not in sys.modules, 'plain cell imported IPython'\n"
            "analyze_cell('!ls')\n"
            "assert 'IPython' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_simple_cells_are_fast():
    analyze_cell("warm = up")
    started = time.perf_counter()
    for _ in range(2000):
        analyze_cell("x = f(y)\nz = x.mean()")
    # ~50 µs each on the reference machine; the bound leaves room for slow CI runners.
    assert (time.perf_counter() - started) / 2000 < 0.001


LINE_KINDS = ["v{i} = {i}", "%time v{i} = {i}", "v{i} = !echo {i}", "", "   ", "!echo a \\\n  b", "%matplotlib inline",
              "v{i} = (\n  {i})", "help{i}?", "%time \\\n  v{i} = {i}", "v{i} = %time {i}"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(LINE_KINDS), min_size=1, max_size=12))
def test_statement_lines_point_at_the_original_source(kinds):
    lines = []
    expected = {}
    for i, kind in enumerate(kinds):
        if "v{i}" in kind:
            expected[f"v{i}"] = len(lines) + 1
        lines.extend(kind.format(i=i).split("\n"))
    result = analyze_cell("\n".join(lines))
    assert result.findings == []
    found = {name: statement.line for statement in result.statements for name in statement.binds}
    assert found == expected


# -- never raises ------------------------------------------------------------------------------
FRAGMENTS = ["%time ", "%timeit -n1 ", "%%time\n", "%%timeit ", "%%capture o\n", "%%bash\n", "!pip install ",
             "x = !ls ", "?", "??", "\\\n", "{", "}", "$x", "(", ")", "[", "]", ":", "\n    ", "\n", "def f(",
             "class A:", "lambda", " for x in y", " if ", "else", "x", "y", ":=", "=", "+=", "del ", "import ",
             "from . import *", "global ", "nonlocal ", "match x:\n case ", "try:\n", "except E as e:", "'",
             '"', '"""', "#", "@d\n", "async ", "await ", ",", "*", "**", ".", "%", "!", "\r", "\x00", "\t",
             ".append(", "inplace=True", "exec(", "__import__('m')", "importlib.import_module('.a', 'b')"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(FRAGMENTS), max_size=15).map("".join)))
def test_analyze_cell_never_raises(source):
    result = analyze_cell(source)
    assert isinstance(result, CellAnalysis)
    for finding in result.findings:
        assert finding.line >= 1


# -- paths, guards and query strings (issue 13, item 7) -----------------------------------------
@pytest.mark.parametrize("source, maybe", [
    ("if flag:\n    x = 2", ["x"]),
    ("for x in items:\n    pass", ["x"]),
    ("while more():\n    x = 1", ["x"]),
    ("try:\n    x = int(s)\nexcept ValueError:\n    pass", ["x"]),
    ("import contextlib\nwith contextlib.suppress(ZeroDivisionError):\n    x = 1 / 0", ["x"]),
    ("match cmd:\n    case 'go':\n        x = 1", ["x"]),
    ("if flag:\n    x = 2\nelse:\n    x = 3", []),
    ("with open(p) as fh:\n    x = fh.read()", []),
    ("try:\n    import yaml\nexcept ImportError:\n    yaml = None", []),
])
def test_names_bound_on_only_some_paths(source, maybe):
    assert [n for s in cell(source).statements for n in s.maybe_binds] == maybe


def test_reads_guarded_by_except_name_error():
    statement = one("""
        try:
            x
        except NameError:
            x = 1
    """)
    assert statement.reads == ["x", "NameError"]
    assert statement.guarded == ["x"]
    assert one("try:\n    y = x\nexcept (KeyError, NameError):\n    pass").guarded == ["x"]
    assert one("try:\n    y = x\nexcept KeyError:\n    pass").guarded == []
    assert one("if c:\n    try:\n        y = x\n    except NameError:\n        pass\n    z = x").guarded == []


def test_query_and_eval_strings_read_their_at_variables():
    statement = one("sel = df.query('a > @low and b < @high and c == \"x@y\"')")
    assert statement.reads == ["df", "low", "high"]
    assert one("res = df.eval(expr='a + @off')").reads == ["df", "off"]
    assert one("res = df.query(text)").reads == ["df", "text"]


def test_augmented_assignment_of_a_name_may_change_its_object_in_place():
    statement = one("total += i")
    assert (statement.inplace, statement.aliases) == (["total"], {"total": ["total"]})


@pytest.mark.parametrize("magic,severity", [("%who", "warning"), ("%whos", "warning"), ("%who_ls", "error"),
                                            ("names = %who_ls", "error")])
def test_listing_the_namespace_is_refused_where_code_can_use_the_list(magic, severity):
    """%who and %whos print (the output differs, no value does); %who_ls returns the list."""
    result = cell(magic)
    assert codes(result) == [(1, "namespace-listing")]
    assert result.findings[0].severity == severity and "name the variables you need" in result.findings[0].message


def test_a_loop_variable_read_after_its_loop_is_not_reported_unbound(write_notebook):
    """`for i, b in enumerate(loader): ...` then `print(i)` inside an outer loop: bound whenever the
    loop ran, so a top-to-bottom run does not fail there; no "read before it is defined"."""
    from same_nb.frontend.pipeline import build_pipeline

    p = build_pipeline(write_notebook([(["step:a"], "loader = [1, 2]"),
                                       (["step:b"], "for epoch in range(2):\n    for i, b in enumerate(loader):\n"
                                                    "        pass\n    print(i)")]))
    assert [d for d in p.diagnostics if d.code == "read-before-definition"] == []
    p = build_pipeline(write_notebook([(["step:a"], "print(j)\nj = 1")]))
    assert [d.code for d in p.diagnostics] == ["read-before-definition"]
