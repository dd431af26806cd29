"""same_nb.frontend.effects (the table) and effectscan (one cell's calls, stores, magics and paths)."""
from __future__ import annotations

import pytest

from same_nb.frontend import effects as fx
from same_nb.frontend.effectscan import DYNAMIC, scan_cell, shell_writes

FORMS = {"call", "store", "method", "magic", "cell", "scope"}
EFFECTS = {"config", "seed", "draw", "read", "write", "append", "open", "list", "mkdir"}


def test_every_row_names_a_known_form_channel_and_effect():
    for rule in fx.RULES:
        assert rule.form in FORMS, rule
        assert rule.channel == fx.FILE or rule.channel in fx.CHANNELS, rule
        assert rule.effect in EFFECTS, rule
        if rule.channel == fx.FILE and rule.form not in ("cell", "magic"):
            assert rule.path, f"a file rule must say where the path is: {rule}"
        if rule.effect == "open":
            assert rule.mode, rule


def test_every_generator_that_can_cross_steps_has_a_reserved_pseudo_variable():
    for channel in fx.CHANNELS.values():
        if channel.kind == fx.RNG and channel.name != "tensorflow":
            assert channel.variable.startswith("_same_nb_rng_"), channel


@pytest.mark.parametrize("form, target, channel, effect", [
    ("call", "pandas.set_option", "pandas.options", "config"),
    ("store", "pandas.options.display.max_rows", "pandas.options", "config"),
    ("call", "numpy.set_printoptions", "numpy.printoptions", "config"),
    ("store", "os.environ", "os.environ", "config"),
    ("call", "os.environ.update", "os.environ", "config"),
    ("magic", "env", "os.environ", "config"),
    ("call", "os.chdir", "cwd", "config"),
    ("magic", "cd", "cwd", "config"),
    ("call", "sys.path.append", "sys.path", "config"),
    ("call", "warnings.simplefilter", "warnings", "config"),
    ("call", "matplotlib.use", "matplotlib", "config"),
    ("store", "matplotlib.rcParams", "matplotlib", "config"),
    ("call", "matplotlib.pyplot.style.use", "matplotlib", "config"),
    ("call", "logging.getLogger().setLevel", "logging", "config"),
    ("store", "decimal.getcontext().prec", "decimal", "config"),
    ("call", "random.seed", "random", "seed"),
    ("call", "random.shuffle", "random", "draw"),
    ("call", "numpy.random.seed", "numpy.random", "seed"),
    ("call", "numpy.random.permutation", "numpy.random", "draw"),
    ("call", "torch.manual_seed", "torch", "seed"),
    ("call", "tensorflow.random.uniform", "tensorflow", "draw"),
    ("call", "pandas.read_parquet", "file", "read"),
    ("method", "to_csv", "file", "write"),
    ("call", "numpy.savez", "file", "write"),
    ("call", "pathlib.Path().write_text", "file", "write"),
    ("cell", "writefile", "file", "write"),
    ("scope", "warnings.catch_warnings", "warnings", "config"),
])
def test_lookup(form, target, channel, effect):
    assert (channel, effect) in {(r.channel, r.effect) for r in fx.rules_for(form, target)}


@pytest.mark.parametrize("target", ["numpy.random.default_rng", "numpy.random.RandomState", "random.Random",
                                    "pandas.DataFrame", "numpy.mean", "os.getcwd"])
def test_calls_that_touch_no_global_state(target):
    assert fx.rules_for("call", target) == ()


def test_monkeypatch_channels_are_made_per_module():
    assert fx.channel("monkeypatch:pandas").module == "pandas"
    assert fx.channel("monkeypatch:json").module == ""       # stdlib: replayed everywhere


def _sites(source: str, kind: str | None = None):
    return [s for st in scan_cell(source).statements for s in st.sites if kind is None or s.kind == kind]


def test_scan_keeps_names_as_written_and_calls_as_parentheses():
    names = [s.name for s in _sites("np.random.seed(0)\nlogging.getLogger('x').setLevel(10)\n"
                                    "Path('a').write_text('t')", "call")]
    assert names == ["np.random.seed", "logging.getLogger().setLevel", "logging.getLogger", "Path().write_text",
                     "Path"]


@pytest.mark.parametrize("expression, path", [
    ("'a.txt'", "a.txt"),
    ("f'a.txt'", "a.txt"),
    ("'data/' + 'a.txt'", "data/a.txt"),
    ("os.path.join('data', 'a.txt')", "data/a.txt"),
    ("Path('data') / 'a.txt'", "data/a.txt"),
    ("Path('data').joinpath('x', 'a.txt')", "data/x/a.txt"),
    ("f'{name}.txt'", DYNAMIC),
    ("name", DYNAMIC),
])
def test_literal_paths(expression, path):
    (site,) = [s for s in _sites(f"open({expression}, 'w')", "call") if s.name == "open"]
    assert site.args[0] == path


def test_receiver_path_of_a_path_method():
    (site,) = [s for s in _sites("(Path('d') / 'x.txt').read_text()", "call") if s.name.endswith("read_text")]
    assert site.recv == "d/x.txt"


def test_magics_become_sites():
    assert [(s.kind, s.name, s.text) for s in _sites("%env A=1\n%cd sub", "magic")] == \
        [("magic", "env", "A=1"), ("magic", "cd", "sub")]
    (cell,) = _sites("%%writefile -a helper.py\nX = 1\n")
    assert (cell.kind, cell.name, cell.args) == ("cell", "writefile", ("helper.py", "a"))


def test_function_bodies_are_kept_apart_and_lambdas_run_later():
    (st,) = scan_cell("def draw():\n    return np.random.rand()").statements
    assert st.sites == [] and [s.name for s in st.defs["draw"].sites] == ["np.random.rand"]
    (st,) = scan_cell("f = lambda: np.random.rand() * k").statements
    assert st.sites == [] and {"np", "k"} <= set(st.loads)


def test_with_blocks_are_recorded_as_scopes():
    (st,) = scan_cell("with warnings.catch_warnings():\n    warnings.simplefilter('ignore')").statements
    inner = [s for s in st.sites if s.name == "warnings.simplefilter"]
    assert inner[0].scopes == ("warnings.catch_warnings",)


def test_replay_text_is_normalized_python():
    (st,) = scan_cell("os.environ[\"X\"]  =  'a\\'b'").statements
    assert st.text == "os.environ['X'] = \"a'b\""
    (st,) = scan_cell("x = compute(1)").statements
    assert st.text is None                  # nothing that could configure anything: no source kept


def test_shell_redirections():
    assert shell_writes("echo hi > out.txt && cat a >> log.txt") == [("out.txt", "write"), ("log.txt", "append")]
    assert shell_writes("echo $X > $OUT") == []
