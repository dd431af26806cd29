"""Generate the adversarial fidelity notebooks (issue #13): `python generate.py OUT_DIR`.

Each case isolates one pattern where running a notebook split into steps (one kernel per step,
variables passed by value) could compute something different from running it top to bottom in
one kernel. A case is ``(name, category, cells)`` or ``(name, category, cells, compare)``: cells
are ``(tags, source)`` pairs, ``compare`` the variable names to compare (default: every picklable
global at the end). Names starting with ``eq_`` are controls that must come out EQUAL with no
warning (false-alarm checks). Notebooks only touch files under their own folder.
"""
# ruff: noqa: E501 -- the case table keeps one case per line where it can; its cell sources are data
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path


def s(name: str, src: str, *tags: str) -> tuple[list[str], str]:
    """A cell starting step ``name``; extra tags such as ``after:x``."""
    return (["step:" + name, *tags], src)


def u(src: str) -> tuple[list[str], str]:
    """An untagged cell: continues the current step."""
    return ([], src)


def p(src: str) -> tuple[list[str], str]:
    return (["parameters"], src)


A = "after:a"
NP = "import numpy as np\n"
PD = "import pandas as pd\n"
FIT = NP + "from sklearn.linear_model import LinearRegression\nX = np.arange(6.0).reshape(-1, 1)\ny = 3 * X.ravel() + 1\n"
# A folder-local module written by step a, for the sys.path / import cases.
MOD = "import os\nos.makedirs('lib', exist_ok=True)\nopen('lib/fidmod_{0}.py', 'w').write('VALUE = 7\\n')\n"

