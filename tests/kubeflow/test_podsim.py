"""The clean-pod simulator: pipelines compiled by kfp 2.17 itself, run in fresh venvs with real pip/uv
installs from the registry. The first tests are pure (executor input, placeholders, graph); the slow
ones build real venvs (about 5 s each) and share one pip/uv download cache. No ``from __future__
import annotations`` here: kfp reads the components' annotations as objects.
"""
import json
import os
import sys
from pathlib import Path
from typing import Optional

import pytest
from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output, OutputPath

from same_nb.errors import SameError
from same_nb.kubeflow import podsim
from same_nb.kubeflow.podsim_executor import executor_input, read_outputs, resolve_command, task_order

slow = pytest.mark.slow
IMAGE = "python:3.11-slim"


# ---- components (module level: kfp reads their source) ----

@dsl.component(base_image=IMAGE, packages_to_install=["six==1.16.0"])
def make(n: int, data: Output[Dataset]) -> str:
    import six
    with open(data.path, "w") as f:
        f.write(",".join(str(i) for i in range(n)))
    data.metadata["rows"] = n
    return six.__version__


@dsl.component(base_image=IMAGE)
def train(data: Input[Dataset], extra: Input[Dataset], const: Input[Dataset], scale: float,
          model: Output[Model], metrics: Output[Metrics]) -> float:
    import importlib.util
    total = sum(int(x) for x in open(data.path).read().split(",")) * scale
    with open(model.path, "w") as f:
        f.write(f"{total}|{open(extra.path).read()}|{open(const.path).read()}|{extra.metadata['origin']}")
    model.metadata["total"] = total
    metrics.log_metric("rows", data.metadata["rows"])
    # Host packages a pod does not have: none may be importable here.
    metrics.log_metric("host_leaks", sum(importlib.util.find_spec(m) is not None for m in ("same_nb", "pandas", "yaml")))
    return total


@dsl.component(base_image=IMAGE)
def needs_pandas(out: Output[Dataset]):
    import pandas  # installed on the host, never asked for: kfp.local would pass, a pod fails
    pandas.DataFrame({"a": [1]}).to_csv(out.path)


@dsl.component(base_image=IMAGE)
def after_pandas(data: Input[Dataset]) -> str:
    return open(data.path).read()


@dsl.component(base_image=IMAGE)
def uses_six() -> str:
    import six  # only the "image" (the prepare hook) provides it
    return six.__version__


PROBE = """
import importlib.util, json, os, sys
word, out, count, task, root, *rest = sys.argv[1:]
with open(out, "w") as f:
    json.dump({"env": dict(os.environ), "prefix": sys.prefix, "sys_path": sys.path, "cwd": os.getcwd(),
               "cwd_files": os.listdir("."), "same_nb": importlib.util.find_spec("same_nb") is not None,
               "word": word, "task": task, "root": root, "rest": rest}, f)
with open(count, "w") as f:
    f.write(str(len(word)))
"""


@dsl.container_component
def probe(word: str, out: Output[Dataset], count: OutputPath(int), opt: Optional[str] = None):
    return dsl.ContainerSpec(
        image=IMAGE, command=["python3", "-c", PROBE],
        args=[dsl.ConcatPlaceholder(["w=", word]), out.path, count, dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
              dsl.PIPELINE_ROOT_PLACEHOLDER, dsl.IfPresentPlaceholder(input_name="opt", then=["--opt", opt])])


@dsl.container_component
def sleeper():
    return dsl.ContainerSpec(image="python:3.9-slim", command=["sh", "-c", "echo sleeping; sleep 60"])


def _compile(pipeline, path: Path) -> Path:
    compiler.Compiler().compile(pipeline, str(path))
    return path


@pytest.fixture(scope="session")
def pip_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("podsim-cache")


# ---- pure ----

