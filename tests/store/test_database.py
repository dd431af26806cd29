"""The run store on real database files. Every test goes through the `store_url` fixture, so a
later change can parametrize it with PostgreSQL."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from same_nb.errors import SameError
from same_nb.store.database import DB_ENV, Store, open_store
from same_nb.store.schema import artifacts, metrics, runs, step_run_artifacts, step_runs


def artifact(folder: Path, name: str, content: bytes, role: str = "variable") -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(content).hexdigest()
    location = folder / sha
    location.write_bytes(content)
    return {"name": name, "sha256": sha, "kind": "pickle", "type": "builtins.bytes",
            "size": len(content), "location": str(location), "role": role}


def new_run(store: Store, tmp_path: Path, notebook: str = "nb.ipynb", **params) -> int:
    return store.create_run(notebook_path=tmp_path / notebook, notebook_sha256="0" * 64,
                            pipeline_name="demo", params=params, target="local",
                            run_dir_root=tmp_path / "runs")


def run_step(store: Store, step_run_id: int, cache_key: str, outputs: list[dict],
             inputs: tuple[dict, ...] = (), status: str = "success", **finish) -> None:
    store.start_step(step_run_id, cache_key=cache_key, cache_info={"code": cache_key},
                     reason="no previous run", code_sha256="c" * 64)
    store.finish_step(step_run_id, status=status, inputs=list(inputs), outputs=outputs,
                      executed_notebook=f"/x/{step_run_id}.ipynb", log_path=f"/x/{step_run_id}.log",
                      **finish)


def count(store: Store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_full_lifecycle(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path, alpha=0.5)
    ids = store.add_step_runs(run_id, ["load", "train", "report"])
    assert list(ids) == ["load", "train", "report"]
    data = artifact(tmp_path / "art", "df", b"rows")
    model = artifact(tmp_path / "art", "model.pkl", b"weights", role="file")

    run_step(store, ids["load"], "k-load", outputs=[data])
    run_step(store, ids["train"], "k-train", inputs=[data], outputs=[model], status="failed",
             error={"ename": "ValueError", "evalue": "bad", "cell": 3, "line": 2,
                    "traceback": ["..."]},
             metrics=[{"name": "loss", "value": 0.5, "step": 1}, {"name": "loss", "value": 0.25,
                                                                 "step": 2}])
    store.mark_steps(run_id, ["report"], "skipped")
    store.finish_run(run_id, "failed", error="step train failed")

    run = store.get_run(run_id)
    assert run["status"] == "failed" and run["error"] == "step train failed"
    assert run["params"] == {"alpha": 0.5} and run["target"] == "local"
    assert run["notebook_path"] == str((tmp_path / "nb.ipynb").resolve())
    assert run["run_dir"] == str((tmp_path / "runs" / str(run_id)).resolve())
    assert run["pid"] == os.getpid() and run["host"] and run["user"]
    assert run["finished_at"] >= run["started_at"] and run["duration_s"] >= 0
    assert run["created_at"].tzinfo is not None and run["created_at"].utcoffset() == timedelta(0)
    assert abs(run["created_at"] - datetime.now(timezone.utc)) < timedelta(seconds=30)
    assert run["step_counts"] == {"success": 1, "failed": 1, "skipped": 1}

    load, train, report = run["steps"]
    assert load["outputs"] == [data] and load["inputs"] == []
    assert train["inputs"] == [data] and train["outputs"] == [model]
    assert train["error"]["ename"] == "ValueError" and train["cache_key"] == "k-train"
    assert train["cache_info"] == {"code": "k-train"} and train["reason"] == "no previous run"
    assert [(m["name"], m["value"], m["step"]) for m in train["metrics"]] == [
        ("loss", 0.5, 1), ("loss", 0.25, 2)]
    assert train["duration_s"] >= 0 and train["log_path"] == f"/x/{ids['train']}.log"
    assert report["status"] == "skipped" and report["started_at"] is None

    assert store.steps_to_resume(run_id) == ["train", "report"]
    assert [(m["step_name"], m["value"]) for m in store.run_metrics([run_id])] == [
        ("train", 0.5), ("train", 0.25)]
    listed = store.list_runs()
    assert [r["id"] for r in listed] == [run_id]
    assert listed[0]["step_counts"] == run["step_counts"]


def test_git_commit_recorded_only_inside_a_repo(store: Store, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # ignore repos above tmp_path
    repo, plain = tmp_path / "repo", tmp_path / "plain"
    repo.mkdir()
    plain.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@x"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    inside = new_run(store, tmp_path, notebook="repo/nb.ipynb")
    outside = new_run(store, tmp_path, notebook="plain/nb.ipynb")
    assert store.get_run(inside)["git_commit"] == head
    assert store.get_run(outside)["git_commit"] is None


def test_finish_step_writes_nothing_when_it_fails_midway(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path)
    step = store.add_step_runs(run_id, ["a"])["a"]
    store.start_step(step, cache_key="k", cache_info={}, reason="r", code_sha256=None)
    one = artifact(tmp_path / "art", "x", b"1")
    two = artifact(tmp_path / "art", "x", b"2")  # same name: edge primary key clash
    with pytest.raises(SameError, match="rejected a write"):
        store.finish_step(step, status="success", inputs=[], outputs=[one, two],
                          executed_notebook="e", log_path="l", metrics=[{"name": "m", "value": 1}])
    row = store.get_run(run_id)["steps"][0]
    assert row["status"] == "running" and row["finished_at"] is None and row["log_path"] is None
    assert (count(store, artifacts), count(store, step_run_artifacts), count(store, metrics)) == (
        0, 0, 0)

    with pytest.raises(SameError, match="no step run 999"):
        store.finish_step(999, status="success", inputs=[], outputs=[one],
                          executed_notebook=None, log_path=None)
    assert count(store, artifacts) == 0


def test_same_bytes_are_one_artifact(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path)
    ids = store.add_step_runs(run_id, ["a", "b"])
    run_step(store, ids["a"], "ka", outputs=[artifact(tmp_path / "a", "x", b"same")])
    run_step(store, ids["b"], "kb", outputs=[artifact(tmp_path / "b", "y", b"same"),
                                             artifact(tmp_path / "b", "z", b"other")])
    assert count(store, artifacts) == 2
    assert count(store, step_run_artifacts) == 3
    a, b = store.get_run(run_id)["steps"]
    assert a["outputs"][0]["sha256"] == b["outputs"][0]["sha256"]
    # The first location stored for those bytes is the one every edge resolves to.
    assert b["outputs"][0]["location"] == str(tmp_path / "a" / a["outputs"][0]["sha256"])


def test_find_cached_prefers_the_run_that_computed_the_step_then_the_newest_hit(store: Store, tmp_path: Path):
    assert store.find_cached("key") is None
    older_art = artifact(tmp_path / "art", "x", b"old")
    newer_art = artifact(tmp_path / "art", "x", b"new")
    older_run, newer_run, failed_run = (new_run(store, tmp_path) for _ in range(3))
    older = store.add_step_runs(older_run, ["s"])["s"]
    newer = store.add_step_runs(newer_run, ["s"])["s"]
    failed = store.add_step_runs(failed_run, ["s"])["s"]
    run_step(store, older, "key", outputs=[older_art])
    run_step(store, newer, "key", outputs=[newer_art], status="cached", cache_hit=True)
    run_step(store, failed, "key", outputs=[], status="failed")

    hit = store.find_cached("key")                # the run that computed it, though a hit came later
    assert (hit["step_run_id"], hit["run_id"], hit["outputs"]) == (older, older_run, [older_art])
    Path(older_art["location"]).unlink()
    hit = store.find_cached("key")                # its outputs gone: the newest hit whose outputs exist
    assert (hit["step_run_id"], hit["run_id"], hit["outputs"]) == (newer, newer_run, [newer_art])
    Path(newer_art["location"]).unlink()
    assert store.find_cached("key") is None
    assert store.find_cached("other-key") is None


def test_last_step_run_is_latest_finished_run_of_that_notebook(store: Store, tmp_path: Path):
    first, second = new_run(store, tmp_path), new_run(store, tmp_path)
    other_nb, skipped = new_run(store, tmp_path, notebook="other.ipynb"), new_run(store, tmp_path)
    run_step(store, store.add_step_runs(first, ["s"])["s"], "k1", outputs=[])
    run_step(store, store.add_step_runs(second, ["s"])["s"], "k2", outputs=[])
    run_step(store, store.add_step_runs(other_nb, ["s"])["s"], "k3", outputs=[])
    store.add_step_runs(skipped, ["s"])
    store.mark_steps(skipped, ["s"], "skipped")

    last = store.last_step_run(tmp_path / "nb.ipynb", "s")
    assert (last["run_id"], last["cache_key"], last["cache_info"]) == (second, "k2", {"code": "k2"})
    assert store.last_step_run(tmp_path / "nb.ipynb", "missing") is None


CHILD_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from same_nb.store.database import open_store
    store = open_store(sys.argv[1])
    run_id = store.create_run(notebook_path="nb.ipynb", notebook_sha256="0" * 64,
                              pipeline_name="p", params={}, target="local", run_dir_root=Path("r"))
    ids = store.add_step_runs(run_id, ["a", "b", "c"])
    store.start_step(ids["a"], cache_key="k", cache_info={}, reason="r", code_sha256=None)
    store.finish_step(ids["a"], status="success", inputs=[], outputs=[],
                      executed_notebook=None, log_path=None)
    store.start_step(ids["b"], cache_key="k", cache_info={}, reason="r", code_sha256=None)
    print(run_id, flush=True)
    time.sleep(60)
""")