CONFIG = [
    ("seed_np_global", [s("setup", NP + "np.random.seed(42)"), s("draw", "x = np.random.rand(3)")]),
    ("eq_seed_np_same_step", [s("a", NP + "np.random.seed(42)\nx = np.random.rand(3)"), s("b", "y = float(x.sum())")]),
    ("seed_random_stdlib", [s("a", "import random\nrandom.seed(1)"), s("b", "import random\nv = random.random()")]),
    ("eq_seed_random_same_step", [s("a", "import random\nrandom.seed(1)\nv = random.random()"), s("b", "w = v * 2")]),
    ("seed_pandas_sample", [s("a", NP + PD + "np.random.seed(3)\ndf = pd.DataFrame({'a': range(10)})"),
                            s("b", "picked = df.sample(3)")]),
    ("seed_sklearn_split", [s("a", NP + "np.random.seed(0)\nX = np.arange(20).reshape(10, 2)"),
                            s("b", "from sklearn.model_selection import train_test_split\ntr, te = train_test_split(X)")]),
    ("eq_sklearn_split_random_state", [s("a", NP + "X = np.arange(20).reshape(10, 2)"),
                                       s("b", "from sklearn.model_selection import train_test_split\n"
                                              "tr, te = train_test_split(X, random_state=0)")]),
    ("pd_option_precision_repr", [s("a", PD + "pd.set_option('display.precision', 2)\ndf = pd.DataFrame({'v': [1/3, 2/3]})"),
                                  s("b", "text = repr(df)")]),
    ("pd_option_get", [s("a", PD + "pd.set_option('display.max_rows', 7)"), s("b", PD + "m = pd.get_option('display.max_rows')")]),
    ("eq_pd_option_context", [s("a", PD + "df = pd.DataFrame({'v': [1/3]})"),
                              s("b", "with pd.option_context('display.precision', 2):\n    text = repr(df)")]),
    ("np_printoptions_repr", [s("a", NP + "np.set_printoptions(precision=2)\narr = np.array([1/3, 2/3])"), s("b", "text = repr(arr)")]),
    ("eq_np_printoptions_same_step", [s("a", NP + "np.set_printoptions(precision=2)\ntext = repr(np.array([1/3]))"),
                                      s("b", "n = len(text)")]),
    ("np_seterr_raise", [s("a", NP + "np.seterr(all='raise')"),
                         s("b", NP + "try:\n    r = float(np.float64(1.0) / 0)\nexcept FloatingPointError:\n    r = -1.0")]),
    ("environ_set_read", [s("a", "import os\nos.environ['FID_X'] = '1'"), s("b", "import os\nv = os.environ.get('FID_X')")]),
    ("environ_env_magic", [s("a", "%env FID_Y=1"), s("b", "import os\nv = os.environ.get('FID_Y', 'unset')")]),
    ("environ_read_at_import", [s("w", "%%writefile envmod.py\nimport os\nAT_IMPORT = os.environ.get('FID_AT_IMPORT', 'unset')\n"),
                                s("a", "import os\nos.environ['FID_AT_IMPORT'] = 'set'"),
                                s("b", "import envmod\nseen = envmod.AT_IMPORT")]),
    ("environ_library_reads_at_import", [s("a", "import os\nos.environ['MPLBACKEND'] = 'svg'"),
                                         s("b", "import matplotlib\nbackend = matplotlib.get_backend()")]),
    ("environ_library_reads_at_import_same_step", [s("a", "import os\nos.environ['MPLBACKEND'] = 'svg'\nimport matplotlib\n"
                                                        "backend = matplotlib.get_backend()"),
                                                   s("b", "n = len(backend)")]),
    ("prelude_seed_then_draws", [(["imports"], "import numpy as np\nnp.random.seed(3)"),
                                 s("a", "x = np.random.rand(2)"), s("b", "y = np.random.rand(2)")]),
    ("prelude_import_then_seed_step", [(["imports"], "import numpy as np"), s("a", "np.random.seed(5)"),
                                       s("b", "y = np.random.rand(2)")]),
    ("environ_pop_preset", [s("a", "import os\nos.environ.pop('FID_PRESET', None)"), s("b", "import os\nhas = 'FID_PRESET' in os.environ")]),
    ("eq_environ_same_step", [s("a", "import os\nos.environ['FID_X'] = '1'\nv = os.environ.get('FID_X')"), s("b", "w = v + '!'")]),
    ("chdir_write_relative", [s("a", "import os\nos.makedirs('sub', exist_ok=True)\nos.chdir('sub')"),
                              s("b", "with open('out.txt', 'w') as f:\n    f.write('hello')")]),
    ("chdir_magic_cd", [s("a", "import os\nos.makedirs('sub2', exist_ok=True)\n%cd sub2"),
                        s("b", "from pathlib import Path\nn = Path('o.txt').write_text('x')")]),
    ("chdir_read_relative", [s("a", "import os\nos.makedirs('d', exist_ok=True)\nopen('d/in.txt', 'w').write('inner')\n"
                                    "open('in.txt', 'w').write('outer')\nos.chdir('d')\nready = True"),
                             s("b", "assert ready\nt = open('in.txt').read()")]),
    ("eq_chdir_same_step", [s("a", "import os\nos.makedirs('s3', exist_ok=True)\nos.chdir('s3')\nopen('f.txt', 'w').write('1')\n"
                                   "os.chdir('..')"), s("b", "open('g.txt', 'w').write('2')")]),
    ("syspath_append_import", [s("a", MOD.format("a") + "import sys\nsys.path.append('lib')\nready = True"),
                               s("b", "assert ready\nimport fidmod_a\nv = fidmod_a.VALUE")]),
    ("syspath_shadow", [s("a", "import os, sys\nos.makedirs('lib3', exist_ok=True)\nopen('fidshadow.py', 'w').write('V = 1\\n')\n"
                               "open('lib3/fidshadow.py', 'w').write('V = 2\\n')\nsys.path.insert(0, 'lib3')\nready = True"),
                        s("b", "assert ready\nimport fidshadow\nv = fidshadow.V")]),
    ("sys_modules_inject", [s("a", "import sys, types\nm = types.ModuleType('fidvirtual')\nm.V = 3\nsys.modules['fidvirtual'] = m\ndel m"),
                            s("b", "import fidvirtual\nv = fidvirtual.V")]),
    ("warnings_error_filter", [s("a", "import warnings\nwarnings.simplefilter('error')"),
                               s("b", "import warnings\ntry:\n    warnings.warn('careful')\n    r = 'passed'\nexcept UserWarning:\n    r = 'raised'")]),
    ("warnings_error_numpy", [s("a", "import warnings\nwarnings.simplefilter('error', RuntimeWarning)"),
                              s("b", NP + "try:\n    m = float(np.mean(np.array([])))\nexcept RuntimeWarning:\n    m = -1.0")]),
    ("warnings_baseline_raises", [s("a", "import warnings\nwarnings.simplefilter('error')"),
                                  s("b", "import warnings\nwarnings.warn('boom')\nz = 1")]),
    ("eq_warnings_same_step", [s("a", "import warnings\nwith warnings.catch_warnings():\n    warnings.simplefilter('error')\n"
                                      "    try:\n        warnings.warn('w')\n        r = 'passed'\n    except UserWarning:\n        r = 'raised'"),
                               s("b", "q = r.upper()")]),
    ("mpl_use_backend", [s("a", "import matplotlib\nmatplotlib.use('Agg')"), s("b", "import matplotlib\nbackend = matplotlib.get_backend()")]),
    ("mpl_rcparams", [s("a", "import matplotlib as mpl\nmpl.rcParams['lines.linewidth'] = 7.5"),
                      s("b", "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nwidth = ax.plot([1, 2])[0].get_linewidth()\n"
                             "plt.close(fig)\ndel fig, ax")]),
    ("eq_mpl_rc_context", [s("a", "import matplotlib as mpl\nwith mpl.rc_context({'lines.linewidth': 7.5}):\n"
                                  "    width = mpl.rcParams['lines.linewidth']"), s("b", "w2 = width * 2")]),
    ("logging_level", [s("a", "import logging\nlogging.basicConfig(level=logging.DEBUG, force=True)"),
                       s("b", "import logging\nlvl = logging.getLogger().level")]),
    ("logging_file_handler", [s("a", "import logging\nlogging.basicConfig(filename='app.log', level=logging.INFO, "
                                     "format='%(message)s', force=True)"), s("b", "import logging\nlogging.info('step b ran')")]),
    ("decimal_prec", [s("a", "import decimal\ndecimal.getcontext().prec = 5"), s("b", "from decimal import Decimal\nd = Decimal(1) / Decimal(7)")]),
    ("eq_decimal_localcontext", [s("a", "import decimal\nwith decimal.localcontext() as ctx:\n    ctx.prec = 5\n"
                                        "    d = decimal.Decimal(1) / decimal.Decimal(7)"), s("b", "e = d * 2")]),
    ("monkeypatch_pandas_method", [s("a", PD + "pd.DataFrame.fid_f = lambda self: 1"),
                                   s("b", PD + "df = pd.DataFrame({'a': [1]})\ntry:\n    v = df.fid_f()\nexcept AttributeError:\n    v = 0")]),
    ("monkeypatch_json_dumps", [s("a", "import json\njson.dumps = lambda o, **k: 'patched'"), s("b", "import json\ntext = json.dumps([1])")]),
    ("monkeypatch_builtins", [s("a", "import builtins\nbuiltins.fid_helper = lambda: 42"), s("b", "v = fid_helper()")]),
    ("timezone_tzset", [s("a", "import os, time\nos.environ['TZ'] = 'Asia/Tokyo'\ntime.tzset()"),
                        s("b", "import time\nhour = time.localtime(0).tm_hour")]),
    ("sklearn_set_config", [s("a", "import sklearn\nsklearn.set_config(transform_output='pandas')"),
                            s("b", NP + "from sklearn.preprocessing import StandardScaler\n"
                                   "kind = type(StandardScaler().fit_transform(np.array([[1.0], [3.0]]))).__name__")]),
]