def test_executor_input_and_placeholders():
    component = {"inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"},
                                                     "s": {"parameterType": "STRING", "defaultValue": "d"}},
                                      "artifacts": {"a": {"artifactType": {"schemaTitle": "system.Dataset"}}}},
                 "outputDefinitions": {"parameters": {"p": {"parameterType": "NUMBER_INTEGER"}},
                                       "artifacts": {"m": {"artifactType": {"schemaTitle": "system.Model",
                                                                            "schemaVersion": "0.0.1"}}}}}
    art = {"name": "x", "type": {"schemaTitle": "system.Dataset"}, "uri": "gs://b/x", "metadata": {"k": "v"}}
    message = executor_input(component, {"n": 3}, {"a": art}, "/root/t")
    assert message["inputs"]["parameterValues"] == {"n": 3, "s": "d"}
    assert message["inputs"]["artifacts"]["a"]["artifacts"] == [art]
    assert message["outputs"]["artifacts"]["m"]["artifacts"][0] == {
        "name": "m", "type": {"schemaTitle": "system.Model", "schemaVersion": "0.0.1"}, "uri": "/root/t/m", "metadata": {}}
    assert message["outputs"]["parameters"] == {"p": {"outputFile": "/root/t/p"}}
    assert message["outputs"]["outputFile"] == "/root/t/executor_output.json"
    argv = resolve_command(
        ["{{$.inputs.parameters['n']}}", "{{$.inputs.parameters['s']}}", "{{$.inputs.artifacts['a'].path}}",
         "{{$.inputs.artifacts['a'].uri}}", "{{$.inputs.artifacts['a'].metadata['k']}}",
         "{{$.outputs.artifacts['m'].path}}", "{{$.outputs.parameters['p'].output_file}}",
         "{{$.outputs.output_file}}", "{{$.pipeline_root}}/x", '{"Concat": ["a", "{{$.inputs.parameters[\'n\']}}"]}',
         '{"IfPresent": {"InputName": "missing", "Then": ["--no"]}}',
         '{"IfPresent": {"InputName": "n", "Then": ["--n", "{{$.inputs.parameters[\'n\']}}"]}}', "{{$}}"],
        message, {"pipeline_root": "/pr"})
    assert argv[:-1] == ["3", "d", "/gcs/b/x", "gs://b/x", "v", "/root/t/m", "/root/t/p",
                         "/root/t/executor_output.json", "/pr/x", "a3", "--n", "3"]
    assert json.loads(argv[-1]) == message
    assert resolve_command(["{{$.inputs.parameters['optional']}}"], message, {}) == ["null"]   # as kfp.local
    for unknown in ("{{$.json_escape[inputs.parameters['s']]}}", "{{$.inputs.bogus['s']}}"):
        with pytest.raises(ValueError, match="unsupported placeholder"):
            resolve_command([unknown], message, {})


def test_read_outputs_merges_executor_output_and_parameter_files(tmp_path):
    component = {"outputDefinitions": {
        "parameters": {"i": {"parameterType": "NUMBER_INTEGER"}, "s": {"parameterType": "STRING"},
                       "b": {"parameterType": "BOOLEAN"}, "r": {"parameterType": "NUMBER_DOUBLE"}},
        "artifacts": {"m": {"artifactType": {"schemaTitle": "system.Model"}}}}}
    message = executor_input(component, {}, {}, str(tmp_path))
    (tmp_path / "i").write_text("7")
    (tmp_path / "s").write_text("[not json]")
    (tmp_path / "b").write_text("True")
    (tmp_path / "executor_output.json").write_text(json.dumps({
        "parameterValues": {"r": 2.0, "i": 1.0},
        "artifacts": {"m": {"artifacts": [{"name": "m", "uri": str(tmp_path / "m"), "metadata": {"sha256": "ab"}}]}}}))
    params, artifacts = read_outputs(component, message)
    assert params == {"i": 7, "s": "[not json]", "b": True, "r": 2.0}
    assert artifacts["m"]["metadata"] == {"sha256": "ab"} and artifacts["m"]["type"] == {"schemaTitle": "system.Model"}


