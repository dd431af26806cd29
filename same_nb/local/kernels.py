"""Kernels started ahead of time: each step gets a fresh kernel, started and warmed (its imports
loaded) while earlier steps compute, so a step pays neither kernel start nor import time.
"""
from __future__ import annotations

import asyncio
import atexit
import functools
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field

# Pre-imports modules without binding names, so the step's namespace is exactly what the notebook
# builds. Modules found under the notebook folder are skipped: an earlier step may still write them.
_WARMUP = """
import importlib as _i, importlib.util as _u, os as _o
for _m in {modules}:
    try:
        _s = _u.find_spec(_m.split(".")[0])
        if _s is not None and not (_s.origin or "").startswith(_o.getcwd() + _o.sep):
            _i.import_module(_m)
    except Exception:
        pass
del _i, _u, _o
"""


# Process state that decides what an import loads or how it configures itself (`os.environ["MPLBACKEND"]`,
# `sys.path.append`, `os.chdir`, warnings made errors): a step replaying any of it imports nothing early.
IMPORT_CONTEXT = frozenset({"os.environ", "cwd", "sys.path", "sys.modules", "warnings"})


def changes_import_context(step) -> bool:
    """Whether the step starts with import context replayed, or sets it in its own code (before an
    import, as `os.environ["MPLBACKEND"] = "svg"; import matplotlib` does)."""
    return any(r.channel in IMPORT_CONTEXT for r in step.replay) or bool(IMPORT_CONTEXT & set(step.state_writes))


def warm_modules(pipeline, name: str) -> list[str]:
    """The step's imports, plus its producers': loading an input (a fitted model, a DataFrame)
    imports the libraries that made it."""
    step = pipeline.step(name)
    imports = list(step.imports) + list(step.replay_imports)
    for producer in {i.producer for i in step.variable_inputs}:
        imports += pipeline.step(producer).imports + pipeline.step(producer).replay_imports
    mods = [i.module for i in imports if i.top and not i.module.startswith(".")]
    if changes_import_context(step):
        mods = []          # set before the step's imports: they may change what an import finds or does
    extra = ["same_nb.runtime", "same_nb.runtime.serializers"]
    if step.variable_inputs:
        extra.append("cloudpickle")
        if any(m.split(".")[0] == "pandas" for m in mods):
            extra += ["pyarrow", "pyarrow.feather"]      # DataFrames arrive as Arrow files
    return mods + extra


@dataclass
class WarmKernel:
    step: str
    km: object                     # jupyter_client AsyncKernelManager, started
    warm_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    socket_dir: str | None = None  # the kernel's Unix sockets
    log_path: str | None = None    # where the kernel process's own output goes
    mode: str = "fresh"            # "fork": forked from the run's zygote (local/forked.py)

    def __post_init__(self) -> None:
        # nbclient leaves the channels of a client it made from a manager it was handed running (their
        # heartbeat thread and sockets outlive the kernel), so every client made here is recorded and
        # stopped at shutdown: a long-lived process running many pipelines keeps neither.
        self.clients: list = []
        make = self.km.client

        def client(*args, **kwargs):
            made = make(*args, **kwargs)
            self.clients.append(made)
            made.wait_for_ready = functools.partial(wait_ready, made)
            return made

        self.km.client = client

    def shutdown(self) -> None:
        from jupyter_core.utils import run_sync

        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:
            pass                   # already dead (e.g. killed by the user); nothing to release
        for made in self.clients:
            try:
                made.stop_channels()
            except Exception:
                pass               # a channel that never started, or already closed
        self.clients.clear()
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            _SOCKET_DIRS.discard(self.socket_dir)


