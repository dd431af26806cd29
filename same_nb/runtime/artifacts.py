"""Content-addressed artifact store: ``root/<sha[:2]>/<sha>``, written atomically, stored once."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from .errors import CorruptArtifactError, MissingArtifactError

CHUNK_SIZE = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size of a file, read in 1 MiB chunks."""
    with open(path, "rb") as f:
        return _digest(f)


class ArtifactStore:
    """Files named by the sha256 of their bytes.

    Writers serialize into ``new_temp()`` (inside ``root/tmp`` so the final ``os.replace`` stays on
    one filesystem and is atomic), then ``put_file`` moves the bytes under their hash. A reader
    never sees a partial file under a final name.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise MissingArtifactError(f"{sha256!r} is not a sha256 hex digest", sha256=sha256)
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def new_temp(self) -> Path:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="put-")
        os.close(fd)
        return Path(name)

    def put_file(self, tmp_path: Path) -> tuple[str, int]:
        """Move a finished temp file under its hash; returns (sha256, size). The temp is always gone after."""
        tmp_path = Path(tmp_path)
        try:
            sha256, size = _hash_and_sync(tmp_path)
            final = self.path(sha256)
            # An existing copy is kept only if intact, so re-running a producer heals a corrupt one.
            if final.is_file() and self.verify(sha256):
                tmp_path.unlink()
                return sha256, size
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_path, final)
            _sync_dir(final.parent)
            return sha256, size
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise

    def verify(self, sha256: str) -> bool:
        """True if the artifact exists and its bytes still hash to its name."""
        path = self.path(sha256)
        return path.is_file() and hash_file(path)[0] == sha256

    def verified_path(self, sha256: str, name: str) -> Path:
        """Path of an artifact about to be loaded for variable ``name``, after re-hashing it."""
        path = self.path(sha256)
        if not path.is_file():
            raise MissingArtifactError(
                f"artifact {sha256} for variable '{name}' is missing from the store ({path}). "
                f"Re-run the step that produces '{name}'.", sha256=sha256, name=name, path=str(path))
        actual, _ = hash_file(path)
        if actual != sha256:
            raise CorruptArtifactError(
                f"artifact {sha256} for variable '{name}' is corrupt: its bytes hash to {actual} "
                f"({path}). Re-run the step that produces '{name}' to rebuild it.",
                sha256=sha256, name=name, path=str(path))
        return path


def _digest(f: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := f.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _hash_and_sync(path: Path) -> tuple[str, int]:
    with open(path, "r+b") as f:  # writable: fsync needs it on some platforms
        result = _digest(f)
        os.fsync(f.fileno())
    return result


def _sync_dir(directory: Path) -> None:
    """Persist a rename; directories cannot be opened for fsync on Windows, where this is skipped."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