def test_graph_and_parameter_checks(tmp_path):
    def spec(tasks, params=None):
        return {"pipelineInfo": {"name": "p"}, "deploymentSpec": {"executors": {}}, "components": {},
                "root": {"dag": {"tasks": tasks}, "inputDefinitions": {"parameters": params or {}}}}
    producer = {"inputs": {"artifacts": {"x": {"taskOutputArtifact": {"producerTask": "b", "outputArtifactKey": "o"}}}}}
    assert task_order({"a": producer, "b": {"dependentTasks": ["c"]}, "c": {}}) == {"a": {"b"}, "b": {"c"}, "c": set()}
    with pytest.raises(SameError, match="cycle"):
        task_order({"a": {"dependentTasks": ["b"]}, "b": {"dependentTasks": ["a"]}})
    with pytest.raises(SameError, match="unknown task"):
        task_order({"a": producer})
    with pytest.raises(SameError, match="no default"):
        podsim.simulate(spec({}, {"x": {"parameterType": "STRING"}}), workdir=tmp_path)
    with pytest.raises(SameError, match="unknown pipeline parameter"):
        podsim.simulate(spec({}), arguments={"y": 1}, workdir=tmp_path)
    two_docs = tmp_path / "p.yaml"
    two_docs.write_text("pipelineInfo: {name: p}\nroot: {dag: {tasks: {}}}\ndeploymentSpec: {}\n---\nplatforms: {}\n")
    assert podsim.simulate(two_docs, workdir=tmp_path).ok


