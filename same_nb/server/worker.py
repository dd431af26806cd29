"""Work the server hands to its own processes: inspecting a notebook, checking a run request, and a
Kubeflow compile and submit. None of it happens in the Jupyter server's process.

A notebook (or the same.yaml beside it) can be hostile: a YAML alias bomb or 10,000 parameters take
seconds and gigabytes to expand, and compiling for Kubeflow imports the generated ``pipeline.py``. So the
server keeps a few warm worker processes (``python -m same_nb.server.worker``), each with an address
space limit (``RLIMIT_AS``), and waits for their answers without blocking its event loop; a worker that
runs over its time is killed and replaced, one that runs out of memory answers so and exits. A
Kubeflow compile gets a fresh process of its own that ends with the request.

Budgets come from the environment of the Jupyter server: ``SAME_NB_INSPECT_TIMEOUT`` (seconds, 30),
``SAME_NB_INSPECT_MEMORY_MB`` (1024), ``SAME_NB_INSPECT_WORKERS`` (2), ``SAME_NB_KUBEFLOW_TIMEOUT``
(seconds, 900) and ``SAME_NB_KUBEFLOW_MEMORY_MB`` (4096).

The protocol on the worker's stdin/stdout is frames: an 8-byte big-endian length, then that many bytes.
A request is one JSON frame ``{"op", "args"}``; a reply is a JSON header frame ``{"status", ...}`` and a
body frame (the HTTP reply body, already made relative to the server root, or empty).
"""
from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

from same_nb.errors import SameError

MODULE = "same_nb.server.worker"
MAX_FRAME = 64 * 1024 * 1024          # the largest reply a worker may send (an inspection's JSON)
IDLE_EXIT = 600.0                     # a worker left idle this long exits; the next request starts one
STARTUP_TIMEOUT = 120.0               # a worker's imports, before its first request (a loaded machine is slow)
UNPROCESSABLE = 422


class WorkerError(SameError):
    """A request its worker could not finish: over its time or memory, or the worker died."""

    def __init__(self, message: str, status: int = UNPROCESSABLE):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Budget:
    timeout: float
    memory_mb: int
    kind: str = "INSPECT"          # names the settings in messages: SAME_NB_<kind>_TIMEOUT, _MEMORY_MB

    @property
    def timeout_setting(self) -> str:
        return f"SAME_NB_{self.kind}_TIMEOUT"

    @property
    def memory_setting(self) -> str:
        return f"SAME_NB_{self.kind}_MEMORY_MB"


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def budgets() -> dict[str, Any]:
    """The budgets from the server's environment (see the module docstring)."""
    return {"inspect": Budget(_env_number("SAME_NB_INSPECT_TIMEOUT", 30),
                              int(_env_number("SAME_NB_INSPECT_MEMORY_MB", 1024))),
            "kubeflow": Budget(_env_number("SAME_NB_KUBEFLOW_TIMEOUT", 900),
                               int(_env_number("SAME_NB_KUBEFLOW_MEMORY_MB", 4096)), "KUBEFLOW"),
            "workers": int(_env_number("SAME_NB_INSPECT_WORKERS", 2))}


# -- the server's side ------------------------------------------------------------------------------

def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


