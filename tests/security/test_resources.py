"""Bounded resources and clean errors: what a small hostile input may cost, and how it is refused.

- YAML (same.yaml, ``--params FILE``, a ``-p`` value) goes through one safe loader: a 400-byte alias bomb,
  a recursive alias, 300,000 levels of nesting (which crash libyaml's composer) or a file over 1 MiB are
  refused in milliseconds, naming the file, the line and the field.
- Integers too long for Python to print, NaN and infinity are refused wherever a parameter value enters
  (parameters cell, same.yaml, ``--params``, ``-p``), naming the parameter: they have no JSON form, so
  neither the run store (PostgreSQL refuses ``NaN`` in JSON) nor the Kubeflow compiler ever sees one.
- Splitting a parameters cell of 10,000 parameters and statements is linear.
- Dataset downloads have an overall deadline and a size cap (per dataset in same.yaml), checked here
  against real servers on 127.0.0.1 that drip one byte at a time; a tampered cache says to delete the
  cached copy; credentials in a URL are sent to that host only and never printed.

Every case asserts that the input is *held*: a SameError (or exit 1 with one ``error:`` line), no hang (a
timeout on every subprocess, a time bound in process), no file created outside the test's folder.
"""
from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import random
import resource
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.frontend.ir import Pipeline
from same_nb.frontend.manifest import load_manifest
from same_nb.frontend.manifest_same import MAX_YAML_BYTES, load_yaml, redact_url
from same_nb.frontend.params import coerce_value, parse_parameters, resolve_params, split_parameters_source
from same_nb.store.datasets import fetch_dataset, prepare_datasets, read_datasets
from security import hostile

from conftest import ROOT, notebook_data

EXE = shutil.which("same-nb") or "same-nb"
PARAMS_CELL = "alpha = 0.5\nn = 1\na = [1]\nname = 'x'\n"
STEP = "print(alpha, n, a, name)\n"