@pytest.mark.slow
def test_killed_driver_marks_run_interrupted_on_open(store_url: str, tmp_path: Path):
    with open_store(store_url) as store:
        alive = new_run(store, tmp_path)  # driven by this (live) process
    child = subprocess.Popen([sys.executable, "-c", CHILD_RUN, store_url], cwd=tmp_path,
                             stdout=subprocess.PIPE, text=True)
    try:
        dead = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with open_store(store_url) as store:
        run = store.get_run(dead)
        assert run["status"] == "interrupted" and run["finished_at"] is not None
        assert "interrupted" in run["error"]
        assert [s["status"] for s in run["steps"]] == ["success", "interrupted", "interrupted"]
        assert store.steps_to_resume(dead) == ["b", "c"]
        assert store.get_run(alive)["status"] == "running"
        assert store.mark_interrupted_runs() == []


def test_reused_pid_counts_as_dead(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path)
    assert store.mark_interrupted_runs() == []
    # Same pid, different start time: the pid now belongs to another process.
    with store.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id)
                     .values(pid_started=runs.c.pid_started + 1))
    assert store.mark_interrupted_runs() == [run_id]
    assert store.get_run(run_id)["status"] == "interrupted"


def test_pagination_newest_first(store: Store, tmp_path: Path):
    ids = [new_run(store, tmp_path, notebook="a.ipynb" if i % 2 else "b.ipynb") for i in range(7)]
    pages = [[r["id"] for r in store.list_runs(limit=3, offset=o)] for o in (0, 3, 6, 9)]
    assert pages == [ids[::-1][0:3], ids[::-1][3:6], ids[::-1][6:], []]
    a_runs = [r["id"] for r in store.list_runs(notebook_path=tmp_path / "a.ipynb")]
    assert a_runs == [i for i in ids[::-1] if ids.index(i) % 2]
    assert store.count_runs() == 7 and store.count_runs(tmp_path / "a.ipynb") == 3
    with pytest.raises(SameError, match="limit -1"):
        store.list_runs(limit=-1)


