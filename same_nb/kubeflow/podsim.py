"""Run a compiled KFP v2 pipeline.yaml the way clean pods would, without a cluster.

kfp.local runs components with the host's Python, so packages the host happens to have mask an
incomplete lock. Here every container task gets a fresh ``python -m venv`` (pip, no site packages,
no same-nb), its bin first on PATH, an empty working directory, its own HOME and TMPDIR and a minimal
environment; the executor input, placeholders and outputs follow KFP's launcher
(`podsim_executor.py`). Artifact uris are absolute local paths under the simulation's pipeline root,
as in kfp.local. Only a flat root DAG is supported (no sub-DAGs, conditions or loops).

pip runs with ``PIP_CONFIG_FILE=/dev/null``: a pod reaches only the index it is configured for, not
this machine's ``find-links``/local indexes. The network a pod is attached to (CA bundles, proxies)
is carried over. ``pip_env`` (e.g. ``PIP_INDEX_URL``) emulates a cluster's index.
"""
from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from same_nb.errors import SameError
from same_nb.kubeflow.podsim_executor import (
    executor_input,
    load_spec,
    local_path,
    pipeline_parameters,
    read_outputs,
    resolve_command,
    task_order,
    typed,
)

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The network the pod sits in (TLS interception, proxies), not packages: carried from the host.
NETWORK_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT", "HTTP_PROXY", "HTTPS_PROXY",
                "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
CPU_DISPATCH_PREFIXES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")
TASK_TIMEOUT = 1800
LOG_TAIL = 40
# Written into each venv: records when each Python process starts, so "pod start → user code" can be
# told apart from installs. A module, not .pth code, because site reads a venv's lib and lib64 both.
_CLOCK = ("import json, os, sys, time\n"
          "if 'PIP_BUILD_TRACKER' not in os.environ:\n"
          "    with open({path!r}, 'a') as f:\n"
          "        f.write(json.dumps([time.time(), list(sys.orig_argv)]) + '\\n')\n")


@dataclass
class Pod:
    """What a ``prepare`` hook gets: the task's fresh venv and environment, before its command runs."""
    task: str
    component: dict
    executor: dict
    image: str | None
    venv: Path
    env: dict[str, str]
    log: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, argv: list[str], timeout: float = TASK_TIMEOUT, env: dict[str, str] | None = None) -> None:
        """Run a command in the pod's environment, output appended to the task log; raises on failure."""
        with open(self.log, "ab") as out:
            out.write(("$ " + " ".join(map(str, argv)) + "\n").encode())
            out.flush()
            done = subprocess.run(argv, env={**self.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, cwd=self.venv)
        if done.returncode:
            raise SameError(f"{Path(argv[0]).name} exited with {done.returncode}: {_last_line(self.log)}")


@dataclass
class TaskResult:
    name: str
    kind: str                       # "container" | "importer"
    status: str = "pending"         # "succeeded" | "failed" | "skipped"
    exit_code: int | None = None
    error: str | None = None
    log: Path | None = None
    log_tail: str = ""
    outputs: dict[str, dict] = field(default_factory=dict)     # artifact name → {uri, path, type, metadata}
    parameters: dict[str, Any] = field(default_factory=dict)  # output parameter name → value
    seconds: dict[str, float] = field(default_factory=dict)   # venv, prepare, command, to_user_code, total
    warnings: list[str] = field(default_factory=list)
    executor_input: dict | None = None


@dataclass
class SimResult:
    pipeline: str
    root: Path
    tasks: dict[str, TaskResult]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.status == "succeeded" for t in self.tasks.values())

    def render(self) -> str:
        lines = [f"podsim {self.pipeline}: {'OK' if self.ok else 'FAILED'} in {self.seconds:.1f} s ({self.root})"]
        for t in self.tasks.values():
            times = ", ".join(f"{k} {v:.1f} s" for k, v in t.seconds.items())
            lines.append(f"  {t.status:9} {t.name} ({t.kind}{'; ' + times if times else ''})")
            if t.error:
                lines.append(f"            {t.error}")
        return "\n".join(lines)


