"""One requirement set → uv's ``pylock.toml`` → ``requirements.txt`` entries hashed for one target
Python and platform only.

uv's requirements.txt output keeps the hashes of every file of a release, for every platform, even
with ``--python-platform`` (uv issue #3516): 853 hashes for the quickstart's 55-package pod lock.
Its pylock.toml names each file, so the files that cannot install on the target can be dropped.
uv 0.13 already narrows the wheels it writes there; the wheel-tag check below does not rely on
that (same-nb allows uv>=0.4). Wheel tags are parsed here, not with ``packaging``, which same-nb
does not declare.

Resolution is constrained to the versions installed where the notebook ran, so the lock pins what
executed, not the index's newest. uv names one unsolvable requirement per run; ``resolve_set``
leaves out what it named (an installed version the target cannot use, else the direct
requirement) and tries again, so one bad pin costs its own hash, not everyone's.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from same_nb.envs.requirements import canonical

UV_TIMEOUT = 60
MAX_ATTEMPTS = 8                           # uv runs per requirement set, each leaving out what the last named
UV_NOT_FOUND = re.compile(r"no versions? of ([A-Za-z0-9][A-Za-z0-9._-]*)|([A-Za-z0-9][A-Za-z0-9._-]*) was not found")
UV_NAMED = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?=[{\[<>=!~]|\s+was not found|\s+has no|\s+depends)")

# (glibc minor, musl minor, macOS version) uv assumes for its platform names without a version.
DEFAULT_GLIBC = 28
DEFAULT_MUSL = 2
DEFAULT_MACOS = (13, 0)
LEGACY_MANYLINUX = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}
MAC_ARCHES = {"arm64": {"arm64", "universal2"},
              "x86_64": {"x86_64", "intel", "fat64", "fat3", "universal", "universal2"}}
WINDOWS_ARCHES = {"x86_64": "win_amd64", "aarch64": "win_arm64", "i686": "win32"}


def parse_wheel_filename(filename: str) -> tuple[str, str, set[tuple[str, str, str]]]:
    """(name, version, tags) of a wheel file name; each tag is (python, abi, platform), with the
    compressed ``py2.py3``-style sets expanded."""
    if not filename.endswith(".whl"):
        raise ValueError(f"not a wheel: {filename}")
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {filename}")
    name, version, pythons, abis, platforms = parts[0], parts[1], parts[-3], parts[-2], parts[-1]
    tags = {(p, a, pl) for p in pythons.split(".") for a in abis.split(".") for pl in platforms.split(".")}
    return name, version, tags


def _python_ok(python: str, abi: str, major: int, minor: int) -> bool:
    """The tags pip accepts on CPython ``major.minor`` (packaging.tags.cpython_tags +
    compatible_tags), without the debug and free-threaded ABIs."""
    own = f"cp{major}{minor}"
    if abi == own:
        return python == own
    if abi == "abi3":                              # the stable ABI holds from the version it names on
        found = re.fullmatch(rf"cp{major}(\d+)", python)
        return bool(found) and 2 <= int(found.group(1)) <= minor
    if abi != "none":
        return False
    if python in (own, f"py{major}"):
        return True
    found = re.fullmatch(rf"py{major}(\d+)", python)
    return bool(found) and int(found.group(1)) <= minor


def platform_matcher(platform: str) -> Callable[[str], bool] | None:
    """A test of wheel platform tags for uv's ``--python-platform`` name; None for names this does
    not model (Android, iOS, Pyodide, RISC-V), where uv's own choice of wheels stands."""
    name = {"linux": "x86_64-unknown-linux-gnu", "macos": "aarch64-apple-darwin",
            "windows": "x86_64-pc-windows-msvc"}.get(platform, platform)
    arch = name.split("-", 1)[0]
    if name.endswith("-pc-windows-msvc"):
        wanted = WINDOWS_ARCHES.get(arch)
        return (lambda tag: tag in ("any", wanted)) if wanted else None
    if name.endswith("-apple-darwin"):
        deployment = os.environ.get("MACOSX_DEPLOYMENT_TARGET", "")
        target = tuple(int(x) for x in deployment.split(".")[:2]) if re.fullmatch(r"\d+(\.\d+)?", deployment) \
            else DEFAULT_MACOS
        arches = MAC_ARCHES.get("arm64" if arch == "aarch64" else arch, set())

        def mac(tag: str) -> bool:
            found = re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", tag)
            return tag == "any" or bool(found and found.group(3) in arches
                                        and (int(found.group(1)), int(found.group(2))) <= target)
        return mac
    if arch not in ("x86_64", "aarch64"):
        return None
    musl = name.endswith("-unknown-linux-musl")
    glibc = re.search(r"manylinux_2_(\d+)$", name)
    limit = 17 if name.endswith("manylinux2014") else int(glibc.group(1)) if glibc else DEFAULT_GLIBC
    if not musl and not glibc and not name.endswith(("-unknown-linux-gnu", "manylinux2014")):
        return None

    def linux(tag: str) -> bool:
        if tag in ("any", f"linux_{arch}"):
            return True
        if musl:
            found = re.fullmatch(rf"musllinux_1_(\d+)_{arch}", tag)
            return bool(found) and int(found.group(1)) <= DEFAULT_MUSL
        legacy = re.fullmatch(rf"(manylinux\d+)_{arch}", tag)
        if legacy:
            return LEGACY_MANYLINUX.get(legacy.group(1), 99) <= limit
        found = re.fullmatch(rf"manylinux_2_(\d+)_{arch}", tag)
        return bool(found) and int(found.group(1)) <= limit
    return linux


