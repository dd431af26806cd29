"""A real Jupyter server in its own process, as users start it (``nohup jupyter lab &``: SIGINT ignored),
for tests that need the server's own signal disposition, a second process or a wall clock.

It listens on 127.0.0.1 with a random token, serves ``root``, has same-nb's extension enabled and
imports same-nb from this checkout; ``stop()`` ends it (SIGTERM, then SIGKILL) and waits for it.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # what nohup … & leaves behind; inherited across exec


class LiveServer:
    def __init__(self, root: Path, state: Path, *, ignore_sigint: bool = True):
        self.root, self.state, self.ignore_sigint = root, state, ignore_sigint
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.log = state / "server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "LiveServer":
        config = self.state / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "jupyter_server_config.json").write_text(json.dumps(
            {"ServerApp": {"jpserver_extensions": {"same_nb.server": True}}}))
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(self.state / "runtime"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        env.pop("SAME_NB_DB", None)
        cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
               f"--port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_ignore_sigint if self.ignore_sigint else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the Jupyter server exited ({self.proc.returncode}):\n{self.log.read_text()}")
            try:
                if self.call("GET", "/api/status")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the Jupyter server did not answer within {timeout} s:\n{self.log.read_text()}")

    def call(self, method: str, path: str, params: dict | None = None, body=None,
             timeout: float = 60) -> tuple[int, object]:
        """(status, JSON reply or text) of ``path`` (``/api/…`` or an endpoint under ``/same-nb/api/``)."""
        url = self.base + (path if path.startswith("/") else "/same-nb/api/" + path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                code, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            code, text = exc.code, exc.read().decode()
        return code, (json.loads(text) if text.startswith(("{", "[")) else text)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def descendants(pid: int) -> dict[int, str]:
    """{pid: command line} of every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and alive(child):
                found[child] = commands.get(child, "")
                todo.append(child)
    return found


def signal_mask(pid: int, field: str) -> int:
    """A signal mask (``SigIgn``, ``SigCgt``) of ``pid`` from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")
