"""``.same/observed.json``: what each step showed it needs when it last ran locally."""
from __future__ import annotations

import json
import threading

import pytest

from same_nb.errors import SameError
from same_nb.store.learned import learned_path
from same_nb.store.observed import load_observed, observed_path, record_observed


def observation(run: int, *modules: str, **outputs: list[str]) -> dict:
    return {"run": run, "modules": list(modules),
            "outputs": {name: {"kind": "pickle", "type": "x.Y", "needs": needs} for name, needs in outputs.items()}}


@pytest.fixture
def nb(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text("{}")
    return path


def test_a_notebook_that_never_ran_has_no_observations(nb):
    assert load_observed(nb) == {}
    assert not observed_path(nb).exists()


def test_observations_round_trip_cleaned_of_what_no_lock_needs(nb):
    raw = observation(4, "pandas", "numpy", "ipykernel", "zmq", "json", "same_nb", "cython_runtime",
                      df=["pyarrow", "pandas"])
    assert record_observed(nb, {"load": raw}) is True
    assert load_observed(nb) == {"load": {"run": 4, "modules": ["numpy", "pandas"], "outputs": {
        "df": {"kind": "pickle", "type": "x.Y", "needs": ["pandas", "pyarrow"]}}}}
    data = json.loads(observed_path(nb).read_text())
    assert list(data["notebooks"]) == ["nb.ipynb"]
    assert observed_path(nb) == nb.parent / ".same" / "observed.json"
    assert not learned_path(nb).exists()          # the compile cache key's file is left alone


def test_the_file_is_rewritten_only_when_what_a_lock_needs_changes(nb):
    record_observed(nb, {"load": observation(1, "pandas")})
    before = observed_path(nb).stat()
    assert record_observed(nb, {"load": observation(2, "pandas")}) is False
    after = observed_path(nb).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert load_observed(nb)["load"]["run"] == 1               # the first run that saw it
    assert record_observed(nb, {"load": observation(3, "pandas", "numpy")}) is True
    assert load_observed(nb)["load"] == {"run": 3, "modules": ["numpy", "pandas"], "outputs": {}}


def test_steps_and_notebooks_keep_their_own_entries(nb):
    other = nb.with_name("other.ipynb")
    record_observed(nb, {"load": observation(1, "pandas")})
    record_observed(nb, {"train": observation(2, "numpy")})
    record_observed(other, {"load": observation(5, "yaml")})
    assert sorted(load_observed(nb)) == ["load", "train"]
    assert load_observed(other) == {"load": {"run": 5, "modules": ["yaml"], "outputs": {}}}


def test_a_damaged_file_is_an_error_naming_it_and_the_next_run_replaces_it(nb):
    path = observed_path(nb)
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(SameError) as info:
        load_observed(nb)
    assert info.value.path == str(path) and "delete the file" in str(info.value)
    record_observed(nb, {"load": observation(7, "pandas")})
    assert load_observed(nb) == {"load": {"run": 7, "modules": ["pandas"], "outputs": {}}}


def test_concurrent_runs_do_not_drop_each_others_steps(nb):
    record_observed(nb, {"warm": observation(0, "numpy")})          # the machinery probe, once

    def record(i: int) -> None:
        record_observed(nb, {f"s{i}": observation(i, "pandas")})

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(load_observed(nb)) == sorted(["warm"] + [f"s{i}" for i in range(8)])
    assert not [p for p in observed_path(nb).parent.iterdir() if p.name.endswith(".tmp")]
