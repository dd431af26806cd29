"""Process state and files in the Pipeline IR (effectflow + effectplan through build_pipeline): which
steps chain on a random generator, which statements later steps replay, which edges files add and
why, and the diagnostics when an effect cannot be carried."""
from __future__ import annotations

from same_nb.frontend.ir import IR_VERSION, Edge, Pipeline
from same_nb.frontend.pipeline import build_pipeline

NP = "import numpy as np\n"
PD = "import pandas as pd\n"


def build(write_notebook, *steps: str, tags: dict[int, list[str]] | None = None) -> Pipeline:
    cells = [([f"step:s{i}", *(tags or {}).get(i, [])], source) for i, source in enumerate(steps)]
    return build_pipeline(write_notebook(cells))


def edges(p: Pipeline) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {(e.src, e.dst, e.kind, tuple(e.reasons())) for e in p.edges}


def codes(p: Pipeline) -> list[tuple[str, str | None]]:
    return [(d.code, d.step) for d in p.diagnostics]


# -- random generators ------------------------------------------------------------------------------

def test_numpy_seed_then_draws_in_two_later_steps_form_a_chain(write_notebook):
    p = build(write_notebook, NP + "np.random.seed(42)", "x = np.random.rand(3)", "y = np.random.rand(3)", "z = 1")
    assert edges(p) == {("s0", "s1", "data", ("state numpy.random",)),
                        ("s1", "s2", "data", ("state numpy.random",))}
    assert [i.name for i in p.step("s1").inputs] == ["_same_nb_rng_numpy"]
    assert p.step("s0").outputs == ["_same_nb_rng_numpy"] and p.step("s2").outputs == []
    assert [s.state_writes for s in p.steps] == [["numpy.random"]] * 3 + [[]]
    assert not p.diagnostics


def test_names_resolve_through_the_imports_in_notebook_order(write_notebook):
    p = build(write_notebook, "from numpy import random as npr\nnpr.seed(0)", "import numpy.random\nv = numpy.random.rand()",
              "from random import shuffle\nitems = [1, 2]\nshuffle(items)", "import random\nw = random.random()")
    assert p.step("s0").state_writes == p.step("s1").state_writes == ["numpy.random"]
    assert p.step("s2").state_writes == p.step("s3").state_writes == ["random"]
    assert ("s2", "s3", "data", ("state random",)) in edges(p)


def test_rebinding_an_alias_ends_its_meaning(write_notebook):
    p = build(write_notebook, NP + "np = None", "x = np.random.rand()")
    assert p.step("s1").state_writes == []


def test_draws_through_a_notebook_function_count_where_it_is_called(write_notebook):
    p = build(write_notebook, NP + "def noise(n):\n    return np.random.normal(size=n)\nnp.random.seed(1)",
              "a = noise(2)", "b = noise(2)")
    assert p.step("s1").state_writes == ["numpy.random"]
    assert {("s0", "s1"), ("s1", "s2")} <= {(e.src, e.dst) for e in p.edges if "state numpy.random" in e.reasons()}


def test_library_calls_that_draw_unless_given_a_seed(write_notebook):
    p = build(write_notebook, NP + PD + "np.random.seed(0)\ndf = pd.DataFrame({'a': range(9)})",
              "from sklearn.model_selection import train_test_split\ntr, te = train_test_split(df)",
              "tr2, te2 = train_test_split(df, random_state=0)", "picked = df.sample(2)",
              "fixed = df.sample(2, random_state=1)")
    assert [s.state_writes for s in p.steps] == [["numpy.random"], ["numpy.random"], [], ["numpy.random"], []]


def test_steps_that_touch_no_state_stay_parallel(write_notebook):
    p = build(write_notebook, "import random\nrandom.seed(1)", "a = 1", "b = 2", "import random\nc = random.random()")
    assert {(e.src, e.dst) for e in p.edges} == {("s0", "s3")}


def test_tensorflow_generator_cannot_cross_steps(write_notebook):
    p = build(write_notebook, "import tensorflow as tf\ntf.random.set_seed(1)", "x = tf.random.uniform([2])")
    assert ("state-not-carried", "s1") in codes(p) and p.errors


def test_the_reserved_prefix_is_refused(write_notebook):
    p = build(write_notebook, "_same_nb_rng_numpy = 1")
    assert ("reserved-name", "s0") in codes(p) and p.errors


# -- configuration replay ---------------------------------------------------------------------------

def test_configuration_is_replayed_in_every_later_step_in_notebook_order(write_notebook):
    p = build(write_notebook, PD + "pd.set_option('display.max_rows', 5)", "import os\nos.environ['A'] = '1'",
              PD + "t = repr(pd.DataFrame({'a': [1]}))", "v = 1")
    assert p.step("s0").replay == [] and p.step("s0").state_writes == ["pandas.options"]
    assert [(r.channel, r.statement) for r in p.step("s2").replay] == [
        ("pandas.options", "pd.set_option('display.max_rows', 5)"), ("os.environ", "os.environ['A'] = '1'")]
    uses, absent = p.step("s2").replay[0], p.step("s3").replay[0]
    assert (uses.imports, uses.guard, uses.after_inputs) == (["import pandas as pd"], "", False)
    assert (absent.guard, absent.after_inputs) == ("pandas", True)    # s3 does not import pandas
    assert p.step("s3").replay[1].guard == ""                         # the stdlib: always
    assert not p.edges and not p.diagnostics                          # no ordering needed


