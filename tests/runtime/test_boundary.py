"""Values that cannot cross a step boundary are refused with a message naming the variable, its
type, both steps and the fix."""
from __future__ import annotations

import io
import socket
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.pool import ThreadPool

import pandas as pd
import pytest

from same_nb.runtime import StepBoundaryError, check_transferable


def refusal(name, obj, producer="load", consumers=("train",)) -> str:
    with pytest.raises(StepBoundaryError) as info:
        check_transferable(name, obj, producer, list(consumers))
    return str(info.value)


def test_open_file(tmp_path):
    with open(tmp_path / "data.csv", "w") as fh:
        assert refusal("fh", fh) == (
            "variable 'fh' (_io.TextIOWrapper, an open file) cannot be passed from step 'load' to step "
            "'train'. Open it inside step 'train' instead.")
    assert "(_io.TextIOWrapper, a closed file)" in refusal("fh", fh)
    with open(tmp_path / "data.csv", "rb") as raw:
        assert "(_io.BufferedReader, an open file)" in refusal("raw", raw)


def test_generator():
    rows = (i for i in range(3))
    assert refusal("rows", rows, consumers=["train", "report"]) == (
        "variable 'rows' (generator, a generator) cannot be passed from step 'load' to steps 'train' and "
        "'report'. Create it inside steps 'train' and 'report', or pass list(...) of it from step 'load'.")


def test_coroutine_and_async_generator():
    async def fetch():
        return 1

    async def stream():
        yield 1

    coro = fetch()
    try:
        assert refusal("pending", coro) == (
            "variable 'pending' (coroutine, a coroutine) cannot be passed from step 'load' to step 'train'. "
            "Await it in step 'load' and pass its result instead.")
    finally:
        coro.close()
    assert "(async_generator, an async generator)" in refusal("s", stream())


def test_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert refusal("sock", sock) == (
            "variable 'sock' (socket.socket, a network socket) cannot be passed from step 'load' to step "
            "'train'. Open the connection inside step 'train' instead.")


def test_sqlite_connection_and_cursor():
    conn = sqlite3.connect(":memory:")
    try:
        assert refusal("conn", conn) == (
            "variable 'conn' (sqlite3.Connection, a database connection) cannot be passed from step 'load' "
            "to step 'train'. Connect inside step 'train' instead, or pass the query results.")
        assert "(sqlite3.Cursor, a database cursor)" in refusal("cur", conn.cursor())
    finally:
        conn.close()


def test_duck_typed_db_api_connection():
    class Connection:  # what a DB-API driver we don't know looks like
        def cursor(self): ...
        def commit(self): ...
    assert "a database connection" in refusal("db", Connection())


def test_locks_and_other_thread_primitives():
    assert refusal("lock", threading.Lock()) == (
        "variable 'lock' (_thread.lock, a lock) cannot be passed from step 'load' to step 'train'. "
        "Create it inside step 'train' instead.")
    assert "(_thread.RLock, a lock)" in refusal("r", threading.RLock())
    assert "(threading.Condition, a condition variable)" in refusal("c", threading.Condition())
    assert "(threading.Event, an event)" in refusal("e", threading.Event())
    assert "(threading.Semaphore, a semaphore)" in refusal("s", threading.Semaphore())


def test_threads_processes_and_pools():
    thread = threading.Thread(target=lambda: None)
    assert "(threading.Thread, a thread)" in refusal("t", thread)
    assert "Join it in step 'load' and pass its results instead." in refusal("t", thread)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert "(subprocess.Popen, a subprocess handle)" in refusal("proc", proc)
    finally:
        proc.wait()
    with ThreadPool(1) as pool:
        assert "(multiprocessing.pool.ThreadPool, a worker pool)" in refusal("pool", pool)
    with ThreadPoolExecutor(1) as executor:
        assert "a worker pool" in refusal("ex", executor)


def test_list_holding_a_file(tmp_path):
    with open(tmp_path / "a.txt", "w") as fh:
        assert refusal("rows", [fh, 1]) == (
            "variable 'rows' holds an open file at rows[0] (_io.TextIOWrapper), which cannot be passed "
            "from step 'load' to step 'train'. Open it inside step 'train' instead.")


def test_dict_and_tuple_paths():
    assert "holds a lock at handles['db'] (_thread.lock)" in refusal("handles", {"n": 1, "db": threading.Lock()})
    assert "holds a generator at pair[1] (generator)" in refusal("pair", (1, (x for x in [])))


def test_consumers_unknown():
    assert refusal("lock", threading.Lock(), consumers=[]).endswith(
        "to a later step. Create it inside the step that needs it instead.")


@pytest.mark.parametrize("value", [
    1, "text", None, [1, 2.5, "x"], {"a": [1]}, (1, 2), io.BytesIO(b"in memory"), io.StringIO("in memory"),
    pd.DataFrame({"cursor": [1], "commit": [2]}),  # attribute access returns columns: not a connection
])
def test_transferable_values_pass(value):
    check_transferable("v", value, "load", ["train"])


def test_only_one_level_of_nesting_is_searched(tmp_path):
    with open(tmp_path / "a.txt", "w") as fh:
        check_transferable("deep", {"a": [fh]}, "load", ["train"])  # left to the serializer to refuse


def test_large_containers_are_checked_quickly():
    import time
    values = [float(i) for i in range(1_000_000)]
    started = time.perf_counter()
    check_transferable("values", values, "load", ["train"])
    assert time.perf_counter() - started < 0.5
    values[-1] = threading.Lock()
    assert "at values[999999]" in refusal("values", values)
