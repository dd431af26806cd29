"""How fast the Jupyter server extension answers: inspecting a 500-cell notebook and paging 1,000 runs.

Run: python bench/server_responsiveness.py [--cells 500] [--runs 1000] [--repeat 15]
Starts a real `jupyter server` (127.0.0.1, token) with same-nb's server extension on a temporary
root, writes the 500-cell notebook of bench/compile_scaling.py, inserts the runs through the store
API (each with 4 finished steps, artifacts and a metric), then times HTTP requests end to end:
  - GET /same-nb/api/inspect (the first call, then the median of --repeat calls; goal < 300 ms)
  - GET /same-nb/api/runs pages of 20 from newest to oldest (median and worst; goal < 100 ms)
  - GET /same-nb/api/runs/<id> (a run's detail) and /same-nb/api/metrics
  - GET /api/status while an inspect is served (the server must keep answering; goal < 100 ms)
The last line says PASS/MISS per goal. The server is stopped at the end.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compile_scaling import make_notebook  # noqa: E402  (same notebook shape as the compile bench)

GOAL_INSPECT_MS = 300
GOAL_PAGE_MS = 100
GOAL_STATUS_MS = 100
STEPS = ("load", "clean", "train", "report")


def fill_store(notebook: Path, n_runs: int) -> float:
    from same_nb.store.database import open_store

    started = time.perf_counter()
    artifacts = notebook.parent / ".same" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    with open_store(notebook_dir=notebook.parent) as store:
        for i in range(n_runs):
            run_id = store.create_run(notebook_path=notebook, notebook_sha256="0" * 64, pipeline_name="bench",
                                      params={"alpha": i / n_runs}, target="local",
                                      run_dir_root=notebook.parent / ".same" / "runs")
            ids = store.add_step_runs(run_id, STEPS)
            previous: list[dict] = []
            for name in STEPS:
                data = f"{name}-{i % 50}".encode()
                sha = hashlib.sha256(data).hexdigest()
                out = {"name": name, "sha256": sha, "kind": "pickle", "type": "builtins.bytes",
                       "size": len(data), "location": str(artifacts / sha), "role": "variable"}
                store.start_step(ids[name], cache_key=sha, cache_info={}, reason="bench", code_sha256=sha)
                store.finish_step(ids[name], status="success", inputs=previous, outputs=[out],
                                  executed_notebook=None, log_path=None,
                                  metrics=[{"name": "score", "value": (i % 17) / 17}] if name == "train" else ())
                previous = [out]
            store.finish_run(run_id, "success")
    return time.perf_counter() - started


class Server:
    def __init__(self, root: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token = secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}
        env["JUPYTER_CONFIG_DIR"] = str(root.parent / "config")
        self.log = open(root.parent / "server.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.jpserver_extensions={'same_nb.server': True}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.get("/api/status")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start: see server.log")

    def get(self, endpoint: str, **query) -> tuple[float, dict]:
        query["token"] = self.token
        url = f"http://127.0.0.1:{self.port}{endpoint}?" + "&".join(f"{k}={v}" for k, v in query.items())
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as reply:
            body = json.loads(reply.read())
        return (time.perf_counter() - started) * 1000, body

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def status_while_busy(server: Server, path: str, times: int = 5) -> list[float]:
    """/api/status latencies while an inspect request (a notebook save in the sidebar) is served."""
    latencies = []
    for _ in range(times):
        inspect = threading.Thread(target=server.get, args=("/same-nb/api/inspect",), kwargs={"path": path})
        inspect.start()
        while inspect.is_alive():
            latencies.append(server.get("/api/status")[0])
            time.sleep(0.01)
        inspect.join()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="same-nb-server-bench-") as tmp:
        root = Path(tmp) / "root"
        (root / "work").mkdir(parents=True)
        notebook = root / "work" / "big.ipynb"
        notebook.write_text(json.dumps(make_notebook(args.cells)))
        fill_seconds = fill_store(notebook, args.runs)
        print(f"store: {args.runs} runs x {len(STEPS)} steps inserted in {fill_seconds:.1f}s")

        server = Server(root)
        try:
            path = "work/big.ipynb"
            first, data = server.get("/same-nb/api/inspect", path=path)
            steps = len(data["pipeline"]["steps"])
            warm = [server.get("/same-nb/api/inspect", path=path)[0] for _ in range(args.repeat)]
            first_page = server.get("/same-nb/api/runs", path=path, limit=20, offset=0)[0]
            pages, offset, total = [], 0, None
            while total is None or offset < total:
                ms, page = server.get("/same-nb/api/runs", path=path, limit=20, offset=offset)
                total = page["total"]
                pages.append(ms)
                offset += 20
            newest = page["runs"][-1]["id"] if page["runs"] else 1
            detail = [server.get(f"/same-nb/api/runs/{newest}", path=path)[0] for _ in range(args.repeat)]
            metrics = [server.get("/same-nb/api/metrics", path=path, limit=50)[0] for _ in range(args.repeat)]
            busy = status_while_busy(server, path)
        finally:
            server.stop()

    inspect_ms = statistics.median(warm)
    page_ms, page_worst = statistics.median(pages), max(pages)
    status_worst = max(busy) if busy else 0.0
    print(f"inspect {args.cells} cells ({steps} steps): first {first:.0f} ms, median {inspect_ms:.0f} ms, "
          f"worst {max(warm):.0f} ms   (goal < {GOAL_INSPECT_MS} ms)")
    print(f"runs list: first page (opens the store) {first_page:.0f} ms; then {len(pages)} pages of 20 over "
          f"{total} runs: median {page_ms:.1f} ms, worst {page_worst:.1f} ms   (goal < {GOAL_PAGE_MS} ms)")
    print(f"run detail: median {statistics.median(detail):.1f} ms; metrics of 50 runs: "
          f"median {statistics.median(metrics):.1f} ms")
    print(f"/api/status while inspects are served: {len(busy)} calls, median "
          f"{statistics.median(busy) if busy else 0:.1f} ms, worst {status_worst:.1f} ms   (goal < {GOAL_STATUS_MS} ms)")
    verdicts = {"inspect": inspect_ms < GOAL_INSPECT_MS, "runs page": page_worst < GOAL_PAGE_MS,
                "responsive while busy": status_worst < GOAL_STATUS_MS}
    print("  ".join(f"{name}: {'PASS' if ok else 'MISS'}" for name, ok in verdicts.items()))
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
