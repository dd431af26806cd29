"""The prologue and epilogue of a step that carries process state: replayed configuration in notebook
order, library settings only where the library is loaded, generator state restored after the inputs
and captured before the outputs are saved, the planned channels handed to the runtime."""
from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

from same_nb.service import compile_notebook


def _steps(write_notebook, tmp_path: Path, *sources: str) -> dict[str, dict]:
    nb = write_notebook([([f"step:s{i}"], s) for i, s in enumerate(sources)])
    out = tmp_path / "out"
    compile_notebook(nb, out)
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "steps").glob("*.ipynb"))}


def _cell(nb: dict, cell_id: str) -> str:
    return next("".join(c["source"]) for c in nb["cells"] if c["id"] == cell_id)


def test_generator_state_is_restored_after_inputs_and_captured_before_saving(write_notebook, tmp_path):
    steps = _steps(write_notebook, tmp_path, "import random\nrandom.seed(1)", "import random\nv = random.random()",
                   "import random\nw = random.random()")
    prologue, epilogue = _cell(steps["s1"], "same-nb-prologue"), _cell(steps["s1"], "same-nb-epilogue")
    assert prologue.index("load_inputs") < prologue.index("_same_nb_state.restore('random', _same_nb_rng_random)")
    assert prologue.rstrip().endswith("_same_nb_state.begin(['random'])")
    assert epilogue.index("_same_nb_rng_random = _same_nb_state.capture('random')") < epilogue.index("save_outputs")
    assert "capture" not in _cell(steps["s2"], "same-nb-epilogue")          # the chain ends there
    assert "restore" not in _cell(steps["s0"], "same-nb-prologue")          # and starts fresh here
    assert steps["s1"]["metadata"]["same_nb"]["state_writes"] == ["random"]


def test_configuration_before_the_imports_that_need_it(write_notebook, tmp_path):
    steps = _steps(write_notebook, tmp_path,
                   "import os, sys\nos.environ['MODE'] = 'x'\nsys.path.append('lib')\nimport mylib\nx = 1",
                   "y = mylib.f(x)")
    prologue = _cell(steps["s1"], "same-nb-prologue")
    order = [prologue.index(text) for text in ("os.environ['MODE'] = 'x'", "sys.path.append('lib')", "import mylib",
                                                "load_inputs")]
    assert order == sorted(order)
    assert prologue.count("import os\n") == 1


def test_a_library_setting_waits_for_the_inputs_where_the_step_does_not_import_it(write_notebook, tmp_path):
    steps = _steps(write_notebook, tmp_path, "import pandas as pd\npd.set_option('display.max_rows', 5)\n"
                   "df = pd.DataFrame({'a': [1]})", "t = repr(df)", "import pandas as pd\nu = 1")
    guarded = _cell(steps["s1"], "same-nb-prologue")
    assert ("if _same_nb_state.imported('pandas'):\n    import pandas as pd\n    pd.set_option('display.max_rows', 5)"
            in guarded)
    assert guarded.index("load_inputs") < guarded.index("imported('pandas')")
    plain = _cell(steps["s2"], "same-nb-prologue")
    assert "imported(" not in plain and plain.index("pd.set_option") < plain.index("load_inputs")


def test_user_strings_reach_the_prologue_as_python_literals(write_notebook, tmp_path):
    value = "it's \"quoted\"\n{braces} \\ end"
    steps = _steps(write_notebook, tmp_path, f"import os\nos.environ['X'] = {value!r}", "y = 1")
    prologue = _cell(steps["s1"], "same-nb-prologue")
    tree = ast.parse(prologue)                       # the whole prologue is valid Python
    (assign,) = [n for n in tree.body if isinstance(n, ast.Assign)]
    assert ast.literal_eval(assign.value) == value


def test_a_statement_that_binds_names_runs_in_a_function(write_notebook, tmp_path):
    steps = _steps(write_notebook, tmp_path, "import warnings\nfor action in ['ignore']:\n    warnings.simplefilter(action)",
                   "y = 1")
    prologue = _cell(steps["s1"], "same-nb-prologue")
    block = prologue[prologue.index("def _same_nb_replay"):prologue.index("del _same_nb_replay")]
    namespace: dict = {}
    with warnings.catch_warnings():
        exec("import warnings\n" + block + "del _same_nb_replay\n", namespace)
        assert warnings.filters[0][0] == "ignore"
    assert "action" not in namespace and "_same_nb_replay" not in namespace


def test_a_step_without_effects_only_marks_its_start(write_notebook, tmp_path):
    steps = _steps(write_notebook, tmp_path, "x = 1", "y = x + 1")
    prologue = _cell(steps["s1"], "same-nb-prologue")
    assert prologue.splitlines()[1:] == ["import same_nb.runtime as _same_nb_runtime",
                                         "_same_nb_runtime.load_inputs(_same_nb_spec, globals())",
                                         "import same_nb.runtime.state as _same_nb_state",
                                         "_same_nb_state.begin([])"]
    assert "state_writes" not in steps["s1"]["metadata"]["same_nb"]
