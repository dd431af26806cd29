"""OpenLineage RunEvents through openlineage-python's real file transport, parsed back into the
client's models."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

from same_nb.errors import SameError
from same_nb.frontend.manifest import load_manifest
from same_nb.local.runner import StepState
from same_nb.store.openlineage import emit_step_event, lineage_config


def parse(line: str) -> RunEvent:
    d = json.loads(line)
    return RunEvent(eventType=RunState(d["eventType"]), eventTime=d["eventTime"],
                    run=Run(runId=d["run"]["runId"]),
                    job=Job(namespace=d["job"]["namespace"], name=d["job"]["name"]),
                    producer=d["producer"],
                    inputs=[InputDataset(namespace=i["namespace"], name=i["name"])
                            for i in d["inputs"]],
                    outputs=[OutputDataset(namespace=o["namespace"], name=o["name"])
                             for o in d["outputs"]])


@pytest.fixture
def step(tmp_path: Path) -> tuple[dict, StepState]:
    """A finished step as the runner leaves it: state plus its result file."""
    steps = tmp_path / ".same" / "runs" / "7" / "steps"
    (steps / "train").mkdir(parents=True)
    (steps / "train" / "result.json").write_text(json.dumps({
        "files": [{"name": "data.csv", "direction": "in", "sha256": "a" * 64, "role": "file"},
                  {"name": "model.pkl", "direction": "out", "sha256": "b" * 64, "role": "file"}],
        "datasets": [{"name": "iris", "url": "https://example.org/iris.csv", "sha256": "c" * 64}]}))
    state = StepState("train", status="success", executed=steps / "train.ipynb",
                      inputs=[{"name": "df", "sha256": "d" * 64, "role": "variable"}],
                      outputs={"model": {"sha256": "e" * 64}})
    run = {"id": 7, "pipeline_name": "demo", "notebook_path": str(tmp_path / "nb.ipynb")}
    return run, state


def test_file_transport_events_parse_back(tmp_path: Path, step):
    run, state = step
    (tmp_path / "same.yaml").write_text("lineage:\n  openlineage: {transport: file, path: ol.jsonl}\n")
    config = lineage_config(load_manifest(tmp_path / "same.yaml"), base=tmp_path)
    assert config == {"type": "file", "log_file_path": str(tmp_path / "ol.jsonl"), "append": True}
    for kind in ("START", "COMPLETE", "FAIL"):
        assert emit_step_event(config, run, state, kind) is not None
    events = [parse(line) for line in (tmp_path / "ol.jsonl").read_text().splitlines()]
    assert [e.eventType for e in events] == [RunState.START, RunState.COMPLETE, RunState.FAIL]
    assert len({e.run.runId for e in events}) == 1
    assert events[0].job.name == "demo.train"
    assert {(i.namespace, i.name) for i in events[0].inputs} == {
        ("same-nb", "demo.df"), ("file", str(tmp_path / "data.csv")),
        ("same-nb-dataset", "https://example.org/iris.csv")}
    assert events[0].outputs == [] and events[2].outputs == []
    assert {(o.namespace, o.name) for o in events[1].outputs} == {
        ("same-nb", "demo.model"), ("file", str(tmp_path / "model.pkl"))}


def test_config_from_env_and_unconfigured(monkeypatch: pytest.MonkeyPatch, step):
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    assert lineage_config(None) is None
    assert emit_step_event(None, *step, "START") is None
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    retry = {"total": 1, "backoff_factor": 0.2}
    assert lineage_config(None) == {"type": "http", "url": "http://127.0.0.1:9", "retry": retry}
    assert lineage_config({"lineage": {"openlineage": {
        "transport": "http", "url": "http://h:5000", "endpoint": "api/v1/lineage"}}}) == {
        "type": "http", "url": "http://h:5000", "endpoint": "api/v1/lineage", "retry": retry}


def test_unreachable_backend_is_logged_not_raised(step, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="same_nb.openlineage"):
        config = lineage_config({"lineage": {"openlineage": {"transport": "http",
                                                             "url": "http://127.0.0.1:9"}}})
        assert emit_step_event(config, *step, "START") is None
    assert "OpenLineage START event for step train not sent" in caplog.text
    with pytest.raises(SameError, match="invalid OpenLineage event type 'DONE'"):
        emit_step_event({"type": "http", "url": "http://127.0.0.1:9"}, *step, "DONE")


def test_a_local_run_emits_start_and_complete_per_step(write_notebook, monkeypatch):
    """End to end: same.yaml's file transport, a real run, events parsed back into the client's models."""
    from same_nb.service import run_notebook

    monkeypatch.delenv("SAME_NB_DB", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    nb = write_notebook([(["step:write"], "open('out.txt', 'w').write('x')\nn = 1"),
                         (["step:use"], "m = n + 1")], name="lineage_nb")
    (nb.parent / "same.yaml").write_text("lineage:\n  openlineage: {transport: file, path: events.jsonl}\n")
    assert run_notebook(nb).ok
    events = [parse(line) for line in (nb.parent / "events.jsonl").read_text().splitlines() if line.strip()]
    seen = [(e.job.name.split(".")[-1], e.eventType.value) for e in events]
    assert seen.count(("write", "START")) == 1 and seen.count(("write", "COMPLETE")) == 1
    assert seen.count(("use", "START")) == 1 and seen.count(("use", "COMPLETE")) == 1
    complete = next(e for e in events if e.eventType == RunState.COMPLETE and e.job.name.endswith("write"))
    assert any(o.name.endswith("out.txt") for o in complete.outputs)
