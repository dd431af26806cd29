"""Kernels forked from a zygote (``runtime/zygote.py``) instead of started as new processes: the
zygote imported ipykernel and the pipeline's modules once, so a step's kernel is ready in
milliseconds. One zygote per interpreter, working folder and environment, because all three decide
what an import finds and does; a kernel whose request matches no zygote is started fresh.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time

# Environment variables a kernel gets per launch; they differ per kernel and decide no import.
_PER_KERNEL = ("JPY_",)
_MAX_RESTARTS = 4            # each culprit package found costs one zygote start


def fork_supported() -> bool:
    return hasattr(os, "fork") and os.path.isdir("/proc/self/task")


def key_of(cwd: str, env: dict[str, str]) -> tuple:
    return (os.path.realpath(cwd), tuple(sorted((k, v) for k, v in env.items()
                                                if k != "PYTHONEXECUTABLE" and not k.startswith(_PER_KERNEL))))


class Zygote:
    """One fork server process; requests are serialised (each is a pipe round-trip of milliseconds)."""

    def __init__(self, *, cwd: str, env: dict[str, str], log: str | None, blocked: list[str]):
        self.key = key_of(cwd, env)
        self.cwd, self.env, self.log, self.blocked = cwd, dict(env), log, list(blocked)
        self.preloaded: list[str] = []
        self.dropped: list[str] = []          # modules left to the kernels: they start threads at import
        self.unsafe: str | None = None        # why this zygote cannot fork; None when it can
        self._lock = threading.Lock()
        self._proc = None
        self._start()

    def _start(self) -> None:
        stream = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            # Its own session, as a kernel: the terminal's Ctrl-C goes to the run, which stops it.
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "same_nb.runtime.zygote"], cwd=self.cwd,
                env={**self.env, "JPY_PARENT_PID": str(os.getpid())}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stream, start_new_session=True)
        finally:
            if stream is not subprocess.DEVNULL:
                stream.close()
        _LIVE.add(self)
        ready = self._read()
        if not ready.get("ready"):
            self.unsafe = ready.get("unsafe") or "the zygote did not start (see its log)"

    def _read(self, timeout: float = 600) -> dict:
        """One reply; an import that hangs in the zygote must not hang the run (each reply is one
        write, so a readable pipe holds a whole line)."""
        import select

        if not select.select([self._proc.stdout], [], [], timeout)[0]:
            self._proc.kill()
            return {"unsafe": f"the zygote did not answer within {timeout:.0f} s"}
        line = self._proc.stdout.readline()
        if not line:
            return {"unsafe": "the zygote exited"}
        return json.loads(line)

    def _ask(self, request: dict) -> dict:
        with self._lock:
            if self.unsafe:
                return {"error": self.unsafe}
            try:
                self._proc.stdin.write((json.dumps(request) + "\n").encode())
                self._proc.stdin.flush()
            except OSError:
                self.unsafe = "the zygote exited"
                return {"error": self.unsafe}
            answer = self._read()
            if "unsafe" in answer:
                self.unsafe = answer["unsafe"]
            return answer

    def preload(self, modules: list[str]) -> None:
        """Import ``modules`` in the zygote; a package that starts threads is blocked and the zygote
        restarted without it (the kernels import it themselves)."""
        for _ in range(_MAX_RESTARTS + 1):
            answer = self._ask({"op": "preload", "modules": modules, "blocked": self.blocked})
            if "loaded" in answer:
                self.preloaded = answer["loaded"]
                self.dropped = sorted(set(self.dropped) | set(answer["failed"]))
                return
            culprit = answer.get("culprit")
            if not culprit or culprit in self.blocked:
                return                          # unsafe, and nothing left to block: kernels start fresh
            self.blocked.append(culprit)
            self.dropped.append(answer.get("module", culprit))
            self._restart()
        if self.unsafe and not self.unsafe.startswith("the zygote did not answer"):
            self._restart()                     # too many culprits: preload nothing, fork still pays off
            self.preloaded, self.dropped = [], list(modules)

    def _restart(self) -> None:
        self.close()
        self.unsafe = None
        self._start()

    def fork(self, *, argv: list[str], cwd: str, env: dict[str, str], log: str | None) -> int:
        answer = self._ask({"op": "fork", "argv": argv, "cwd": cwd, "env": env, "log": log})
        if "pid" not in answer:
            raise RuntimeError(answer.get("error") or "the zygote did not fork")
        return answer["pid"]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        try:
            proc.stdin.close()                  # end of requests: it exits
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        proc.stdout.close()


_LIVE: set[Zygote] = set()


@atexit.register
def _close_all() -> None:
    for zygote in list(_LIVE):
        zygote.close()


class ForkedProcess:
    """What jupyter_client's local provisioner expects of a Popen, for a forked child that is not
    ours to wait for: the zygote ignores SIGCHLD, so the child vanishes when it exits."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            try:
                with open(f"/proc/{self.pid}/stat", "rb") as f:
                    raw = f.read().decode(errors="replace")
                alive = raw[raw.rindex(")") + 2:].split()[0] != "Z"
            except OSError:
                alive = False
            if not alive:
                self.returncode = -signal.SIGKILL       # its real status went to nobody
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def fork_manager(zygote: Zygote, kernel_name: str, log: str | None):
    """A kernel manager whose kernel is forked from ``zygote``, or None when the kernelspec is not
    this interpreter's ipykernel (then the zygote's modules are not the kernel's)."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    km = AsyncKernelManager(kernel_name=kernel_name)
    try:
        argv = list(km.kernel_spec.argv)
    except Exception:
        return None
    if argv[:3] != ["python", "-m", "ipykernel_launcher"] and argv[:1] != [sys.executable]:
        return None
    if "ipykernel_launcher" not in argv or km.kernel_spec.env:
        return None

    class ForkProvisioner(LocalProvisioner):
        forked = False
        async def launch_kernel(self, cmd, **kwargs):
            env = {**kwargs["env"], "JPY_PARENT_PID": str(os.getpid())}   # as jupyter_client's launcher sets
            cwd = str(kwargs.get("cwd") or os.getcwd())
            if key_of(cwd, env) != zygote.key or cmd[0] != sys.executable:
                return await super().launch_kernel(cmd, **kwargs)
            try:
                pid = zygote.fork(argv=cmd[cmd.index("ipykernel_launcher") + 1:], cwd=cwd, env=env, log=log)
            except RuntimeError:
                return await super().launch_kernel(cmd, **kwargs)    # the zygote died: a fresh kernel
            self.forked = True
            self.process = ForkedProcess(pid)
            self.pid = self.pgid = pid            # it called setsid: the group jupyter_client signals
            self.cwd = cwd
            return self.connection_info

    km.kernel_id = str(uuid.uuid4())
    km.provisioner = ForkProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
    return km


def blocked_file(cwd: str) -> str:
    """Per user, not per notebook folder: what starts threads depends on the interpreter and its
    packages only, and a new folder should not pay a zygote restart per culprit again."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "same-nb", "zygote-blocked.json")


# Bumped when runtime/zygote.py changes what may be preloaded: a package blocked under older rules
# may be preloadable now. (Not imported from there: this runs on the thread starting the zygote,
# and two threads importing one package can meet it half-initialised.)
_RULES = 2


def _blocked_key() -> str:
    """What a list was learned with: the interpreter and the zygote's rules."""
    return f"{sys.executable} rules {_RULES}"


def known_blocked(cwd: str) -> list[str]:
    """Packages an earlier run found to start threads at import, for this interpreter."""
    try:
        with open(blocked_file(cwd), encoding="utf-8") as f:
            return list(json.load(f).get(_blocked_key(), []))
    except (OSError, ValueError, AttributeError):
        return []


def remember_blocked(cwd: str, blocked: list[str]) -> None:
    if sorted(blocked) == sorted(known_blocked(cwd)):
        return
    path = blocked_file(cwd)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    data[_blocked_key()] = sorted(set(blocked))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)
    except OSError:
        pass                                    # next run finds the culprit again