RNG = [
    ("rng_generator_two_steps", [s("a", NP + "rng = np.random.default_rng(0)"), s("b", "x = rng.random(2)"), s("c", "y = rng.random(2)")]),
    ("rng_generator_chain", [s("a", NP + "rng = np.random.default_rng(0)"), s("b", "x = rng.random(2)"), s("c", "y = rng.random(2) + x")]),
    ("rng_random_module_two_steps", [s("a", "import random\nrandom.seed(7)"), s("b", "import random\np1 = random.random()"),
                                     s("c", "import random\nq1 = random.random()")]),
    ("rng_random_instance", [s("a", "import random\nr = random.Random(3)"), s("b", "p1 = r.random()"), s("c", "q1 = r.random()")]),
    ("rng_seeded_shuffle", [s("a", "import random\nrandom.seed(2)\nitems = list(range(6))"), s("b", "import random\nrandom.shuffle(items)"),
                            s("c", "first = items[0]")]),
    ("rng_in_notebook_function", [s("a", NP + "rng = np.random.default_rng(0)\ndef draw(n):\n    return rng.random(n)"),
                                  s("b", "x = draw(2)"), s("c", "y = draw(2)")]),
    ("rng_sklearn_random_state", [s("a", NP + "rs = np.random.RandomState(0)"),
                                  s("b", NP + "from sklearn.utils import shuffle\nx1 = shuffle(np.arange(6), random_state=rs)"),
                                  s("c", NP + "from sklearn.utils import shuffle\nx2 = shuffle(np.arange(6), random_state=rs)")]),
    ("eq_rng_single_consumer", [s("a", NP + "rng = np.random.default_rng(0)"), s("b", "x = rng.random(2)"), s("c", "y = x * 2")]),
    ("eq_rng_reseeded_each_step", [s("a", NP + "x = np.random.default_rng(0).random(2)"),
                                   s("b", NP + "y = np.random.default_rng(1).random(2) + x")]),
    ("eq_rng_same_step", [s("a", NP + "rng = np.random.default_rng(0)\nx = rng.random(2)\ny = rng.random(2)"), s("b", "z = x + y")]),
]

