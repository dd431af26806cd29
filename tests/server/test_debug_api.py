"""The sidebar's "Debug in notebook" endpoint on a real Jupyter server over real runs: the code it
answers is the exact call to run in the notebook's kernel, with every value a Python literal (a
notebook name with quotes included), and steps that cannot be loaded are refused."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures, scoped to this module)

from same_nb.local.progress import make_progress
from same_nb.service import run_notebook
from server import test_handlers as base

from conftest import TESTS

api, jp_server_config, _own_store = base.api, base.jp_server_config, base._own_store
pytestmark = pytest.mark.slow
HOSTILE = "it's \"q\"\n.ipynb"


@pytest.fixture
def failed(jp_root_dir) -> dict:
    """A failed run of debug_division under a name with quotes and a newline, in work/."""
    work = Path(jp_root_dir) / "work"
    work.mkdir()
    nb = work / HOSTILE
    shutil.copy(TESTS / "notebooks" / "debug_division.ipynb", nb)
    result = run_notebook(nb, params=[("offset", "1")], progress=make_progress(quiet=True))
    assert not result.ok
    return {"path": f"work/{HOSTILE}", "run": str(result.run_id)}


def test_the_code_loads_the_failed_step_with_every_value_a_literal(api, failed):
    code, reply = api("GET", "runs", failed["run"], "steps", "train-model", "debug", params={"path": failed["path"]})
    assert code == 200, reply
    assert reply["code"] == (f"import same_nb; same_nb.load_step('train-model', run={failed['run']}, "
                             f"notebook={HOSTILE!r})")
    call = ast.parse(reply["code"]).body[1].value                   # parses: the name did not break out
    assert [ast.literal_eval(a) for a in call.args] == ["train-model"]
    assert {k.arg: ast.literal_eval(k.value) for k in call.keywords} == {"run": int(failed["run"]), "notebook": HOSTILE}
    assert (reply["status"], reply["inputs"], reply["params"]) == ("failed", ["frame", "scale"], ["offset"])


def test_steps_that_cannot_be_loaded_are_refused(api, failed):
    path = {"path": failed["path"]}
    cases = [(("runs", failed["run"], "steps", "report", "debug"), 400, "step 'report' never started"),
             (("runs", failed["run"], "steps", "nope", "debug"), 404, "has no step 'nope'"),
             (("runs", "999", "steps", "train-model", "debug"), 404, "there is no run 999 in this folder")]
    for parts, status, words in cases:
        code, reply = api("GET", *parts, params=path)
        assert code == status and words in reply["message"], (parts, reply)
    code, _ = api("GET", "runs", failed["run"], "steps", "x'y", "debug", params=path)
    assert code == 404                                              # not a step name: no route
    code, _ = api("GET", "runs", failed["run"], "steps", "train-model", "debug", params=path,
                  headers={"Authorization": "token wrong"})
    assert code == 403
