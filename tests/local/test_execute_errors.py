"""Clean errors of the local run path (issue 15): a folder same-nb cannot write in, and a full disk
while a step saves its outputs, give one line naming the folder or path and a non-zero exit."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from same_nb import cli
from same_nb.local.execute import write_spec
from same_nb.runtime import StepRuntimeError, save_outputs, serializers

CLI = [sys.executable, "-m", "same_nb.cli"]
TWO_STEPS = [(["step:make"], "data = bytes(8_000_000)"), (["step:use"], "n = len(data)")]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}
    return {**env, **extra}


# -- a folder same-nb cannot write in ------------------------------------------------------------

def _unprivileged() -> list[str] | None:
    """A command prefix under which chmod 555 makes a folder unwritable: none for a normal user; for
    root, setpriv without the capabilities that bypass file permissions (root ignores modes)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run(prefix + ["true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


@pytest.fixture
def read_only(write_notebook, tmp_path):
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    nb = write_notebook(TWO_STEPS[:1] + [(["step:use"], "n = 1")], name="small")
    tmp_path.chmod(0o555)
    try:
        yield prefix, nb
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.slow
@pytest.mark.parametrize("command, hint", [
    ("run", "same-nb keeps its runs and cache in .same/ beside the notebook: copy the notebook to a folder "
            "you can write to"),
    ("compile", "write the bundle elsewhere with -o DIR"),
    ("lock", "write the locks elsewhere with -o DIR"),
])
def test_a_read_only_folder_is_named_without_a_traceback(read_only, command, hint):
    prefix, nb = read_only
    proc = subprocess.run(prefix + CLI + [command, nb.name], cwd=nb.parent, capture_output=True, text=True,
                          env=_env(), timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    created = ".same" if command == "run" else "small-pipeline"
    assert proc.stderr.strip() == (f"error: {nb.parent}: cannot write in this folder (permission denied "
                                   f"creating {created}); {hint}")


def test_cli_maps_unwritable_paths_and_full_disks_and_keeps_other_os_errors(monkeypatch, capsys, tmp_path):
    import same_nb.service as service

    nb = tmp_path / "nb.ipynb"

    def failing(exc):
        def compile_notebook(*args, **kwargs):
            raise exc
        return compile_notebook

    monkeypatch.setattr(service, "compile_notebook",
                        failing(OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out" / "x.json"))))
    assert cli.main(["compile", str(nb), "--no-lock"]) == 1
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'out'}: cannot write in this folder (read-only "
                                               f"file system creating x.json); write the bundle elsewhere with -o DIR")
    monkeypatch.setattr(service, "compile_notebook",
                        failing(OSError(errno.ENOSPC, "No space left on device", str(nb))))
    assert cli.main(["compile", str(nb), "--no-lock"]) == 1
    assert capsys.readouterr().err.strip() == (f"error: {nb}: no space left on device while writing this file: free "
                                               f"some space on its device, then run again")
    monkeypatch.setattr(service, "compile_notebook", failing(OSError(errno.EIO, "Input/output error", str(nb))))
    with pytest.raises(OSError):                            # not about permissions or space: a real bug
        cli.main(["compile", str(nb), "--no-lock"])


# -- a full disk while saving outputs ------------------------------------------------------------

def _spec(tmp_path: Path, outputs: dict[str, list[str]]) -> Path:
    spec = tmp_path / "spec.json"
    write_spec(spec, step="make", store_root=tmp_path / "artifacts", inputs={}, outputs=outputs, watch=[],
               result=tmp_path / "result.json")
    return spec


@pytest.mark.parametrize("filename", [None, "named"])
def test_enospc_while_saving_an_output_says_no_space_left_with_the_path(tmp_path, monkeypatch, filename):
    """Simulated in-process: the serializer's write raises ENOSPC (a failed write() has no file name;
    an open() does)."""
    where = str(tmp_path / "artifacts" / "tmp" / "put-1") if filename else None

    def full(name, obj, path):
        raise OSError(errno.ENOSPC, "No space left on device", *([where] if where else []))

    monkeypatch.setattr(serializers, "serialize", full)
    with pytest.raises(StepRuntimeError) as info:
        save_outputs(str(_spec(tmp_path, {"data": ["use"]})), {"data": b"x"})
    message = str(info.value)
    assert type(info.value) is StepRuntimeError                 # not a StepBoundaryError
    assert message.startswith("No space left on device: step 'make' could not save variable 'data' to "
                              f"{where or tmp_path / 'artifacts' / 'tmp'}.")
    assert "free space on the device holding" in message and "cannot be passed" not in message
    assert not json.loads((tmp_path / "spec.json").read_text()).get("never")   # spec untouched


def test_enospc_while_saving_outputs_that_share_objects(tmp_path, monkeypatch):
    """Values sharing objects are stored as one group: the same message, naming all of them."""
    def full(values, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serializers, "_dump_pickle", full)
    shared = [1, 2]
    with pytest.raises(StepRuntimeError, match=r"^No space left on device: step 'make' could not save "
                                               r"variables 'a', 'b' to "):
        save_outputs(str(_spec(tmp_path, {"a": ["use"], "b": ["use"]})), {"a": shared, "b": {"k": shared}})


def test_a_wrapped_enospc_is_still_a_full_disk(tmp_path, monkeypatch):
    def full(name, obj, path):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("the library's own error") from exc

    monkeypatch.setattr(serializers, "serialize", full)
    with pytest.raises(StepRuntimeError, match="^No space left on device"):
        save_outputs(str(_spec(tmp_path, {"data": ["use"]})), {"data": b"x"})


def test_other_serialization_errors_still_say_the_value_cannot_be_passed(tmp_path, monkeypatch):
    def broken(name, obj, path):
        raise TypeError("cannot pickle 'generator' object")

    monkeypatch.setattr(serializers, "serialize", broken)
    with pytest.raises(StepRuntimeError, match="cannot be passed from step 'make' to step 'use'"):
        save_outputs(str(_spec(tmp_path, {"data": ["use"]})), {"data": b"x"})


_FULL_DISK = '''
import errno, os
if os.environ.get("SAME_NB_TEST_FULL_DISK"):
    import same_nb.runtime.serializers as _s

    def _full(name, obj, path):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")   # as a write() that ran out of space

    _s.serialize = _full
'''


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_full_disk_in_a_real_run_reports_no_space_left(write_notebook, tmp_path_factory):
    """End to end, without filling a disk: a sitecustomize on PYTHONPATH (imported by every process,
    so by the step's kernel) makes the runtime's serializer write a few bytes and then fail with
    ENOSPC, as the write of a real full disk does."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(_FULL_DISK)
    nb = write_notebook(TWO_STEPS, name="full")
    env = _env(PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               SAME_NB_TEST_FULL_DISK="1")
    proc = subprocess.run(CLI + ["run", nb.name], cwd=nb.parent, capture_output=True, text=True, env=env,
                          timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    tmp_dir = nb.parent / ".same" / "artifacts" / "tmp"
    assert f"No space left on device: step 'make' could not save variable 'data' to {tmp_dir}" in out
    assert "cannot be passed" not in out and "create it inside" not in out.lower()
    assert not [p for p in tmp_dir.iterdir()]                   # the partial temp file is gone


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_FSIZE and Python's ignored SIGXFSZ")
def test_a_file_size_limit_in_a_real_run_says_so(write_notebook):
    """A real OS error, no simulation: RLIMIT_FSIZE (ulimit -f) in the run's process, inherited by its
    kernels. Writing past it fails with EFBIG ("File too large"; Python ignores SIGXFSZ)."""
    import resource

    nb = write_notebook(TWO_STEPS, name="limited")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    proc = subprocess.run(CLI + ["run", nb.name], cwd=nb.parent, capture_output=True, text=True, env=_env(),
                          timeout=240, preexec_fn=limit)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "File too large: step 'make' could not save variable 'data' to " in out
    assert "file size limit (ulimit -f)" in out and "cannot be passed" not in out