def test_default_location_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           store_url: str):
    monkeypatch.delenv(DB_ENV, raising=False)
    with open_store(notebook_dir=tmp_path / "nbdir") as store:
        assert store.url == f"sqlite:///{(tmp_path / 'nbdir' / '.same' / 'same.db').resolve()}"
    assert (tmp_path / "nbdir" / ".same" / "same.db").is_file()

    monkeypatch.setenv(DB_ENV, store_url)
    with open_store(notebook_dir=tmp_path / "elsewhere") as store:
        assert store.url == store_url
        new_run(store, tmp_path)
    assert not (tmp_path / "elsewhere").exists()
    with open_store(store_url) as store:
        assert store.count_runs() == 1


def test_sqlite_is_configured_for_concurrency(store: Store):
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("url, shown", [
    ("not a url", "not a url"),
    ("oracle://u:hunter2@127.0.0.1/x", "oracle://u:***@127.0.0.1/x"),
    ("postgresql+psycopg://u:hunter2@127.0.0.1:1/x", "postgresql+psycopg://u:***@127.0.0.1:1/x"),
])
def test_bad_or_unreachable_url_names_it_without_password(url: str, shown: str):
    with pytest.raises(SameError) as err:
        open_store(url)
    assert shown in str(err.value) and "hunter2" not in str(err.value)