ALIAS = [
    ("alias_list_append", [s("a", "a = [1, 2]"), s("b", "b = a\nb.append(3)"), s("c", "n = len(a)")]),
    ("alias_df_column", [s("a", PD + "df = pd.DataFrame({'x': [1, 2]})"), s("b", "df2 = df\ndf2['z'] = 1"), s("c", "cols = list(df.columns)")]),
    ("alias_numpy_view", [s("a", NP + "arr = np.arange(5)"), s("b", "v = arr[1:3]\nv[:] = 0"), s("c", "total = int(arr.sum())")]),
    ("alias_chained_assign", [s("a", "a = b = []"), s("b", "b.append(1)"), s("c", "n = len(a)")]),
    ("alias_chained_identity", [s("a", "a = [1]\nb = a"), s("b", "same = a is b")]),
    ("alias_loop_var_rows", [s("a", "rows = [{'v': 0}, {'v': 0}]"), s("b", "for r in rows:\n    r['v'] = 1"),
                             s("c", "total = sum(r['v'] for r in rows)")]),
    ("alias_loop_dict_values", [s("a", "cfg = {'a': {'n': 0}, 'b': {'n': 0}}"), s("b", "for v in cfg.values():\n    v['n'] += 1"),
                                s("c", "tot = sum(v['n'] for v in cfg.values())")]),
    ("alias_models_fit_loop", [s("a", FIT + "from sklearn.tree import DecisionTreeRegressor\n"
                                     "models = {'lr': LinearRegression(), 'dt': DecisionTreeRegressor(random_state=0)}"),
                               s("fit", "for m in models.values():\n    m.fit(X, y)"),
                               s("pred", "preds = {k: float(m.predict([[3.0]])[0]) for k, m in models.items()}")]),
    ("alias_call_result_append", [s("a", "d = {'k': [1]}"), s("b", "d.get('k').append(2)"), s("c", "n = len(d['k'])")]),
    ("alias_setdefault_append", [s("a", "groups = {}"), s("b", "groups.setdefault('a', []).append(1)"), s("c", "keys = sorted(groups)")]),
    ("alias_object_attr", [s("a", "class Box:\n    pass\nbox = Box()\nbox.v = 1"), s("b", "alias = box\nalias.v = 2"), s("c", "v = box.v")]),
    ("alias_numpy_out_param", [s("a", NP + "arr = np.ones(3)"), s("b", NP + "np.multiply(arr, 2, out=arr)"), s("c", "total = float(arr.sum())")]),
    ("alias_bound_method", [s("a", "lst = [1]\npush = lst.append"), s("b", "push(2)"), s("c", "n = len(lst)")]),
    ("alias_func_mutates_global", [s("a", "items = []\ndef add(v):\n    items.append(v)"), s("b", "add(1)\nadd(2)"), s("c", "n = len(items)")]),
    ("alias_global_statement", [s("a", "counter = 0\ndef bump():\n    global counter\n    counter += 1"), s("b", "bump()"),
                                s("c", "c10 = counter * 10")]),
    ("alias_nonlocal_closure", [s("a", "def make():\n    n = 0\n    def inc():\n        nonlocal n\n        n += 1\n        return n\n"
                                       "    return inc\ninc = make()"), s("b", "first = inc()"), s("c", "second = inc()")]),
    ("alias_mutable_default", [s("a", "def acc(v, bucket=[]):\n    bucket.append(v)\n    return len(bucket)"),
                               s("b", "n1 = acc(1)"), s("c", "n2 = acc(2)")]),
    ("alias_memo_dict", [s("a", "memo = {}\ndef fib(n):\n    if n not in memo:\n        memo[n] = n if n < 2 else fib(n - 1) + fib(n - 2)\n"
                                "    return memo[n]"), s("b", "f10 = fib(10)"), s("c", "size = len(memo)")]),
    ("alias_pipeline_component", [s("a", FIT + "from sklearn.preprocessing import StandardScaler\nfrom sklearn.pipeline import make_pipeline\n"
                                         "scaler = StandardScaler()\npipe = make_pipeline(scaler, LinearRegression())"),
                                  s("b", "pipe.fit(X, y)"), s("c", "mean0 = float(scaler.mean_[0])")]),
    ("alias_fit_assigned", [s("a", FIT + "model = LinearRegression()"), s("b", "fitted = model.fit(X, y)"),
                            s("c", "coef = float(model.coef_[0])")]),
    ("eq_alias_direct_append", [s("a", "a = [1]"), s("b", "a.append(2)"), s("c", "n = len(a)")]),
    ("eq_alias_df_setitem", [s("a", PD + "df = pd.DataFrame({'x': [1, 2]})"), s("b", "df['z'] = 1"), s("c", "cols = list(df.columns)")]),
    ("eq_alias_sort_inplace", [s("a", PD + "df = pd.DataFrame({'x': [3, 1, 2]})"), s("b", "df.sort_values('x', inplace=True)"),
                               s("c", "first = int(df['x'].iloc[0])")]),
    ("eq_alias_list_sort", [s("a", "rows = [3, 1, 2]"), s("b", "rows.sort()"), s("c", "first = rows[0]")]),
    ("eq_alias_copy_then_mutate", [s("a", "a = [1]"), s("b", "b = list(a)\nb.append(2)"), s("c", "n = len(a)")]),
    ("alias_shared_in_container", [s("a", "shared = [0]\npair = [shared, shared]"), s("b", "pair[0].append(1)\nn = len(pair[1])")]),
]

LATE = [
    ("late_lambda_global", [s("a", "t = 1\nf = lambda: t * 2"), s("b", "t = 5"), s("c", "y = f()")]),
    ("late_def_global", [s("a", "t = 1\ndef f():\n    return t * 2"), s("b", "t = 5"), s("c", "y = f()")]),
    ("late_partial", [s("a", "import functools\nt = 1\ndef g(k):\n    return t * k\nh = functools.partial(g, 3)"),
                      s("b", "t = 5"), s("c", "y = h()")]),
    ("late_closure_factory", [s("a", "def make():\n    return lambda: scale * 2\nscale = 1\nf = make()"), s("b", "scale = 4"), s("c", "y = f()")]),
    ("late_method_global", [s("a", "factor = 2\nclass M:\n    def go(self):\n        return factor * 10\nm = M()"),
                            s("b", "factor = 3"), s("c", "y = m.go()")]),
    ("late_lambda_over_mutable", [s("a", "data = [1]\nf = lambda: sum(data)"), s("b", "data.append(2)"), s("c", "y = f()")]),
    ("late_bound_method_obj", [s("a", "class C:\n    def __init__(self):\n        self.v = 1\n    def get(self):\n        return self.v\n"
                                      "c = C()\ng = c.get"), s("b", "c.v = 5"), s("d", "y = g()")]),
    ("late_decorator_registry", [s("a", "registry = []\ndef reg(fn):\n    registry.append(fn.__name__)\n    return fn"),
                                 s("b", "@reg\ndef one():\n    return 1"), s("c", "names = list(registry)")]),
    ("late_global_via_setter", [s("a", "mode = 'a'\ndef set_mode(m):\n    global mode\n    mode = m"), s("b", "set_mode('b')"),
                                s("c", "cur = mode")]),
    ("late_lru_cache", [s("a", "import functools\nk = 1\n@functools.lru_cache\ndef g():\n    return k"), s("b", "first = g()"),
                        s("c", "k = 2"), s("d", "second = g()")]),
    ("late_class_attr_mutation", [s("a", "class Cfg:\n    level = 1"), s("b", "Cfg.level = 3"), s("c", "lv = Cfg.level")]),
    ("late_class_method_patch", [s("a", "class K:\n    def val(self):\n        return 1\nk = K()"), s("b", "K.val = lambda self: 2"),
                                 s("c", "v = k.val()")]),
    ("late_subclasses", [s("a", "class Base:\n    pass"), s("b", "class Sub(Base):\n    pass"),
                         s("c", "subs = [k.__name__ for k in Base.__subclasses__()]")]),
    ("eq_late_default_arg", [s("a", "t = 1\ndef f(v=t):\n    return v"), s("b", "t = 5"), s("c", "y = f()")]),
    ("eq_late_rebind_same_step", [s("a", "t = 1\ndef f():\n    return t * 2"), s("b", "t = 5\ny = f()")]),
    ("eq_late_def_reads_param", [p("k = 2"), s("a", "def f(v):\n    return v * k"), s("b", "y = f(3)")]),
]

