"""Process state and files cross steps as in one kernel: each notebook runs as a pipeline (`-j 2`, no
cache) and top to bottom with papermill, in two copies of its folder, and every variable and every
file it leaves must be equal. These are the issue #13 cases for configuration, global random
generators and files (state.py, the prologue/epilogue, frontend/effect*.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_equivalence import assert_same, pipeline_values, plain_run

from conftest import notebook_data

NP = "import numpy as np\n"
PD = "import pandas as pd\n"

CASES = {
    "numpy_seed_then_two_draws": [
        (["step:setup"], NP + "np.random.seed(42)"),
        (["step:first"], "x = np.random.rand(3)"),
        (["step:second"], "y = np.random.rand(3)")],
    "random_seed": [
        (["step:a"], "import random\nrandom.seed(1)"),
        (["step:b"], "import random\nv = random.random()"),
        (["step:c"], "import random\nw = [random.randint(0, 100) for _ in range(3)]")],
    "pandas_option_repr": [
        (["step:a"], PD + "pd.set_option('display.precision', 2)\ndf = pd.DataFrame({'v': [1/3, 2/3]})"),
        (["step:b"], "text = repr(df)")],
    "environ": [
        (["step:a"], "import os\nos.environ['SAME_NB_T_X'] = '1'"),
        (["step:b"], "%env SAME_NB_T_Y=2"),
        (["step:c"], "import os\nv = (os.environ.get('SAME_NB_T_X'), os.environ.get('SAME_NB_T_Y'))")],
    "chdir_relative_file": [
        (["step:a"], "import os\nos.makedirs('sub', exist_ok=True)\nos.chdir('sub')"),
        (["step:b"], "with open('out.txt', 'w') as f:\n    f.write('hello')"),
        (["step:c"], "t = open('out.txt').read()")],
    "warnings_error": [
        (["step:a"], "import warnings\nwarnings.simplefilter('error')"),
        (["step:b"], "import warnings\ntry:\n    warnings.warn('careful')\n    r = 'passed'\nexcept UserWarning:\n"
                     "    r = 'raised'")],
    "file_written_then_read": [
        (["step:a"], "with open('data.txt', 'w') as f:\n    f.write('42')"),
        (["step:b"], "v = int(open('data.txt').read())")],
    "two_appenders": [
        (["step:a"], "import time\ntime.sleep(0.5)\nwith open('log.txt', 'a') as f:\n    f.write('a\\n')"),
        (["step:b"], "with open('log.txt', 'a') as f:\n    f.write('b\\n')"),
        (["step:c"], "lines = open('log.txt').read().splitlines()")],
    "writefile_then_import": [
        (["step:a"], "%%writefile samenb_helper_mod.py\nVALUE = 3\n"),
        (["step:b"], "import samenb_helper_mod\nv = samenb_helper_mod.VALUE")],
    "monkeypatch_and_rng_function": [
        (["step:a"], PD + NP + "pd.DataFrame.double_sum = lambda self: 2 * self.values.sum()\n"
                     "def noise(n):\n    return np.random.normal(size=n)\nnp.random.seed(7)"),
        (["step:b"], "df = pd.DataFrame({'a': [1, 2]})\ns = df.double_sum()\nn1 = noise(2)"),
        (["step:c"], "n2 = noise(2)")],
}


def _write(folder: Path, cells) -> Path:
    folder.mkdir(parents=True)
    path = folder / "nb.ipynb"
    path.write_text(json.dumps(notebook_data(cells), indent=1))
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".same" not in p.parts and p.suffix != ".ipynb" and p.suffix != ".pkl"
            and "__pycache__" not in p.parts}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_pipeline_equals_top_to_bottom(case, tmp_path, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    piped_nb = _write(tmp_path / "pipeline", CASES[case])
    plain_nb = _write(tmp_path / "plain", CASES[case])
    piped, params, _ = pipeline_values(piped_nb)
    plain, lost = plain_run(plain_nb, params)
    assert piped and set(piped) == set(plain) - lost
    for name, (step, value) in sorted(piped.items()):
        assert_same(f"{name} (last in step {step})", value, plain[name])
    assert _files(tmp_path / "pipeline") == _files(tmp_path / "plain")
