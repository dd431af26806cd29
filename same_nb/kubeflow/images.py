"""Step images for Kubeflow: one Docker build context per distinct lock, and the commands that build
and push them.

A pod that installs its lock when it starts pays for that on every run and needs the index; an image
built from the lock pays once. ``write_image_contexts`` writes, under ``kfp/images/<lock-id>/``, a
Dockerfile (templates/Dockerfile.j2), the step's hashed lock, a hashed lock of uv and the bundle, and
``kfp/images/build.sh`` (templates/kfp_build.sh.j2) to build and push them. ``install_commands`` is
the one definition of how an image installs its packages: the Dockerfile runs it, and tests run it
against a fresh venv, since there is no Docker engine here. Nothing here contacts a registry, so a
base image given by tag cannot be pinned to its digest: that is a warning with the command to do it.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath

from same_nb._version import __version__
from same_nb.bundle.escape import visible
from same_nb.bundle.templates import render
from same_nb.errors import SameError
from same_nb.frontend.manifest_schema import IMAGE_ROOT, Environment, image_parts
from same_nb.kubeflow.podfiles import copy_file, write_text  # unchanged files are not rewritten

BUILD_DIR = PurePosixPath(IMAGE_ROOT) / "build"       # where an image keeps its lock files
BUNDLE_FILE = "bundle.tar.gz"
BUNDLE_PATH = f"{IMAGE_ROOT}/{BUNDLE_FILE}"
BUNDLE_ENV, LOCK_ENV = "SAME_NB_BUNDLE", "SAME_NB_LOCK_SHA256"
LOCK_FILE, UV_FILE = "requirements.txt", "uv.txt"
IMAGES_DIR = Path("kfp") / "images"
LOCAL_REPOSITORY = "same-nb-step"      # the images' repository when same.yaml names none
# uv's platform names (same.yaml's environment.platform, `uv pip compile --python-platform`) → Docker's
_DOCKER_ARCH = {"x86_64": "linux/amd64", "amd64": "linux/amd64", "aarch64": "linux/arm64", "arm64": "linux/arm64"}
_LOCK_ID = re.compile(r"[0-9a-f]{12}")


@dataclass
class ImagePlan:
    lock_ids: dict[str, str]                # step → the id of its lock (first 12 hex of its sha256)
    images: dict[str, str]                  # step → the image reference its pod runs
    contexts: dict[str, Path]               # lock id → its build context folder
    lock_sha256: dict[str, str]             # lock id → the lock's full sha256 (SAME_NB_LOCK_SHA256)
    commands: list[list[str]]               # docker build / push argv, run in the images folder, in order
    script: Path                            # kfp/images/build.sh: those commands
    warnings: list[str] = field(default_factory=list)


def lock_id(lock: str) -> str:
    return lock_sha256(lock)[:12]


def lock_sha256(lock: str) -> str:
    return hashlib.sha256(lock.encode("utf-8")).hexdigest()


def install_commands(python: str, context_dir: PurePath, index_url: str | None) -> list[list[str]]:
    """How an image installs its packages, as argv lists: uv (hash-checked, from ``uv.txt``) with pip,
    then the step's lock (``requirements.txt``) with uv into ``python``'s environment, hash-checked and
    without resolving anything. ``context_dir`` is where the two files are."""
    index = ["--index-url", index_url] if index_url else []
    return [[python, "-m", "pip", "install", "--no-cache-dir", "--require-hashes", "--no-deps",
             "-r", str(context_dir / UV_FILE), *index],
            # --python: with --system alone uv picks the first python3 on PATH, not the one running it
            [python, "-m", "uv", "pip", "install", "--python", python, "--system", "--no-cache", "--require-hashes",
             "--no-deps", "-r", str(context_dir / LOCK_FILE), *index]]


def image_reference(image: str, lock: str) -> str:
    """The image a step with lock id ``lock`` runs: ``image``'s repository tagged with the lock id, or
    ``image`` itself when it has a tag or digest."""
    parts = image_parts(image)
    if parts is None:
        raise SameError(f"environment.image: {visible(repr(image))} is not an image reference")
    repository, tag, digest = parts
    return image if tag or digest else f"{repository}:{lock}"


def write_image_contexts(out_dir: Path, locks: dict[str, str], *, base_image: str, index_url: str | None,
                         uv_lock: str, bundle: Path, image: str | None = None,
                         platform: str | None = None) -> ImagePlan:
    """Write one build context per distinct lock text under ``out_dir/kfp/images/<lock-id>/`` and
    ``build.sh`` beside them. ``locks`` maps each step to its hashed lock; ``image`` is same.yaml's
    environment.image (None: local tags, with a warning); ``platform`` the locks' platform in uv's
    terms (``linux/x86_64``), built for with ``docker build --platform``."""
    _check_environment(base_image, index_url, image)
    bundle = Path(bundle)
    if not bundle.is_file():
        raise SameError("the bundle archive for the step images is missing", path=str(bundle))
    if not _hashed(uv_lock):
        raise SameError("the lock of uv for the step images has no hashes; images install with --require-hashes")
    by_id: dict[str, str] = {}
    steps_of: dict[str, list[str]] = {}
    for step, lock in sorted(locks.items()):
        key = lock_id(lock)
        if by_id.setdefault(key, lock) != lock:     # 48 bits of sha256: astronomically unlikely
            raise SameError(f"two different locks share the id {key}; please report this")
        steps_of.setdefault(key, []).append(step)
    unhashed = [s for key, steps in steps_of.items() if not _hashed(by_id[key]) for s in steps]
    if unhashed:
        raise SameError(f"the locks of {', '.join(map(visible, unhashed))} have no hashes (uv could not hash them), "
                        f"but step images install with --require-hashes; fix the lock errors, or run the pods "
                        f"without step images")
    warnings = _base_image_warnings(base_image)
    repository = image or LOCAL_REPOSITORY
    if image is None:
        warnings.append(f"environment.image is not set: the step images are tagged {LOCAL_REPOSITORY}:<lock id>, "
                        f"which a cluster cannot pull; set environment.image in same.yaml to a repository of your "
                        f"registry (e.g. registry.example.com/team/project)")
    elif len(by_id) > 1 and any(image_parts(image)[1:]):
        raise SameError(f"environment.image: {image} names one image, but the steps need {len(by_id)} (one per "
                        f"distinct lock: {', '.join(sorted(by_id))}); give a repository without tag or digest "
                        f"(e.g. {image_parts(image)[0]}) and each image is tagged with its lock id")
    docker_platform = _docker_platform(platform, warnings)
    images_dir = Path(out_dir) / IMAGES_DIR
    contexts, sha256s, commands = {}, {}, []
    for key in sorted(by_id):
        lock, context = by_id[key], images_dir / key
        sha256s[key] = lock_sha256(lock)
        write_text(context / LOCK_FILE, lock)
        write_text(context / UV_FILE, uv_lock)
        copy_file(bundle, context / BUNDLE_FILE)
        runs = [json.dumps(argv) for argv in install_commands("python3", BUILD_DIR, index_url)]
        write_text(context / "Dockerfile", render(
            "Dockerfile.j2", version=__version__, lock_id=key, steps=", ".join(steps_of[key]), base_image=base_image,
            lock_files=[UV_FILE, LOCK_FILE], build_dir=str(BUILD_DIR), runs=runs, bundle_file=BUNDLE_FILE,
            bundle_path=BUNDLE_PATH, env={BUNDLE_ENV: BUNDLE_PATH, LOCK_ENV: sha256s[key]}))
        contexts[key] = context
        reference = image_reference(repository, key)
        commands += [["docker", "build", *(["--platform", docker_platform] if docker_platform else []),
                      "-t", reference, key], ["docker", "push", reference]]
    _remove_stale(images_dir, set(by_id))
    script = write_text(images_dir / "build.sh", render("kfp_build.sh.j2", version=__version__, commands=commands))
    script.chmod(0o755)
    return ImagePlan(lock_ids={s: k for k, steps in steps_of.items() for s in steps},
                     images={s: image_reference(repository, k) for k, steps in steps_of.items() for s in steps},
                     contexts=contexts, lock_sha256=sha256s, commands=commands, script=script, warnings=warnings)


def _check_environment(base_image: str, index_url: str | None, image: str | None) -> None:
    """The values that reach the Dockerfiles and build.sh, checked as same.yaml checks them (they may
    come from elsewhere: a SAME environment, a step override)."""
    from pydantic import ValidationError

    from same_nb.frontend.manifest_errors import format_error

    values = {"base_image": base_image, "index_url": index_url, "image": image}
    try:
        Environment.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise SameError("\n".join(f"environment.{format_error(e, Environment)}" for e in exc.errors())) from None


def _base_image_warnings(base_image: str) -> list[str]:
    repository, tag, digest = image_parts(base_image)
    if digest:
        return []
    shown = base_image if tag else f"{base_image} (no tag: latest)"
    return [f"environment.base_image {shown} is not pinned to a digest, so the step images may be built on a "
            f"different base later; pin it: `docker buildx imagetools inspect {base_image}` prints the digest, then "
            f"set environment.base_image: {base_image}@sha256:<digest> in same.yaml"]


def _docker_platform(platform: str | None, warnings: list[str]) -> str | None:
    if platform is None:
        return None
    arch = next((docker for name, docker in _DOCKER_ARCH.items() if name in platform.lower()), None)
    if arch is None:
        warnings.append(f"platform {visible(platform)}: no Docker platform known for it; build.sh builds for the "
                        f"machine it runs on, which must match the locks")
    return arch


def _hashed(lock: str) -> bool:
    entries = [e for e in re.sub(r"\\\n", " ", lock).splitlines() if e.strip() and not e.lstrip().startswith(("#", "-"))]
    return bool(entries) and all("--hash=" in e for e in entries)


def _remove_stale(images_dir: Path, keep: set[str]) -> None:
    """Contexts of locks no step has any more: build.sh would not build them, so they would only mislead."""
    for child in images_dir.iterdir():
        if child.is_dir() and _LOCK_ID.fullmatch(child.name) and child.name not in keep:
            shutil.rmtree(child)