async def wait_ready(kc, timeout: float | None = None) -> None:
    """jupyter_client's ``wait_for_ready`` without its closing IOPub flush, which waits until IOPub
    has been quiet for 0.2 s: paid by every step's client, it was most of a small step's overhead.
    The flush only discards messages from before the first request; nbclient matches every output
    to its request's msg_id, so a late status message from kernel_info is ignored there anyway.
    Kept: a kernel_info reply on shell AND a message on IOPub, which proves IOPub is subscribed
    (otherwise a cell's first outputs could be lost)."""
    import time

    from jupyter_core.utils import ensure_async

    deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
    while True:
        kc.kernel_info()
        try:
            msg = await ensure_async(kc.shell_channel.get_msg(timeout=1))
        except queue.Empty:
            msg = None
        if msg is not None and msg["msg_type"] == "kernel_info_reply":
            try:
                await ensure_async(kc.iopub_channel.get_msg(timeout=0.2))
            except queue.Empty:
                pass
            else:
                handle = getattr(kc, "_handle_kernel_info_reply", None)     # sets the kernel's protocol version
                if handle is not None:
                    handle(msg)
                break
        if not await ensure_async(kc.is_alive()):
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
    while True:                    # what is already queued, without waiting for more
        try:
            await ensure_async(kc.iopub_channel.get_msg(timeout=0))
        except queue.Empty:
            break


_SOCKET_DIRS: set[str] = set()


@atexit.register
def _remove_socket_dirs() -> None:
    # Kernels are shut down on daemon threads, which may not finish before the interpreter exits.
    for folder in list(_SOCKET_DIRS):
        shutil.rmtree(folder, ignore_errors=True)


def _private_sockets(km) -> str | None:
    """Talk to the kernel over Unix sockets in a folder of its own. Over TCP, jupyter_client picks
    free ports and releases them before the kernel binds them: a kernel started at that moment by
    another process can take one, ours dies, and the client then blocks forever sending to it."""
    if os.name != "posix":
        return None
    folder = tempfile.mkdtemp(prefix="same-nb-")
    _SOCKET_DIRS.add(folder)
    km.transport, km.ip = "ipc", os.path.join(folder, "k")
    km.connection_file = os.path.join(folder, "connection.json")    # removed with the sockets
    return folder