FILES = [
    ("files_two_writers", [s("a", "with open('out.txt', 'w') as f:\n    f.write('from a')"),
                           s("b", "with open('out.txt', 'w') as f:\n    f.write('from b')")]),
    ("files_two_appenders", [s("a", "with open('log.txt', 'a') as f:\n    f.write('a\\n')"),
                             s("b", "with open('log.txt', 'a') as f:\n    f.write('b\\n')")]),
    ("files_reader_no_after", [s("a", "with open('data.txt', 'w') as f:\n    f.write('42')"), s("b", "v = int(open('data.txt').read())")]),
    ("eq_files_reader_after", [s("a", "with open('data.txt', 'w') as f:\n    f.write('42')"), s("b", "v = int(open('data.txt').read())", A)]),
    ("files_overwrite_race", [s("a", "open('v.txt', 'w').write('1')"), s("b", "open('v.txt', 'w').write('2')", A),
                              s("c", "v = open('v.txt').read()", A)]),
    ("files_writefile_import", [s("a", "%%writefile fidhelper.py\nVALUE = 3\n"), s("b", "import fidhelper\nv = fidhelper.VALUE")]),
    ("files_writefile_reload", [s("a", "%%writefile fidmod2.py\nV = 1\n"), s("b", "import fidmod2\nv1 = fidmod2.V"),
                                s("c", "%%writefile fidmod2.py\nV = 2\n"), s("d", "import importlib, fidmod2\nimportlib.reload(fidmod2)\nv2 = fidmod2.V")]),
    ("files_path_text", [s("a", "from pathlib import Path\nn = Path('p.txt').write_text('hello')"),
                         s("b", "from pathlib import Path\nt = Path('p.txt').read_text()")]),
    ("files_to_csv", [s("a", PD + "pd.DataFrame({'a': [1, 2]}).to_csv('d.csv', index=False)"), s("b", PD + "back = pd.read_csv('d.csv')")]),
    ("eq_files_to_csv_after", [s("a", PD + "pd.DataFrame({'a': [1, 2]}).to_csv('d.csv', index=False)"),
                               s("b", PD + "back = pd.read_csv('d.csv')", A)]),
    ("files_np_save", [s("a", NP + "np.save('arr.npy', np.arange(4))"), s("b", NP + "back = np.load('arr.npy')")]),
    ("eq_files_np_save_after", [s("a", NP + "np.save('arr.npy', np.arange(4))"), s("b", NP + "back = np.load('arr.npy')", A)]),
    ("files_json_dump", [s("a", "import json\nwith open('c.json', 'w') as f:\n    json.dump({'k': [1, 2]}, f)"),
                         s("b", "import json\nwith open('c.json') as f:\n    back = json.load(f)")]),
    ("files_to_parquet", [s("a", PD + "pd.DataFrame({'a': [1, 2]}).to_parquet('d.parquet')"), s("b", PD + "back = pd.read_parquet('d.parquet')")]),
    ("files_mkdir_then_write", [s("a", "import os\nos.makedirs('outdir', exist_ok=True)"),
                                s("b", "with open('outdir/x.txt', 'w') as f:\n    f.write('x')")]),
    ("files_counter_race", [s("a", "open('count.txt', 'w').write('0')"),
                            s("b", "n1 = int(open('count.txt').read())\nopen('count.txt', 'w').write(str(n1 + 1))", A),
                            s("c", "n2 = int(open('count.txt').read())\nopen('count.txt', 'w').write(str(n2 + 1))", A)]),
    ("files_glob_listing", [s("a", "open('part1.txt', 'w').write('1')"), s("b", "open('part2.txt', 'w').write('2')"),
                            s("c", "import glob\nparts = sorted(glob.glob('part*.txt'))")]),
    ("files_shell_echo", [s("a", "!echo hi > shell.txt"), s("b", "t = open('shell.txt').read()")]),
    ("eq_files_same_step", [s("a", "open('one.txt', 'w').write('1')\nt = open('one.txt').read()"), s("b", "u = t * 2")]),
]