def wheel_matches(filename: str, python_version: str, platform: str) -> bool:
    """Can this wheel install on CPython ``python_version`` (``3.11``) on uv's ``platform``?"""
    major, minor = (int(x) for x in python_version.split(".")[:2])
    try:
        _, _, tags = parse_wheel_filename(filename)
    except ValueError:
        return False
    platform_ok = platform_matcher(platform) or (lambda tag: True)
    return any(_python_ok(py, abi, major, minor) and platform_ok(plat) for py, abi, plat in tags)


@dataclass
class Locked:
    """One package of the lock with the files that may install on the target."""
    name: str
    version: str
    hashes: list[str] = field(default_factory=list)      # "sha256:<hex>", one per kept file
    files: list[str] = field(default_factory=list)       # the kept files' names (wheels, else the sdist)
    marker: str = ""
    url: str = ""                                        # a direct URL requirement's archive

    @property
    def line(self) -> str:
        pin = f"{self.name} @ {self.url}" if self.url else f"{self.name}=={self.version}"
        marker = f" ; {self.marker}" if self.marker else ""
        return f"{pin}{marker}"


def load_toml(text: str) -> dict:
    """tomllib from Python 3.11 on; on 3.10 tomli, or the copy pip vendors."""
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            from pip._vendor import tomli as tomllib
    return tomllib.loads(text)


def _file_name(entry: dict) -> str:
    where = entry.get("name") or entry.get("url") or entry.get("path") or ""
    return unquote(urlsplit(where).path.rsplit("/", 1)[-1]) if where else ""


def _hash(entry: dict) -> str | None:
    hashes = entry.get("hashes") or {}
    for algorithm in ("sha256", "sha384", "sha512"):          # the ones pip's --hash accepts
        if algorithm in hashes:
            return f"{algorithm}:{hashes[algorithm]}"
    return None


