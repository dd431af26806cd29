"""The fork server: a kernel forked from it starts as clean as a fresh one (namespace, argv, cwd,
environment, signals, random streams), and a module that starts a thread at import is never preloaded."""
from __future__ import annotations

import asyncio
import os
import sys

import pytest

from same_nb.local.forked import Zygote, fork_manager, fork_supported
from same_nb.local.kernels import _private_sockets

pytestmark = pytest.mark.skipif(not fork_supported(), reason="fork server needs fork() and /proc")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _arun(coro):
    """Run on a loop of its own: asyncio.run would leave the main thread with no current event loop,
    which tornado-based server tests later in the session need."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _env(**extra) -> dict[str, str]:
    path = os.pathsep.join(p for p in (ROOT, extra.pop("PYTHONPATH", ""), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path, **extra}


ENV = _env(SAME_NB_TEST_VAR="from-request")


@pytest.fixture
def zygote(tmp_path):
    z = Zygote(cwd=str(tmp_path), env=ENV, log=str(tmp_path / "zygote.log"),
               blocked=[])
    assert z.unsafe is None, z.unsafe
    yield z
    z.close()


async def _run(zygote, cwd, env, codes, *, interrupt_after=None):
    """Fork a kernel, run each code, return their stdout texts (or the error name)."""
    km = fork_manager(zygote, "python3", os.path.join(cwd, "kernel.log"))
    folder = _private_sockets(km)
    await km.start_kernel(cwd=cwd, env=env, extra_arguments=["--HistoryManager.hist_file=:memory:"])
    kc = km.client()
    kc.start_channels()
    results = []
    try:
        await kc.wait_for_ready(timeout=60)
        for code in codes:
            out: list[str] = []

            def hook(msg, out=out):
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
            task = asyncio.ensure_future(kc.execute_interactive(code, timeout=60, output_hook=hook))
            if interrupt_after is not None:
                await asyncio.sleep(interrupt_after)
                await km.interrupt_kernel()
            reply = await task
            content = reply["content"]
            results.append("".join(out) if content["status"] == "ok" else content["ename"])
        return results, km.provisioner.pid
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def test_forked_kernel_is_clean(zygote, tmp_path):
    work = tmp_path
    zygote.preload(["json", "same_nb.runtime"])
    assert zygote.preloaded == ["json", "same_nb.runtime"]
    code = ("import os, sys, json, signal; print(json.dumps({'ppid': os.getppid(), 'cwd': os.getcwd(), "
            "'env': os.environ.get('SAME_NB_TEST_VAR'), 'argv': sys.argv, 'pgid': os.getpgid(0) == os.getpid(), "
            "'names': sorted(n for n in globals() if not n.startswith('_')), "
            "'main': sorted(n for n in vars(sys.modules['__main__']) if not n.startswith('_')), "
            "'sigint': signal.getsignal(signal.SIGINT) is signal.default_int_handler or "
            "signal.getsignal(signal.SIGINT) == signal.SIG_IGN}))")
    env = ENV
    (out,), pid = _arun(_run(zygote, str(work), env, [code]))
    import json

    seen = json.loads(out)
    assert seen["ppid"] == zygote.pid                      # forked, not started
    assert seen["cwd"] == str(work)
    assert seen["env"] == "from-request"
    assert os.path.basename(seen["argv"][0]) == "ipykernel_launcher.py" and "-f" in seen["argv"]
    assert seen["pgid"]                                    # a process group of its own
    # What a fresh kernel's namespace holds besides the cell's own imports; nothing of the zygote's.
    assert set(seen["names"]) <= {"In", "Out", "exit", "quit", "get_ipython", "open", "os", "sys", "json", "signal"}
    assert not {"serve", "preload", "main", "NOT_FORK_SAFE"} & set(seen["main"])
    assert "same-nb: kernel forked from zygote" in (work / "kernel.log").read_text()


STATE = """
import json, os, signal, sys, threading, warnings
print(json.dumps({
    "path": sys.path, "cwd": os.getcwd(), "flags": repr(sys.flags), "argv0": sys.argv[0],
    "env": {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"},
    "signals": {s.name: repr(signal.getsignal(s)) for s in signal.valid_signals()
                if isinstance(s, signal.Signals) and s not in (signal.SIGKILL, signal.SIGSTOP)},
    "threads": sorted(t.name for t in threading.enumerate()), "warnings": repr(warnings.filters),
    "recursion": sys.getrecursionlimit(), "hash": hash("same-nb"), "umask": os.umask(0o22),
    "names": sorted(globals()), "mpl": os.environ.get("MPLBACKEND"),
}, sort_keys=True))
"""


async def _fresh(cwd, env, code) -> str:
    from jupyter_client.manager import AsyncKernelManager

    km = AsyncKernelManager(kernel_name="python3")
    folder = _private_sockets(km)
    await km.start_kernel(cwd=cwd, env=env, extra_arguments=["--HistoryManager.hist_file=:memory:"])
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        out: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
        await kc.execute_interactive(code, timeout=120, output_hook=hook)
        return "".join(out)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def test_forked_kernel_state_matches_a_fresh_kernel(zygote, tmp_path):
    import json

    zygote.preload(["json", "same_nb.runtime"])
    (forked,), pid = _arun(_run(zygote, str(tmp_path), ENV, [STATE]))
    assert pid != zygote.pid
    assert json.loads(forked) == json.loads(_arun(_fresh(str(tmp_path), ENV, STATE)))


# Threaded BLAS (a product big enough for OpenBLAS's pool), Arrow's allocator, an OpenMP-built model.
NUMERIC = """
import hashlib, io, json, numpy as np, pandas as pd, pyarrow.feather as feather
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(3)
a = rng.standard_normal((600, 600))
p = a @ a.T
df = pd.DataFrame({"x": rng.standard_normal(100_000), "k": np.arange(100_000) % 7})
buf = io.BytesIO(); feather.write_feather(df, buf); back = feather.read_feather(io.BytesIO(buf.getvalue()))
m = LogisticRegression(max_iter=200).fit(p[:, :5], (p[:, 0] > 0).astype(int))
print(json.dumps({"blas": hashlib.sha256(p.tobytes()).hexdigest(), "arrow": bool(back.equals(df)),
                  "model": m.coef_.round(12).tolist(), "strings": repr(pd.Series(["a"]).dtype)}))
"""


def test_numeric_stack_is_preloaded_and_computes_as_a_fresh_kernel(zygote, tmp_path):
    """numpy/scipy (OpenBLAS threads) and pyarrow (jemalloc's thread) start threads at import; their
    libraries handle fork, so they are preloaded, and a forked kernel computes exactly as a fresh one."""
    pytest.importorskip("sklearn")
    zygote.preload(["pandas", "numpy", "sklearn.linear_model", "pyarrow.feather"])
    assert zygote.unsafe is None
    assert zygote.preloaded == ["pandas", "numpy", "sklearn.linear_model", "pyarrow.feather"], zygote.dropped
    (first,), pid = _arun(_run(zygote, str(tmp_path), ENV, [NUMERIC]))
    (second,), _ = _arun(_run(zygote, str(tmp_path), ENV, [NUMERIC]))    # after a fork in the zygote
    assert pid != zygote.pid
    assert first == second == _arun(_fresh(str(tmp_path), ENV, NUMERIC))


def test_a_package_importing_a_blocked_one_is_not_preloaded(tmp_path, tmp_path_factory):
    """A module that imports without a package it would find in a fresh kernel may configure itself
    for its absence (pandas without pyarrow): the kernel imports it itself."""
    lib = tmp_path_factory.mktemp("lib")
    (lib / "blocked_zy.py").write_text("VALUE = 1\n")
    (lib / "optional_zy.py").write_text(
        "try:\n    import blocked_zy\n    HAS = True\nexcept ImportError:\n    HAS = False\n")
    env = _env(PYTHONPATH=str(lib))
    z = Zygote(cwd=str(tmp_path), env=env, log=str(tmp_path / "zygote.log"), blocked=["blocked_zy"])
    try:
        z.preload(["json", "optional_zy"])
        assert z.preloaded == ["json"] and "optional_zy" in z.dropped
        (out,), _ = _arun(_run(z, str(tmp_path), env, ["import optional_zy; print(optional_zy.HAS)"]))
        assert out.strip() == "True"
    finally:
        z.close()


def test_sigint_interrupts_a_running_cell(zygote, tmp_path):
    (result,), pid = _arun(_run(zygote, str(tmp_path), ENV, ["import time; time.sleep(30)"],
                                      interrupt_after=1.5))
    assert pid != zygote.pid
    assert result == "KeyboardInterrupt"


def test_sibling_kernels_draw_different_random_numbers_unless_seeded(zygote, tmp_path):
    unseeded = "import random; print(random.random())"
    seeded = "import random; random.seed(7); print(random.random())"
    (a, a_seeded), pid = _arun(_run(zygote, str(tmp_path), ENV, [unseeded, seeded]))
    (b, b_seeded), _ = _arun(_run(zygote, str(tmp_path), ENV, [unseeded, seeded]))
    assert a != b
    assert a_seeded == b_seeded


def test_a_module_starting_a_thread_is_not_preloaded(tmp_path, tmp_path_factory):
    lib = tmp_path_factory.mktemp("lib")         # outside the kernel's folder: modules there are not preloaded
    (lib / "threadmod_zy.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\nVALUE = 42\n")
    env = _env(PYTHONPATH=str(lib))
    z = Zygote(cwd=str(tmp_path), env=env, log=str(tmp_path / "zygote.log"), blocked=[])
    try:
        z.preload(["json", "threadmod_zy"])
        assert z.unsafe is None
        assert "threadmod_zy" in z.blocked and "threadmod_zy" in z.dropped
        assert z.preloaded == ["json"]
        (out,), pid = _arun(_run(z, str(tmp_path), env, ["import threadmod_zy; print(threadmod_zy.VALUE)"]))
        assert out.strip() == "42"                     # the kernel imports it itself
        assert pid != z.pid
    finally:
        z.close()


def test_gpu_libraries_are_never_preloaded(zygote):
    from same_nb.runtime import zygote as server

    assert {"tensorflow", "jax", "cupy"} <= server.NOT_FORK_SAFE
    assert server.fork_unsafe() is not None or sys.modules.get("tensorflow") is None
