"""Task statements for pipeline.py: same.yaml's secrets, volumes, accelerators and env, compiled by
kfp for real; the refusals (a secret-looking env, an unknown accelerator); hostile values; and the
offline checks of the compiled YAML against the protos KFP and Vertex AI Pipelines read."""
from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from same_nb.errors import SameError
from same_nb.frontend.manifest_schema import Manifest
from same_nb.kubeflow.tasks import (
    ACCELERATORS,
    KUBERNETES,
    KUBERNETES_IMPORT,
    TASK_CALLS,
    accelerator_family,
    accelerator_name,
    check_settings,
    looks_secret,
    task_statements,
    uses_kubernetes,
)

SECRETS_AND_VOLUMES = {
    "run": {"env": {"MODE": "run"},
            "secrets": {"DB_PASSWORD": {"secret": "db-creds", "key": "password"},
                        "DB_USER": {"secret": "db-creds", "key": "user"},
                        "HF_TOKEN": {"secret": "hf", "key": "token"}},
            "volumes": [{"pvc": "shared-data", "mount_path": "/data"}]},
    "steps": {"train": {"resources": {"gpu": 2, "accelerator": "t4"},
                        "volumes": [{"pvc": "scratch", "mount_path": "/scratch", "sub_path": "train"}]}},
}


def manifest(data: dict) -> Manifest:
    return Manifest.model_validate(data)