def select(pylock: dict, python_version: str, platform: str) -> tuple[list[Locked], dict[str, str]]:
    """The packages of a parsed pylock with the hashes of the files the target can install:
    matching wheels, else the sdist. Also {name: why it cannot be hashed}."""
    packages: list[Locked] = []
    problems: dict[str, str] = {}
    for package in pylock.get("packages", []):
        name, version = package["name"], str(package.get("version", ""))
        locked = Locked(name, version, marker=package.get("marker", ""))
        for kind in ("vcs", "directory"):
            if kind in package:
                problems[name] = f"a {kind} requirement cannot carry a hash"
        if "archive" in package:
            archive = package["archive"]
            locked.url = archive.get("url", "")
            files = [(archive, _file_name(archive))]
        else:
            wheels = [(w, _file_name(w)) for w in package.get("wheels", [])]
            files = [(w, f) for w, f in wheels if wheel_matches(f, python_version, platform)]
            if not files and package.get("sdist"):
                files = [(package["sdist"], _file_name(package["sdist"]))]
        for entry, filename in files:
            digest = _hash(entry)
            if digest:
                locked.hashes.append(digest)
                locked.files.append(filename)
        if not locked.hashes and name not in problems:
            wheels = ", ".join(_file_name(w) for w in package.get("wheels", [])) or "none"
            problems[name] = (f"{name} {version} has no file with a hash for Python {python_version} on "
                              f"{platform} (wheels: {wheels}; no sdist)")
        if name not in problems:
            packages.append(locked)
    return sorted(packages, key=lambda p: p.name), problems


def render(packages: list[Locked]) -> str:
    """requirements.txt entries for ``pip/uv pip install --require-hashes --no-deps -r``."""
    out = []
    for package in packages:
        hashes = "".join(f" \\\n    --hash={h}" for h in package.hashes)
        out.append(f"{package.line}{hashes}\n")
    return "".join(out)


# -- running uv ----------------------------------------------------------------------------------

def uv_command() -> list[str]:
    """uv from the uv package (its binary beside this interpreter), else on PATH, else ``-m uv``."""
    try:
        from uv import find_uv_bin
        return [find_uv_bin()]
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        return [found] if found else [sys.executable, "-m", "uv"]


def uv_error_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")]
    causes = [ln.removeprefix("cause:").strip() for ln in lines if ln.startswith("cause:")]
    reason = errors[0] if errors else (lines[-1] if lines else "no output")
    return f"{reason} ({causes[-1]})" if causes else reason


def uv_environment() -> dict[str, str]:
    # Without this, uv looks for (and tries to download) an interpreter of the target version.
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}


@dataclass
class Resolution:
    body: str = ""                                        # requirements.txt entries, with notes as comments
    installed: dict[str, str | None] = field(default_factory=dict)   # locked name → version installed then
    unresolved: dict[str, str] = field(default_factory=dict)         # direct requirement → why uv cannot lock it
    notes: list[str] = field(default_factory=list)
    problem: str | None = None                            # uv could not lock at all (offline, no uv)


def _cause(stderr: str) -> str:
    """uv's explanation of an unsolvable resolution on one line, without its stock conclusion."""
    text = " ".join(ln.strip() for ln in stderr.split("cause:", 1)[-1].splitlines() if ln.strip())
    text = re.split(r",? we can conclude that your requirements are unsatisfiable", text.removeprefix("Because "))[0]
    return text.strip().rstrip(".")


def _compile(work: Path, lines: list[str], constraints: list[str], python: str, python_version: str,
             plat: str, no_deps: bool) -> tuple[str | None, str, str | None]:
    """One uv run: (pylock.toml text, "", None), or (None, reason, uv's cause when it found no solution)."""
    (work / "requirements.in").write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
    (work / "installed.txt").write_text("".join(f"{c}\n" for c in constraints), encoding="utf-8")
    cmd = uv_command() + ["pip", "compile", "requirements.in", "--constraints", "installed.txt",
                          "--format", "pylock.toml", "--no-header", "--quiet", "--python", python,
                          "--python-version", python_version, "--python-platform", plat] + (["--no-deps"] * no_deps)
    try:
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=UV_TIMEOUT,
                              env=uv_environment())
    except subprocess.TimeoutExpired:
        return None, f"uv pip compile timed out after {UV_TIMEOUT} s", None
    except OSError as exc:
        return None, f"cannot run uv: {exc}", None
    if done.returncode != 0:
        unsolved = "No solution found" in done.stderr
        return None, uv_error_reason(done.stderr), _cause(done.stderr) if unsolved else None
    return done.stdout, "", None


