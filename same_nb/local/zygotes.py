"""A run's zygotes (``local/forked.py``): started while the notebook compiles, one per kernel
environment, preloaded with the run's modules, and the kernel pool that forks from them.
"""
from __future__ import annotations

import os
import threading

from same_nb.local.forked import Zygote, fork_manager, fork_supported, key_of, known_blocked, remember_blocked


def default_kernel(kernel: str | None, *, isolated: bool = False) -> str:
    """How a run starts its kernels: "fork" where forking is supported, "fresh" otherwise and for
    isolated kernels (another interpreter, in the lock's venv). $SAME_NB_KERNEL sets the default,
    so suites and benchmarks can run in either mode."""
    kernel = kernel or os.environ.get("SAME_NB_KERNEL") or None
    if kernel not in (None, "fork", "fresh"):
        from same_nb.errors import SameError

        raise SameError(f"--kernel must be fork or fresh, got {kernel!r}")
    if kernel == "fork" and isolated:
        from same_nb.errors import SameError

        raise SameError("--kernel fork cannot be used with --isolated: isolated kernels run the lock's venv")
    if kernel == "fork" and not fork_supported():
        from same_nb.errors import SameError

        raise SameError("--kernel fork needs fork() and /proc (Linux); use --kernel fresh")
    if isolated or not fork_supported():
        return "fresh"
    return kernel or "fork"


class Zygotes:
    """The run's zygotes, one per distinct kernel environment (at most two: a run whose steps set
    many different environments starts the rest fresh), each preloaded with the run's modules."""

    MAX = 2

    def __init__(self, *, cwd: str, preload: list[str], log: str | None = None):
        self.cwd, self.modules, self.log = cwd, list(preload), log
        self.notes: list[str] = []
        self._by_key: dict[tuple, Zygote | None] = {}
        self._spare = None
        self._lock = threading.Lock()

    def offer(self, future) -> None:
        """A zygote started while the notebook compiled (see ``start_zygote``)."""
        self._spare = future

    def for_env(self, env: dict[str, str]) -> Zygote | None:
        key = key_of(self.cwd, env)
        with self._lock:
            if key in self._by_key:
                return self._by_key[key]
            if len(self._by_key) >= self.MAX:
                return None
            zygote = self._adopt(key) or Zygote(cwd=self.cwd, env=env, log=self.log,
                                                blocked=known_blocked(self.cwd))
            if not zygote.unsafe:
                zygote.preload(self.modules)
                remember_blocked(self.cwd, zygote.blocked)
            if zygote.unsafe:
                self.notes.append(f"kernels start fresh: the zygote is not fork-safe ({zygote.unsafe})")
                zygote.close()
                zygote = None
            self._by_key[key] = zygote
            return zygote

    def _adopt(self, key) -> Zygote | None:
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        try:
            zygote = spare.result()
        except Exception:
            return None
        if zygote.key == key:
            spare.adopted = True
            return zygote
        zygote.close()
        return None

    def manager(self, env: dict[str, str], kernel_name: str, log: str | None):
        """A kernel manager forking from the zygote for ``env``, or None: start a fresh kernel."""
        zygote = self.for_env(env)
        return fork_manager(zygote, kernel_name, log) if zygote is not None else None

    def describe(self) -> dict:
        live = [z for z in self._by_key.values() if z is not None]
        return {"zygotes": [{"pid": z.pid, "preloaded": z.preloaded, "dropped": z.dropped} for z in live],
                "notes": list(self.notes)}

    def close(self) -> None:
        with self._lock:
            zygotes = [z for z in self._by_key.values() if z is not None]
            self._by_key.clear()
        discard_zygote(self._spare)
        for zygote in zygotes:
            zygote.close()


def start_zygote(*, cwd: str, env: dict[str, str], log: str | None = None):
    """A zygote started now, on a thread, while the notebook compiles: its ipykernel import overlaps
    the compile; the run preloads its modules into it once it knows them."""
    from concurrent.futures import ThreadPoolExecutor

    def start() -> Zygote:
        zygote = Zygote(cwd=cwd, env={**os.environ, **env}, log=log, blocked=known_blocked(cwd))
        import jupyter_client.manager  # noqa: F401   # the kernels' manager, while the zygote boots
        return zygote

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="same-nb-zygote")
    future = executor.submit(start)
    executor.shutdown(wait=False)
    future.adopted = False
    future.discard = lambda: discard_zygote(future)
    return future


def start_spare(*, kernel: str, kernel_name: str, cwd: str, env: dict[str, str], log: str | None = None):
    """What a run starts while its notebook compiles: the zygote with ``kernel`` "fork" (where
    forking is supported), else a spare kernel (``kernels.start_spare_kernel``)."""
    if kernel == "fork" and fork_supported():
        return start_zygote(cwd=cwd, env=env, log=os.path.join(cwd, ".same", "zygote.log"))
    from same_nb.local.kernels import start_spare_kernel

    return start_spare_kernel(kernel_name=kernel_name, cwd=cwd, env=env, log=log)


def discard_zygote(future) -> None:
    if future is None or getattr(future, "adopted", False) or future.cancel():
        return
    try:
        future.result().close()
    except Exception:
        pass


def pool_for_run(req, log_for, record):
    """The kernel pool of a run (``local/runner.py`` RunRequest): kernels forked from a zygote with
    ``req.kernel`` "fork" (never for isolated kernels, which run another interpreter), else fresh."""
    p = req.pipeline
    cwd = str(req.notebook.parent.resolve())
    zygotes = None
    if req.kernel == "fork" and not req.pythons and not req.runtime_path:
        # Imported here, before the runner's thread imports papermill: two threads importing
        # jupyter_client at once can meet it half-initialised.
        import jupyter_client.manager  # noqa: F401
        zygotes = Zygotes(cwd=cwd, preload=preload_modules(p), log=os.path.join(cwd, ".same", "zygote.log"))
    from same_nb.local.kernels import KernelPool, warm_modules

    pool = KernelPool(kernel_name=p.kernel, cwd=cwd,
                      env_for=lambda s: {"PYTHONHASHSEED": "0", **req.env, **req.step_env.get(s, {})},
                      modules_for=lambda step: warm_modules(p, step), limit=req.jobs + 2,
                      extra_path=[req.runtime_path] if req.runtime_path else None,
                      python_for=req.pythons.get, log_for=log_for, zygotes=zygotes)
    pool.record = record
    if req.spare_kernel is not None:
        pool.offer_spare(req.spare_kernel)
    return pool


def preload_modules(pipeline) -> list[str]:
    """What the zygote imports: every step's warm modules, or nothing when a step replays import
    context or sets it (its kernel is forked from the zygote too, and must import nothing early)."""
    from same_nb.local.kernels import changes_import_context, warm_modules

    wanted: list[str] = []
    for step in pipeline.steps:
        if changes_import_context(step):
            return []
        wanted += [m for m in warm_modules(pipeline, step.name) if m not in wanted]
    return wanted