def simulate(pipeline: str | Path | dict, *, arguments: dict[str, Any] | None = None, workdir: str | Path | None = None,
             python: str | None = None, prepare: Callable[[Pod], None] | None = None,
             extra_env: dict[str, str] | None = None, pip_env: dict[str, str] | None = None,
             cache_dir: str | Path | None = None, jobs: int = 2, timeout: float = TASK_TIMEOUT,
             keep_pods: bool = False) -> SimResult:
    """Run every task of a compiled KFP v2 pipeline (path to its YAML, or the loaded spec) as a clean
    pod would. ``prepare`` builds the "image": it runs in each fresh venv before the command (install the
    lock there). ``cache_dir`` shares pip's and uv's download caches between pods, nothing else.
    ``keep_pods`` keeps each pod's venv, working directory and HOME under ``workdir/pods``."""
    spec = load_spec(pipeline)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="podsim-")).resolve()
    stamp = datetime.now(timezone.utc)
    name = spec.get("pipelineInfo", {}).get("name", "pipeline")
    run_name = f"{name}-{stamp.strftime('%Y%m%d-%H%M%S-%f')}"
    sim = _Sim(spec, workdir, run_name, stamp, pipeline_parameters(spec, arguments or {}), python or sys.executable,
               prepare, {**(pip_env or {}), **(extra_env or {})}, Path(cache_dir).resolve() if cache_dir else None,
               timeout, keep_pods)
    started = time.monotonic()
    tasks = sim.run(max(1, jobs))
    if not keep_pods and (workdir / "pods").is_dir() and not any((workdir / "pods").iterdir()):
        (workdir / "pods").rmdir()
    return SimResult(name, workdir / "pipeline_root", tasks, time.monotonic() - started)


def requirements_installer(lock: str | Path | list | Callable[[Pod], Any], *, use_uv: bool = True,
                           require_hashes: bool = True, no_deps: bool = False) -> Callable[[Pod], None]:
    """A ``prepare`` hook installing requirements files into each pod's venv, with uv or pip, as an image
    build would. ``lock``: a path or list of paths for every task, or a function of the pod returning
    them (None installs nothing)."""
    def prepare(pod: Pod) -> None:
        paths = lock(pod) if callable(lock) else lock
        if paths is None:
            return
        files = [a for p in ([paths] if isinstance(paths, (str, Path)) else paths) for a in ("-r", str(p))]
        flags = ["--require-hashes"] * require_hashes + ["--no-deps"] * no_deps
        if not use_uv:
            pod.run([str(pod.python), "-m", "pip", "install", *flags, *files])
            return
        env = {"UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"}
        index = ["--index-url", pod.env["PIP_INDEX_URL"]] if pod.env.get("PIP_INDEX_URL") else []
        pod.run([_uv(), "pip", "install", "--python", str(pod.python), *index, *flags, *files], env=env)
    return prepare


def output_digests(result: SimResult) -> dict[str, dict[str, dict[str, str | None]]]:
    """task → artifact → {sha256 of the file (a directory: of its sorted relative paths and file
    digests; None if nothing was written), metadata_sha256: the ``sha256`` the executor recorded}."""
    return {name: {art: {"sha256": _digest(Path(out["path"])), "metadata_sha256": out["metadata"].get("sha256")}
                   for art, out in task.outputs.items()}
            for name, task in result.tasks.items()}


def _digest(path: Path) -> str | None:
    if path.is_file():
        return _file_digest(path)
    if not path.is_dir():
        return None
    tree = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        tree.update(f"{f.relative_to(path).as_posix()}\0{_file_digest(f)}\n".encode())
    return tree.hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv") or "uv"