VALUES = [
    ("val_closure", [s("a", "def make(k):\n    def f(x):\n        return x * k\n    return f\ntriple = make(3)"), s("b", "y = triple(2)")]),
    ("val_partial", [s("a", "import functools\nsq = functools.partial(pow, exp=2)"), s("b", "y = sq(5)")]),
    ("val_class_instance", [s("a", "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"
                                   "    def norm2(self):\n        return self.x ** 2 + self.y ** 2\npt = Point(3, 4)"), s("b", "n = pt.norm2()")]),
    ("val_dataclass", [s("a", "from dataclasses import dataclass\n@dataclass\nclass Cfg:\n    a: int\n    b: str = 'x'\ncfg = Cfg(1)"),
                       s("b", "same = cfg == Cfg(1)")]),
    ("val_enum_identity", [s("a", "import enum\nclass Color(enum.Enum):\n    RED = 1\n    BLUE = 2\ncol = Color.RED"),
                           s("b", "same = col is Color.RED")]),
    ("val_isinstance_class", [s("a", "class Animal:\n    pass\npet = Animal()"), s("b", "ok = isinstance(pet, Animal)")]),
    ("val_isinstance_two_producers", [s("a", "class T:\n    pass"), s("b", "t = T()"), s("c", "ok = isinstance(t, T)")]),
    ("val_categorical", [s("a", PD + "ser = pd.Series(['a', 'b', 'a'], dtype='category')"),
                         s("b", "codes = ser.cat.codes.tolist()\ncats = list(ser.cat.categories)")]),
    ("val_datetime_tz", [s("a", PD + "df = pd.DataFrame({'t': pd.date_range('2024-01-01', periods=3, freq='h', tz='Europe/Paris')})"),
                         s("b", "hours = df['t'].dt.hour.tolist()\ntz = str(df['t'].dt.tz)")]),
    ("val_nullable_int", [s("a", PD + "ser = pd.Series([1, None, 3], dtype='Int64')"), s("b", "na = int(ser.isna().sum())\ndt = str(ser.dtype)")]),
    ("val_multiindex_rows", [s("a", PD + "df = pd.DataFrame({'x': [1, 2, 3]}, index=pd.MultiIndex.from_tuples([('a', 1), ('a', 2), ('b', 1)]))"),
                             s("b", "levels = df.index.nlevels\nv = int(df.loc[('a', 2), 'x'])")]),
    ("val_df_attrs", [s("a", PD + "df = pd.DataFrame({'a': [1]})\ndf.attrs['source'] = 'sensor'"), s("b", "src = df.attrs.get('source')")]),
    ("val_df_mixed_object", [s("a", PD + "df = pd.DataFrame({'m': [1, 'a', None]})"), s("b", "kinds = [type(v).__name__ for v in df['m']]")]),
    ("val_series_int_name", [s("a", PD + "ser = pd.Series([1, 2], name=0)"), s("b", "nm = ser.name")]),
    ("val_df_duplicate_columns", [s("a", PD + "df = pd.DataFrame([[1, 2]], columns=['a', 'a'])"), s("b", "ncols = df.shape[1]")]),
    ("val_df_index_freq", [s("a", PD + "df = pd.DataFrame({'v': [1, 2]}, index=pd.date_range('2024-01-01', periods=2, freq='D'))"),
                           s("b", "freq = df.index.freqstr")]),
    ("val_df_string_dtype", [s("a", PD + "ser = pd.Series(['a', None], dtype='string[python]')"), s("b", "dt = str(ser.dtype)\nstorage = ser.dtype.storage")]),
    ("val_set", [s("a", "st = {3, 1, 2}"), s("b", "lst = sorted(st)\nfirst = next(iter(st))")]),
    ("val_set_of_strings_order", [s("a", "st = {'apple', 'banana', 'cherry', 'date'}"), s("b", "order = list(st)")]),
    ("val_frozenset", [s("a", "fs = frozenset({'x', 'y'})"), s("b", "has = 'x' in fs")]),
    ("val_nested_dict", [s("a", "cfg = {'a': {'b': [1, (2, 3)], 'c': {'d': None}}, 'e': 1.5}"), s("b", "depth = cfg['a']['b'][1][0]")]),
    ("val_bytes", [s("a", "raw = b'\\x00\\xffabc'\nbuf = bytearray(raw)"), s("b", "n = len(buf) + raw[1]")]),
    ("val_structured_array", [s("a", NP + "rec = np.array([(1, 2.0), (3, 4.5)], dtype=[('a', 'i4'), ('b', 'f8')])"),
                              s("b", "tot = float(rec['b'].sum())\nnames = rec.dtype.names")]),
    ("val_numpy_object_array", [s("a", NP + "obj = np.array([1, 'a', None], dtype=object)"), s("b", "kinds = [type(v).__name__ for v in obj]")]),
    ("val_numpy_fortran", [s("a", NP + "m = np.asfortranarray(np.arange(6).reshape(2, 3))"), s("b", "fortran = bool(m.flags['F_CONTIGUOUS'])")]),
    ("val_numpy_strided_view", [s("a", NP + "v = np.arange(10)[::2]"), s("b", "contig = bool(v.flags['C_CONTIGUOUS'])")]),
    ("val_numpy_readonly", [s("a", NP + "ro = np.arange(3)\nro.flags.writeable = False"), s("b", "writeable = bool(ro.flags.writeable)")]),
    ("val_generator", [s("a", "gen = (i * i for i in range(3))"), s("b", "vals = list(gen)")]),
    ("val_open_file", [s("a", "open('in.txt', 'w').write('abc')\nfh = open('in.txt')"), s("b", "t = fh.read()")]),
    ("val_iterator_position", [s("a", "it = iter([1, 2, 3])\nfirst = next(it)"), s("b", "rest = list(it)")]),
    ("val_recursive_list", [s("a", "rl = [1]\nrl.append(rl)"), s("b", "selfref = rl[1] is rl")]),
    ("val_stringio", [s("a", "import io\nsio = io.StringIO('abcdef')\nhead = sio.read(2)"), s("b", "rest = sio.read()")]),
    ("val_groupby_object", [s("a", PD + "gb = pd.DataFrame({'k': ['a', 'b', 'a'], 'v': [1, 2, 3]}).groupby('k')"),
                            s("b", "sums = gb['v'].sum().tolist()")]),
    ("eq_val_fitted_model", [s("a", FIT + "model = LinearRegression().fit(X, y)"), s("b", "pred = model.predict(X)")]),
    ("eq_val_datetime", [s("a", "import datetime, zoneinfo\nwhen = datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo('UTC'))"),
                         s("b", "iso = when.isoformat()")]),
    ("eq_val_nan_inf", [s("a", "vals = [float('nan'), float('inf'), -0.0]"), s("b", "n = len(vals)")]),
    ("eq_val_numbers", [s("a", "from fractions import Fraction\nfrom decimal import Decimal\nnums = [10 ** 30, 1 + 2j, Fraction(1, 3), Decimal('1.10')]"),
                        s("b", "kinds = [type(v).__name__ for v in nums]")]),
    ("eq_val_generator_function", [s("a", "def gen():\n    yield 1\n    yield 2"), s("b", "vals = list(gen())")]),
    ("eq_val_plain_df", [s("a", PD + "df = pd.DataFrame({'a': [1, 2], 'b': [0.5, 1.5], 'c': ['x', 'y']})"), s("b", "tot = float(df['b'].sum())")]),
]