def start_warm_kernel(step: str, *, kernel_name: str, cwd: str, env: dict[str, str], modules: list[str],
                      extra_path: list[str] | None = None, python: str | None = None,
                      log: str | None = None, spare=None, background: bool = False,
                      zygotes=None) -> WarmKernel:
    """Start a kernel (or adopt ``spare``, a future of one already started; or fork it from one of
    ``zygotes``) and import ``modules`` in it. Blocking; call from a worker thread."""
    import time

    t0 = time.perf_counter()
    warm = None
    if spare is not None:
        try:
            warm = spare.result()
            warm.step = step
            if log and warm.log_path:
                os.replace(warm.log_path, log)     # the kernel keeps writing to the moved file
                warm.log_path = log
        except Exception:
            warm = None            # the spare failed to start: start a fresh kernel instead
    if warm is None:
        kernel_env = {**os.environ, **env}
        if extra_path:
            kernel_env["PYTHONPATH"] = os.pathsep.join(extra_path + [kernel_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        km = zygotes.manager(kernel_env, kernel_name, log) if zygotes and python is None and not extra_path else None
        km = km or _manager_for(python, kernel_name)
        warm = WarmKernel(step=step, km=km, socket_dir=_private_sockets(km), log_path=log)
    km = warm.km
    adopted = warm.warm_seconds > 0

    # The kernel process's own stdout/stderr (start-up notices, crashes) go to the step's folder.
    stream = open(log, "ab") if log and not adopted else subprocess.DEVNULL

    async def boot() -> None:
        if not adopted:
            await km.start_kernel(cwd=cwd, env=kernel_env, stdout=stream, stderr=stream,
                                  extra_arguments=_kernel_arguments(km, python))
        if background:
            set_niceness(km, BACKGROUND_NICENESS)
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=120)
            if modules:
                msg_id = kc.execute(_WARMUP.format(modules=json.dumps(sorted(set(modules)))),
                                    silent=True, store_history=False)
                deadline = time.monotonic() + 600
                while True:
                    try:
                        reply = await kc.get_shell_msg(timeout=1)
                    except queue.Empty:
                        # An import that crashes the kernel (a broken C extension) must not hang the run.
                        if not await km.is_alive():
                            raise RuntimeError("the kernel died while importing "
                                               + ", ".join(modules)) from None
                        if time.monotonic() > deadline:
                            raise
                        continue
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
        finally:
            kc.stop_channels()

    # A private loop per thread: the kernel manager is later used from papermill's own loop.
    try:
        asyncio.run(boot())
    except BaseException:
        warm.shutdown()            # a kernel that never became ready is not handed out
        raise
    finally:
        if stream is not subprocess.DEVNULL:
            stream.close()
    warm.warm_seconds += time.perf_counter() - t0
    warm.mode = "fork" if getattr(km.provisioner, "forked", False) else "fresh"    # a dead zygote: fresh
    return warm


BACKGROUND_NICENESS = 10


def _kernel_arguments(km, python: str | None) -> list[str]:
    """IPython's history in memory, as papermill's own kernels have it (nbclient's ipython_hist_file).
    Otherwise every cell writes the shared ~/.ipython history database: ~10 ms a cell, more when
    other kernels hold its lock, and a read-only home breaks it."""
    try:
        argv = " ".join(km.kernel_spec.argv) if python is None else "ipykernel"
    except Exception:
        return []          # no such kernelspec: start_kernel says so
    return ["--HistoryManager.hist_file=:memory:"] if "ipykernel" in argv else []


def set_niceness(km, niceness: int) -> None:
    """Set the kernel's scheduling priority, every thread of it (Linux applies nice per thread).
    Kernels warmed for later steps run at lower priority so the step the run waits for gets the
    CPU first; raising priority back needs privileges, so failure leaves it as it is."""
    pid = getattr(getattr(km, "provisioner", None), "pid", None)
    if not pid or not hasattr(os, "setpriority"):
        return
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except OSError:
            pass


def start_spare_kernel(*, kernel_name: str, cwd: str, env: dict[str, str], log: str | None = None):
    """A bare kernel started now, on a thread, while the notebook is still being compiled; the pool
    adopts it for the first step that needs exactly this kernel and environment."""
    from concurrent.futures import ThreadPoolExecutor

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="same-nb-spare")
    future = executor.submit(start_warm_kernel, "", kernel_name=kernel_name, cwd=cwd, env=env, modules=[],
                             log=log)
    executor.shutdown(wait=False)
    future.spare_spec = (kernel_name, cwd, dict(env))
    return future


def discard_spare(future) -> None:
    if hasattr(future, "discard"):                         # a zygote (local/forked.py start_zygote)
        return future.discard()
    if future is not None and not future.cancel():
        try:
            warm = future.result()
            if warm.step:          # adopted: its step shut it down; a second shutdown can hang in zmq
                return
            warm.shutdown()
            if warm.log_path:                               # never adopted: its log is not a step's
                os.unlink(warm.log_path)
        except Exception:
            pass


def _manager_for(python: str | None, kernel_name: str):
    """A kernel manager for the named kernelspec, or for ``python`` through a generated kernelspec."""
    from jupyter_client.manager import AsyncKernelManager

    if not python:
        return AsyncKernelManager(kernel_name=kernel_name)
    import hashlib
    from pathlib import Path

    from jupyter_client.kernelspec import KernelSpecManager

    name = "same-nb-" + hashlib.sha256(python.encode()).hexdigest()[:12]
    spec_root = Path(python).resolve().parent.parent / "share" / "same-nb-kernels"
    spec_dir = spec_root / name
    if not (spec_dir / "kernel.json").exists():
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"same-nb ({python})", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(spec_root)])
    return AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm)


