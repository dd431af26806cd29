"""A real JupyterLab server (127.0.0.1, token) and a headless Debian Chromium driven by Playwright.

The server runs the installed same-nb lab extension and server extension; it is stopped at the end.
Screenshots go to test-artifacts/screenshots/ (gitignored).
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
SCREENSHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


# If pytest-jupyter is ever registered as a plugin for the whole session, its autouse event-loop
# fixtures clash with Playwright's sync API ("Cannot close a running event loop"); neutralise them here.
@pytest.fixture
def jp_asyncio_loop():
    yield None


@pytest.fixture
def jp_server_cleanup():
    yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log
        self.url = f"http://127.0.0.1:{port}"

    def tree(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}&reset"

    def api(self, endpoint: str, method: str = "GET", body: dict | None = None, **query) -> dict:
        """Call the same-nb REST API (what the sidebar calls) and return its JSON."""
        import json
        import urllib.parse

        url = f"{self.url}/same-nb/api/{endpoint}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(
            url, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read() or b"{}")


def _wait_until_up(lab: Lab, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if lab.proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {lab.proc.returncode}:\n{lab.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer in {timeout}s:\n{lab.log.read_text()[-3000:]}")


REPO = Path(__file__).parents[2]


def _start_lab(tmp_path_factory, *, ignore_sigint: bool = False, expose_app: bool = False, fixtures=None):
    """Start jupyter lab on 127.0.0.1 in a fresh root; yields a Lab and stops it afterwards.

    The lab serves this checkout: its Python package (PYTHONPATH) and its dev build of the lab
    extension (a JUPYTER_PATH entry ahead of any installed copy), whatever is installed."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="pip install -e '.[browser]'")
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    (root / "work").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "branching.ipynb", root / "work" / "branching.ipynb")
    if fixtures:
        fixtures(root / "work")
    env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}
    env.update(JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(base / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(base / "ws"))
    built = REPO / "same_nb" / "labextension"
    if (built / "package.json").exists():
        data = base / "data" / "labextensions"
        data.mkdir(parents=True)
        (data / "same-nb").symlink_to(built, target_is_directory=True)
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(base / "data"), env.get("JUPYTER_PATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # No "official Jupyter news?" toast over the pages under test.
    news = base / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "lab.log"

    def ignore() -> None:                 # as under nohup or some service managers
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.open_browser=False"] + (["--LabApp.expose_app_in_browser=True"] if expose_app else []),
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=ignore if ignore_sigint else None)
    server = Lab(root, port, token, proc, log)
    server.env = env
    try:
        _wait_until_up(server)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from _start_lab(tmp_path_factory)


@pytest.fixture(scope="module")
def lab_ignoring_sigint(tmp_path_factory):
    """A lab whose server (and so every process it starts) ignores SIGINT."""
    yield from _start_lab(tmp_path_factory, ignore_sigint=True)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="pip install -e '.[browser]'")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    from playwright.sync_api import expect

    # Analyses and runs take seconds longer on a loaded 2-core machine than playwright's 5 s default.
    expect.set_options(timeout=15_000)
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def shoot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


def open_palette(page):
    """Ctrl+Shift+C until the command palette shows: on a loaded machine a press can land before the
    shell takes keys again (after a dialog or a click in a cell)."""
    palette = page.locator("#command-palette")
    for _ in range(4):
        if not palette.locator("input").is_visible():
            page.keyboard.press("Control+Shift+C")
        try:
            palette.locator("input").wait_for(state="visible", timeout=5000)
            return palette
        except Exception:
            continue
    raise AssertionError("the command palette did not open on Ctrl+Shift+C")


SIDEBAR = "#same-nb-sidebar"


def open_with_sidebar(page, lab, path: str):
    """Open notebook ``path`` in the lab and the Pipelines sidebar beside it; returns the sidebar."""
    from playwright.sync_api import expect

    page.goto(lab.tree(path))
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_be_visible(timeout=60_000)
    page.locator(f'.jp-SideBar [data-id="{SIDEBAR[1:]}"]').click()
    expect(page.locator(SIDEBAR)).to_be_visible()
    return page.locator(SIDEBAR)