class _Process:
    """One worker process and its pipes."""

    @classmethod
    async def start(cls, budget: Budget) -> "_Process":
        """A new worker, once it has imported what it needs (not counted in any request's budget)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", MODULE, "--memory-mb", str(budget.memory_mb), "--setting", budget.memory_setting,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True)
        worker = cls(proc, budget)
        try:
            await asyncio.wait_for(worker._read_frame(), STARTUP_TIMEOUT)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, WorkerError):
            worker.kill()
            raise WorkerError(f"the server's worker process did not start within {STARTUP_TIMEOUT:g} s",
                              status=503) from None
        return worker

    def __init__(self, proc: asyncio.subprocess.Process, budget: Budget):
        self.proc = proc
        self.budget = budget
        self.last_used = asyncio.get_running_loop().time()
        self.killed = False

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self.killed

    async def _read_frame(self) -> bytes:
        size = int.from_bytes(await self.proc.stdout.readexactly(8), "big")
        if size > MAX_FRAME:
            raise WorkerError(f"the answer is over {MAX_FRAME // (1024 * 1024)} MB, more than the server passes on")
        return await self.proc.stdout.readexactly(size)

    async def _exchange(self, request: dict) -> tuple[dict, bytes]:
        self.proc.stdin.write(_frame(json.dumps(request).encode()))
        await self.proc.stdin.drain()
        header = json.loads(await self._read_frame())
        return header, await self._read_frame()

    async def call(self, request: dict, what: str) -> tuple[dict, bytes]:
        """Send one request and wait for its answer within the budget; a worker that fails is killed."""
        try:
            return await asyncio.wait_for(self._exchange(request), self.budget.timeout)
        except asyncio.TimeoutError:
            self.kill()
            raise WorkerError(f"{what} took longer than {self.budget.timeout:g} s, the server's limit "
                              f"({self.budget.timeout_setting}); it was stopped") from None
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            self.kill()
            code = await self.wait()
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"ended (exit code {code})"
            raise WorkerError(f"{what} failed: its process {how}, e.g. over its memory limit of "
                              f"{self.budget.memory_mb} MB ({self.budget.memory_setting})") from None
        except WorkerError:
            self.kill()
            raise
        finally:
            self.last_used = asyncio.get_running_loop().time()

    def kill(self) -> None:
        if self.alive:
            self.killed = True
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    async def wait(self) -> int | None:
        try:
            return await asyncio.wait_for(self.proc.wait(), 5)
        except asyncio.TimeoutError:
            return None


class Workers:
    """A few warm worker processes for inspections and run checks; a fresh one for each Kubeflow compile."""

    def __init__(self, size: int | None = None, inspect: Budget | None = None, kubeflow: Budget | None = None):
        found = budgets()
        self.size = max(1, size or found["workers"])
        self.inspect_budget = inspect or found["inspect"]
        self.kubeflow_budget = kubeflow or found["kubeflow"]
        self._idle: list[_Process] = []
        self._all: set[_Process] = set()
        self._slots: asyncio.Semaphore | None = None

    async def call(self, op: str, what: str, **args: Any) -> tuple[dict, bytes]:
        """Run ``op`` in a pooled worker; ``what`` names the work in messages ("inspecting x.ipynb")."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.inspect_budget.timeout)
        except asyncio.TimeoutError:
            raise WorkerError(f"the server is busy: {self.size} inspections are running; try again shortly",
                              status=429) from None
        worker = None
        try:
            while self._idle and worker is None:
                candidate = self._idle.pop()
                stale = asyncio.get_running_loop().time() - candidate.last_used > IDLE_EXIT - 60
                if candidate.alive and not stale:
                    worker = candidate
                else:                            # it exits (or is about to) on its own idle timer
                    candidate.kill()
                    self._all.discard(candidate)
            if worker is None:
                try:
                    worker = await _Process.start(self.inspect_budget)
                except NotImplementedError:     # an event loop that cannot start processes (Windows' selector)
                    return await asyncio.get_running_loop().run_in_executor(
                        None, functools.partial(answer, {"op": op, "args": args}, None, ""))
                self._all.add(worker)
            header, body = await worker.call({"op": op, "args": args}, what)
            if header.pop("exit", False):
                worker.kill()
            return header, body
        finally:
            if worker is not None and worker.alive:
                self._idle.append(worker)
            elif worker is not None:
                self._all.discard(worker)
            self._slots.release()

    async def one_shot(self, op: str, what: str, **args: Any) -> tuple[dict, bytes]:
        """Run ``op`` in a process of its own that ends with the request (generated code is imported there)."""
        try:
            worker = await _Process.start(self.kubeflow_budget)
        except NotImplementedError:
            raise WorkerError("this server's event loop cannot start processes, and a Kubeflow compile never runs "
                              "inside the Jupyter server; use `same-nb run NOTEBOOK --target kubeflow --host URL`",
                              status=501) from None
        self._all.add(worker)
        try:
            return await worker.call({"op": op, "args": args}, what)
        finally:
            worker.proc.stdin.close()
            if worker.alive and await worker.wait() is None:
                worker.kill()
            self._all.discard(worker)

    def close(self) -> None:
        """Kill every worker now (at interpreter exit)."""
        for worker in list(self._all):
            worker.kill()
        self._all.clear()
        self._idle.clear()

    async def aclose(self) -> None:
        """Kill every worker and wait for them, so none outlives the server's event loop."""
        workers = list(self._all)
        self.close()
        for worker in workers:
            if worker.proc.stdin is not None:
                worker.proc.stdin.close()
            await worker.wait()