def test_every_configuration_channel_of_the_issue(write_notebook):
    setters = ["import pandas as pd\npd.options.display.max_rows = 7", "import numpy as np\nnp.set_printoptions(precision=2)",
               "%env X=1", "import sys\nsys.path.insert(0, 'lib')", "import warnings\nwarnings.filterwarnings('error')",
               "import matplotlib\nmatplotlib.use('Agg')", "import matplotlib.pyplot as plt\nplt.rcParams['lines.linewidth'] = 2",
               "import logging\nlogging.basicConfig(level=logging.INFO)", "import decimal\ndecimal.getcontext().prec = 5",
               "import pandas as pd\npd.DataFrame.twice = lambda self: self * 2", "import json\njson.dumps = str"]
    p = build(write_notebook, *setters, "last = 1")
    channels = [r.channel for r in p.step(f"s{len(setters)}").replay]
    assert channels == ["pandas.options", "numpy.printoptions", "os.environ", "sys.path", "warnings", "matplotlib",
                        "matplotlib", "logging", "decimal", "monkeypatch:pandas", "monkeypatch:json"]
    assert not p.diagnostics


def test_a_replayed_statement_that_reads_variables_makes_them_inputs(write_notebook):
    p = build_pipeline(write_notebook([(["parameters"], "rows = 3"),
                                       (["step:a"], PD + "width = 20\npd.set_option('display.max_rows', rows)\n"
                                                    "pd.set_option('display.width', width)"),
                                       (["step:b"], PD + "t = 1")]))
    b = p.step("b")
    assert {(i.name, i.kind, i.producer) for i in b.inputs} == {("rows", "parameter", None), ("width", "variable", "a")}
    assert b.params == ["rows"] and p.step("a").outputs == ["width"]
    assert [r.after_inputs for r in b.replay] == [True, True]        # one channel stays in order
    assert not p.diagnostics


def test_a_replay_that_would_read_a_changed_value_is_refused(write_notebook):
    p = build(write_notebook, PD + "n = 5\npd.set_option('display.max_rows', n)", "n = 9", PD + "t = 1")
    assert ("state-replay-conflict", "s2") in codes(p) and p.errors
    p = build(write_notebook, "import sys, types\nm = types.ModuleType('virtual')\nsys.modules['virtual'] = m\ndel m",
              "import virtual")
    assert ("state-replay-conflict", "s1") in codes(p)


def test_a_setting_inside_a_statement_that_does_more_is_reported_not_carried(write_notebook):
    p = build(write_notebook, PD + "for k in range(2):\n    print(k)\n    pd.set_option('display.max_rows', k)", "x = 1")
    assert codes(p) == [("state-not-carried", "s0")] and p.diagnostics[0].line == 2
    assert p.step("s0").state_writes == [] and p.step("s1").replay == []


def test_a_loop_of_settings_is_replayed_in_a_function(write_notebook):
    p = build(write_notebook, PD + "for k, v in {'display.max_rows': 5}.items():\n    pd.set_option(k, v)", "x = 1")
    (replay,) = p.step("s1").replay
    assert replay.wrap and not p.diagnostics and not p.step("s1").inputs


def test_a_notebook_function_that_only_configures_is_replayed_by_its_call(write_notebook):
    p = build(write_notebook, "import warnings\ndef quiet():\n    warnings.simplefilter('ignore')\nquiet()", "x = 1")
    assert [r.statement for r in p.step("s1").replay] == ["quiet()"]
    assert [(i.name, i.producer) for i in p.step("s1").inputs] == [("quiet", "s0")]


def test_blocks_that_restore_what_they_change_are_no_effect(write_notebook):
    p = build(write_notebook, "import warnings\nwith warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n"
              "    r = 1", PD + "with pd.option_context('display.max_rows', 2):\n    t = 2", "x = r + t")
    assert all(s.replay == [] and s.state_writes == [] for s in p.steps) and not p.diagnostics


def test_working_directory_changes_replay_where_they_lead(write_notebook):
    p = build(write_notebook, "import os\nos.makedirs('sub', exist_ok=True)\nos.chdir('sub')\nos.chdir('..')",
              "open('x.txt', 'w').write('1')")
    assert p.step("s1").replay == [] and not [e for e in p.edges if e.kind == "state"]
    p = build(write_notebook, "import os\nos.makedirs('sub', exist_ok=True)\n%cd sub", "open('out.txt', 'w').write('1')")
    assert [r.statement for r in p.step("s1").replay] == ["os.chdir('sub')"]
    assert ("s0", "s1", "state", ("state cwd",)) in edges(p)
    assert p.step("s1").file_writes == ["sub/out.txt"]         # relative to the notebook folder


# -- files ------------------------------------------------------------------------------------------

