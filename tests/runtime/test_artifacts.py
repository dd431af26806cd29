"""The content-addressed artifact store: naming, dedup, verification, atomic writes."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest

from same_nb.runtime import ArtifactStore, CorruptArtifactError, MissingArtifactError, dump_value


def _write_temp(store: ArtifactStore, data: bytes):
    tmp = store.new_temp()
    tmp.write_bytes(data)
    return tmp


def _files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_file_names_the_file_by_its_sha256_and_removes_the_temp(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    data = os.urandom(3 * (1 << 20) + 123)  # spans several 1 MiB hashing chunks
    tmp = _write_temp(store, data)
    assert tmp.parent == store.tmp_dir

    sha, size = store.put_file(tmp)

    assert sha == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert store.path(sha) == tmp_path / "artifacts" / sha[:2] / sha
    assert store.path(sha).read_bytes() == data
    assert not tmp.exists()
    assert store.has(sha) and store.verify(sha)


def test_same_bytes_are_stored_once(tmp_path):
    store = ArtifactStore(tmp_path)
    first = store.put_file(_write_temp(store, b"same bytes"))
    second = store.put_file(_write_temp(store, b"same bytes"))
    assert first == second
    assert _files_under(tmp_path) == [f"{first[0][:2]}/{first[0]}"]


def test_concurrent_puts_of_the_same_bytes_leave_one_intact_file(tmp_path):
    store = ArtifactStore(tmp_path)
    data = os.urandom(1 << 20)
    temps = [_write_temp(store, data) for _ in range(6)]
    results: list[tuple[str, int]] = []
    threads = [threading.Thread(target=lambda t=t: results.append(store.put_file(t))) for t in temps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sha = hashlib.sha256(data).hexdigest()
    assert results == [(sha, len(data))] * 6
    assert _files_under(tmp_path) == [f"{sha[:2]}/{sha}"]
    assert store.verify(sha)


def test_corrupt_artifact_is_detected_and_named(tmp_path):
    store = ArtifactStore(tmp_path)
    sha, _ = store.put_file(_write_temp(store, b"original content"))
    store.path(sha).write_bytes(b"flipped content!")

    assert not store.verify(sha)
    with pytest.raises(CorruptArtifactError) as info:
        store.verified_path(sha, "df")
    err = info.value
    assert err.sha256 == sha and err.name == "df" and err.path == str(store.path(sha))
    assert f"artifact {sha} for variable 'df' is corrupt" in str(err)
    assert hashlib.sha256(b"flipped content!").hexdigest() in str(err)
    assert "Re-run the step that produces 'df'" in str(err)


def test_putting_the_bytes_again_heals_a_corrupt_copy(tmp_path):
    store = ArtifactStore(tmp_path)
    sha, _ = store.put_file(_write_temp(store, b"payload"))
    store.path(sha).write_bytes(b"garbage")
    assert store.put_file(_write_temp(store, b"payload"))[0] == sha
    assert store.verify(sha)
    assert store.verified_path(sha, "x").read_bytes() == b"payload"


def test_missing_and_malformed_hashes(tmp_path):
    store = ArtifactStore(tmp_path)
    absent = "ab" * 32
    assert not store.has(absent) and not store.verify(absent)
    with pytest.raises(MissingArtifactError, match=f"artifact {absent} for variable 'model' is missing"):
        store.verified_path(absent, "model")
    with pytest.raises(MissingArtifactError, match="not a sha256 hex digest"):
        store.path("../../etc/passwd")


def test_failed_rename_leaves_no_final_file_and_no_temp(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    tmp = _write_temp(store, b"will not land")

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        store.put_file(tmp)
    sha = hashlib.sha256(b"will not land").hexdigest()
    assert not store.path(sha).exists()
    assert _files_under(tmp_path) == []


class _FailsMidWrite:
    """Pickling writes a large payload first, then hits a disk error."""

    def __reduce__(self):
        raise OSError(5, "Input/output error")


def test_error_mid_serialization_leaves_no_partial_file(tmp_path):
    store = ArtifactStore(tmp_path)
    value = [os.urandom(2 << 20), _FailsMidWrite()]
    with pytest.raises(OSError, match="Input/output error"):
        dump_value("rows", value, store)
    assert _files_under(tmp_path) == []


def test_new_temp_paths_are_unique_and_inside_the_store(tmp_path):
    store = ArtifactStore(tmp_path / "a")
    temps = {store.new_temp() for _ in range(20)}
    assert len(temps) == 20
    assert all(t.parent == tmp_path / "a" / "tmp" and t.exists() for t in temps)