IPYTHON = [
    ("ipy_underscore", [s("a", "1 + 1"), s("b", "y = _ * 2")]),
    ("ipy_out_dict", [s("a", "40 + 2"), s("b", "y = Out[1]")]),
    ("ipy_who_ls", [s("a", "a1 = 1"), s("b", "names = %who_ls")]),
    ("ipy_get_ipython_user_ns", [s("a", "get_ipython().user_ns['injected'] = 5"), s("b", "v = injected")]),
    ("ipy_globals_assign", [s("a", "globals()['g1'] = 3"), s("b", "v = g1")]),
    ("ipy_exec", [s("a", "exec('e1 = 4')"), s("b", "v = e1")]),
    ("ipy_run_magic", [s("a", "%%writefile runme.py\nRV = 11\n"), s("b", "%run runme.py"), s("c", "v = RV")]),
    ("ipy_precision_magic", [s("a", "%precision 3"),
                             s("b", "prec = get_ipython().display_formatter.formatters['text/plain'].float_precision")]),
    ("ipy_del_import", [s("a", "import json"), s("b", "del json"), s("c", "try:\n    json\n    ok = True\nexcept NameError:\n    ok = False")]),
    ("eq_ipy_time_line", [s("a", "%time x = sum(range(10))"), s("b", "y = x + 1")]),
    ("eq_ipy_time_cell", [s("a", "%%time\nx = 5"), s("b", "y = x * 2")]),
    ("eq_ipy_capture", [s("a", "%%capture cap\nprint('hello')"), s("b", "out = cap.stdout")]),
    ("eq_ipy_shell_capture", [s("a", "lines = !echo one; echo two"), s("b", "n = len(lines)")]),
    ("eq_ipy_who", [s("a", "a1 = 1\nb1 = 2"), s("b", "%who\nc1 = a1 + b1")]),
    ("eq_ipy_dollar_var", [s("a", "fname = 'dollar.txt'"), s("b", "!echo hi > $fname")]),
]

CONTROLS = [
    ("eq_loop_var_read", [s("a", "rows = [1, 2, 3]"), s("b", "total = 0\nfor r in rows:\n    total += r")]),
    ("eq_try_nameerror_bound", [s("a", "x = 5"), s("b", "try:\n    x\nexcept NameError:\n    x = 1\ny = x")]),
    ("eq_try_nameerror_unbound", [s("a", "w = 0"), s("b", "try:\n    x\nexcept NameError:\n    x = 1\ny = x")]),
    ("eq_bound_in_for", [s("a", "acc = []\nfor i in range(3):\n    acc.append(i)"), s("b", "n = len(acc)")]),
    ("eq_bound_in_with", [s("a", "import io\nwith io.StringIO('abc') as f:\n    text = f.read()\ndel f"), s("b", "n = len(text)")]),
    ("eq_bound_in_if", [s("a", "flag = True\nif flag:\n    z = [1]\n    z.append(2)"), s("b", "n = len(z)")]),
    ("eq_model_fit", [s("a", FIT + "model = LinearRegression()"), s("b", "model.fit(X, y)"), s("c", "coef = float(model.coef_[0])")]),
    ("eq_model_predict", [s("a", FIT + "model = LinearRegression().fit(X, y)"), s("b", "pred = model.predict(X[:2])")]),
    ("eq_argmax", [s("a", NP + "arr = np.array([3, 9, 2])"), s("b", NP + "i = int(np.argmax(arr))")]),
    ("eq_builtin_calls", [s("a", "vals = [3, 1, 2]"), s("b", "info = (len(vals), sorted(vals), sum(vals), max(vals))")]),
    ("eq_print_received", [s("a", PD + "df = pd.DataFrame({'a': [1]})"), s("b", "print(df)\nn = len(df)")]),
    ("eq_json_dumps_received", [s("a", "d = {'a': [1, 2]}"), s("b", "import json\ntext = json.dumps(d)")]),
    ("eq_reassign_not_mutate", [s("a", "a = [1]"), s("b", "a = a + [2]"), s("c", "n = len(a)")]),
    ("eq_numpy_augassign", [s("a", NP + "arr = np.zeros(2)"), s("b", "arr += 1"), s("c", "tot = float(arr.sum())")]),
    ("eq_del_variable", [s("a", "tmp = 1\nkeep = 2\ndel tmp"), s("b", "k = keep")]),
    ("eq_rebound_later", [s("a", "x = 1"), s("b", "x = 2"), s("c", "y = x")]),
    ("eq_parameters", [p("n = 3"), s("a", "vals = list(range(n))"), s("b", "tot = sum(vals)")]),
    ("eq_class_used_later", [s("a", "class Acc:\n    def __init__(self):\n        self.items = []\n    def add(self, v):\n        self.items.append(v)"),
                             s("b", "acc = Acc()\nacc.add(1)"), s("c", "n = len(acc.items)")]),
    ("eq_hash_seed", [s("a", "h = hash('abc')"), s("b", "h2 = h + 1")]),
    ("eq_threads_joined", [s("a", "import threading\nresults = []\nth = threading.Thread(target=lambda: results.append(1))\nth.start()\n"
                                  "th.join()\ndel th"), s("b", "n = len(results)")]),
    ("eq_untagged_continuation", [s("a", "x = 1"), u("x = x + 1"), s("b", "y = x")]),
    ("eq_no_steps", [u("x = 1"), u("y = x + 1")]),
]