def compile_with(tmp_path: Path, statements: dict[str, list[str]], kubernetes: bool) -> list[dict]:
    """A tiny pipeline, one trivial component per task variable in ``statements``, whose body applies
    the statements; written to a file (kfp reads a component's source), imported, compiled by kfp."""
    tasks = "".join(f"    {var} = step(n=n)\n" + "".join(f"    {s}\n" for s in lines) for var, lines in statements.items())
    source = (f"from kfp import dsl\n{KUBERNETES_IMPORT if kubernetes else ''}\n\n\n"
              "@dsl.component(base_image='python:3.11-slim')\ndef step(n: int) -> int:\n    return n\n\n\n"
              f"@dsl.pipeline(name='tiny')\ndef tiny(n: int = 1):\n{tasks}")
    _check_calls(source, {"step", "component", "pipeline"})
    module_file = tmp_path / "tiny_pipeline.py"
    module_file.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("same_nb_test_tiny_pipeline", module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        from kfp import compiler

        compiler.Compiler().compile(module.tiny, str(tmp_path / "pipeline.yaml"))
    finally:
        sys.modules.pop(spec.name, None)
    return list(yaml.safe_load_all((tmp_path / "pipeline.yaml").read_text(encoding="utf-8")))


def _check_calls(source: str, allowed: set[str]) -> None:
    """What compiler._check_generated enforces: nothing is called but the allow-list."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr
            assert name in TASK_CALLS | allowed, name


def executors(docs: list[dict]) -> tuple[dict, dict]:
    """(container spec, kubernetes platform config) per task name."""
    spec = docs[0]
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(docs) > 1 else {}
    out = {}
    for task, body in spec["root"]["dag"]["tasks"].items():
        executor = spec["components"][body["componentRef"]["name"]]["executorLabel"]
        out[task] = (spec["deploymentSpec"]["executors"][executor]["container"], platform.get(executor, {}))
    return out


# ---- secrets and volumes, compiled by kfp -------------------------------------------------------------

def test_secrets_and_volumes_reach_the_kubernetes_platform_spec_not_the_env(tmp_path):
    m = manifest(SECRETS_AND_VOLUMES)
    configs = {name: m.step_config(name) for name in ("train", "report")}
    assert uses_kubernetes(configs)
    statements = {"train_task": task_statements(configs["train"], "train_task", []),
                  "report_task": task_statements(configs["report"], "report_task", ["train_task"])}
    docs = compile_with(tmp_path, statements, kubernetes=True)
    found = executors(docs)
    container, platform = found["step"]
    assert sorted((s["secretName"], sorted((k["secretKey"], k["envVar"]) for k in s["keyToEnv"]))
                  for s in platform["secretAsEnv"]) == [
        ("db-creds", [("password", "DB_PASSWORD"), ("user", "DB_USER")]), ("hf", [("token", "HF_TOKEN")])]
    assert sorted((p["constant"], p["mountPath"], p.get("subPath")) for p in platform["pvcMount"]) == [
        ("scratch", "/scratch", "train"), ("shared-data", "/data", None)]
    assert container["resources"]["accelerator"]["resourceType"] == "NVIDIA_TESLA_T4"
    assert container["resources"]["accelerator"]["resourceCount"] == "2"
    assert container["env"] == [{"name": "MODE", "value": "run"}]
    _, report_platform = found["step-2"]
    assert [p["constant"] for p in report_platform["pvcMount"]] == ["shared-data"]
    # the secrets are named only in the platform spec: no env entry and nothing in the pipeline spec
    pipeline_spec = yaml.safe_dump(docs[0])
    for word in ("db-creds", "DB_PASSWORD", "HF_TOKEN", "hf", "password"):
        assert all(word not in (e["name"], e["value"]) for c, _ in found.values() for e in c.get("env", []))
    assert "db-creds" not in pipeline_spec and "DB_PASSWORD" not in pipeline_spec


def test_one_secret_key_into_two_variables_takes_two_calls(tmp_path):
    m = manifest({"run": {"secrets": {"A": {"secret": "s", "key": "k"}, "B": {"secret": "s", "key": "k"},
                                      "C": {"secret": "s", "key": "other"}}}})
    lines = task_statements(m.step_config("x"), "t", [])
    assert lines[1:] == [f"{KUBERNETES}.use_secret_as_env(t, secret_name='s', secret_key_to_env={{'k': 'A', 'other': 'C'}})",
                         f"{KUBERNETES}.use_secret_as_env(t, secret_name='s', secret_key_to_env={{'k': 'B'}})"]
    docs = compile_with(tmp_path, {"t": lines}, kubernetes=True)
    _, platform = executors(docs)["step"]
    assert sorted((k["secretKey"], k["envVar"]) for s in platform["secretAsEnv"] for k in s["keyToEnv"]) == [
        ("k", "A"), ("k", "B"), ("other", "C")]


def test_no_kubernetes_import_without_secrets_or_volumes(tmp_path):
    m = manifest({"run": {"env": {"MODE": "x"}}, "steps": {"t": {"resources": {"accelerator": "nvidia.com/gpu"}}}})
    configs = {"t": m.step_config("t")}
    assert not uses_kubernetes(configs)
    lines = task_statements(configs["t"], "t", [], display_name="t step")
    assert lines[0] == "t.set_display_name('t step')" and not any(KUBERNETES in line for line in lines)
    docs = compile_with(tmp_path, {"t": lines}, kubernetes=False)
    assert len(docs) == 1
    container, _ = executors(docs)["step"]
    assert container["resources"]["accelerator"] == {"count": "1", "resourceCount": "1",
                                                     "resourceType": "nvidia.com/gpu", "type": "nvidia.com/gpu"}


# ---- hostile values ---------------------------------------------------------------------------------

HOSTILE = "x'); import os; os.system('id') #\n\"\"\"$(id)`id`\\"


def test_hostile_values_reach_the_yaml_exactly_and_run_nothing(tmp_path):
    m = manifest({"run": {"env": {"MODE": HOSTILE}, "volumes": [
        {"pvc": "data", "mount_path": "/data/it's \"quoted\" $(id)", "sub_path": "a'b/$(id)/`x`"}]}})
    lines = task_statements(m.step_config("t"), "t", [], display_name=HOSTILE)
    assert all("\n" not in line for line in lines)
    docs = compile_with(tmp_path, {"t": lines}, kubernetes=True)   # the allow-list held: nothing else is called
    container, platform = executors(docs)["step"]
    assert container["env"] == [{"name": "MODE", "value": HOSTILE}]
    assert docs[0]["root"]["dag"]["tasks"]["step"]["taskInfo"]["name"] == HOSTILE
    assert platform["pvcMount"][0]["mountPath"] == "/data/it's \"quoted\" $(id)"
    assert platform["pvcMount"][0]["subPath"] == "a'b/$(id)/`x`"


@pytest.mark.parametrize("data", [
    {"run": {"secrets": {"A": {"secret": "x'); os.system('id", "key": "k"}}}},
    {"run": {"secrets": {"A": {"secret": "s", "key": "k'}); os.system('id"}}}},
    {"run": {"secrets": {"A'); os.system('id": {"secret": "s", "key": "k"}}}},
    {"run": {"volumes": [{"pvc": "d'); os.system('id", "mount_path": "/d"}]}},
    {"run": {"volumes": [{"pvc": "d", "mount_path": "/d\n"}]}},
])
def test_hostile_kubernetes_names_are_refused_by_the_schema(data):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        manifest(data)


def test_hostile_accelerator_never_reaches_the_source():
    m = manifest({"steps": {"t": {"resources": {"accelerator": "nvidia.com/gpu'); os.system('id"}}}})
    with pytest.raises(SameError, match=r"steps\.t\.resources\.accelerator: .* is not a known accelerator"):
        task_statements(m.step_config("t"), "t", [])


# ---- refusals ----------------------------------------------------------------------------------------

def test_unknown_accelerator_is_refused_with_the_documented_names():
    m = manifest({"steps": {"train": {"resources": {"gpu": 1, "accelerator": "k80"}}}})
    with pytest.raises(SameError) as info:
        check_settings(m, ["train", "other"], path="same.yaml")
    message = str(info.value)
    assert message.startswith("same.yaml: steps.train.resources.accelerator: 'k80' is not a known accelerator")
    for name in ("nvidia.com/gpu", "amd.com/gpu", "NVIDIA_TESLA_T4", "NVIDIA_L4", "NVIDIA_H100_80GB", "TPU_V3"):
        assert name in message
    with pytest.raises(SameError, match="not a known accelerator"):
        task_statements(m.step_config("train"), "t", [])


@pytest.mark.parametrize("alias, name", [
    ("t4", "NVIDIA_TESLA_T4"), ("nvidia-tesla-t4", "NVIDIA_TESLA_T4"), ("NVIDIA_TESLA_T4", "NVIDIA_TESLA_T4"),
    ("nvidia_tesla_t4", "NVIDIA_TESLA_T4"), ("a100", "NVIDIA_TESLA_A100"), ("nvidia-a100-80gb", "NVIDIA_A100_80GB"),
    ("L4", "NVIDIA_L4"), ("h100", "NVIDIA_H100_80GB"), ("gpu", "nvidia.com/gpu"), ("nvidia.com/gpu", "nvidia.com/gpu"),
    ("amd", "amd.com/gpu"), ("tpu-v5e", "TPU_V5_LITEPOD"), ("TPU_V3", "TPU_V3"),
])
def test_accelerator_aliases_map_to_documented_names(alias, name):
    assert accelerator_name(alias) == name


def test_accelerator_table_is_consistent():
    assert all(accelerator_name(name) == name for name in ACCELERATORS)
    assert {accelerator_family(n) for n in ACCELERATORS} == {"kubernetes", "vertex"}
    assert accelerator_name("k80", strict=False) is None and accelerator_name("tpu", strict=False) is None
    with pytest.raises(SameError):
        accelerator_name("NVIDIA_TESLA_K80")          # past Google's end of support


@pytest.mark.parametrize("section", ["run", "steps.train"])
def test_secret_looking_env_is_refused_for_kubeflow_naming_field_and_fix(section):
    env = {"env": {"MODE": "x", "DB_PASSWORD": "hunter2"}}
    data = {"run": env} if section == "run" else {"steps": {"train": env}}
    m = manifest(data)
    with pytest.raises(SameError) as info:
        check_settings(m, ["train"], path="same.yaml")
    message = str(info.value)
    assert message.startswith(f"same.yaml: {section}.env.DB_PASSWORD: looks like a secret")
    assert "clear text" in message and "run.secrets: {DB_PASSWORD: {secret: <secret name>, key: <key in it>}}" in message
    assert "hunter2" not in message
    with pytest.raises(SameError, match=rf"{section}\.env\.DB_PASSWORD"):
        task_statements(m.step_config("train"), "t", [])


@pytest.mark.parametrize("name, secret", [
    ("DB_PASSWORD", True), ("db_passwd", True), ("GITHUB_TOKEN", True), ("OPENAI_API_KEY", True),
    ("AWS_SECRET_ACCESS_KEY", True), ("AWS_ACCESS_KEY_ID", True), ("SSH_PRIVATE_KEY", True),
    ("GOOGLE_APPLICATION_CREDENTIALS", True), ("dbPassword", True), ("ApiKey", True), ("client.secret", True),
    ("TOKENIZERS_PARALLELISM", False), ("MAX_TOKENS", False), ("SECRETARY", False), ("KEY_COLUMN", False),
    ("PWD", False), ("PASSTHROUGH", False), ("MODE", False), ("API_URL", False),
])
def test_secret_looking_names(name, secret):
    assert looks_secret(name) is secret


def test_plain_env_still_compiles():
    m = manifest({"run": {"env": {"TOKENIZERS_PARALLELISM": "false", "LOG_LEVEL": "info"}}})
    check_settings(m, ["t"])
    assert "t.set_env_variable('TOKENIZERS_PARALLELISM', 'false')" in task_statements(m.step_config("t"), "t", [])


# ---- offline checks of the compiled YAML (what Vertex AI Pipelines and KFP read) ---------------------

def test_compiled_yaml_parses_strictly_as_pipeline_spec_and_platform_spec(tmp_path):
    """The Vertex AI PipelineJob request carries the first document as its pipelineSpec (a
    PipelineSpec of kfp-pipeline-spec); the KFP backend reads the second as a PlatformSpec whose
    kubernetes config is a KubernetesExecutorConfig. Unknown fields fail the parse."""
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2
    from kfp.pipeline_spec import pipeline_spec_pb2

    m = manifest(SECRETS_AND_VOLUMES)
    docs = compile_with(tmp_path, {"t": task_statements(m.step_config("train"), "t", [])}, kubernetes=True)
    spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    accelerator = spec.deployment_spec["executors"]["exec-step"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceType"] == "NVIDIA_TESLA_T4"
    platform = json_format.ParseDict(docs[1], pipeline_spec_pb2.PlatformSpec())
    config = json_format.ParseDict(
        json_format.MessageToDict(platform.platforms["kubernetes"].deployment_spec.executors["exec-step"]),
        kubernetes_executor_config_pb2.KubernetesExecutorConfig())
    assert [s.secret_name for s in config.secret_as_env] == ["db-creds", "hf"]
    assert sorted(p.mount_path for p in config.pvc_mount) == ["/data", "/scratch"]


def test_vertex_pipeline_job_request_builds_offline(tmp_path, monkeypatch):
    """google-cloud-aiplatform's PipelineJob builds the Vertex request from the compiled file without
    network or credentials (anonymous ones, sockets refused). It reads one YAML document: a pipeline
    with kfp-kubernetes settings (a second document) is for open-source KFP, not Vertex."""
    aiplatform = pytest.importorskip("google.cloud.aiplatform")
    import socket

    from google.auth.credentials import AnonymousCredentials

    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    m = manifest({"run": {"env": {"MODE": "x"}}, "steps": {"t": {"resources": {"accelerator": "l4", "cpu_limit": "4"}}}})
    compile_with(tmp_path, {"t": task_statements(m.step_config("t"), "t", [])}, kubernetes=False)
    job = aiplatform.PipelineJob(display_name="tiny", template_path=str(tmp_path / "pipeline.yaml"),
                                 project="example-project", location="us-central1", pipeline_root="gs://bucket/root",
                                 credentials=AnonymousCredentials(), parameter_values={"n": 3})
    request = job._gca_resource
    container = request.pipeline_spec["deploymentSpec"]["executors"]["exec-step"]["container"]
    assert container["resources"]["accelerator"]["type"] == "NVIDIA_L4"
    assert dict(request.runtime_config.parameter_values)["n"] == 3