def _bomb(levels: int = 9) -> str:
    """Billion laughs: each anchor is a list of nine aliases of the one before (9**9 strings)."""
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    parts = ['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    parts += [f"&{cur} [" + ",".join([f"*{prev}"] * 9) + "]" for prev, cur in zip(names, names[1:])]
    return "[" + ",\n      ".join(parts) + "]"


BOMB = _bomb()
BIG_INT = "1" * 4301
MANIFEST_BOMB = f"run:\n  parameters:\n    a: {BOMB}\n"
PARAMS_BOMB = f"a: {BOMB}\n"


def _memory_limit():                  # a subprocess that would expand the bomb dies at 3 GiB, not the machine
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def same_nb(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SAME_NB_DB", None)
    return subprocess.run([EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_memory_limit, env=env)


def held(proc: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit 1 with one clear `error:` line holding every expected piece, and no traceback."""
    err = proc.stderr
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and "error: " in err, err[-2000:]
    line = next(x for x in err.splitlines() if x.startswith("error: "))
    for piece in expected:
        assert piece in err, (piece, err[-2000:])
    return line


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with nb.ipynb (parameters alpha: float, n: int, a: list, name: str; one step)."""
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook_data([(["parameters"], PARAMS_CELL),
                                                                  (["step:s"], STEP)])))
    yield tmp_path
    assert not (tmp_path / hostile.MARKER).exists() and not (ROOT / hostile.MARKER).exists()


def pipeline() -> Pipeline:
    params = parse_parameters(PARAMS_CELL, path="nb.ipynb", cell=1, cell_id="p")
    return Pipeline(name="nb", notebook="nb.ipynb", notebook_sha256="0" * 64, parameters=params)


def refused(fn, *expected: str, within: float = 5.0) -> SameError:
    start = time.monotonic()
    with pytest.raises(SameError) as info:
        fn()
    assert time.monotonic() - start < within, f"took {time.monotonic() - start:.1f} s"
    for piece in expected:
        assert piece in str(info.value), (piece, str(info.value))
    return info.value


# ---- YAML: one bounded loader ----------------------------------------------------------------------

def test_alias_bomb_in_same_yaml_is_refused_fast_naming_file_line_and_field(tmp_path: Path):
    path = tmp_path / "same.yaml"
    path.write_text(MANIFEST_BOMB)
    assert len(MANIFEST_BOMB.encode()) < 500
    err = refused(lambda: load_manifest(path), "aliases expand to more than 10,000 values", "run.parameters.a",
                  within=2)
    assert err.path == str(path) and err.line is not None


def test_alias_bomb_in_a_params_file_and_a_p_value_is_refused(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text(PARAMS_BOMB)
    refused(lambda: resolve_params(pipeline(), {}, [], path), str(path), "aliases expand", within=2)
    refused(lambda: resolve_params(pipeline(), {}, [("a", BOMB)]), "parameter 'a' (from -p a)", "aliases expand",
            within=2)


def test_small_aliases_still_load(tmp_path: Path):
    text = "base: &env {KEY: v, OTHER: w}\nrun:\n  env: *env\n  parameters: {a: [*env, *env]}\n"
    assert load_yaml(text)["run"]["parameters"]["a"] == [{"KEY": "v", "OTHER": "w"}] * 2


@pytest.mark.parametrize("text, expected", [
    ("a: &x [*x]\n", "alias *x is inside the node it names"),
    ("a: &x {b: *x}\n", "alias *x is inside the node it names"),
    ("a: " + "[" * 300_000 + "]" * 300_000 + "\n", "nested more than 100 levels deep"),
    ("a: " + "{b: " * 150 + "1" + "}" * 150 + "\n", "nested more than 100 levels deep"),
    ("a: b\na: c\n", "duplicate key 'a'"),
    ("a: !!python/object/apply:os.system ['touch PWNED']\n", "invalid YAML"),
], ids=["recursive-list", "recursive-map", "deep-300k", "deep-150", "duplicate", "python-tag"])
def test_yaml_shapes_that_cost_or_crash_are_refused(tmp_path: Path, text: str, expected: str):
    refused(lambda: load_yaml(text, "x.yaml"), "x.yaml", expected)


def test_deep_nesting_does_not_crash_the_process(project: Path):
    """libyaml's composer recurses: 300,000 levels segfaulted `same-nb inspect` before the depth check."""
    (project / "same.yaml").write_text("a: " + "[" * 300_000 + "]" * 300_000 + "\n")
    held(same_nb(["inspect", "nb.ipynb"], project, timeout=60), "same.yaml", "nested more than 100 levels deep")


def test_oversized_yaml_and_non_files_are_refused_without_reading_them(tmp_path: Path):
    big = tmp_path / "same.yaml"
    big.write_text("run:\n  parameters:\n    name: '" + "x" * MAX_YAML_BYTES + "'\n")
    refused(lambda: load_manifest(big), str(big), "larger than 1,048,576 bytes")
    refused(lambda: load_yaml("a: '" + "ä" * (MAX_YAML_BYTES // 2 + 1) + "'"), "larger than")
    fifo = tmp_path / "params.fifo"
    os.mkfifo(fifo)                   # reading it would block forever
    refused(lambda: resolve_params(pipeline(), {}, [], fifo), "not a regular file", within=2)
    refused(lambda: resolve_params(pipeline(), {}, [], "/dev/zero"), "not a regular file", within=2)


@pytest.mark.parametrize("command", ["inspect", "compile", "run", "run --params"])
def test_cli_holds_the_alias_bomb(project: Path, command: str):
    if command == "run --params":
        (project / "p.yaml").write_text(PARAMS_BOMB)
        args = ["run", "nb.ipynb", "--params", "p.yaml"]
        where = "p.yaml"
    else:
        (project / "same.yaml").write_text(MANIFEST_BOMB)
        args = {"inspect": ["inspect", "nb.ipynb"], "compile": ["compile", "nb.ipynb", "-o", "out", "--no-lock"],
                "run": ["run", "nb.ipynb"]}[command]
        where = "same.yaml"
    start = time.monotonic()
    held(same_nb(args, project, timeout=60), where, "aliases expand to more than 10,000 values")
    assert time.monotonic() - start < 30
    assert not (project / "out").exists()


def test_same_corpus_manifests_still_load():
    corpus = sorted((ROOT / "tests" / "corpus" / "same").rglob("*.yaml"))
    assert corpus
    for path in corpus:
        try:
            load_manifest(path)
        except SameError as exc:      # SAME's deliberately broken test data; never a bound of the loader
            assert not any(s in exc.message for s in ("aliases", "nested more", "larger than", "finite", "digits"))


# ---- integers too long to print, NaN and infinity --------------------------------------------------

@pytest.mark.parametrize("raw, name, expected", [
    (BIG_INT, "n", "an integer of 4,301 digits is too long (at most 4,300 digits)"),
    ("-" + BIG_INT, "n", "an integer of 4,301 digits is too long"),
    ("0x" + "f" * 4000, "n", "digits is too long"),
    (".nan", "alpha", ".nan is not a finite number"),
    ("1e999", "alpha", "inf is not allowed"),
    ("-1e999", "alpha", "-inf is not allowed"),
    ("[.nan]", "a", ".nan is not a finite number"),
    ("[1.0e+999]", "a", "inf is not allowed"),
    ("[1.0e+999, x]", "a", "1.0e+999 is not a finite number"),
    (f"[{BIG_INT}]", "a", "digits is too long"),
    ("[2020-01-01]", "a", "date values are not allowed"),
    ("{1: 2}", "a", "dict keys must be strings"),
], ids=lambda v: v if len(v) < 20 else f"{v[:8]}…{len(v)}")
def test_p_values_without_a_json_form_are_refused_naming_the_parameter(raw: str, name: str, expected: str):
    err = refused(lambda: resolve_params(pipeline(), {}, [(name, raw)]), f"parameter {name!r} (from -p {name})",
                  expected)
    assert len(str(err)) < 400            # the 4,301 digits are not echoed back


def test_a_huge_value_of_the_wrong_type_is_not_echoed_whole():
    err = refused(lambda: resolve_params(pipeline(), {}, [("n", "x" * 10_000)]), "parameter 'n' expects int")
    assert len(str(err)) < 400 and "10,002 characters" in str(err)


@pytest.mark.parametrize("value, expected", [
    (BIG_INT, "run.parameters.n: an integer of 4,301 digits is too long"),
    (".nan", "run.parameters.alpha: .nan is not a finite number"),
    (".inf", "run.parameters.alpha: .inf is not a finite number"),
    ("-.Inf", "run.parameters.alpha: -.Inf is not a finite number"),
    ("1.0e+999", "run.parameters.alpha: 1.0e+999 is not a finite number"),
    ("!!float nan", "run.parameters.alpha: nan is not a finite number"),
], ids=["big-int", "nan", "inf", "-Inf", "overflow", "tagged-nan"])
def test_same_yaml_refuses_them_naming_file_line_and_parameter(project: Path, value: str, expected: str):
    name = "n" if value == BIG_INT else "alpha"
    (project / "same.yaml").write_text(f"apiVersion: same-nb/v1\nrun:\n  parameters:\n    {name}: {value}\n")
    err = refused(lambda: load_manifest(project / "same.yaml"), expected)
    assert err.path == str(project / "same.yaml") and err.line == 4
    (project / "p.yaml").write_text(f"{name}: {value}\n")
    refused(lambda: resolve_params(pipeline(), {}, [], project / "p.yaml"), str(project / "p.yaml"),
            expected.removeprefix("run.parameters."))


def test_parameters_cell_names_the_parameter_with_too_many_digits():
    err = refused(lambda: parse_parameters(f"a = 1\nn = {BIG_INT}\n", path="nb.ipynb", cell=1, cell_id="p"),
                  "parameters cell: `n`: an integer of 4,301 digits is too long")
    assert err.line == 2
    refused(lambda: parse_parameters("x = float('nan')\n", path="nb.ipynb", cell=1, cell_id="p"), "not a literal")
    refused(lambda: parse_parameters("x = 1e999\n", path="nb.ipynb", cell=1, cell_id="p"), "inf is not allowed")


def test_cli_exits_1_naming_the_parameter(project: Path):
    cases = [
        (["run", "nb.ipynb", "-p", "n", BIG_INT], ("parameter 'n' (from -p n)", "4,301 digits")),
        (["run", "nb.ipynb", "-p", "alpha", ".nan"], ("parameter 'alpha' (from -p alpha)", "not a finite number")),
    ]
    with ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(lambda c: same_nb(c[0], project, timeout=60), cases))
    for (_, expected), proc in zip(cases, procs):
        assert len(held(proc, *expected)) < 400
    # refused at parse time: no run was recorded, so no store (SQLite or PostgreSQL) holds a NaN
    db = project / ".same" / "same.db"
    if db.exists():
        import sqlite3
        with sqlite3.connect(db) as con:
            assert con.execute("select count(*) from runs").fetchone()[0] == 0


def test_kubeflow_compile_refuses_nan_before_generating_code(project: Path):
    pytest.importorskip("kfp")
    (project / "same.yaml").write_text("run:\n  parameters:\n    alpha: .nan\n")
    held(same_nb(["compile", "nb.ipynb", "--target", "kubeflow", "-o", "kf", "--no-lock"], project, timeout=120),
         "same.yaml", "line 3", "run.parameters.alpha: .nan is not a finite number")
    assert not (project / "kf").exists()


# ---- hostile strings as YAML and parameter values --------------------------------------------------

HOSTILE = hostile.strings()


@pytest.mark.parametrize("value", HOSTILE, ids=hostile.ids(HOSTILE))
def test_hostile_values_load_or_are_refused_cleanly(project: Path, value: str):
    quoted = json.dumps(value, ensure_ascii=False)    # a JSON string is a YAML double-quoted string
    assert load_yaml(f"name: {quoted}\n") == {"name": value}
    for text in (f"run:\n  parameters:\n    a: {value}\n", f"a: {value}\n"):
        try:
            load_yaml(text, "same.yaml")
        except SameError as exc:
            assert exc.path == "same.yaml"
    for name in ("alpha", "a", "name"):
        try:
            coerce_value(pipeline().parameters[["alpha", "n", "a", "name"].index(name)], value)
        except SameError as exc:
            assert name in str(exc)


# ---- the parameters cell is split in linear time ---------------------------------------------------

def test_ten_thousand_parameters_split_and_parse_in_linear_time():
    cell = "".join(f"p{i} = {i}\nprint(p{i})\n" for i in range(10_000))
    start = time.monotonic()
    keep, code = split_parameters_source(cell)
    params = parse_parameters(keep, path="nb.ipynb", cell=1, cell_id="p")
    elapsed = time.monotonic() - start
    assert len(params) == 10_000 and code.count("print(") == 10_000
    keep_lines, code_lines = keep.splitlines(), code.splitlines()
    assert all(keep_lines[2 * i] == f"p{i} = {i}" and code_lines[2 * i + 1] == f"print(p{i})"
               for i in range(10_000))                           # every line keeps its number
    assert elapsed < 10, f"{elapsed:.1f} s (the quadratic split took ~250 s for this cell)"


def test_split_keeps_its_meaning():
    assert split_parameters_source("a = 1\nb = 2\n") is None                  # only assignments
    assert split_parameters_source("import os; a = 1\n") is None              # both kinds on one line
    assert split_parameters_source("a = (\n") is None                         # does not parse
    assert split_parameters_source("import os\na = {\n 'k': 1}\nprint(a)\n") == (
        "\na = {\n 'k': 1}\n", "import os\n\n\nprint(a)\n")
    rng = random.Random(7)
    pieces = ["x = 1", "import os", "y: int = 2", "print(x)", "z = [\n 1]", "x = 1; y = 2", "if x:\n    pass"]
    for _ in range(300):
        src = "\n".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        parts = split_parameters_source(src)
        if parts is not None:
            kept, code = (part.split("\n") for part in parts)
            for i, line in enumerate(src.split("\n")):     # each line stays where it was, in one part
                assert line in (kept[i] if i < len(kept) else "", code[i] if i < len(code) else "")


# ---- dataset downloads: deadline, size cap, cache, credentials -------------------------------------

DATA = b"a,b\n1,2\n3,4\n"
SHA = hashlib.sha256(DATA).hexdigest()
USER, PASSWORD = "alice", "s3cr3t-pw"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stop: threading.Event
    seen: list

    def log_message(self, *args):
        pass

    def _drip(self, data: bytes, every: float = 0.2):
        for byte in data:
            if self.stop.is_set():
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(every)

    def do_GET(self):       # noqa: C901 - one branch per hostile behaviour
        self.seen.append((self.path, self.headers.get("Authorization")))
        path = self.path
        try:
            if path.startswith("/auth/"):
                token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {token}":
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = path[len("/auth"):]
            if path == "/data.csv":
                self.send_response(200)
                self.send_header("Content-Length", str(len(DATA)))
                self.end_headers()
                self.wfile.write(DATA)
            elif path == "/drip-body":            # headers at once, then one byte every 0.2 s
                self.send_response(200)
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                self._drip(b"x" * 1_000_000)
            elif path == "/drip-head":            # even the status line arrives a byte at a time
                self._drip(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1_000_000)
            elif path == "/declared-huge":
                self.send_response(200)
                self.send_header("Content-Length", str(10 ** 12))
                self.end_headers()
                self.wfile.write(b"x" * 1000)
                self.stop.wait(30)
            elif path == "/endless":              # no Content-Length: the body ends when the server closes
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                for _ in range(2000):             # 128 MiB at most, should the client not stop reading
                    if self.stop.is_set():
                        return
                    self.wfile.write(b"x" * 65536)
            elif path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"{self.server.other}/data.csv")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def http_servers():
    """Two hostile HTTP servers on 127.0.0.1 (the second is where /redirect points), stopped after."""
    stop = threading.Event()
    servers, threads = [], []
    for _ in range(2):
        seen: list = []
        handler = type("Handler", (_Handler,), {"stop": stop, "seen": seen})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.seen = seen
        servers.append(httpd)
        threads.append(threading.Thread(target=httpd.serve_forever, daemon=True))
    servers[0].other = f"http://127.0.0.1:{servers[1].server_address[1]}"
    servers[1].other = servers[0].other
    for t in threads:
        t.start()
    yield [(f"http://127.0.0.1:{s.server_address[1]}", s.seen) for s in servers]
    stop.set()
    for s in servers:
        s.shutdown()
        s.server_close()
    for t in threads:
        t.join(5)


def write_manifest(folder: Path, specs: dict[str, dict]) -> Path:
    path = folder / "same.yaml"
    path.write_text("apiVersion: same-nb/v1\ndatasets: " + json.dumps(specs) + "\n")
    load_manifest(path)                       # the schema takes the download options too
    return path


def no_leftovers(folder: Path) -> None:
    cache = folder / ".same" / "datasets"
    assert not cache.exists() or list(cache.iterdir()) == [], list(cache.iterdir())


@pytest.mark.parametrize("path", ["/drip-body", "/drip-head"])
def test_a_dripping_server_meets_the_overall_deadline(tmp_path: Path, http_servers, path: str):
    base, _ = http_servers[0]
    manifest = write_manifest(tmp_path, {"slow": {"url": base + path, "timeout": 1}})
    err = refused(lambda: prepare_datasets(manifest), "dataset 'slow'", "took longer than 1 s",
                  "datasets.slow.timeout", within=8)
    assert base + path in str(err)
    no_leftovers(tmp_path)


@pytest.mark.parametrize("path, max_size", [("/declared-huge", "1Mi"), ("/endless", 1_000_000)])
def test_a_download_larger_than_max_size_is_stopped(tmp_path: Path, http_servers, path: str, max_size):
    base, _ = http_servers[0]
    manifest = write_manifest(tmp_path, {"big": {"url": base + path, "max_size": max_size, "timeout": 20}})
    refused(lambda: prepare_datasets(manifest), "dataset 'big'", "is larger than", "datasets.big.max_size",
            within=10)
    no_leftovers(tmp_path)


def test_the_defaults_bound_every_download():
    from same_nb.store import datasets

    assert datasets.DEFAULT_TIMEOUT_S <= 3600 and datasets.DEFAULT_MAX_BYTES <= 10 * 1024 ** 3
    assert datasets._STALL_S <= 60


def test_a_tampered_cache_says_delete_the_cached_copy(tmp_path: Path, http_servers):
    base, hits = http_servers[0]
    manifest = write_manifest(tmp_path, {"t": {"url": base + "/data.csv", "sha256": SHA}})
    record = prepare_datasets(manifest)["t"]
    cached = Path(record["location"])
    assert cached.read_bytes() == DATA and cached.parent == (tmp_path / ".same" / "datasets").resolve()
    cached.write_bytes(b"a,b\n1,2\n3,666\n")
    err = refused(lambda: prepare_datasets(manifest), "the cached copy", "changed", "delete",
                  f"rm {cached}")
    assert "update the sha256" not in str(err)
    assert len(hits) == 1                     # the tampered copy was not silently replaced either


def test_credentials_are_sent_to_their_host_only_and_never_shown(tmp_path: Path, http_servers):
    (base, hits), (_, other_hits) = http_servers
    secret_base = base.replace("http://", f"http://{USER}:{PASSWORD}@")
    manifest = write_manifest(tmp_path, {"ok": {"url": secret_base + "/auth/data.csv", "sha256": SHA}})
    record = prepare_datasets(manifest)["ok"]
    assert record["url"] == base + "/auth/data.csv"               # the lineage record holds no secret
    assert hits[-1][1] and hits[-1][1].startswith("Basic ")
    failing = {
        "missing": ({"url": secret_base + "/auth/missing.csv"}, "HTTP Error 404"),
        "refused": ({"url": secret_base.replace(base.rsplit(":", 1)[1], "9") + "/x"}, "cannot download"),
        "slow": ({"url": secret_base + "/auth/drip-body", "timeout": 1}, "took longer than 1 s"),
        "changed": ({"url": secret_base + "/auth/data.csv", "sha256": "0" * 64}, "sha256 mismatch"),
        "scheme": ({"url": f"gopher://{USER}:{PASSWORD}@127.0.0.1/x"}, "unsupported URL scheme"),
    }
    for name, (spec, expected) in failing.items():
        err = refused(lambda: fetch_dataset(name, spec, tmp_path), expected, within=10)
        assert PASSWORD not in str(err) and f"{USER}:" not in str(err), str(err)
    # a redirect to another host gets no Authorization header
    manifest = write_manifest(tmp_path, {"moved": {"url": secret_base + "/auth/redirect"}})   # not cached yet
    moved = prepare_datasets(manifest)["moved"]
    assert moved["url"] == base + "/auth/redirect" and moved["sha256"] == SHA
    assert other_hits == [("/data.csv", None)]


def test_the_schema_never_echoes_credentials(tmp_path: Path):
    path = tmp_path / "same.yaml"
    path.write_text(f"datasets:\n  d: {{url: 'ftp://{USER}:{PASSWORD}@host/x'}}\n")
    err = refused(lambda: load_manifest(path), "unsupported URL scheme 'ftp'")
    assert PASSWORD not in str(err)
    assert redact_url(f"https://{USER}:{PASSWORD}@h:8443/p?q=1") == "https://h:8443/p?q=1"
    assert redact_url(f"https://{PASSWORD}@h/p") == "https://h/p"
    assert redact_url("https://h/p") == "https://h/p"


@pytest.mark.parametrize("spec, expected", [
    ({"timeout": 0}, "datasets.d.timeout"), ({"timeout": "soon"}, "datasets.d.timeout"),
    ({"max_size": "lots"}, "datasets.d.max_size"), ({"max_size": -5}, "datasets.d.max_size"),
])
def test_bad_download_options_are_clear_errors(tmp_path: Path, spec: dict, expected: str):
    path = tmp_path / "same.yaml"
    path.write_text("datasets: " + json.dumps({"d": {"url": "data.csv", **spec}}) + "\n")
    refused(lambda: load_manifest(path), expected)
    refused(lambda: read_datasets(path), expected)

