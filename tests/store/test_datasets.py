"""Datasets from same.yaml: local paths, file:// and http:// (a real local server), verified by sha256,
downloaded once, recorded as lineage inputs of the step that uses them."""
from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import nbformat
import pytest

import same_nb
from same_nb.errors import SameError
from same_nb.local.progress import make_progress
from same_nb.service import run_notebook
from same_nb.store.database import open_store
from same_nb.store.datasets import prepare_datasets

DATA = b"a,b\n1,2\n3,4\n"
SHA = hashlib.sha256(DATA).hexdigest()


def manifest(folder: Path, datasets: dict[str, dict]) -> Path:
    lines = ["apiVersion: same-nb/v1", "datasets:"]
    for name, spec in datasets.items():
        lines.append(f"  {name}: {{" + ", ".join(f"{k}: '{v}'" for k, v in spec.items()) + "}")
    path = folder / "same.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def server(tmp_path: Path):
    """A static file server on 127.0.0.1 serving ``tmp_path/www``; counts GET requests."""
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_local_path_and_file_url_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_bytes(DATA)
    manifest(tmp_path, {"rel": {"url": "data/t.csv", "sha256": SHA},
                        "uri": {"url": (tmp_path / "data" / "t.csv").as_uri()},
                        "bad": {"url": "data/t.csv", "sha256": "0" * 64}})
    monkeypatch.chdir(tmp_path)               # interactive use: same.yaml beside the notebook
    assert Path(same_nb.dataset("rel")).read_bytes() == DATA
    assert same_nb.dataset("uri") == str(tmp_path / "data" / "t.csv")
    with pytest.raises(SameError, match=f"sha256 mismatch.*expects {'0' * 64}, the data has {SHA}"):
        same_nb.dataset("bad")
    with pytest.raises(SameError, match=r"no dataset 'nope' in same.yaml \(datasets: bad, rel, uri\)"):
        same_nb.dataset("nope")


def test_http_downloads_once_into_the_cache(tmp_path: Path, server):
    root, base, hits = server
    (root / "t.csv").write_bytes(DATA)
    folder = tmp_path / "nb"
    folder.mkdir()
    path = manifest(folder, {"t": {"url": f"{base}/t.csv", "sha256": SHA}})
    first = prepare_datasets(path)["t"]
    assert first["location"] == str(folder / ".same" / "datasets" / SHA)
    assert Path(first["location"]).read_bytes() == DATA and first["sha256"] == SHA
    (root / "t.csv").unlink()                 # the server no longer has it: the cache answers
    assert same_nb.store.datasets.dataset("t", path) == first["location"]
    assert hits == ["/t.csv"]


def test_http_mismatch_refuses_and_caches_nothing(tmp_path: Path, server):
    root, base, hits = server
    (root / "t.csv").write_bytes(DATA + b"tampered")
    path = manifest(tmp_path, {"t": {"url": f"{base}/t.csv", "sha256": SHA}})
    with pytest.raises(SameError, match="dataset 't': sha256 mismatch"):
        prepare_datasets(path)
    assert list((tmp_path / ".same" / "datasets").iterdir()) == []
    with pytest.raises(SameError, match="cannot download .*404"):
        prepare_datasets(manifest(tmp_path, {"t": {"url": f"{base}/missing.csv"}}))


def test_bad_manifest_entries_are_same_errors(tmp_path: Path):
    with pytest.raises(SameError, match="datasets.x.sha256: expected 64 lowercase hex"):
        prepare_datasets(manifest(tmp_path, {"x": {"url": "a.csv", "sha256": "abc"}}))
    with pytest.raises(SameError, match="unsupported URL scheme 's3'"):
        prepare_datasets(manifest(tmp_path, {"x": {"url": "s3://bucket/a.csv"}}))
    with pytest.raises(SameError, match="no such file"):
        prepare_datasets(manifest(tmp_path, {"x": {"url": "missing.csv"}}))


@pytest.mark.slow
def test_step_records_the_dataset_it_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    root, base, _ = server
    (root / "t.csv").write_bytes(DATA)
    manifest(tmp_path, {"table": {"url": f"{base}/t.csv", "sha256": SHA}})
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for tags, src in [(["step:load"], "import same_nb\ntext = open(same_nb.dataset('table')).read()"),
                      (["step:use"], "n = len(text)")]:
        nb.cells.append(nbformat.v4.new_code_cell(src, metadata={"tags": tags}))
    nbformat.write(nb, tmp_path / "ds.ipynb")
    result = run_notebook(tmp_path / "ds.ipynb", progress=make_progress(quiet=True))
    assert result.ok, {n: s.error for n, s in result.states.items()}
    with open_store(notebook_dir=tmp_path) as store:
        steps = {s["step_name"]: s for s in store.get_run(result.run_id)["steps"]}
    inputs = {i["name"]: (i["role"], i["sha256"]) for i in steps["load"]["inputs"]}
    assert inputs == {"table": ("dataset", SHA)}
    assert {i["role"] for i in steps["use"]["inputs"]} == {"variable"}


def test_same_style_dataset_uses_its_default_environment(tmp_path: Path):
    from same_nb.store.datasets import read_datasets

    (tmp_path / "same.yaml").write_text(
        "apiVersion: sameproject.io/v1alpha1\n"
        "datasets:\n"
        "  local:\n    schema_uri: x\n    environments:\n      default: data/t.csv\n      prod: s3://b/t.csv\n"
        "  remote_only:\n    environments:\n      prod: s3://b/t.csv\n")
    assert read_datasets(tmp_path / "same.yaml") == {"local": {"url": "data/t.csv", "sha256": None}}