def test_bad_input_is_a_same_error(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path)
    step = store.add_step_runs(run_id, ["a"])["a"]
    bad_calls = {
        "invalid target 'cloud'": lambda: store.create_run(
            notebook_path="n", notebook_sha256="0", pipeline_name="p", params={},
            target="cloud", run_dir_root=tmp_path),
        "not JSON-serializable": lambda: new_run(store, tmp_path, f=open),
        "duplicate step names": lambda: store.add_step_runs(run_id, ["x", "x"]),
        "no run 42": lambda: store.add_step_runs(42, ["x"]),
        "invalid step status 'done'": lambda: store.mark_steps(run_id, ["a"], "done"),
        r"has no steps \['zz'\]": lambda: store.mark_steps(run_id, ["a", "zz"], "skipped"),
        "invalid run status 'ok'": lambda: store.finish_run(run_id, "ok"),
        "no step run 77": lambda: store.start_step(77, cache_key=None, cache_info=None,
                                                   reason=None, code_sha256=None),
        "no valid sha256": lambda: store.finish_step(
            step, status="success", inputs=[{"name": "x", "sha256": "abc"}], outputs=[],
            executed_notebook=None, log_path=None),
        "invalid metric": lambda: store.finish_step(
            step, status="success", inputs=[], outputs=[], executed_notebook=None,
            log_path=None, metrics=[{"name": "acc", "value": "high"}]),
    }
    for message, call in bad_calls.items():
        with pytest.raises(SameError, match=message):
            call()
    assert store.get_run(run_id)["steps"][0]["status"] == "pending"


WRITER = textwrap.dedent("""
    import hashlib, sys
    from pathlib import Path
    from same_nb.store.database import open_store
    url, worker, loops, art_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    def art(name, content):
        sha = hashlib.sha256(content).hexdigest()
        return {"name": name, "sha256": sha, "kind": "pickle", "type": "bytes",
                "size": len(content), "location": str(art_dir / sha), "role": "variable"}
    with open_store(url) as store:
        for i in range(loops):
            run_id = store.create_run(notebook_path="nb.ipynb", notebook_sha256="0" * 64,
                                      pipeline_name="p", params={"w": worker, "i": i},
                                      target="local", run_dir_root=art_dir)
            ids = store.add_step_runs(run_id, ["a", "b"])
            for name, step in ids.items():
                store.start_step(step, cache_key=f"{worker}-{i}-{name}", cache_info={},
                                 reason="r", code_sha256=None)
                outputs = [art("shared", b"shared"), art("own", f"{worker}-{i}-{name}".encode())]
                store.finish_step(step, status="success", inputs=[], outputs=outputs,
                                  executed_notebook=None, log_path=None,
                                  metrics=[{"name": "m", "value": i}])
            store.finish_run(run_id, "success")
""")


@pytest.mark.slow
def test_concurrent_writer_processes_all_succeed(store_url: str, tmp_path: Path):
    workers, loops = 8, 10
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, store_url, str(w), str(loops),
                               str(tmp_path)], stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * workers, "\n".join(errors)
    assert not any("locked" in e for e in errors)
    with open_store(store_url) as store:
        assert store.count_runs() == workers * loops
        assert {r["status"] for r in store.list_runs(limit=1000)} == {"success"}
        steps = workers * loops * 2
        assert count(store, step_runs) == steps and count(store, metrics) == steps
        assert count(store, artifacts) == 1 + steps
        assert count(store, step_run_artifacts) == 2 * steps
        params = {(r["params"]["w"], r["params"]["i"]) for r in store.list_runs(limit=1000)}
        assert params == {(w, i) for w in range(workers) for i in range(loops)}


@pytest.mark.slow
def test_list_runs_stays_fast_with_100k_step_runs(store: Store, tmp_path: Path):
    now = datetime.now(timezone.utc)
    with store.engine.begin() as conn:
        conn.execute(insert(runs), [
            dict(notebook_path="/nb.ipynb", notebook_sha256="0", pipeline_name="p", params={},
                 target="local", status="success", created_at=now, started_at=now,
                 finished_at=now) for _ in range(10_000)])
        conn.execute(insert(step_runs), [
            dict(run_id=1 + i // 10, step_name=f"s{i % 10}", status="success", cache_hit=False,
                 cache_key=f"k{i}") for i in range(100_000)])
    store.list_runs()  # warm the connection pool and statement cache
    started = time.perf_counter()
    page = store.list_runs(limit=50, offset=100)
    elapsed = time.perf_counter() - started
    assert [r["step_counts"] for r in page] == [{"success": 10}] * 50
    assert page[0]["id"] == 10_000 - 100
    assert elapsed < 0.25, f"list_runs took {elapsed:.3f}s"
