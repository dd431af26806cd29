"""kfp_submit against a stand-in Kubeflow Pipelines API server.

No cluster exists here, so these tests run kfp.Client (the real client, with its generated
kfp_server_api code) against a small stdlib HTTP server on 127.0.0.1 that answers the v2beta1
endpoints the client calls: healthz, pipelines (list, upload, upload_version, versions),
experiments (list, create) and runs (create, get). It records what it received. It is the one
mock in the Kubeflow tests; the server is stopped by its fixture.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import json
import re
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from same_nb.errors import SameError
from same_nb.kubeflow.compiler import compile_kubeflow
from same_nb.kubeflow.submit import refresh_status, run_kubeflow, submit

from conftest import TESTS

NOTEBOOKS = TESTS / "notebooks"


class FakeKfp(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.pipelines: list[dict] = []
        self.versions: dict[str, list[dict]] = {}
        self.experiments: list[dict] = []
        self.runs: dict[str, dict] = {}
        self.uploads: list[tuple[str, dict, bytes]] = []       # (endpoint, query, file bytes)
        self.run_states = ["RUNNING", "SUCCEEDED"]                # what successive GETs of a run say
        self.refuse: dict[tuple[str, str], tuple[int, str]] = {}  # (method, path) -> (status, message)


class _Handler(BaseHTTPRequestHandler):
    server: FakeKfp

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path.removeprefix("/apis/v2beta1")
        if (method, path) in self.server.refuse:
            status, message = self.server.refuse[(method, path)]
            return self._reply(status, {"error": message, "code": 7, "message": message})
        body = self._body() if method == "POST" else b""
        s = self.server
        named = json.loads(query["filter"])["predicates"][0]["stringValue"] if "filter" in query else None
        if (method, path) == ("GET", "/healthz"):
            return self._reply(200, {"multi_user": False})
        if (method, path) == ("GET", "/pipelines"):
            found = [p for p in s.pipelines if named in (None, p["display_name"])]
            return self._reply(200, {"pipelines": found, "total_size": len(found)} if found else {})
        if (method, path) in (("POST", "/pipelines/upload"), ("POST", "/pipelines/upload_version")):
            content = self._file(body)
            s.uploads.append((path, query, content))
            pipeline_id = query.get("pipelineid") or f"pipeline-{len(s.pipelines) + 1}"
            if path == "/pipelines/upload":
                s.pipelines.append({"pipeline_id": pipeline_id, "display_name": query["name"]})
            versions = s.versions.setdefault(pipeline_id, [])
            version = {"pipeline_id": pipeline_id, "pipeline_version_id": f"version-{len(versions) + 1}",
                       "display_name": query["name"]}
            versions.append(version)
            return self._reply(200, version if path.endswith("upload_version") else s.pipelines[-1])
        if method == "GET" and (m := re.fullmatch(r"/pipelines/([^/]+)/versions", path)):
            found = [v for v in reversed(s.versions.get(m.group(1), [])) if named in (None, v["display_name"])]
            return self._reply(200, {"pipeline_versions": found, "total_size": len(found)} if found else {})
        if (method, path) == ("GET", "/experiments"):
            found = [e for e in s.experiments if e["display_name"] == named]
            return self._reply(200, {"experiments": found} if found else {})
        if (method, path) == ("POST", "/experiments"):
            experiment = {**json.loads(body), "experiment_id": f"experiment-{len(s.experiments) + 1}"}
            s.experiments.append(experiment)
            return self._reply(200, experiment)
        if (method, path) == ("POST", "/runs"):
            run = {**json.loads(body), "run_id": f"run-{len(s.runs) + 1}", "state": "PENDING", "gets": 0}
            s.runs[run["run_id"]] = run
            return self._reply(200, {k: v for k, v in run.items() if k != "gets"})
        if method == "GET" and (m := re.fullmatch(r"/runs/([^/]+)", path)) and m.group(1) in s.runs:
            run = s.runs[m.group(1)]
            state = s.run_states[min(run["gets"], len(s.run_states) - 1)]
            run["gets"] += 1
            return self._reply(200, {"run_id": run["run_id"], "state": state, "run_details": {"task_details": [
                {"display_name": "prep", "state": "SUCCEEDED"}, {"display_name": "label", "state": state}]}})
        return self._reply(404, {"message": f"no route {method} {path}"})

    def _file(self, body: bytes) -> bytes:
        message = email.message_from_bytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body, policy=email.policy.HTTP)
        [part] = [p for p in message.iter_parts() if p.get_filename()]
        return part.get_payload(decode=True)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")


@pytest.fixture
def server():
    fake = FakeKfp()
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kfp-submit")
    shutil.copyfile(NOTEBOOKS / "tags_parameters.ipynb", folder / "tags_parameters.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        return compile_kubeflow(folder / "tags_parameters.ipynb", folder / "out").pipeline_yaml


def test_submit_uploads_the_pipeline_and_starts_a_run(server, pipeline_yaml):
    run = submit(pipeline_yaml, server.url, experiment="nightly", namespace="team-a",
                 params={"alpha": 2, "flags": [3, 4], "name": "x", "nothing": None})
    assert (run.run_id, run.state, run.experiment_id) == ("run-1", "PENDING", "experiment-1")
    assert run.url == f"{server.url}/#/runs/details/run-1"
    [(endpoint, query, content)] = server.uploads
    assert endpoint == "/pipelines/upload"
    assert (query["name"], query["namespace"]) == ("tags-parameters", "team-a")
    assert content == pipeline_yaml.read_bytes()
    assert server.experiments == [{"display_name": "nightly", "namespace": "team-a", "experiment_id": "experiment-1"}]
    body = server.runs["run-1"]
    assert body["experiment_id"] == "experiment-1"
    assert body["pipeline_version_reference"] == {"pipeline_id": "pipeline-1", "pipeline_version_id": "version-1"}
    # alpha is a float parameter; a list travels as literal text; None keeps the default.
    assert body["runtime_config"]["parameters"] == {"alpha": 2.0, "flags": "[3, 4]", "name": "x"}


def test_run_kubeflow_sends_every_parameter_with_the_overrides(server, pipeline_yaml):
    notebook = pipeline_yaml.parent.parent / "tags_parameters.ipynb"
    with pytest.raises(SameError, match="pods cannot read the bundle at the local path .*--bundle-uri URI"):
        run_kubeflow(notebook, server.url, out_dir=pipeline_yaml.parent, params=[("epochs", "5")])
    assert not server.runs
    uri = "minio://mlpipeline/same-nb/tags.tar.gz"
    compiled, run = run_kubeflow(notebook, server.url, out_dir=pipeline_yaml.parent,
                                 params=[("epochs", "5"), ("flags", "[7]")], bundle_uri=uri)
    assert compiled.pipeline_yaml == pipeline_yaml and run.run_id == "run-1"
    assert server.runs["run-1"]["runtime_config"]["parameters"] == {
        "alpha": 0.5, "name": "run", "epochs": 5, "flags": "[7]", "opts": "{'a': 1}", "verbose": False}
    spec = yaml.safe_load(pipeline_yaml.read_text())        # the bundle's URI is compiled in as the default
    assert spec["root"]["inputDefinitions"]["parameters"]["same_nb_bundle_uri"]["defaultValue"] == uri


def test_resubmitting_adds_one_version_per_content(server, pipeline_yaml, tmp_path):
    first = submit(pipeline_yaml, server.url)
    second = submit(pipeline_yaml, server.url)
    third = submit(pipeline_yaml, server.url)
    assert [u[0] for u in server.uploads] == ["/pipelines/upload", "/pipelines/upload_version"]
    name = "tags-parameters-" + hashlib.sha256(pipeline_yaml.read_bytes()).hexdigest()[:12]
    assert server.uploads[1][1] == {"name": name, "pipelineid": "pipeline-1"}
    assert (first.version_id, second.version_id, third.version_id) == ("version-1", "version-2", "version-2")
    assert [e["display_name"] for e in server.experiments] == ["Default"]      # created once, then found
    assert len(server.runs) == 3


def test_wait_follows_the_run_to_its_end(server, pipeline_yaml):
    run = submit(pipeline_yaml, server.url, wait=True, poll=0.01)
    assert run.state == "SUCCEEDED"
    status = refresh_status(server.url, run.run_id)
    assert status.finished and status.tasks == {"prep": "SUCCEEDED", "label": "SUCCEEDED"}


def test_wait_gives_up_after_the_timeout(server, pipeline_yaml):
    server.run_states = ["RUNNING"]
    with pytest.raises(SameError, match=r"run run-1 is still RUNNING after 0.05 s; follow it at http://127"):
        submit(pipeline_yaml, server.url, wait=True, timeout=0.05, poll=0.01)


def test_a_refusal_is_one_same_error(server, pipeline_yaml):
    server.refuse[("POST", "/runs")] = (403, "user may not create runs")
    with pytest.raises(SameError, match=r"refused to start a run of 'tags-parameters': HTTP 403 .*: user may not create runs"):
        submit(pipeline_yaml, server.url)


def test_no_server_is_one_same_error(pipeline_yaml):
    with socket.socket() as probe:          # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SameError, match=rf"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port} to connect"):
        submit(pipeline_yaml, f"127.0.0.1:{port}")


def test_parameters_are_checked_before_contacting_the_server(pipeline_yaml):
    with pytest.raises(SameError, match="unknown parameter 'alhpa'; the pipeline's parameters: alpha, "):
        submit(pipeline_yaml, "http://127.0.0.1:9", params={"alhpa": 1.0})
    with pytest.raises(SameError, match="parameter 'epochs' is NUMBER_INTEGER in the pipeline, got 2.5"):
        submit(pipeline_yaml, "http://127.0.0.1:9", params={"epochs": 2.5})


def test_a_file_that_is_not_a_compiled_pipeline_is_refused(tmp_path):
    notebook = tmp_path / "pipeline.yaml"
    notebook.write_text("steps: []\n")
    with pytest.raises(SameError, match="is not a compiled Kubeflow pipeline"):
        submit(notebook, "http://127.0.0.1:9")


def test_cli_run_on_kubeflow_records_the_run_and_runs_refreshes_it(server, pipeline_yaml, monkeypatch, capsys):
    """Through the CLI: the submitted run is recorded with its KFP run id and URL; `same-nb runs`
    reads its state back from the (fake) server and records the final status."""
    from same_nb.cli import main
    from same_nb.store.database import open_store

    folder = pipeline_yaml.parent.parent
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    server.run_states = ["SUCCEEDED"]
    assert main(["run", str(folder / "tags_parameters.ipynb"), "--target", "kubeflow", "--host", server.url,
                 "-p", "epochs", "4", "--bundle-uri", "s3://bucket/tags.tar.gz"]) == 0
    out = capsys.readouterr().out
    assert "submitted to Kubeflow as run-1: PENDING" in out and f"{server.url}/#/runs/details/run-1" in out
    with open_store(notebook_dir=folder) as store:
        [run] = store.list_runs()
        assert (run["target"], run["status"], run["remote_id"]) == ("kubeflow", "running", "run-1")
        assert run["params"]["epochs"] == 4
    assert main(["runs", "--dir", str(folder), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["runs"]
    assert listed[0]["status"] == "success"
    with open_store(notebook_dir=folder) as store:
        assert store.get_run(run["id"])["status"] == "success"      # recorded, not just shown


def test_cli_kubeflow_without_host_is_a_clear_error(pipeline_yaml, capsys):
    from same_nb.cli import main

    assert main(["run", str(pipeline_yaml.parent.parent / "tags_parameters.ipynb"), "--target", "kubeflow"]) == 1
    assert "--target kubeflow needs --host URL" in capsys.readouterr().err
