"""The store fixtures: each store test runs on a SQLite file and on a fresh database of a real PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest

from same_nb.store.database import open_store

from postgres_server import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'same.db'}"
        return
    url, drop = fresh_database()
    yield url
    drop()


@pytest.fixture
def store(store_url: str):
    with open_store(store_url) as s:
        yield s