# -- the worker's side ------------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _limit_memory(memory_mb: int) -> None:
    try:
        import resource
    except ImportError:                  # not on this platform: the time budget still holds
        return
    limit = memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and hard < limit:
        limit = hard
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the server process ends, whatever it was doing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))       # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _error_header(exc: SameError, root: str | None) -> dict:
    from same_nb.server.paths import relative_to_root, to_api_path

    error = exc.to_dict()
    if error.get("path") and root:
        error["path"] = to_api_path(root, error["path"]) or error["path"]
    header = {"status": getattr(exc, "status", 400), "message": exc.message, "error": error}
    return relative_to_root(header, root) if root else header


def _memory_header(memory_mb: int | None, setting: str) -> dict:
    return {"status": UNPROCESSABLE,
            "message": f"the notebook needs more than {memory_mb} MB of memory to process, the server's limit "
                       f"({setting}); is it (or its same.yaml) very large?"}


def _peak_mb() -> float:
    """This process's peak address space (what RLIMIT_AS limits), in MB; 0 where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def answer(request: dict, memory_mb: int | None, setting: str) -> tuple[dict, bytes]:
    """Run one request; the header says ``exit`` when the process should not take another one."""
    import traceback

    args = request.get("args", {})
    body, leave = b"", False
    from same_nb.server.ops import OPS

    try:
        header, body = OPS[request["op"]](**args)
    except SameError as exc:
        header = _error_header(exc, args.get("root"))
    except MemoryError:
        body, leave = b"", True
        header = _memory_header(memory_mb, setting)
    except RecursionError:
        header = {"status": UNPROCESSABLE, "message": "the notebook or its same.yaml is nested too deeply to process"}
    except Exception as exc:  # a bug: say what happened, and let a fresh process take the next request
        traceback.print_exc()
        body, leave = b"", True
        header = {"status": 500, "message": f"internal error: {type(exc).__name__}: {exc}"}
    if memory_mb and _peak_mb() >= 0.9 * memory_mb:
        # Near the limit: some code on the way caught its MemoryError and reported something else
        # (e.g. "cannot be parsed"). Say what really happened, and start the next request afresh.
        leave = True
        if int(header.get("status", 500)) >= 400:
            body, header = b"", _memory_header(memory_mb, setting)
    if leave:
        header["exit"] = True           # the server drops this worker; the next request starts another
    return header, body


def serve(stdin: BinaryIO, stdout: BinaryIO, memory_mb: int, setting: str) -> None:
    """Answer requests until stdin closes (the server went away) or the worker is idle too long."""
    import select

    while True:
        try:
            ready, _, _ = select.select([stdin], [], [], IDLE_EXIT)
        except (OSError, ValueError):    # no select() on pipes here (Windows): wait without the idle exit
            ready = [stdin]
        if not ready:
            return
        size = _read_exact(stdin, 8)
        raw = _read_exact(stdin, int.from_bytes(size, "big")) if size else None
        if raw is None:
            return
        header, body = answer(json.loads(raw), memory_mb, setting)
        try:
            stdout.write(_frame(json.dumps(header, default=_json_default).encode()) + _frame(body))
            stdout.flush()
        except (BrokenPipeError, OSError):
            return
        if header.get("exit"):
            return


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--setting", default="SAME_NB_INSPECT_MEMORY_MB")
    args = parser.parse_args(argv)
    _die_with_parent()
    # The protocol owns the original stdin/stdout; anything else printing goes to stderr.
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    from same_nb.lean import skip_slow_optional_imports

    skip_slow_optional_imports()
    _limit_memory(args.memory_mb)
    try:                                 # warm: the first request should not pay for these imports
        import nbformat  # noqa: F401

        import same_nb.service  # noqa: F401
    except Exception:  # noqa: S110 - the request itself will report a broken import
        pass
    proto_out.write(_frame(b"ready"))
    proto_out.flush()
    serve(proto_in, proto_out, args.memory_mb, args.setting)
    return 0


if __name__ == "__main__":
    sys.exit(main())
