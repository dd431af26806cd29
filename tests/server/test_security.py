"""Security properties of EVERY REST endpoint, enumerated from `same_nb.server.routes.handlers`, so
a new endpoint is covered without editing this file: no token → 403; `..`, absolute paths, NUL and
symlinks out of the server root refused; overlong paths and oversized bodies refused without a 500.

tests/test_server_handlers.py checks the same things on a hand-written endpoint list together with
each endpoint's messages; this file is the generic sweep.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures, scoped to this module)
from tornado.httpclient import HTTPClientError

from same_nb.server.handlers import MAX_BODY
from same_nb.server.routes import handlers

from conftest import TESTS

NOTEBOOKS = TESTS / "notebooks"
PREFIX = "/same-nb/api/"
SAMPLE_GROUPS = {r"(\d+)": "1", r"([A-Za-z_][A-Za-z0-9_-]{0,62})": "load", r"([A-Za-z0-9_.-]{1,64})": "sweep-1"}
pytestmark = pytest.mark.slow


def _url_parts(pattern: str) -> tuple[str, ...]:
    """URL path parts (after /same-nb/api/) of a handler pattern, with each group given a sample value."""
    path = pattern[len(PREFIX):]
    for group, sample in SAMPLE_GROUPS.items():
        path = path.replace(group, sample)
    assert not re.search(r"[()\\\[\]{}]", path), f"no sample value for a group in {pattern}: add one"
    return tuple(path.split("/"))


def _endpoints() -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for pattern, handler in handlers("/"):
        methods = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m.lower() in vars(handler)]
        assert methods, f"{handler.__name__} answers no method"
        found += [(method, _url_parts(pattern)) for method in methods]
    return found


ENDPOINTS = _endpoints()
IDS = [f"{m} {'/'.join(p)}" for m, p in ENDPOINTS]
WITH_BODY = [(m, p) for m, p in ENDPOINTS if m in ("POST", "PUT", "PATCH")]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"same_nb.server": True}}}


@pytest.fixture(autouse=True)
def _own_store(monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)


@pytest.fixture
def api(jp_fetch, jp_asyncio_loop):
    """call(method, parts, path=, body=, headers=) -> (status, JSON or text); `path` goes in the
    query and, for methods with a body, in the body too."""

    def call(method: str, parts: tuple[str, ...], path: str = "work/branching.ipynb", body=None, headers=None):
        kwargs = {"method": method, "params": {"path": path, "run": "1"}, "headers": headers}
        if method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = body if body is not None else json.dumps({"path": path})
        try:
            response = jp_asyncio_loop.run_until_complete(jp_fetch("same-nb", "api", *parts, **kwargs))
        except HTTPClientError as exc:
            response = exc.response
        assert response is not None, "the server dropped the connection"
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text.startswith(("{", "[")) else text)

    return call


@pytest.fixture
def root(jp_root_dir, tmp_path) -> Path:
    """The server root: work/branching.ipynb, plus a folder link and a notebook link leading outside."""
    root = Path(jp_root_dir)
    (root / "work").mkdir()
    shutil.copy(NOTEBOOKS / "branching.ipynb", root / "work" / "branching.ipynb")
    outside = tmp_path / "outside"
    (outside / ".same" / "runs" / "1").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "branching.ipynb", outside / "secret.ipynb")
    shutil.copy(NOTEBOOKS / "branching.ipynb", outside / ".same" / "runs" / "1" / "load.ipynb")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "work" / "alias.ipynb").symlink_to(outside / "secret.ipynb")
    return root


def test_the_enumeration_finds_every_handler():
    assert len({parts for _, parts in ENDPOINTS}) == len(handlers("/"))
    assert ("POST", ("runs",)) in ENDPOINTS and ("GET", ("runs", "1", "steps", "load", "notebook")) in ENDPOINTS


@pytest.mark.parametrize("method,parts", ENDPOINTS, ids=IDS)
def test_no_or_wrong_token_is_403(api, root, method, parts):
    for auth in ("", "token wrong", "Bearer nope"):
        code, _ = api(method, parts, headers={"Authorization": auth})
        assert code == 403, (auth, code)


@pytest.mark.parametrize("method,parts", ENDPOINTS, ids=IDS)
def test_paths_escaping_the_root_are_refused(api, root, tmp_path, method, parts):
    outside = tmp_path / "outside"
    cases = [("../outside/secret.ipynb", 400), ("work/../../outside/secret.ipynb", 400),
             ("work\\..\\..\\outside\\secret.ipynb", 400), (str(outside / "secret.ipynb"), 400),
             ("link/secret.ipynb", 403), ("link", 403),
             ("work/alias.ipynb", 403), ("link/.same/runs/1/load.ipynb", 403)]
    for path, status in cases:
        code, reply = api(method, parts, path=path)
        assert code == status, (path, code, reply)
        if str(outside) not in path:             # echoing the caller's own path reveals nothing
            assert str(outside) not in json.dumps(reply), f"the reply reveals a path outside the root: {reply}"


@pytest.mark.parametrize("method,parts", ENDPOINTS, ids=IDS)
def test_overlong_paths_are_refused_without_a_server_error(api, root, method, parts):
    for path in ("work/" + "a" * 300 + ".ipynb", "/".join(["d"] * 3000)):
        code, reply = api(method, parts, path=path)
        assert 400 <= code < 500, (len(path), code, reply)


def _max_body(parts: tuple[str, ...]) -> int:
    """The body limit of the endpoint at ``parts``: MAX_BODY unless its handler says ``max_body``."""
    for pattern, handler in handlers("/"):
        if _url_parts(pattern) == parts:
            return getattr(handler, "max_body", MAX_BODY)
    raise AssertionError(parts)


@pytest.mark.parametrize("method,parts", WITH_BODY, ids=[f"{m} {'/'.join(p)}" for m, p in WITH_BODY])
def test_oversized_bodies_are_refused(api, root, method, parts):
    body = json.dumps({"path": "work/branching.ipynb", "pad": "x" * (_max_body(parts) + 1)})
    code, reply = api(method, parts, body=body)
    assert code == 413, (code, reply)
    assert not (root / "work" / ".same" / "runs").exists()
