"""Where each requirement of a step comes from: its imports, what its last local run loaded, what its
outputs and inputs need to cross, !pip lines; and which loaded modules are the kernel's own."""
from __future__ import annotations

import sys
from importlib import metadata

import pytest

from same_nb.envs import requirements as req
from same_nb.envs.sources import SOURCES, Requirement, StepRequirements, observed_origins
from same_nb.frontend.ir import Import, Input, Pipeline, Step


def imp(module: str) -> Import:
    return Import(module=module, top=module.split(".")[0], statement=f"import {module}", cell=1, line=1)


def pipeline(*steps: Step) -> Pipeline:
    return Pipeline(name="p", notebook="nb.ipynb", notebook_sha256="0" * 64, steps=list(steps))


def pin(dist: str) -> str:
    return f"{dist}=={metadata.version(dist)}"


def by_dist(result: StepRequirements) -> dict[str, list[str]]:
    return {r.dist.lower(): r.sources for r in result.requirements}


LOAD = Step("load", imports=[imp("sklearn.datasets")], outputs=["df"])
TRAIN = Step("train", imports=[imp("sklearn.linear_model")], outputs=["model"],
             inputs=[Input("df", "variable", "load")])
OBSERVED = {
    "load": {"run": 3, "modules": ["numpy", "pandas", "pyarrow", "sklearn"],
             "outputs": {"df": {"kind": "pandas-dataframe", "type": "pandas.DataFrame",
                                "needs": ["pandas", "pyarrow"]}}},
    "train": {"run": 3, "modules": ["numpy", "sklearn"],
              "outputs": {"model": {"kind": "pickle", "type": "sklearn.linear_model.LogisticRegression",
                                    "needs": ["cloudpickle", "sklearn"]}}},
}


def test_requirements_name_their_sources():
    result = req.step_requirements(pipeline(LOAD, TRAIN), ".", observed=OBSERVED)
    assert by_dist(result["load"]) == {"numpy": ["loaded"], "pandas": ["loaded", "serializer"],
                                       "pyarrow": ["loaded", "serializer"], "scikit-learn": ["import", "loaded"]}
    # train never imports pandas, but its input df is a DataFrame that arrives as an Arrow file.
    assert by_dist(result["train"]) == {"cloudpickle": ["serializer"], "numpy": ["loaded"],
                                        "pandas": ["input"], "pyarrow": ["input"],
                                        "scikit-learn": ["import", "loaded", "serializer"]}
    assert pin("pandas") in result["train"].pins and pin("pyarrow") in result["train"].pins
    assert result["train"].observed_run == 3 and result["train"].warnings == []
    assert {"pandas", "pyarrow", "sklearn"} <= set(result["train"].modules)     # verify imports them
    assert all(set(r.sources) <= set(SOURCES) for s in result.values() for r in s.requirements)


def test_without_observations_a_lock_is_its_imports_and_a_never_run_step_says_so():
    unknown = req.step_requirements(pipeline(LOAD, TRAIN), ".")          # observations not asked for
    assert unknown["train"].pins == [pin("scikit-learn")] and unknown["train"].warnings == []
    never = req.step_requirements(pipeline(LOAD, TRAIN), ".", observed={})
    assert never["train"].pins == [pin("scikit-learn")]
    assert never["train"].warnings == [
        "step 'train' never ran locally: its lock has only its imports; run `same-nb run nb.ipynb` first "
        "so the lock includes what it loads"]
    # Only load ran: train still gets what its input needs, and is told it never ran itself.
    partial = req.step_requirements(pipeline(LOAD, TRAIN), ".", observed={"load": OBSERVED["load"]})
    assert by_dist(partial["train"])["pyarrow"] == ["input"] and "never ran" in partial["train"].warnings[0]


def test_same_nb_ships_with_the_runtime_and_is_never_pinned():
    step = Step("evaluate", imports=[imp("same_nb"), imp("sklearn")])
    observed = {"evaluate": {"run": 1, "modules": ["same_nb", "sklearn"], "outputs": {}}}
    result = req.step_requirements(pipeline(step), ".", observed=observed)["evaluate"]
    assert result.runtime_modules == ["same_nb"]
    assert result.lines == [pin("scikit-learn")]
    assert "same_nb" not in result.modules
    assert not any("same" in w for w in result.warnings)