BRANCH = [
    ("branch_if_not_taken", [s("a", "x = 1\nflag = False"), s("b", "if flag:\n    x = 2"), s("c", "y = x")]),
    ("eq_branch_if_taken", [s("a", "x = 1\nflag = True"), s("b", "if flag:\n    x = 2"), s("c", "y = x")]),
    ("branch_param_flag", [p("flag = False"), s("a", "x = 1"), s("b", "if flag:\n    x = 2"), s("c", "y = x")]),
    ("branch_try_fails", [s("a", "x = 1"), s("b", "try:\n    x = int('bad')\nexcept ValueError:\n    pass"), s("c", "y = x")]),
    ("branch_empty_for", [s("a", "x = 1\nitems = []"), s("b", "for x in items:\n    pass"), s("c", "y = x")]),
    ("branch_suppress", [s("a", "x = 1"), s("b", "import contextlib\nwith contextlib.suppress(ZeroDivisionError):\n    x = 1 / 0"), s("c", "y = x")]),
    ("branch_match", [s("a", "x = 'keep'\ncmd = 'other'"), s("b", "match cmd:\n    case 'go':\n        x = 'changed'"), s("c", "y = x")]),
    ("eq_branch_both_bind", [s("a", "flag = False"), s("b", "if flag:\n    x = 2\nelse:\n    x = 3"), s("c", "y = x")]),
    ("eq_branch_conditional_import", [s("a", "flag = False"), s("b", "if flag:\n    import json as fmt\nelse:\n    fmt = None"),
                                      s("c", "none = fmt is None")]),
]

MISC = [
    ("misc_query_at", [s("a", PD + "df = pd.DataFrame({'a': [1, 5, 9]})\nt = 4"), s("b", "sel = df.query('a > @t')")]),
    ("misc_query_at_rebound", [s("a", PD + "df = pd.DataFrame({'a': [1, 5, 9]})\nt = 4"), s("b", "t = 8"), s("c", "sel = df.query('a > @t')")]),
    ("misc_eval_at", [s("a", PD + "df = pd.DataFrame({'a': [1, 2]})\noff = 10"), s("b", "res = df.eval('a + @off')")]),
    ("misc_lib_alias", [s("a", "import numpy as np\nlib = np"), s("b", "z = lib.zeros(2)")]),
    ("misc_module_in_dict", [s("a", "import math\nmods = {'m': math}"), s("b", "v = mods['m'].sqrt(4)")]),
    ("misc_import_rebound", [s("a", "import numpy as np"), s("b", "import pandas as np"), s("c", "name = np.__name__")]),
    ("misc_star_import", [s("a", "from math import *"), s("b", "v = floor(2.5)")]),
    ("eq_misc_from_import", [s("a", "from math import sqrt"), s("b", "r = sqrt(9)")]),
]

TABLES = {"config": CONFIG, "rng": RNG, "alias": ALIAS, "late_binding": LATE, "files": FILES, "values": VALUES,
          "ipython": IPYTHON, "control": CONTROLS, "branch": BRANCH, "misc": MISC}
if importlib.util.find_spec("torch") is not None:    # torch is optional: only then its seed case exists
    CONFIG.append(("torch_manual_seed", [s("a", "import torch\ntorch.manual_seed(0)"), s("b", "import torch\nx = torch.rand(2).tolist()")]))


def cases() -> list[tuple]:
    """Every case as (name, category, cells, compare-or-None), in table order. A table entry is
    (name, cells) or (name, cells, compare)."""
    out = [(entry[0], category, entry[1], entry[2] if len(entry) > 2 else None)
           for category, table in TABLES.items() for entry in table]
    names = [c[0] for c in out]
    assert len(names) == len(set(names)), "duplicate case names"
    return out


def notebook(name: str, category: str, cells: list, compare: list[str] | None) -> dict:
    """nbformat 4.5 JSON; the case's metadata travels in the notebook so one file describes itself."""
    def cell(i: int, tags: list[str], source: str) -> dict:
        return {"cell_type": "code", "id": f"c{i}", "metadata": {"tags": tags} if tags else {},
                "source": source, "outputs": [], "execution_count": None}

    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"},
                         "fidelity": {"case": name, "category": category, "compare": compare,
                                      "expect": "EQUAL" if name.startswith("eq_") else None}},
            "cells": [cell(i, tags, src) for i, (tags, src) in enumerate(cells, 1)]}


def generate(out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, index = [], []
    for name, category, cells, compare in cases():
        path = out / f"{name}.ipynb"
        path.write_text(json.dumps(notebook(name, category, cells, compare), indent=1))
        paths.append(path)
        index.append({"case": name, "category": category, "notebook": path.name})
    (out / "cases.json").write_text(json.dumps(index, indent=1))
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python generate.py OUT_DIR")
    written = generate(sys.argv[1])
    print(f"{len(written)} notebooks in {sys.argv[1]}")