def test_a_file_written_then_read_orders_writer_and_reader(write_notebook):
    p = build(write_notebook, "with open('data.txt', 'w') as f:\n    f.write('42')", "v = int(open('data.txt').read())")
    assert edges(p) == {("s0", "s1", "file", ("file data.txt",))}
    assert (p.step("s0").file_writes, p.step("s1").file_reads) == (["data.txt"], ["data.txt"])


def test_writers_in_notebook_order_and_a_reader_before_a_later_writer(write_notebook):
    p = build(write_notebook, "open('log.txt', 'a').write('a')", "t = open('log.txt').read()",
              "open('log.txt', 'a').write('b')", "open('other.txt', 'w')")
    assert edges(p) == {("s0", "s1", "file", ("file log.txt",)), ("s0", "s2", "file", ("file log.txt",)),
                        ("s1", "s2", "file", ("file log.txt",))}


def test_library_readers_and_writers(write_notebook):
    p = build(write_notebook, PD + NP + "pd.DataFrame({'a': [1]}).to_csv('d.csv')\nnp.save('a.npy', np.arange(2))\n"
              "from pathlib import Path\nPath('p.txt').write_text('x')",
              "back = pd.read_csv('d.csv')\narr = np.load('a.npy')\nt = Path('p.txt').read_text()")
    assert edges(p) == {("s0", "s1", "file", ("file a.npy", "file d.csv", "file p.txt"))}


def test_writefile_then_import_is_an_edge(write_notebook):
    p = build(write_notebook, "%%writefile helper_mod.py\nV = 1\n", "x = 1", "import helper_mod\nv = helper_mod.V")
    assert edges(p) == {("s0", "s2", "file", ("file helper_mod.py",))}
    assert p.step("s2").file_reads == ["helper_mod.py"]
    assert p.step("s1").file_reads == []                   # imports of modules nobody writes are no reads


def test_folders_globs_and_shell_redirections(write_notebook):
    p = build(write_notebook, "import os\nos.makedirs('outdir', exist_ok=True)", "open('outdir/x.txt', 'w').write('x')",
              "import glob\nparts = glob.glob('outdir/*.txt')", "!echo hi > shell.txt", "t = open('shell.txt').read()")
    got = edges(p)
    assert ("s0", "s1", "file", ("file outdir",)) in got
    assert ("s1", "s2", "file", ("file outdir/x.txt",)) in got
    assert ("s3", "s4", "file", ("file shell.txt",)) in got


def test_paths_built_at_run_time_are_left_to_the_run(write_notebook):
    p = build(write_notebook, "name = 'a.txt'\nopen(name, 'w').write('1')", "t = open(f'{name}').read()")
    assert [e.kind for e in p.edges] == ["data"]


# -- the hidden-state backstop ----------------------------------------------------------------------

def test_a_step_nobody_reads_that_calls_a_setter_is_flagged(write_notebook):
    p = build(write_notebook, "import mylib\nmylib.set_mode('fast')", "x = 1")
    (d,) = p.diagnostics
    assert (d.code, d.step, d.line) == ("hidden-state", "s0", 2) and "after:s0" in d.message


def test_no_hidden_state_warning_for_display_code_or_the_last_step(write_notebook):
    p = build(write_notebook, NP + "import matplotlib.pyplot as plt\nx = np.arange(3)",
              "print(x)\nplt.plot(x)\nplt.show()\ndisplay(x)", "x.sum()", "import mylib\nmylib.set_mode('fast')")
    assert [d for d in p.diagnostics if d.code == "hidden-state"] == []


# -- the IR -----------------------------------------------------------------------------------------

def test_the_new_fields_round_trip_through_json(write_notebook):
    p = build(write_notebook, PD + NP + "np.random.seed(0)\npd.set_option('display.max_rows', 5)\n"
              "open('f.txt', 'w').write('x')", "y = np.random.rand()\nt = open('f.txt').read()")
    assert IR_VERSION == 2
    again = Pipeline.from_dict(p.to_dict())
    assert again.to_dict() == p.to_dict()
    assert again.step("s1").replay[0].statement == "pd.set_option('display.max_rows', 5)"
    assert again.step("s1").file_reads == ["f.txt"] and again.step("s0").state_writes == ["numpy.random",
                                                                                          "pandas.options"]


def test_edge_reasons():
    assert Edge("a", "b", "data", names=["df", "_same_nb_rng_random"]).reasons() == ["df", "state random"]
    assert Edge("a", "b", "after").reasons() == ["after:"]
    assert Edge("a", "b", "file", why=["file x.csv"]).reasons() == ["file x.csv"]


def test_calls_resolve_through_imports_made_in_a_prelude_cell(write_notebook):
    """Kale's `imports` cell runs at the top of every step: `np` there is numpy for every step's calls."""
    p = build_pipeline(write_notebook([(["imports"], "import numpy as np"),
                                       (["step:a"], "np.random.seed(1)\nx = np.random.rand(2)"),
                                       (["step:b"], "y = np.random.rand(2)")]))
    assert edges(p) == {("a", "b", "data", ("state numpy.random",))}
