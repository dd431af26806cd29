"""Datasets named in same.yaml (``datasets: {name: {url, sha256}}``): local paths, ``file://`` and
``http(s)://`` URLs. A URL is downloaded once into ``.same/datasets/<sha256>`` beside same.yaml and
verified; a sha256 that doesn't match refuses the run. ``same_nb.dataset(name)`` gives the local path,
interactively and inside a pipeline step, where the dataset becomes a lineage input (role "dataset").

Imported inside step kernels: PyYAML and the standard library only, no pydantic.
"""
from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from same_nb.errors import SameError

MANIFEST_NAME = "same.yaml"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMEOUT_S = 60


def dataset(name: str, manifest: str | Path | None = None) -> str:
    """The local path of dataset ``name`` from same.yaml (beside the notebook, i.e. the cwd),
    downloaded and verified on first use."""
    from same_nb.runtime import fileio

    path = Path(manifest) if manifest else Path.cwd() / MANIFEST_NAME
    with fileio.paused():
        specs = read_datasets(path)
        if name not in specs:
            known = ", ".join(sorted(specs)) or "none"
            raise SameError(f"no dataset {name!r} in same.yaml (datasets: {known})", path=str(path))
        record = fetch_dataset(name, specs[name], path.parent)
    fileio.note_dataset(record)
    return record["location"]


def read_datasets(manifest: Path) -> dict[str, dict]:
    """``{name: {"url", "sha256"}}`` from same.yaml's ``datasets`` section ({} without a file)."""
    import yaml

    if not manifest.is_file():
        return {}
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SameError(f"cannot read same.yaml: {exc}", path=str(manifest)) from None
    section = (data.get("datasets") or {}) if isinstance(data, dict) else {}
    if not isinstance(section, dict):
        raise SameError("datasets: must map names to {url, sha256}", path=str(manifest))
    specs = {}
    for name, spec in section.items():
        if isinstance(spec, dict) and "url" not in spec and ("environments" in spec or "default" in spec):
            from same_nb.frontend.manifest_same import dataset_url

            url, _ = dataset_url(spec)     # SAME's form; what is left out is warned about by inspect
            if url is None:
                continue
            spec = {"url": url}
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str) or not spec["url"]:
            raise SameError(f"datasets.{name}: needs a url", path=str(manifest))
        sha = spec.get("sha256")
        if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
            raise SameError(f"datasets.{name}.sha256: expected 64 lowercase hex characters, "
                            f"got {sha!r}", path=str(manifest))
        specs[str(name)] = {"url": spec["url"], "sha256": sha}
    return specs


def prepare_datasets(manifest: Path) -> dict[str, dict]:
    """Download and verify every dataset before a run starts (a mismatch raises SameError)."""
    return {name: fetch_dataset(name, spec, manifest.parent)
            for name, spec in read_datasets(manifest).items()}


def fetch_dataset(name: str, spec: dict, base: Path) -> dict:
    """The dataset's lineage record ``{name, url, sha256, size, location}``, verified."""
    url, expected = spec["url"], spec.get("sha256")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        path = _download(name, url, expected, base / ".same" / "datasets")
    elif scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    elif len(scheme) > 1:
        raise SameError(f"dataset {name!r}: unsupported URL scheme {scheme!r} in {url!r}: use a "
                        "local path, file://, http:// or https://")
    else:
        path = base / url
    if not path.is_file():
        raise SameError(f"dataset {name!r}: no such file {path}", path=str(path))
    sha, size = _sha256(path)
    _check(name, url, expected, sha)
    return {"name": name, "url": url, "sha256": sha, "size": size, "location": str(path.resolve())}


def _download(name: str, url: str, expected: str | None, cache: Path) -> Path:
    key = expected or "url-" + hashlib.sha256(url.encode()).hexdigest()
    target = cache / key
    if target.is_file():
        return target                       # verified when it was downloaded
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{key}.{os.getpid()}.part"
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        _check(name, url, expected, digest.hexdigest())
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SameError(f"dataset {name!r}: cannot download {url}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _check(name: str, url: str, expected: str | None, actual: str) -> None:
    if expected is not None and actual != expected:
        raise SameError(f"dataset {name!r}: sha256 mismatch for {url}: same.yaml expects "
                        f"{expected}, the data has {actual}. Refusing to run; if the data changed "
                        "on purpose, update the sha256 in same.yaml")


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
