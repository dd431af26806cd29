"""A fork server for step kernels: imports ipykernel and the pipeline's heavy modules once, then forks
each step's kernel from itself in milliseconds. A forked kernel is a normal ipykernel on the
connection file it is given, so papermill drives it as any other.

Run as ``python -m same_nb.runtime.zygote`` with the kernel's cwd and environment. Requests and
replies are JSON lines on stdin/stdout:
  {"op": "preload", "modules": [...], "blocked": [...]} → {"loaded", "skipped", "failed": [...]}
      or {"unsafe": why, "culprit": top-level package}: the zygote then exits, it can no longer fork
  {"op": "fork", "argv": [...], "cwd": ..., "env": {...}, "log": path} → {"pid": N} or {"error": why}
A fork needs a single-threaded process: the threads of a pool (OpenMP) or a GPU context are not
copied into the child, which then deadlocks or computes wrong (CUDA after fork). A module whose import
starts a thread is never preloaded; the kernel imports it itself after the fork. The exceptions are
the threads of libraries built to survive a fork (``FORK_SAFE_THREADS``).
Standard library only at import: ipykernel is imported in ``main``.
"""
from __future__ import annotations

import json
import os
import signal
import sys

# Libraries that hold a GPU context or threads once imported, whatever the thread count says now.
NOT_FORK_SAFE = frozenset({"tensorflow", "jax", "jaxlib", "cupy"})
_INLINE = "module://matplotlib_inline.backend_inline"

# Import-time threads that a fork handles: the library stops or parks them around fork()
# (pthread_atfork) and the child starts its own on first use, with the same settings, since the
# zygote's environment is the kernel's. Keyed by what the thread's shared object is named; the value
# is the thread's name, or None for threads that keep the process's name. Changing what may be
# preloaded bumps local/forked.py's _RULES.
FORK_SAFE_THREADS = {
    "openblas": None,              # numpy's and scipy's BLAS pool: joined before fork, restarted lazily
    "libarrow": "jemalloc_bg_thd",  # pyarrow's allocator: its fork handlers reset the background thread
}
_explained: set[int] = set()       # threads started by FORK_SAFE_THREADS libraries


def thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _threads() -> dict[int, str]:
    """The process's threads other than the main one, with their names."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return {}
    names = {}
    for tid in tids:
        if tid != os.getpid():
            try:
                with open(f"/proc/self/task/{tid}/comm", encoding="utf-8", errors="replace") as f:
                    names[tid] = f.read().strip()
            except OSError:
                pass                          # it just ended
    return names


def _mapped_libraries() -> set[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return {os.path.basename(line.split(None, 5)[-1].strip()) for line in f if ".so" in line}
    except OSError:
        return set()


def explain_threads(before: set[int], libraries_before: set[str]) -> None:
    """Record the threads an import started as fork-safe when the libraries it loaded account for
    them: named ones by their name, unnamed ones up to one pool per BLAS library it loaded."""
    new = {tid: name for tid, name in _threads().items() if tid not in before}
    if not new:
        return
    loaded = _mapped_libraries() - libraries_before
    own = _process_name()
    pools = 0
    for key, thread_name in FORK_SAFE_THREADS.items():
        hits = sum(1 for lib in loaded if key in lib.lower())
        if thread_name is None:
            pools += hits
        elif hits:
            _explained.update(tid for tid, name in new.items() if name == thread_name)
    unnamed = [tid for tid, name in new.items() if name == own]
    if pools and len(unnamed) <= pools * max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                               else os.cpu_count() or 1):
        _explained.update(unnamed)


def _process_name() -> str:
    try:
        with open("/proc/self/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def fork_unsafe() -> str | None:
    """Why forking now would give a child that differs from a fresh kernel, or None."""
    threads = [tid for tid in _threads() if tid not in _explained] if os.path.isdir("/proc/self/task") \
        else list(range(thread_count() - 1))
    if threads:
        return f"the zygote runs {len(threads) + 1} threads"
    loaded = sorted(NOT_FORK_SAFE & {name.partition(".")[0] for name in list(sys.modules)})
    if loaded:
        return f"{loaded[0]} is imported"
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and getattr(cuda, "is_initialized", lambda: False)():
        return "torch initialised CUDA"
    return None


class _Blocker:
    """Refuses to import the packages known to start threads, so a module depending on one (pandas
    on numpy) fails fast instead of making the zygote unusable."""

    def __init__(self, blocked):
        self.blocked = set(blocked) | NOT_FORK_SAFE
        self.refused: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.blocked:
            self.refused.append(name)
            raise ImportError(f"{name} is not preloaded: it starts threads or a GPU context at import")
        return None


def _first_extension(names) -> str | None:
    for name in names:                       # sys.modules order: the order imports started
        origin = getattr(sys.modules.get(name), "__file__", None) or ""
        if origin.endswith((".so", ".pyd")):
            return name.partition(".")[0]
    return None


def preload(modules, blocked) -> dict:
    blocker = _Blocker(blocked)
    sys.meta_path.insert(0, blocker)
    # ipykernel sets this before any user code runs; matplotlib reads it at import.
    os.environ.setdefault("MPLBACKEND", _INLINE)
    loaded, skipped, failed = [], [], []
    here = os.getcwd() + os.sep
    try:
        import importlib
        import importlib.util

        for name in modules:
            top = name.partition(".")[0]
            try:
                spec = importlib.util.find_spec(top)
            except Exception:
                spec = None
            # Modules under the notebook folder: an earlier step may still write them.
            if spec is None or (spec.origin or "").startswith(here) or top in blocker.blocked:
                skipped.append(name)
                continue
            before = list(sys.modules)
            threads_before, libraries_before = set(_threads()), _mapped_libraries()
            blocker.refused.clear()
            try:
                importlib.import_module(name)
                if blocker.refused:
                    # It imported without a package it would have found in a fresh kernel (pandas
                    # without pyarrow) and may have configured itself for that: the kernel imports it.
                    raise ImportError(f"{name} imports {blocker.refused[0]}")
            except BaseException:
                new = [n for n in sys.modules if n not in set(before)]
                if _first_extension(new):
                    # A C extension loaded by a half import may refuse to load again in the kernel:
                    # restart without the module.
                    return {"unsafe": f"importing {name} failed after loading a C extension",
                            "module": name, "culprit": top}
                for n in new:       # nothing half-imported stays (a package that got to a blocked import)
                    sys.modules.pop(n, None)
                failed.append(name)
                continue
            explain_threads(threads_before, libraries_before)
            why = fork_unsafe()
            if why:
                new = [n for n in sys.modules if n not in set(before)]
                return {"unsafe": why, "module": name, "culprit": _first_extension(new) or top}
            loaded.append(name)
    finally:
        sys.meta_path.remove(blocker)
        if os.environ.get("MPLBACKEND") == _INLINE:
            del os.environ["MPLBACKEND"]    # the child gets exactly its request's environment
    return {"loaded": loaded, "skipped": skipped, "failed": failed}


def _become_kernel(request: dict, protocol: tuple[int, int]) -> None:
    """In the child: turn into what ``python -m ipykernel_launcher ARGV`` would have started."""
    try:
        os.setsid()                          # a process group of its own, as jupyter_client gives kernels
        for fd in protocol:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) \
            if request.get("log") else os.open(os.devnull, os.O_WRONLY)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.chdir(request["cwd"])
        # The request's environment, plus what the zygote's imports changed in it since it started
        # (debugpy sets PYDEVD_USE_FRAME_EVAL), as a fresh kernel has after the same imports.
        changed = {k: v for k, v in os.environ.items() if _START_ENV.get(k) != v}
        removed = [k for k in _START_ENV if k not in os.environ]
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.update(changed)
        for key in removed:
            os.environ.pop(key, None)
        import itertools
        import threading

        threading._counter = itertools.count(1).__next__     # "Thread-1" is the kernel's first, as fresh
        import importlib.util

        launcher = importlib.util.find_spec("ipykernel_launcher")
        sys.argv = [getattr(launcher, "origin", None) or "ipykernel_launcher", *request["argv"]]
        # `random` reseeds itself at fork; numpy's legacy global generator does not, and sibling
        # steps would draw the same "unseeded" numbers.
        np_random = sys.modules.get("numpy.random")
        if np_random is not None:
            np_random.seed()
        os.write(2, f"same-nb: kernel forked from zygote {os.getppid()}\n".encode())
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=list(request["argv"]))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def serve(reader, out_fd: int, in_fd: int) -> None:
    def reply(obj) -> None:
        os.write(out_fd, (json.dumps(obj) + "\n").encode())

    for line in reader:
        request = json.loads(line)
        op = request.get("op")
        if op == "preload":
            answer = preload(request.get("modules", []), request.get("blocked", []))
            reply(answer)
            if "unsafe" in answer:
                return
        elif op == "fork":
            why = fork_unsafe()
            if why:
                reply({"error": f"not fork-safe: {why}"})
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _become_kernel(request, (out_fd, in_fd))
            reply({"pid": pid})
        else:
            reply({"error": f"unknown request {op!r}"})


_START_ENV: dict[str, str] = {}


def main() -> int:
    _START_ENV.update(os.environ)
    # As ipykernel_launcher does: the working folder leaves sys.path while ipykernel loads (IPython
    # puts "" back), so the kernel's sys.path is a fresh one's.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    # The protocol moves off fds 0/1 so nothing printed (an import's warning) can corrupt it.
    in_fd, out_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)     # the OS reaps forked kernels: no zombie looks alive
    # The part every kernel pays (~0.8 s): ipykernel, IPython, zmq, and the debugger a kernel loads.
    from ipykernel import debugger, kernelapp  # noqa: F401

    why = fork_unsafe()
    os.write(out_fd, (json.dumps({"ready": why is None, "unsafe": why}) + "\n").encode())
    if why:
        return 1
    with os.fdopen(in_fd, "r", encoding="utf-8") as reader:
        serve(reader, out_fd, in_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
