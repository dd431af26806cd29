"""Regenerate the fixture notebooks: `python tests/notebooks/make_fixtures.py`.

Each fixture is named for the case it covers. Cells are (tags, source) pairs; a tag list starting
with "md" makes a markdown cell.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent

FIXTURES: dict[str, list[tuple[list[str], str]]] = {
    "tags_none": [
        ([], "x = 1\ny = x + 1"),
        ([], "z = y * 2"),
    ],
    "tags_first_cell": [
        (["step:load"], "data = [1, 2, 3]"),
        (["step:total"], "total = sum(data)"),
    ],
    "tags_code_before_first": [
        ([], "import math\nbase = 10"),
        (["md"], "## Load"),
        (["step:load"], "data = [base, base + 1]"),
        ([], "data.append(math.floor(2.5))"),
        (["step:report"], "report = f'{len(data)} items, max {max(data)}'"),
    ],
    "tags_consecutive": [
        (["step:a"], "a = 1"),
        (["step:b"], "b = 2"),
        (["step:c"], "c = a + b"),
    ],
    "tags_skip": [
        (["step:load"], "data = list(range(5))"),
        (["skip"], "print('debug only')\ndebug = True"),
        (["step:use"], "n = len(data)"),
    ],
    "tags_parameters": [
        (["parameters"], "alpha = 0.5\nname = 'run'\nepochs = 3\nflags = [1, 2]\nopts = {'a': 1}\nnothing = None\nverbose = False"),
        (["step:prep"], "scaled = [alpha * i for i in range(epochs)]"),
        (["step:label"], "label = f'{name}-{len(scaled)}'"),
    ],
    "tags_after": [
        (["step:write"], "open('side_effect.txt', 'w').write('hi')"),
        (["step:read", "after:write"], "text = open('side_effect.txt').read()"),
    ],
    "tags_other_ignored": [
        (["step:load", "hide-input", "injected-parameters"], "v = 1"),
        (["remove-output"], "w = v + 1"),
    ],
    "error_duplicate_step": [
        (["step:load"], "a = 1"),
        (["step:train"], "b = a"),
        (["step:load"], "c = b"),
    ],
    "error_cycle": [
        (["step:a", "after:c"], "a = 1"),
        (["step:b"], "b = a + 1"),
        (["step:c"], "c = b + 1"),
    ],
    "error_after_missing": [
        (["step:a"], "a = 1"),
        (["step:b", "after:nope"], "b = a"),
    ],
    "error_invalid_step_name": [
        (["step:bad name!"], "a = 1"),
    ],
    "error_params_not_literal": [
        (["parameters"], "alpha = 0.5\nbeta = alpha * 2"),
        (["step:a"], "x = beta"),
    ],
    "error_no_code": [
        (["md"], "# Only prose here"),
    ],
    "kale_conventions": [
        (["imports"], "import statistics"),
        (["functions"], "def double(v):\n    return v * 2"),
        (["pipeline-parameters"], "factor = 3"),
        (["block:load"], "values = [1, 2, 3]"),
        (["block:scale", "prev:load"], "scaled = [double(v) * factor for v in values]"),
        (["skip"], "print(scaled)"),
        (["block:summarize", "prev:scale"], "mean = statistics.mean(scaled)"),
        (["pipeline-metrics"], "mean"),
    ],
    "same_conventions": [
        (["same_step_0"], "numbers = [4, 5, 6]"),
        (["same_step_1"], "doubled = [n * 2 for n in numbers]"),
        (["same_step_2"], "result = sum(doubled)"),
    ],
    "magics": [
        (["step:load"], "%matplotlib inline\n%time data = list(range(10))\nfiles = !echo a b"),
        (["step:stats"], "%%time\nsquares = [d * d for d in data]\ntotal = sum(squares)"),
        (["step:quiet"], "%%capture captured\nprint(total)\nhalf = total / 2"),
        ([], "!echo shell works\n%pip install -q 'pyyaml>=6'\nlast = half"),
    ],
    "mutation": [
        (["step:load"], "rows = [3, 1, 2]\nconfig = {'k': 1}\nplain = [9]"),
        (["step:sort"], "rows.sort()\nconfig['k'] = 2"),
        (["step:use"], "first = rows[0]\nk = config['k']\nalso = plain[0]"),
    ],
    "opaque_mutation": [
        (["step:load"], "import random\nitems = [1, 2, 3, 4]"),
        (["step:shuffle"], "random.shuffle(items)\nn = len(items)"),
        (["step:use"], "head = items[0]"),
    ],
    "functions_across_steps": [
        (["step:define"], "threshold = 1\n\ndef above(values):\n    return [v for v in values if v > threshold]\n\nclass Counter:\n    def count(self, values):\n        return len(above(values))"),
        (["step:change"], "threshold = 5"),
        (["step:use"], "kept = above([1, 4, 6, 9])\ncounted = Counter().count([2, 7])"),
    ],
    "comprehension_scope": [
        (["step:make"], "i = 100\nsquares = [i * i for i in range(4)]\npairs = {k: v for k, v in zip('ab', [1, 2])}"),
        (["step:use"], "total = sum(x for x in squares)\nstill_i = i\nkeys = [k for k in pairs]"),
    ],
    "redefinition": [
        (["step:first"], "value = 1"),
        (["step:second"], "value = value + 10"),
        (["step:third"], "seen = value"),
    ],
    "del_name": [
        (["step:make"], "tmp = [1, 2]\nkeep = tmp + [3]\ndel tmp"),
        (["step:use"], "size = len(keep)"),
    ],
    "undefined_name": [
        (["step:a"], "x = mystery + 1"),
    ],
    "failing_step": [
        (["step:load"], "values = [1, 2, 3]"),
        (["step:boom"], "total = sum(values)\nraise ValueError(f'bad total {total}')"),
        (["step:after_boom"], "report = total * 2"),
        (["step:independent"], "other = len(values)"),
    ],
    # load_step: 'train-model' divides by a value 'prepare' computes, 0 when offset is 1; it continues
    # numpy's global generator from 'prepare' and starts with the pandas option 'prepare' set.
    "debug_division": [
        (["parameters"], "offset = 0"),
        (["step:prepare"], "import numpy as np\nimport pandas as pd\npd.set_option('display.max_rows', 7)\n"
                           "np.random.seed(3)\nframe = pd.DataFrame({'x': [1.0, 2.0, 3.0]})\nscale = 3 - 3 * offset"),
        (["step:train-model"], "noise = np.random.rand()\nrows = pd.get_option('display.max_rows')\n"
                               "ratio = float(frame['x'].sum()) / scale * (offset + 1)"),
        (["step:report"], "summary = f'{ratio:.3f} {noise:.3f} {rows}'"),
    ],
    "unpassable_value": [
        (["step:open_file"], "fh = open('unpassable_value.ipynb')"),
        (["step:use_file"], "first = fh.readline()"),
    ],
    "branching": [
        (["parameters"], "n = 6"),
        (["step:load"], "base = list(range(n))"),
        (["step:left"], "left = [b * 2 for b in base]"),
        (["step:right"], "right = [b + 100 for b in base]"),
        (["step:join"], "joined = list(zip(left, right))\ncount = len(joined)"),
    ],
    # Runner fixtures: the tests create the files these read (data.txt, flag.txt, go.txt).
    "relative_file": [
        (["step:read"], "text = open('data.txt').read().strip()"),
        (["step:count"], "words = text.split()\nn_words = len(words)\nprint(f'{n_words} words')"),
    ],
    "data_kinds": [
        (["step:make"], "import numpy as np\nimport pandas as pd\n"
                        "frame = pd.DataFrame({'a': [1, 2, 3], 'b': [0.5, 1.5, 2.5]})\n"
                        "arr = np.arange(6).reshape(2, 3)\nsame_arr = arr.copy()\nmeta = {'name': 'x', 'tags': ('a', 'b')}"),
        (["step:use"], "total = float(frame['b'].sum()) + float(arr.sum())\nmean = np.mean(arr)\n"
                       "same = bool((arr == same_arr).all())\nkeys = sorted(meta)\nlabels = pd.Series(keys)"),
    ],
    "parallel_sleep": [
        (["step:left"], "import os, time\nleft_pid = os.getpid()\nleft_cwd = os.getcwd()\ntime.sleep(1.5)"),
        (["step:right"], "import os, time\nright_pid = os.getpid()\ntime.sleep(1.5)"),
        (["step:join"], "import os\npids = [left_pid, right_pid, os.getpid()]"),
    ],
    "sweep_grid": [
        (["parameters"], "scale = 1.0\nseed = 0\nlabel = 'grid'"),
        (["step:load"], "base = list(range(5))"),
        (["step:count"], "count = len(base)"),
        (["step:fit"], "fitted = [b * scale + seed for b in base]"),
        (["step:score"], "import same_nb\nloss = sum(fitted) / count\nsame_nb.log_metric('loss', loss)\n"
                         "same_nb.log_metric('accuracy', 1 / (1 + loss))"),
    ],
    "resume_flag": [
        (["step:load"], "values = [1, 2, 3]"),
        (["step:scale"], "factor = int(open('flag.txt').read())\nscaled = [v * factor for v in values]"),
        (["step:total"], "total = sum(scaled)"),
        (["step:independent"], "count = len(values)"),
    ],
    "wait_for_file": [
        (["step:first"], "x = 1"),
        (["step:wait"], "import os, pathlib, time\npathlib.Path('wait.pid').write_text(str(os.getpid()))\n"
                        "while not os.path.exists('go.txt'):\n    time.sleep(0.05)\ny = x + 1"),
        (["step:last"], "z = y * 2"),
    ],
    # Resources per step: a light, a memory-heavy, a busy, an idle step and one whose child process
    # exits before the step ends; `frames` makes the fork server preload pandas for the whole pipeline.
    "resources": [
        (["parameters"], "heavy_mb = 200\nbusy_s = 1.0"),
        (["step:prepare"], "import numpy as np\nsizes = np.arange(100_000)"),
        (["step:light"], "total = int(sizes.sum())"),
        (["step:frames"], "import pandas as pd\nframe = pd.DataFrame({'n': sizes})"),
        (["step:heavy"], "block = bytearray(b'x') * (heavy_mb * 1_000_000)\nheavy_len = len(block)\ndel block"),
        (["step:busy"], "import time\nstart = time.process_time()\nspins = 0\n"
                        "while time.process_time() - start < busy_s:\n    spins += 1"),
        (["step:idle"], "import time\ntime.sleep(busy_s)\nslept = busy_s"),
        (["step:child"], "import subprocess, sys\n"
                         "hog = ('b = bytearray(b\"x\") * 150_000_000\\nimport time\\nt = time.process_time()\\n'\n"
                         "       'while time.process_time() - t < 0.5: pass')\n"
                         "child_code = subprocess.run([sys.executable, '-c', hog]).returncode"),
        (["step:report"], "summary = (total, len(frame), heavy_len, spins > 0, slept, child_code)"),
    ],
    "resources_failing": [
        (["step:load"], "values = [1, 2, 3]"),
        (["step:boom"], "block = bytearray(b'x') * (80_000_000 + len(values))\nraise ValueError(f'failed after {len(block)} bytes')"),
    ],
    # Front-end fixtures for tag and data-flow corner cases; each runs top to bottom.
    "tags_skip_step": [
        (["step:load"], "data = [1, 2]"),
        (["step:debug", "skip"], "print('debug only')"),
        ([], "n = len(data)"),
    ],
    "parameter_mutation": [
        (["parameters"], "flags = [1, 2]\nlimit = 3"),
        (["step:extend"], "flags.append(limit)"),
        (["step:use"], "count = len(flags)"),
    ],
    "star_import": [
        (["step:join"], "from posixpath import *\nfull = join('data', 'raw.csv')"),
        (["step:split"], "name = basename(full)\nfolder = dirname(full)"),
    ],
    # Data drift: `shift` moves one column, `extra_column` changes the schema; `age` never changes.
    "drift_shift": [
        (["parameters"], "shift = 0.0\nextra_column = False\nrows = 2000"),
        (["step:load"], "import numpy as np\nimport pandas as pd\n\nrng = np.random.default_rng(0)\n"
                        "df = pd.DataFrame({'income': rng.normal(50, 10, rows) + shift,\n"
                        "                   'age': rng.normal(40, 12, rows),\n"
                        "                   'city': rng.choice(['paris', 'rome', 'oslo'], rows)})\n"
                        "if extra_column:\n    df['score'] = 1.0\n"
                        "incomes = df['income'].copy()\nages = df[['age']].to_numpy()"),
        (["step:report"], "summary = (float(df['income'].mean()), float(incomes.median()), ages.shape)"),
    ],
}


def cell(tags: list[str], source: str, i: int) -> dict:
    if tags[:1] == ["md"]:
        return {"cell_type": "markdown", "id": f"c{i}", "metadata": {}, "source": source}
    meta = {"tags": tags} if tags else {}
    return {"cell_type": "code", "id": f"c{i}", "metadata": meta, "source": source,
            "outputs": [], "execution_count": None}


def notebook(cells: list[tuple[list[str], str]]) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}},
            "cells": [cell(t, s, i) for i, (t, s) in enumerate(cells, 1)]}


def main() -> None:
    for name, cells in FIXTURES.items():
        (HERE / f"{name}.ipynb").write_text(json.dumps(notebook(cells), indent=1) + "\n")
    # Loading errors, written by hand because they are not valid notebooks.
    (HERE / "error_not_json.ipynb").write_text('{"cells": [\n  {"cell_type": "code",\n  oops\n]}\n')
    (HERE / "error_not_notebook.ipynb").write_text('{"hello": "world"}\n')
    r_nb = notebook([([], "x <- 1")])
    r_nb["metadata"] = {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"},
                        "language_info": {"name": "R"}}
    (HERE / "error_r_kernel.ipynb").write_text(json.dumps(r_nb, indent=1) + "\n")
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
          "worksheets": [{"cells": [
              {"cell_type": "code", "input": "a = 1", "language": "python", "outputs": [],
               "metadata": {"tags": ["step:one"]}},
              {"cell_type": "code", "input": "b = a + 1", "language": "python", "outputs": [],
               "metadata": {"tags": ["step:two"]}}], "metadata": {}}]}
    (HERE / "old_format_v3.ipynb").write_text(json.dumps(v3, indent=1) + "\n")


if __name__ == "__main__":
    main()