class KernelPool:
    """Starts kernels for upcoming steps on background threads, a bounded number at a time."""

    def __init__(self, *, kernel_name: str, cwd: str, env_for, modules_for, limit: int,
                 extra_path: list[str] | None = None, python_for=None, log_for=None, zygotes=None):
        from concurrent.futures import ThreadPoolExecutor

        self._kernel_name = kernel_name
        self._cwd = cwd
        self._env_for = env_for
        self._modules_for = modules_for
        self._python_for = python_for or (lambda step: None)
        self._extra_path = extra_path
        self._log_for = log_for or (lambda step: None)
        self._limit = max(1, limit)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="same-nb-warm")
        self._futures: dict[str, object] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._spare = None
        self.zygotes = zygotes            # local/forked.py Zygotes: kernels are forked, not started
        self.modes: dict[str, str] = {}   # step -> how its kernel started

    def offer_spare(self, future) -> None:
        """Use an already started kernel for the first step whose kernel and environment match it."""
        if hasattr(future, "discard"):
            if self.zygotes is not None:
                self.zygotes.offer(future)
            else:
                discard_spare(future)
            return
        self._spare = future

    def prepare(self, steps: list[str], urgent: int = 1) -> None:
        """Start warming kernels for ``steps`` (in order) while fewer than ``limit`` are pending;
        all but the first ``urgent`` are warmed in the background, at lower priority."""
        with self._lock:
            if self._closed:
                return
            for index, step in enumerate(steps):
                if len(self._futures) >= self._limit:
                    break
                if step not in self._futures:
                    self._submit(step, background=index >= urgent)

    def _submit(self, step: str, *, background: bool) -> None:
        env, python, spare = self._env_for(step), self._python_for(step), None
        if self._spare is not None and python is None and not self._extra_path and \
                self._spare.spare_spec == (self._kernel_name, self._cwd, env):
            spare, self._spare = self._spare, None
        self._futures[step] = self._pool.submit(
            start_warm_kernel, step, kernel_name=self._kernel_name, cwd=self._cwd,
            env=env, modules=self._modules_for(step), extra_path=self._extra_path,
            python=python, log=self._log_for(step), spare=spare, background=background,
            zygotes=self.zygotes)

    def take(self, step: str) -> WarmKernel:
        """The step's kernel, starting it now if it was not prepared. Blocks until warm."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the kernel pool is closed")
            if step not in self._futures:
                # Kernels warming for later steps may fill the limit: the step that runs now comes first.
                self._submit(step, background=False)
            fut = self._futures[step]
        try:
            warm = fut.result()
            set_niceness(warm.km, 0)
            self.modes[step] = warm.mode
            return warm
        finally:
            with self._lock:
                self._futures.pop(step, None)

    def discard(self, step: str) -> None:
        with self._lock:
            fut = self._futures.pop(step, None)
        if fut is not None and not fut.cancel():
            fut.add_done_callback(lambda f: f.exception() is None and f.result().shutdown())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            futures = list(self._futures.items())
            self._futures.clear()
            spare, self._spare = self._spare, None
        discard_spare(spare)
        for _, fut in futures:
            if not fut.cancel():
                try:
                    fut.result().shutdown()
                except Exception:
                    pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._write_record()
        if self.zygotes is not None:
            self.zygotes.close()

    record = None                 # a Path: where _write_record writes

    def _write_record(self) -> None:
        """How each step's kernel started, and the zygotes' preloads and notes, beside the run."""
        if self.record is None or not self.modes:
            return
        info = {"kernel": "fork" if self.zygotes is not None else "fresh", "steps": dict(self.modes)}
        if self.zygotes is not None:
            info.update(self.zygotes.describe())
            for note in self.zygotes.notes:
                import logging

                logging.getLogger("same_nb.kernels").warning("note: %s", note)
        try:
            self.record.write_text(json.dumps(info, indent=1))
        except OSError:
            pass