def test_loaded_modules_that_are_local_or_not_installed_are_not_locked(tmp_path):
    (tmp_path / "helpers_q5.py").write_text("X = 1\n")
    observed = {"s": {"run": 1, "modules": ["helpers_q5", "no_such_dist_q5", "yaml"], "outputs": {}}}
    result = req.step_requirements(pipeline(Step("s")), tmp_path, observed=observed)["s"]
    assert result.lines == [pin("PyYAML")]
    assert result.warnings == ["no_such_dist_q5 was loaded when step 's' last ran but no installed "
                               "distribution provides it; not locked"]


def test_a_need_that_is_not_installed_stays_unpinned_with_a_warning():
    observed = {"s": {"run": 1, "modules": [], "outputs": {"m": {"kind": "pickle", "type": "x.M",
                                                                 "needs": ["cloudpickle", "no_such_lib_q6"]}}}}
    result = req.step_requirements(pipeline(Step("s")), ".", observed=observed)["s"]
    assert result.unpinned == ["no_such_lib_q6"]
    assert "no_such_lib_q6 is needed (serializer) but not installed; assuming no_such_lib_q6, unpinned" \
        in result.warnings


def test_pip_lines_are_a_source_too():
    step = Step("s", imports=[imp("yaml")], requirements=["PyYAML", "pandas>=1"])
    result = req.step_requirements(pipeline(step), ".", observed={"s": {"modules": ["pandas"], "outputs": {}}})
    assert by_dist(result["s"]) == {"pandas": ["loaded", "pip"], "pyyaml": ["import", "pip"]}
    assert "pandas>=1" in result["s"].pins


def test_observations_are_passed_explicitly_and_none_means_unknown():
    observed = {"train": OBSERVED["train"], "load": OBSERVED["load"]}
    result = req.step_requirements(pipeline(LOAD, TRAIN), ".", observed=observed)
    assert by_dist(result["train"])["pyarrow"] == ["input"]
    unknown = req.step_requirements(pipeline(LOAD, TRAIN), ".")["train"]
    assert unknown.lines == [pin("scikit-learn")] and not any("never ran" in w for w in unknown.warnings)


def test_observed_origins_ignore_what_is_not_a_module_name():
    observed = {"s": {"modules": ["pandas", None, ""], "outputs": {"v": {"needs": [3, "numpy"]}}}}
    assert observed_origins(Step("s"), observed) == {"pandas": {"loaded"}, "numpy": {"serializer"}}
    assert observed_origins(Step("s"), None) == {} and observed_origins(Step("s"), {}) == {}


def test_the_kernels_own_machinery_is_told_apart():
    machinery = req.kernel_machinery()
    assert {"ipykernel", "IPython", "zmq", "tornado", "traitlets", "jupyter_client", "comm"} <= machinery
    assert not {"numpy", "pandas", "sklearn", "pyarrow", "cloudpickle"} & machinery
    assert req.kernel_machinery() is machinery                             # once per process


def test_third_party_loaded_keeps_only_what_a_lock_may_need():
    loaded = ["IPython", "cloudpickle", "cython_runtime", "_cython_3_0_11", "ipykernel", "json", "numpy",
              "pandas", "same_nb", "traitlets", "zmq", "not_a_distribution_q8"]
    assert req.third_party_loaded(loaded) == ["cloudpickle", "numpy", "pandas"]


def test_machinery_of_an_interpreter_without_ipykernel_falls_back_to_the_known_packages(tmp_path):
    import subprocess

    from same_nb.envs.lock import uv_command

    venv = tmp_path / "bare"
    subprocess.run(uv_command() + ["venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    machinery = req.kernel_machinery(str(venv / "bin" / "python"))
    assert {"ipykernel", "IPython", "zmq"} <= machinery


def test_requirement_sources_default_to_none_recorded():
    assert Requirement("m", "d", "1").sources == []


@pytest.mark.parametrize("labels", [["loaded"], ["serializer", "input"]])
def test_sources_are_listed_in_one_order(labels):
    observed = {"s": {"modules": ["numpy"] if "loaded" in labels else [],
                      "outputs": {"v": {"needs": ["numpy"]}} if "serializer" in labels else {}}}
    step = Step("s", inputs=[Input("w", "variable", "p")])
    observed["p"] = {"modules": [], "outputs": {"w": {"needs": ["numpy"]}}} if "input" in labels else {}
    result = req.step_requirements(pipeline(Step("p"), step), ".", observed=observed)["s"]
    assert by_dist(result)["numpy"] == [s for s in SOURCES if s in labels]