def test_output_digests_hash_files_and_trees(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x").write_bytes(b"abc")
    task = podsim.TaskResult("t", "container", "succeeded", outputs={
        "f": {"path": str(tmp_path / "f"), "metadata": {"sha256": "m"}},
        "d": {"path": str(tmp_path / "d"), "metadata": {}},
        "gone": {"path": str(tmp_path / "nothing"), "metadata": {}}})
    digests = podsim.output_digests(podsim.SimResult("p", tmp_path, {"t": task}))["t"]
    assert digests["f"] == {"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                            "metadata_sha256": "m"}
    assert digests["d"]["sha256"] not in (None, digests["f"]["sha256"])
    assert digests["gone"]["sha256"] is None


# ---- real pods ----

@slow
def test_lightweight_pipeline_runs_and_values_flow(tmp_path, pip_cache):
    src, const = tmp_path / "src.txt", tmp_path / "const.txt"
    src.write_text("imported")
    const.write_text("constant")

    @dsl.pipeline(name="podsim-tiny")
    def pipe(n: int = 3, src: str = "", scale: float = 1.0):
        made = make(n=n)
        imported = dsl.importer(artifact_uri=src, artifact_class=Dataset, metadata={"origin": "test"})
        fixed = dsl.importer(artifact_uri=str(const), artifact_class=Dataset)
        train(data=made.outputs["data"], extra=imported.output, const=fixed.output, scale=scale)

    result = podsim.simulate(_compile(pipe, tmp_path / "p.yaml"), arguments={"n": 4, "src": str(src), "scale": 2.5},
                             workdir=tmp_path / "sim", cache_dir=pip_cache)
    assert result.ok, result.render() + "\n" + "\n".join(t.log_tail for t in result.tasks.values())
    made, trained = result.tasks["make"], result.tasks["train"]
    assert made.parameters == {"Output": "1.16.0"}
    assert made.outputs["data"]["metadata"] == {"rows": 4}
    assert Path(made.outputs["data"]["path"]).read_text() == "0,1,2,3"
    assert made.executor_input["inputs"]["parameterValues"] == {"n": 4}
    assert result.tasks["importer"].outputs["artifact"]["uri"] == str(src)
    assert result.tasks["importer-2"].outputs["artifact"]["uri"] == str(const)
    assert trained.parameters == {"Output": 15.0}
    assert Path(trained.outputs["model"]["path"]).read_text() == "15.0|imported|constant|test"
    assert trained.outputs["metrics"]["metadata"] == {"rows": 4, "host_leaks": 0}
    assert trained.outputs["model"]["uri"].startswith(str(result.root)) and not trained.warnings
    assert {"venv", "command", "to_user_code", "total"} <= set(made.seconds)
    assert 0 < made.seconds["to_user_code"] < made.seconds["command"]
    digests = podsim.output_digests(result)
    assert digests["train"]["metrics"]["sha256"] is None and len(digests["make"]["data"]["sha256"]) == 64
    assert not (tmp_path / "sim" / "pods").exists()   # clean pods: nothing kept


@slow
def test_missing_package_fails_the_pod_and_skips_later_tasks(tmp_path, pip_cache):
    import pandas  # noqa: F401 — the point: the host has it

    @dsl.pipeline(name="podsim-missing")
    def pipe():
        after_pandas(data=needs_pandas().outputs["out"])

    result = podsim.simulate(_compile(pipe, tmp_path / "p.yaml"), workdir=tmp_path / "sim", cache_dir=pip_cache)
    failed, skipped = result.tasks["needs-pandas"], result.tasks["after-pandas"]
    assert not result.ok
    assert failed.status == "failed" and failed.exit_code == 1
    assert "No module named 'pandas'" in failed.error and "No module named 'pandas'" in failed.log_tail
    assert failed.log.read_text().count("Traceback") == 1
    assert skipped.status == "skipped" and skipped.exit_code is None


@slow
def test_container_component_sees_a_clean_pod(tmp_path, pip_cache, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(podsim.__file__).parents[2]))
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    monkeypatch.setenv("PIP_FIND_LINKS", "/nowhere")

    @dsl.pipeline(name="podsim-probe")
    def pipe(word: str = "hello"):
        probe(word=word, opt="x").set_env_variable("FOO", "bar")

    result = podsim.simulate(_compile(pipe, tmp_path / "p.yaml"), workdir=tmp_path / "sim", cache_dir=pip_cache,
                             extra_env={"EXTRA": "1"}, pip_env={"PIP_INDEX_URL": "https://pypi.org/simple"})
    task = result.tasks["probe"]
    assert result.ok, task.log_tail
    assert task.parameters == {"count": 7}   # len("w=hello"), read back as NUMBER_INTEGER
    seen = json.loads(Path(task.outputs["out"]["path"]).read_text())
    env, pod = seen["env"], tmp_path / "sim" / "pods" / "probe"
    assert env["PATH"].split(":")[0] == str(pod / "venv" / "bin")
    assert seen["prefix"] == str(pod / "venv") and not seen["same_nb"]
    assert not any("site-packages" in p and not p.startswith(str(pod)) for p in seen["sys_path"])
    assert {"PYTHONPATH", "VIRTUAL_ENV", "PIP_FIND_LINKS"}.isdisjoint(env)
    assert env["HOME"] == str(pod / "home") and env["TMPDIR"] == str(pod / "tmp")
    assert env["PIP_CONFIG_FILE"] == os.devnull and env["PIP_INDEX_URL"] == "https://pypi.org/simple"
    assert env["FOO"] == "bar" and env["EXTRA"] == "1" and env["LANG"] == "C.UTF-8"
    assert seen["cwd"] == str(pod / "work") and seen["cwd_files"] == []
    assert seen["word"] == "w=hello" and seen["task"] == "probe" and seen["root"] == str(result.root)
    assert seen["rest"] == ["--opt", "x"]


@slow
def test_image_mode_prebuilds_the_venv(tmp_path, pip_cache):
    (tmp_path / "good.txt").write_text("six==1.16.0\n")

    @dsl.pipeline(name="podsim-image")
    def pipe():
        uses_six().set_caching_options(False)
        uses_six().set_caching_options(False)

    locks = {"uses-six": tmp_path / "good.txt", "uses-six-2": tmp_path / "absent.txt"}
    hook = podsim.requirements_installer(lambda pod: locks[pod.task], require_hashes=False)
    result = podsim.simulate(_compile(pipe, tmp_path / "p.yaml"), workdir=tmp_path / "sim", cache_dir=pip_cache,
                             prepare=hook)
    good, bad = result.tasks["uses-six"], result.tasks["uses-six-2"]
    assert good.status == "succeeded", good.log_tail
    assert good.parameters == {"Output": "1.16.0"}
    assert {"venv", "prepare", "command", "to_user_code"} <= set(good.seconds)
    assert "uv pip install" in good.log.read_text().splitlines()[0]
    assert bad.status == "failed" and bad.error.startswith("image build (prepare) failed")


@slow
def test_a_hanging_command_times_out(tmp_path):
    @dsl.pipeline(name="podsim-sleep")
    def pipe():
        sleeper()

    result = podsim.simulate(_compile(pipe, tmp_path / "p.yaml"), workdir=tmp_path / "sim", timeout=2)
    task = result.tasks["sleeper"]
    assert task.status == "failed" and task.error == "timed out after 2 s"
    assert 2 <= task.seconds["command"] < 10 and "sleeping" in task.log_tail
    assert task.warnings == [f"image python:3.9-slim runs Python 3.9; simulated with {sys.version_info[0]}.{sys.version_info[1]}"]