def _last_line(log: Path) -> str:
    lines = [ln for ln in _tail(log).splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no output"


def _tail(log: Path, count: int = LOG_TAIL) -> str:
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, os.path.getsize(log) - 64 * 1024))
            return "\n".join(handle.read().decode("utf-8", "replace").splitlines()[-count:])
    except OSError:
        return ""


class _Sim:
    def __init__(self, spec, workdir, run_name, stamp, params, python, prepare, extra_env, cache, timeout, keep):
        self.spec, self.workdir, self.run_name, self.params = spec, workdir, run_name, params
        self.python, self.prepare, self.extra_env, self.cache = python, prepare, extra_env, cache
        self.timeout, self.keep = timeout, keep
        self.root = workdir / "pipeline_root"
        self.context = {"pipeline_root": str(self.root), "pipeline_job_name": run_name,
                        "pipeline_job_resource_name": run_name, "pipeline_job_uuid": run_name,
                        "pipeline_job_create_time_utc": stamp.isoformat(), "pipeline_job_schedule_time_utc": stamp.isoformat(),
                        "workspace_path": str(workdir / "workspace")}
        self.tasks = spec["root"]["dag"]["tasks"]
        self.results: dict[str, TaskResult] = {}
        self.version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                      capture_output=True, text=True, env={"PATH": SYSTEM_PATH}).stdout.strip()

    def run(self, jobs: int) -> dict[str, TaskResult]:
        deps = task_order(self.tasks)
        for name, task in self.tasks.items():
            component = self.spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                raise SameError(f"task '{name}': nested pipelines are not simulated")
            executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
            self.results[name] = TaskResult(name, "importer" if "importer" in executor else "container")
        running: dict = {}
        failed = False
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            while True:
                if not failed:
                    for name in sorted(deps):
                        if (self.results[name].status == "pending" and name not in running and len(running) < jobs
                                and all(self.results[d].status == "succeeded" for d in deps[name])):
                            running[name] = pool.submit(self._task, name)
                if not running:
                    break
                finished, _ = wait(running.values(), return_when=FIRST_COMPLETED)
                for name in [n for n, f in running.items() if f in finished]:
                    running.pop(name).result()
                    failed = failed or self.results[name].status != "succeeded"
        for result in self.results.values():
            if result.status == "pending":
                result.status, result.error = "skipped", "an earlier task failed"
        return {name: self.results[name] for name in sorted(self.results, key=list(self.tasks).index)}

    def _task(self, name: str) -> None:
        result = self.results[name]
        started = time.monotonic()
        try:
            task = self.tasks[name]
            component = self.spec["components"][task["componentRef"]["name"]]
            executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
            params, artifacts = self._inputs(name, task, component)
            if "importer" in executor:
                self._importer(result, executor["importer"], params)
            elif "container" in executor:
                self._container(result, task, component, executor["container"], params, artifacts)
            else:
                raise SameError(f"executor {component['executorLabel']}: only container and importer executors are simulated")
        except Exception as exc:   # noqa: BLE001 — one task's failure is a result, not a crash of the run
            reason = str(exc) if isinstance(exc, SameError) else f"{type(exc).__name__}: {exc}"
            result.status, result.error = "failed", result.error or reason
        result.seconds["total"] = time.monotonic() - started

    def _inputs(self, name: str, task: dict, component: dict) -> tuple[dict, dict]:
        ins = task.get("inputs", {})
        kinds = component.get("inputDefinitions", {}).get("parameters", {})
        params = {}
        for key, src in ins.get("parameters", {}).items():
            if "componentInputParameter" in src:
                value = self.params.get(src["componentInputParameter"])
            elif "runtimeValue" in src:
                value = src["runtimeValue"].get("constant")
            elif "taskOutputParameter" in src:
                ref = src["taskOutputParameter"]
                produced = self.results[ref["producerTask"]].parameters
                if ref["outputParameterKey"] not in produced:
                    raise SameError(f"task '{name}': {ref['producerTask']} produced no parameter '{ref['outputParameterKey']}'")
                value = produced[ref["outputParameterKey"]]
            else:
                raise SameError(f"task '{name}': input parameter '{key}' from {sorted(src)} is not simulated")
            params[key] = typed(value, kinds.get(key, {}).get("parameterType"))
        artifacts = {}
        for key, src in ins.get("artifacts", {}).items():
            if "taskOutputArtifact" not in src:
                raise SameError(f"task '{name}': input artifact '{key}' from {sorted(src)} is not simulated")
            ref = src["taskOutputArtifact"]
            out = self.results[ref["producerTask"]].outputs.get(ref["outputArtifactKey"])
            if out is None:
                raise SameError(f"task '{name}': {ref['producerTask']} produced no artifact '{ref['outputArtifactKey']}'")
            artifacts[key] = {k: out[k] for k in ("name", "type", "uri", "metadata")}
        return params, artifacts

    def _importer(self, result: TaskResult, spec: dict, params: dict) -> None:
        source = spec.get("artifactUri", {})
        uri = source["constant"] if "constant" in source else params.get(source.get("runtimeParameter", "uri"))
        if not isinstance(uri, str) or not uri:
            raise SameError(f"importer {result.name}: no artifact uri")
        schema = spec.get("typeSchema", {})
        result.outputs["artifact"] = {"name": "artifact", "type": schema, "uri": uri, "path": local_path(uri),
                                      "metadata": dict(spec.get("metadata") or {})}
        result.status = "succeeded"

    def _env(self, pod_dir: Path, venv: Path, container: dict) -> dict[str, str]:
        env = {"PATH": f"{venv / 'bin'}:{SYSTEM_PATH}", "HOME": str(pod_dir / "home"), "TMPDIR": str(pod_dir / "tmp"),
               "LANG": "C.UTF-8", "PIP_CONFIG_FILE": os.devnull}
        env.update({k: os.environ[k] for k in NETWORK_VARS if k in os.environ})
        # The node's CPU as its BLAS sees it: OpenBLAS picks its kernels by core type, and a forced
        # type (OPENBLAS_CORETYPE) changes the last bits of float results. A pod on this node gets it.
        env.update({k: v for k, v in os.environ.items() if k.startswith(CPU_DISPATCH_PREFIXES)})
        cert = env.get("PIP_CERT") or _pip_conf_cert()
        env.update({"PIP_CERT": cert} if cert else {})
        if self.cache:
            env.update(PIP_CACHE_DIR=str(self.cache / "pip"), UV_CACHE_DIR=str(self.cache / "uv"))
        env.update({e["name"]: str(e.get("value", "")) for e in container.get("env", [])})
        env.update(self.extra_env)
        return env

    def _container(self, result: TaskResult, task: dict, component: dict, container: dict, params: dict,
                   artifacts: dict) -> None:
        name = result.name
        task_root = self.root / self.run_name / name
        pod_dir = self.workdir / "pods" / name
        logs = self.workdir / "logs"
        for folder in (task_root, pod_dir / "home", pod_dir / "tmp", pod_dir / "work", logs):
            folder.mkdir(parents=True, exist_ok=True)
        result.log = logs / f"{name}.log"
        result.log.write_bytes(b"")
        message = executor_input(component, params, artifacts, str(task_root))
        result.executor_input = message
        for key, art in artifacts.items():   # the launcher downloads each input; a missing one fails the pod
            if not os.path.exists(local_path(art["uri"])):
                raise SameError(f"input artifact '{key}': nothing at {art['uri']} (the launcher's download would fail)")
        argv = resolve_command(list(container.get("command", [])) + list(container.get("args", [])), message,
                               {**self.context, "pipeline_task_name": name, "pipeline_task_uuid": f"{self.run_name}-{name}"})
        if not container.get("command"):
            raise SameError("the container has no command: the image's entrypoint cannot be simulated")
        for listing in message["outputs"].get("artifacts", {}).values():   # as the launcher prepares them
            Path(local_path(listing["artifacts"][0]["uri"])).parent.mkdir(parents=True, exist_ok=True)
        image = re.match(r"(?:.*/)?python:(\d+\.\d+)\b", container.get("image", ""))
        if image and image.group(1) != self.version:
            result.warnings.append(f"image {container['image']} runs Python {image.group(1)}; simulated with {self.version}")
        venv = pod_dir / "venv"
        try:
            clock = self._make_venv(result, venv)
            env = self._env(pod_dir, venv, container)
            if self.prepare:
                tick = time.monotonic()
                try:
                    self.prepare(Pod(name, component, container, container.get("image"), venv, env, result.log))
                except Exception as exc:
                    raise SameError(f"image build (prepare) failed: {exc}") from exc
                result.seconds["prepare"] = time.monotonic() - tick
            self._command(result, argv, env, pod_dir / "work", clock)
        finally:
            if not self.keep:
                shutil.rmtree(pod_dir, ignore_errors=True)
        if result.exit_code:
            result.status = "failed"
            result.error = result.error or f"exit code {result.exit_code}: {_last_line(result.log)}"
            return
        params_out, artifacts_out = read_outputs(component, message)
        result.parameters = params_out
        for key, art in artifacts_out.items():
            path = local_path(art["uri"])
            result.outputs[key] = {**art, "path": path}
            metrics = art["type"].get("schemaTitle", "").endswith("Metrics")   # these live in metadata
            if not metrics and not os.path.exists(path):   # the launcher only warns; a consumer's download fails
                result.warnings.append(f"output artifact '{key}' was not written ({path})")
        result.status = "succeeded"

    def _make_venv(self, result: TaskResult, venv: Path) -> Path:
        tick = time.monotonic()
        done = subprocess.run([self.python, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=600,
                              env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": str(venv.parent / "home")})
        if done.returncode:
            raise SameError(f"python -m venv failed: {(done.stderr or done.stdout).strip()[-300:]}")
        result.seconds["venv"] = time.monotonic() - tick
        site = next((venv / "lib").glob("python*/site-packages"))
        clock = venv.parent / "clock.jsonl"
        (site / "_podsim_clock.py").write_text(_CLOCK.format(path=str(clock)))
        (site / "_podsim_clock.pth").write_text("import _podsim_clock\n")
        return clock

    def _command(self, result: TaskResult, argv: list[str], env: dict, cwd: Path, clock: Path) -> None:
        start = time.time()
        with open(result.log, "ab") as out:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                result.exit_code = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                result.exit_code, result.error = -9, f"timed out after {self.timeout:.0f} s"
            finally:   # a pod's processes end with its main one
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait()
        end = time.time()
        result.seconds["command"] = end - start
        user = _user_code_start(clock)
        if user is not None:
            result.seconds["to_user_code"] = max(0.0, user - start)
            result.seconds["user_code"] = max(0.0, end - user)
        result.log_tail = _tail(result.log)


def _pip_conf_cert() -> str | None:
    """The CA bundle /etc/pip.conf names: a pip config file is not read in pods, its trust store is."""
    parser = configparser.ConfigParser()
    try:
        parser.read("/etc/pip.conf")
        return parser.get("global", "cert", fallback=None)
    except configparser.Error:
        return None


def _user_code_start(clock: Path) -> float | None:
    """When user code began: kfp's executor starting, else the first Python process that is not an
    installer (pip, ensurepip, their build hooks)."""
    try:
        starts = [json.loads(line) for line in clock.read_text().splitlines() if line.strip()]
    except OSError:
        return None
    for t, argv in starts:
        if "kfp.dsl.executor_main" in argv:
            return t
    for t, argv in starts:
        words = [Path(a).name for a in argv[1:3]]
        if not any(w.startswith("pip") or w in ("ensurepip", "_in_process.py") for w in words):
            return t
    return None