def _name(line: str) -> str:
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return canonical(found.group(1)) if found else line


def _blame(cause: str, direct: set[str], constrained: set[str]) -> tuple[set[str], set[str]]:
    """(direct requirements, installed-version constraints) that uv's explanation puts at fault:
    what it could not find, else every name it mentions; constraints go before direct pins."""
    sure = {canonical(a or b) for a, b in UV_NOT_FOUND.findall(cause)}
    named = {canonical(n) for n in UV_NAMED.findall(cause)}
    for suspects in (sure, named):
        if suspects & constrained:
            return set(), suspects & constrained
        if suspects & direct:
            return suspects & direct, set()
    return set(), set()


def resolve_set(lines: list[str], installed: dict[str, str], python: str, python_version: str, plat: str,
                work_root: Path, no_deps: bool = False) -> Resolution:
    """Resolve ``lines`` with uv, constrained to ``installed`` versions, hashed for the target. uv
    names one unsolvable requirement per run: each retry leaves out what the last run named."""
    direct = {_name(ln): ln for ln in lines}
    constraints = {n: v for n, v in installed.items() if n not in direct}
    res, dropped, reason = Resolution(), {}, ""
    target = f"Python {python_version} on {plat}"
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="uv-", dir=work_root))
    try:
        for _ in range(MAX_ATTEMPTS):
            wanted = [ln for ln in lines if ln not in res.unresolved]
            if not wanted:
                break
            pins = [] if "*" in dropped else [f"{n}=={v}" for n, v in sorted(constraints.items()) if n not in dropped]
            text, reason, cause = _compile(work, wanted, pins, python, python_version, plat, no_deps)
            if text is not None:
                _finish(res, text, installed, dropped, python_version, plat)
                break
            if cause is None:
                res.problem = reason
                return res
            bad_direct, bad_pins = _blame(cause, {_name(ln) for ln in wanted}, set(constraints) - set(dropped))
            dropped.update((n, cause) for n in bad_pins)
            res.unresolved.update((direct[n], cause) for n in bad_direct)
            if not bad_direct and not bad_pins:
                if not pins:
                    res.problem = reason
                    return res
                dropped["*"] = cause
        else:
            res.problem = f"gave up after {MAX_ATTEMPTS} uv runs: {reason}"
            return res
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res.notes = [f"{ln} cannot be resolved for {target} ({why}); left out of the lock, the rest keeps its hashes"
                 for ln, why in res.unresolved.items()] + res.notes
    res.body += "".join(f"# LEFT OUT, uv cannot resolve it for {target}: {ln} ({why})\n"
                        for ln, why in res.unresolved.items())
    return res


def _finish(res: Resolution, text: str, installed: dict[str, str], dropped: dict[str, str],
            python_version: str, plat: str) -> None:
    packages, problems = select(load_toml(text), python_version, plat)
    res.body = render(packages)
    res.installed = {canonical(p.name): installed.get(canonical(p.name)) for p in packages}
    res.installed.update((n, installed.get(n)) for n in dropped if n != "*")
    locked = {canonical(p.name): p.version for p in packages}
    res.notes = [f"the installed {n} {installed[n]} cannot be used for Python {python_version} on {plat} "
                 f"({why}); the lock pins {n}=={locked.get(n, '?')} from the index"
                 for n, why in sorted(dropped.items()) if n != "*" and n in locked]
    if "*" in dropped:
        res.notes.append(f"uv found no solution with the installed versions ({dropped['*']}); "
                         f"dependencies are pinned to the index's newest instead")
    res.unresolved.update(problems)
