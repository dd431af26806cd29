"""The effects table, declared in one place: which calls and statements touch state a later step can see.

A top-to-bottom run shares one process, so besides variables a cell can reach a later cell through
process state and files. Each row below maps one way of touching such state to a channel:

  form     what the code looks like                       target (resolved through the notebook's imports)
  call     a call                                         "pandas.set_option", "logging.getLogger().setLevel"
  store    `target[...] = v`, `target.x = v`, `del ...`   "os.environ", "pandas.options.*"
  method   a call of a method on a value (not a module)   "to_csv" (df.to_csv("x.csv"))
  magic    an IPython line magic                          "env" (%env X=1), "cd"
  cell     an IPython cell magic                          "writefile" (%%writefile m.py)
  scope    a `with` block that restores a channel         "warnings.catch_warnings"

Channels (``CHANNELS``):
  config   replayed: the statement that changed it runs again at the start of every later step
           (pandas/numpy options, env vars, cwd, sys.path, warnings, matplotlib, logging, decimal, ...);
           an attribute store on an imported module or on something reached from one (``pd.DataFrame.f =
           ...``) is a monkeypatch of that module, channel "monkeypatch:<module>", replayed the same way
  rng      a global random generator: its *state* is captured at the end of a step and restored at the
           start of the next step that uses it, through a pseudo-variable (``variable``)
  file     a literal path: ``effect`` says read / write / append / open (the mode decides) / list (a
           glob or directory listing) / mkdir; ``path`` says where the path is (argument positions,
           keyword names, "self" for the receiver, as in ``Path("x").write_text(...)``)

``unless`` names a keyword argument that, when given, keeps the call off the channel
(``train_test_split(X, random_state=0)`` does not draw from numpy's global generator).
Calls nested inside a ``scope`` block do not count for that block's channel.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache

from same_nb.frontend.ir import STATE_VARIABLES

CONFIG, RNG, FILE = "config", "rng", "file"
MONKEYPATCH = "monkeypatch:"        # + top-level module: an attribute stored on an imported module


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str                 # config | rng
    module: str = ""          # library the state lives in: replayed only where it is imported; "" = stdlib
    variable: str = ""        # rng: the pseudo-variable carrying the generator state between steps


_VARIABLE = {channel: name for name, channel in STATE_VARIABLES.items()}
CHANNELS: dict[str, Channel] = {c.name: c for c in (
    Channel("pandas.options", CONFIG, "pandas"),
    Channel("numpy.printoptions", CONFIG, "numpy"),
    Channel("numpy.errstate", CONFIG, "numpy"),
    Channel("os.environ", CONFIG),
    Channel("cwd", CONFIG),
    Channel("sys.path", CONFIG),
    Channel("sys.modules", CONFIG),
    Channel("warnings", CONFIG),
    Channel("matplotlib", CONFIG, "matplotlib"),
    Channel("logging", CONFIG),
    Channel("decimal", CONFIG),
    Channel("sklearn", CONFIG, "sklearn"),
    Channel("ipython", CONFIG),
    Channel("random", RNG, "", _VARIABLE["random"]),
    Channel("numpy.random", RNG, "numpy", _VARIABLE["numpy.random"]),
    Channel("torch", RNG, "torch", _VARIABLE["torch"]),
    Channel("tensorflow", RNG, "tensorflow"),       # no public way to capture it: it cannot cross steps
)}


def channel(name: str) -> Channel:
    """A channel by name; monkeypatch channels are made on demand."""
    if name.startswith(MONKEYPATCH):
        top = name[len(MONKEYPATCH):]
        return Channel(name, CONFIG, "" if top in _STDLIB else top)
    return CHANNELS[name]


@dataclass(frozen=True)
class Rule:
    form: str                 # call | store | method | magic | cell | scope
    target: str               # pattern (fnmatch) over the resolved dotted name
    channel: str              # a CHANNELS name, or "file"
    effect: str = "config"    # config | seed | draw | read | write | append | open | list | mkdir
    path: tuple = ()          # file rules: positions / keyword names / "self" holding the path
    mode: tuple = ()          # effect "open": positions / keyword names holding the mode
    unless: str = ""          # a keyword argument that keeps the call off the channel


def _rows(form: str, targets: str, channel_name: str, effect: str = "config", **kw) -> tuple[Rule, ...]:
    return tuple(Rule(form, t, channel_name, effect, **kw) for t in targets.split())


def _each(prefix: str, names: str) -> str:
    return " ".join(prefix + n for n in names.split())


_RANDOM_DRAWS = ("random uniform triangular randint randrange choice choices shuffle sample gauss normalvariate "
                 "lognormvariate expovariate vonmisesvariate gammavariate betavariate paretovariate "
                 "weibullvariate getrandbits randbytes binomialvariate getstate")
_NUMPY_DRAWS = ("rand randn randint random random_sample ranf sample random_integers choice bytes shuffle "
                "permutation beta binomial chisquare dirichlet exponential f gamma geometric gumbel "
                "hypergeometric laplace logistic lognormal logseries multinomial multivariate_normal "
                "negative_binomial noncentral_chisquare noncentral_f normal pareto poisson power rayleigh "
                "standard_cauchy standard_exponential standard_gamma standard_normal standard_t triangular "
                "uniform vonmises wald weibull zipf get_state")
_TORCH_DRAWS = ("rand randn randint randperm rand_like randn_like randint_like normal bernoulli multinomial "
                "poisson get_rng_state")
_PANDAS_WRITERS = ("to_csv to_parquet to_json to_pickle to_excel to_feather to_hdf to_stata to_html to_latex "
                   "to_markdown to_xml to_orc")
_PANDAS_PATH = (0, "path_or_buf", "path", "excel_writer", "buf", "fname")

RULES: tuple[Rule, ...] = (
    # -- configuration ------------------------------------------------------------------------------
    *_rows("call", "pandas.set_option pandas.reset_option pandas.set_eng_float_format", "pandas.options"),
    *_rows("store", "pandas.options.*", "pandas.options"),
    *_rows("call", "numpy.set_printoptions", "numpy.printoptions"),
    *_rows("call", "numpy.seterr", "numpy.errstate"),
    *_rows("store", "os.environ", "os.environ"),
    *_rows("call", _each("os.environ.", "update setdefault pop popitem clear") + " os.putenv os.unsetenv time.tzset",
           "os.environ"),
    *_rows("magic", "env set_env", "os.environ"),
    *_rows("call", "os.chdir", "cwd"),
    *_rows("magic", "cd pushd popd", "cwd"),
    *_rows("store", "sys.path", "sys.path"),
    *_rows("call", _each("sys.path.", "append insert extend remove pop clear"), "sys.path"),
    *_rows("store", "sys.modules", "sys.modules"),
    *_rows("call", _each("sys.modules.", "update pop setdefault"), "sys.modules"),
    *_rows("call", "warnings.simplefilter warnings.filterwarnings warnings.resetwarnings", "warnings"),
    *_rows("call", "matplotlib.use matplotlib.rc matplotlib.rcdefaults matplotlib.rc_file matplotlib.rcParams.update "
           "matplotlib.style.use matplotlib.pyplot.rc matplotlib.pyplot.rcdefaults matplotlib.pyplot.style.use "
           "matplotlib.pyplot.rcParams.update matplotlib.pyplot.switch_backend "
           + _each("seaborn.", "set set_theme set_style set_context set_palette"), "matplotlib"),
    *_rows("store", "matplotlib.rcParams matplotlib.pyplot.rcParams", "matplotlib"),
    *_rows("magic", "matplotlib", "matplotlib"),
    *_rows("call", "logging.basicConfig logging.disable logging.captureWarnings "
           + _each("logging.getLogger().", "setLevel addHandler removeHandler addFilter removeFilter")
           + _each(" logging.root.", "setLevel addHandler removeHandler"), "logging"),
    *_rows("store", "logging.getLogger().* logging.root.*", "logging"),
    *_rows("store", "decimal.getcontext().*", "decimal"),
    *_rows("call", "decimal.setcontext", "decimal"),
    *_rows("call", "sklearn.set_config", "sklearn"),
    *_rows("magic", "precision", "ipython"),
    # -- global random generators -------------------------------------------------------------------
    *_rows("call", "random.seed random.setstate", "random", "seed"),
    *_rows("call", _each("random.", _RANDOM_DRAWS), "random", "draw"),
    *_rows("call", "numpy.random.seed numpy.random.set_state", "numpy.random", "seed"),
    *_rows("call", _each("numpy.random.", _NUMPY_DRAWS), "numpy.random", "draw"),
    *_rows("call", "sklearn.model_selection.train_test_split sklearn.utils.shuffle sklearn.utils.resample",
           "numpy.random", "draw", unless="random_state"),
    *_rows("method", "sample", "numpy.random", "draw", unless="random_state"),    # DataFrame.sample
    *_rows("call", "torch.manual_seed torch.seed torch.set_rng_state", "torch", "seed"),
    *_rows("call", _each("torch.", _TORCH_DRAWS) + " torch.nn.* torch.utils.data.random_split", "torch", "draw"),
    *_rows("call", "tensorflow.random.set_seed tensorflow.keras.utils.set_random_seed keras.utils.set_random_seed",
           "tensorflow", "seed"),
    *_rows("call", "tensorflow.random.*", "tensorflow", "draw"),
    *_rows("call", "tensorflow.keras.utils.set_random_seed keras.utils.set_random_seed", "random", "seed"),
    *_rows("call", "tensorflow.keras.utils.set_random_seed keras.utils.set_random_seed", "numpy.random", "seed"),
    # -- files given as literal paths ---------------------------------------------------------------
    *_rows("call", "open io.open builtins.open codecs.open", FILE, "open", path=(0, "file", "filename"),
           mode=(1, "mode")),
    *_rows("call", "pandas.read_*", FILE, "read", path=(0, "filepath_or_buffer", "path", "io", "path_or_buf")),
    *_rows("method", _PANDAS_WRITERS, FILE, "write", path=_PANDAS_PATH),
    *_rows("call", "numpy.save numpy.savez numpy.savez_compressed numpy.savetxt", FILE, "write", path=(0, "file", "fname")),
    *_rows("call", "numpy.load numpy.loadtxt numpy.genfromtxt numpy.fromfile", FILE, "read", path=(0, "file", "fname")),
    *_rows("method", "tofile", FILE, "write", path=(0, "fid")),
    *_rows("call", "matplotlib.pyplot.savefig", FILE, "write", path=(0, "fname")),
    *_rows("method", "savefig", FILE, "write", path=(0, "fname")),
    *_rows("call", _each("pathlib.Path().", "write_text write_bytes unlink touch"), FILE, "write", path=("self",)),
    *_rows("call", _each("pathlib.Path().", "read_text read_bytes"), FILE, "read", path=("self",)),
    *_rows("call", "pathlib.Path().open", FILE, "open", path=("self",), mode=(0, "mode")),
    *_rows("call", "pathlib.Path().mkdir", FILE, "mkdir", path=("self",)),
    *_rows("call", "pathlib.Path().glob pathlib.Path().rglob pathlib.Path().iterdir", FILE, "list", path=("self",)),
    *_rows("call", "os.makedirs os.mkdir", FILE, "mkdir", path=(0, "name", "path")),
    *_rows("call", "glob.glob glob.iglob os.listdir os.scandir", FILE, "list", path=(0, "pathname", "path")),
    *_rows("call", "shutil.copy shutil.copy2 shutil.copyfile shutil.move", FILE, "read", path=(0, "src")),
    *_rows("call", "shutil.copy shutil.copy2 shutil.copyfile shutil.move", FILE, "write", path=(1, "dst")),
    *_rows("call", "shutil.move os.rename os.replace os.remove os.unlink", FILE, "write", path=(0, "src", "path")),
    *_rows("call", "os.rename os.replace", FILE, "write", path=(1, "dst")),
    *_rows("call", "logging.basicConfig", FILE, "append", path=("filename",)),
    *_rows("call", "joblib.dump torch.save", FILE, "write", path=(1, "filename", "f")),
    *_rows("call", "joblib.load torch.load", FILE, "read", path=(0, "filename", "f")),
    *_rows("cell", "writefile", FILE, "write"),
    *_rows("magic", "run", FILE, "read"),
    # -- blocks that restore what they change -------------------------------------------------------
    *_rows("scope", "warnings.catch_warnings", "warnings"),
    *_rows("scope", "numpy.printoptions", "numpy.printoptions"),
    *_rows("scope", "numpy.errstate", "numpy.errstate"),
    *_rows("scope", "pandas.option_context", "pandas.options"),
    *_rows("scope", "matplotlib.rc_context matplotlib.pyplot.rc_context matplotlib.style.context "
           "matplotlib.pyplot.style.context", "matplotlib"),
    *_rows("scope", "decimal.localcontext", "decimal"),
    *_rows("scope", "contextlib.chdir", "cwd"),
)

# Top-level calls whose whole effect is what a notebook shows, for the hidden-state check.
DISPLAY_CALLS = ("print display pprint.pprint IPython.display.* matplotlib.pyplot.* seaborn.* plotly.* "
                 "logging.info logging.debug logging.warning logging.error logging.critical logging.exception "
                 "logging.log time.sleep tqdm.* warnings.warn").split()
# Names of module functions that usually set something up rather than compute a value.
SETTER_PREFIXES = ("set", "enable", "disable", "use", "config", "init", "seed", "register", "patch", "install",
                   "activate", "reset", "switch", "login", "connect", "mount", "load_ext", "manual_seed")
# Callees a replayed configuration statement may also call: they change nothing.
SAFE_CALLS = frozenset("str int float bool len range list dict tuple set frozenset sorted min max abs round repr "
                       "zip enumerate isinstance getattr hasattr type os.path.join os.path.abspath "
                       "os.path.expanduser os.getcwd os.environ.get os.getenv decimal.getcontext "
                       "logging.getLogger".split())
SAFE_METHODS = frozenset("items keys values get copy split strip lower upper format join startswith endswith "
                         "replace".split())

_STDLIB = frozenset(__import__("sys").stdlib_module_names) | {"builtins"}


def is_stdlib(top: str) -> bool:
    return top in _STDLIB


@lru_cache(maxsize=1)
def _index() -> tuple[dict, list]:
    exact: dict[tuple[str, str], list[Rule]] = {}
    patterns: list[Rule] = []
    for rule in RULES:
        if any(ch in rule.target for ch in "*?["):
            patterns.append(rule)
        else:
            exact.setdefault((rule.form, rule.target), []).append(rule)
    return exact, patterns


@lru_cache(maxsize=65536)
def rules_for(form: str, target: str) -> tuple[Rule, ...]:
    """Every row matching ``target`` written in ``form``; exact rows first."""
    exact, patterns = _index()
    found = list(exact.get((form, target), ()))
    found += [r for r in patterns if r.form == form and fnmatch.fnmatchcase(target, r.target)]
    return tuple(found)


@lru_cache(maxsize=4096)
def matches(target: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(target, p) for p in patterns)


@lru_cache(maxsize=1)
def config_leaves() -> frozenset[str]:
    """Last names of every configuration call: statements calling none of them need no replay text."""
    return frozenset(r.target.rpartition(".")[2] for r in RULES if r.form == "call" and r.channel in CHANNELS
                     and CHANNELS[r.channel].kind == CONFIG)
