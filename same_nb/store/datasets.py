"""Datasets named in same.yaml (``datasets: {name: {url, sha256}}``): local paths, ``file://`` and
``http(s)://`` URLs. A URL is downloaded once into ``.same/datasets/<sha256>`` beside same.yaml and
verified; a sha256 that doesn't match refuses the run. ``same_nb.dataset(name)`` gives the local path,
interactively and inside a pipeline step, where the dataset becomes a lineage input (role "dataset").

A download is bounded: it must finish within ``timeout`` seconds overall (a server dripping one byte at a
time cannot hold a run) and stay under ``max_size`` bytes (checked against Content-Length first, then as
the bytes arrive); both are per dataset in same.yaml, with the defaults below. ``user:password@`` in a URL
is sent as HTTP Basic authentication to that host only (never to a redirect) and never printed.

Imported inside step kernels: PyYAML and the standard library only, no pydantic.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import shlex
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from same_nb.errors import SameError
from same_nb.frontend.manifest_same import byte_size, read_yaml_file, redact_url

MANIFEST_NAME = "same.yaml"
_SHA256 = re.compile(r"[0-9a-f]{64}")
DEFAULT_TIMEOUT_S = 3600.0           # a whole download, from connecting to the last byte
DEFAULT_MAX_BYTES = 10 * 1024 ** 3   # 10 GiB
_STALL_S = 60.0                      # no byte for this long: the server is gone
_CHUNK = 1 << 20


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
    """``{name: {"url", "sha256"}}`` from same.yaml's ``datasets`` section ({} without a file), with
    ``timeout`` (seconds) and ``max_size`` (bytes) when the dataset sets them."""
    if not manifest.is_file():
        return {}
    data = read_yaml_file(manifest, "same.yaml") or {}     # the one safe loader, bounded
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
        timeout = spec.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not 0 < timeout < float("inf")):
            raise SameError(f"datasets.{name}.timeout: expected a number of seconds above 0, got "
                            f"{str(timeout)[:40]!r}", path=str(manifest))
        max_size = spec.get("max_size")
        if max_size is not None and byte_size(max_size) is None:
            raise SameError(f"datasets.{name}.max_size: expected a size in bytes (e.g. 500000000 or "
                            f"\"500Mi\", \"2Gi\"), got {str(max_size)[:40]!r}", path=str(manifest))
        specs[str(name)] = {"url": spec["url"], "sha256": sha}
        if timeout is not None:
            specs[str(name)]["timeout"] = timeout
        if max_size is not None:
            specs[str(name)]["max_size"] = byte_size(max_size)
    return specs


def prepare_datasets(manifest: Path) -> dict[str, dict]:
    """Download and verify every dataset before a run starts (a mismatch raises SameError)."""
    return {name: fetch_dataset(name, spec, manifest.parent)
            for name, spec in read_datasets(manifest).items()}


def fetch_dataset(name: str, spec: dict, base: Path) -> dict:
    """The dataset's lineage record ``{name, url, sha256, size, location}``, verified. The record's URL
    carries no credentials."""
    url, expected = spec["url"], spec.get("sha256")
    shown = redact_url(url)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    cached = False
    if scheme in ("http", "https"):
        path, cached = _download(name, url, expected, base / ".same" / "datasets",
                                 timeout=float(spec.get("timeout") or DEFAULT_TIMEOUT_S),
                                 max_bytes=int(spec.get("max_size") or DEFAULT_MAX_BYTES))
    elif scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    elif len(scheme) > 1:
        raise SameError(f"dataset {name!r}: unsupported URL scheme {scheme!r} in {shown!r}: use a "
                        "local path, file://, http:// or https://")
    else:
        path = base / url
    if not path.is_file():
        raise SameError(f"dataset {name!r}: no such file {path}", path=str(path))
    sha, size = _sha256(path)
    if cached and expected is not None and sha != expected:
        raise SameError(f"dataset {name!r}: the cached copy of {shown} changed after it was downloaded and "
                        f"verified (same.yaml expects sha256 {expected}, the file now has {sha}). Refusing to "
                        f"run; delete the cached copy and run again to download it afresh: rm {shlex.quote(str(path))}",
                        path=str(path))
    _check(name, shown, expected, sha)
    return {"name": name, "url": shown, "sha256": sha, "size": size, "location": str(path.resolve())}


class _Deadline:
    """An overall deadline for one download. At the deadline every socket the download opened is shut
    down, which wakes a read that is blocked on a server sending a byte now and then."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._end = time.monotonic() + self.seconds
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def passed(self) -> bool:
        return self.fired or time.monotonic() >= self._end

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.fired:
                self._shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _tracked(base: type, deadline: _Deadline) -> type:
    class Tracked(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            create = self._create_connection

            def create_and_track(*a, **kw):
                sock = create(*a, **kw)
                deadline.track(sock)         # before TLS: a slow handshake is bounded too
                return sock
            self._create_connection = create_and_track

        def connect(self):
            super().connect()
            deadline.track(self.sock)

    return Tracked


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._deadline = deadline

    def http_open(self, req):
        return self.do_open(_tracked(http.client.HTTPConnection, self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._deadline = deadline

    def https_open(self, req):
        options = {"context": self._context}
        if getattr(self, "_check_hostname", None) is not None:       # Python < 3.12
            options["check_hostname"] = self._check_hostname
        return self.do_open(_tracked(http.client.HTTPSConnection, self._deadline), req, **options)


class _Late(Exception):
    pass


class _TooLarge(Exception):
    pass


def _request(url: str) -> urllib.request.Request:
    """The request for a URL, its ``user:password@`` sent as Basic authentication to this host only."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return urllib.request.Request(url)
    request = urllib.request.Request(redact_url(url))
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


def _without_secrets(text: str, url: str) -> str:
    """An error's text with the URL's credentials taken out, wherever they appear."""
    parts = urllib.parse.urlsplit(url)
    text = text.replace(url, redact_url(url))
    for secret in (parts.password, parts.username if len(parts.username or "") >= 8 else None):  # a token
        if secret:
            text = text.replace(secret, "***")
    return text


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _download(name: str, url: str, expected: str | None, cache: Path, *, timeout: float = DEFAULT_TIMEOUT_S,
              max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Path, bool]:
    """The cached copy (and True), or a fresh download, verified (and False)."""
    shown = redact_url(url)
    key = expected or "url-" + hashlib.sha256(shown.encode()).hexdigest()
    target = cache / key
    if target.is_file():
        return target, True                 # verified when it was downloaded; fetch_dataset re-checks
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{key}.{os.getpid()}.{threading.get_ident()}.part"
    digest = hashlib.sha256()
    deadline = _Deadline(timeout)
    opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline))
    late = SameError(f"dataset {name!r}: downloading {shown} took longer than {timeout:g} s; stopped. If the "
                     f"server is just slow, raise datasets.{name}.timeout (seconds) in same.yaml")
    too_large = SameError(f"dataset {name!r}: {shown} is larger than {_size(max_bytes)} ({max_bytes:,} bytes); "
                          f"stopped. If it is that big, raise datasets.{name}.max_size in same.yaml "
                          "(e.g. \"50Gi\")")
    try:
        with deadline, opener.open(_request(url), timeout=min(_STALL_S, timeout)) as response, \
                open(tmp, "wb") as out:
            length = (response.headers.get("Content-Length") or "").strip()
            if length.isdigit() and int(length) > max_bytes:
                raise _TooLarge
            read = getattr(response, "read1", None) or response.read
            size = 0
            while True:
                if deadline.passed():
                    raise _Late
                chunk = read(_CHUNK)            # what has arrived, up to 1 MiB: never waits for a full chunk
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise _TooLarge
                digest.update(chunk)
                out.write(chunk)
        if deadline.fired:                  # the shutdown at the deadline can look like the end of the data
            raise _Late
        if length.isdigit() and size != int(length):
            raise SameError(f"dataset {name!r}: cannot download {shown}: the connection closed after {size:,} "
                            f"of {int(length):,} bytes")
        _check(name, shown, expected, digest.hexdigest())
        os.replace(tmp, target)
    except _Late:
        raise late from None
    except _TooLarge:
        raise too_large from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        if deadline.fired:
            raise late from None
        reason = _without_secrets(str(exc) or type(exc).__name__, url)
        raise SameError(f"dataset {name!r}: cannot download {shown}: {reason}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target, False


def _check(name: str, shown_url: str, expected: str | None, actual: str) -> None:
    if expected is not None and actual != expected:
        raise SameError(f"dataset {name!r}: sha256 mismatch for {shown_url}: same.yaml expects "
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
