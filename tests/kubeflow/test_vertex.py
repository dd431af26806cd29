"""A compiled example loads in Vertex AI Pipelines' own request builder, offline.

google-cloud-aiplatform's PipelineJob reads a compiled pipeline.yaml and builds the Vertex request
(pipeline spec, runtime config, parameter values) without network or credentials. It runs in its own
venv (aiplatform's dependencies are not same-nb's) with every socket connection refused.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from same_nb.envs.lock import uv_command
from same_nb.kubeflow.compiler import compile_kubeflow

from conftest import TESTS

CHECK = r"""
import json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("no network here")
socket.socket.connect = refuse
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform
job = aiplatform.PipelineJob(display_name="check", template_path=sys.argv[1], project="example-project",
                             location="us-central1", pipeline_root="gs://example-bucket/root",
                             credentials=AnonymousCredentials(), parameter_values=json.loads(sys.argv[2]))
request = job._gca_resource
print(json.dumps({"executors": sorted(request.pipeline_spec["deploymentSpec"]["executors"]),
                  "parameters": {k: v for k, v in request.runtime_config.parameter_values.items()}}))
"""


@pytest.fixture(scope="module")
def vertex_python(tmp_path_factory):
    venv = tmp_path_factory.mktemp("vertex") / "venv"
    subprocess.run(uv_command() + ["venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run(uv_command() + ["pip", "install", "--quiet", "--python", str(python),
                                          "google-cloud-aiplatform", "pyyaml"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return python


@pytest.mark.slow
def test_the_quickstart_pipeline_builds_a_vertex_request_offline(vertex_python, tmp_path, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    shutil.copytree(TESTS.parent / "examples" / "quickstart", tmp_path / "quickstart",
                    ignore=shutil.ignore_patterns(".same", "*-pipeline"))
    result = compile_kubeflow(tmp_path / "quickstart" / "quickstart.ipynb", tmp_path / "out",
                              bundle_uri="gs://example-bucket/same-nb/quickstart.tar.gz")
    done = subprocess.run([str(vertex_python), "-c", CHECK, str(result.pipeline_yaml), json.dumps({"seed": 7})],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    request = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(request["executors"]) >= {f"exec-{s.name}" for s in result.pipeline.steps} | {"exec-importer"}
    assert request["parameters"] == {"seed": 7}
