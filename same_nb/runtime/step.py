"""Entry points called by a step notebook's generated prologue and epilogue cells.

The runner writes a spec file per step::

    {"step": "train", "store": "/abs/.same/artifacts",
     "inputs": {"df": {"name": "df", "sha256": "...", "kind": "pandas-dataframe", ...}},
     "outputs": {"model": ["evaluate"]},       # variable -> steps that read it
     "watch": ["df"],                           # inputs passed to calls analysis can't see into
     "verify": {"df": {"producer": "load", "readers": ["evaluate"]}},   # inputs later steps read too
     "result": "/abs/.same/runs/7/steps/train/result.json"}

``load_inputs`` fills the kernel namespace; ``save_outputs`` stores the outputs and writes the
result file the runner reads: ``{"step", "outputs": {name: record}, "warnings": [{name, message}],
"unplanned": [{"kind": "mutation", "name", "how", "producer", "readers"}],
"files": [file records, see fileio], "datasets": [dataset records],
"modules": [third-party modules loaded when the step ended], "needs": {name: [import names its value needs]},
"durations": {"load_inputs", "save_outputs", "inputs": {name: s}, "outputs": {name: s}},
"resources": {"peak_rss_bytes", "cpu_s"} (``resources.py``; None where unknown)}``.
The runner keeps ``modules`` and ``needs`` per step (``store/observed.py``) so a step's lock holds
what it actually loaded and passed on, not only what its cells import.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import fileio as _fileio
from . import metrics as _metrics
from . import profile as _profile
from . import resources as _resources
from .artifacts import ArtifactStore
from .boundary import check_transferable, steps_phrase
from .errors import MissingOutputError, SpecError, StepBoundaryError, StepRuntimeError, UnplannedEffectError
from .fingerprints import UNHASHABLE, content_hash
from .rebind import rebind
from .serializers import dump_group, dump_value, fingerprint, load_group, load_value, qualified_type_name, value_needs
from .sharing import shared_groups


@dataclass
class _Loaded:
    seconds: float = 0.0
    per_input: dict[str, float] = field(default_factory=dict)
    watched: dict[str, tuple[Any, str]] = field(default_factory=dict)  # name -> (object, fingerprint)
    verified: dict[str, tuple[Any, str]] = field(default_factory=dict)  # name -> (object, content hash)
    modules: set[str] = field(default_factory=set)                       # sys.modules after loading
    # Values that came in a loaded group but were not asked for: (name, holder) -> (object, content hash)
    hidden: dict[tuple[str, str], tuple[Any, str]] = field(default_factory=dict)


_LOADED: dict[str, _Loaded] = {}  # by absolute spec path: load_inputs -> save_outputs in one kernel


def _read_spec(spec_path: str | None) -> dict:
    if spec_path is None:
        raise SpecError("this is a same-nb step notebook: run it with `same-nb run <notebook>`, which "
                        "passes the step its inputs; to work interactively, open the source notebook")
    try:
        spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read step spec {spec_path}: {exc}") from exc
    missing = [key for key in ("step", "store", "result") if key not in spec]
    if missing:
        raise SpecError(f"step spec {spec_path} lacks {', '.join(missing)}")
    return spec


def load_inputs(spec_path: str, namespace: dict) -> None:
    """Load the step's inputs into ``namespace`` and fingerprint the watched ones."""
    _resources.begin()
    started = time.perf_counter()
    spec = _read_spec(spec_path)
    store = ArtifactStore(spec["store"])
    state = _Loaded()
    _metrics.begin()
    inputs = spec.get("inputs", {})
    groups: dict[str, dict] = {}       # sha256 -> {name: value}: names saved as one object graph load as one
    for name, record in inputs.items():
        t0 = time.perf_counter()
        try:
            if record.get("kind") == "group":
                if record["sha256"] not in groups:
                    groups[record["sha256"]] = load_group({**record, "name": name}, store)
                namespace[name] = rebind(groups[record["sha256"]][name], namespace)
            else:
                namespace[name] = load_value({**record, "name": name}, store, namespace)
        except StepRuntimeError:
            raise
        except Exception as exc:
            raise StepRuntimeError(
                f"step '{spec['step']}' could not load input '{name}' ({record.get('type')}, "
                f"artifact {record.get('sha256')}): {type(exc).__name__}: {exc}") from exc
        state.per_input[name] = time.perf_counter() - t0
    for sha256, members in groups.items():
        holder = next(n for n, r in inputs.items() if r.get("sha256") == sha256)
        for name, obj in members.items():
            if name not in inputs:
                state.hidden[(name, holder)] = (obj, content_hash(obj))
    verify = spec.get("verify", {})
    for name in verify:
        if name in namespace and name not in spec.get("outputs", {}):
            state.verified[name] = (namespace[name], content_hash(namespace[name]))
    for name in spec.get("watch", []):
        if name in namespace and name not in spec.get("outputs", {}) and name not in verify:
            obj = namespace[name]
            try:
                state.watched[name] = (obj, fingerprint(name, obj, store))
            except Exception:  # the check is advisory; a value that can't be fingerprinted isn't watched
                continue
    state.modules = set(sys.modules)
    state.seconds = time.perf_counter() - started
    _resources.on_failure(str(Path(spec["result"]).with_name(_resources.FAILED_RESOURCES)))
    _LOADED[os.path.abspath(spec_path)] = state
    _fileio.start(os.getcwd())


def save_outputs(spec_path: str, namespace: dict) -> dict:
    """Store the step's outputs, warn about watched inputs changed in place, write the result file."""
    started = time.perf_counter()
    lineage = _fileio.stop()           # before this function's own writes
    spec = _read_spec(spec_path)
    step = spec["step"]
    outputs: dict[str, list[str]] = spec.get("outputs", {})
    store = ArtifactStore(spec["store"])
    loaded = _LOADED.pop(os.path.abspath(spec_path), _Loaded())

    missing = [name for name in outputs if name not in namespace]
    if missing:
        needs = "; ".join(f"'{n}' for {steps_phrase(outputs[n])}" for n in missing)
        raise MissingOutputError(
            f"step '{step}' was expected to define {needs} but "
            f"{'it is' if len(missing) == 1 else 'they are'} not defined after the step ran")
    for name, consumers in outputs.items():
        check_transferable(name, namespace[name], step, consumers)

    records: dict[str, dict] = {}
    per_output: dict[str, float] = {}
    grouped: set[str] = set()
    if len(outputs) > 1:
        t0 = time.perf_counter()
        for group in shared_groups({name: namespace[name] for name in outputs}):
            try:
                records.update(dump_group({name: namespace[name] for name in group}, store))
                sha = records[group[0]]["sha256"]
                _profile.save_group_profiles(store.root, sha, {n: namespace[n] for n in group})
            except Exception as exc:
                disk = _disk_error(exc, step, sorted(group), store)
                if disk is None:
                    raise
                raise disk from None
            grouped.update(group)
        per_output.update({name: (time.perf_counter() - t0) / max(len(grouped), 1) for name in grouped})
    for name, consumers in outputs.items():
        if name in grouped:
            continue
        t0 = time.perf_counter()
        obj = namespace[name]
        try:
            records[name] = dump_value(name, obj, store)
        except StepRuntimeError:
            raise
        except Exception as exc:
            disk = _disk_error(exc, step, [name], store)
            if disk is not None:
                raise disk from None
            raise StepBoundaryError(
                f"variable '{name}' ({qualified_type_name(obj)}) cannot be passed from step '{step}' to "
                f"{steps_phrase(consumers)}: it could not be serialized ({type(exc).__name__}: {exc}). "
                f"Create it inside {steps_phrase(consumers)} instead, or pass the data it is built from.") from exc
        _profile.save_profile(store.root, records[name], obj)      # <store>/ab/<sha>.profile.json: runtime/profile.py
        per_output[name] = time.perf_counter() - t0

    warnings = [{"name": name, "message": message}
                for name, message in _changed_watched(loaded, namespace, store)]
    unplanned = _unplanned_changes(loaded, namespace, spec.get("verify", {})) + _hidden_changes(loaded)
    if spec.get("state_check"):
        from . import state as _state

        # Libraries configure the process when first imported (warning filters, log handlers, env vars,
        # draws from `random`), and a later step importing them does the same again. With new modules
        # loaded during the step (a pod has no warm kernel) only the generators libraries leave alone
        # at import still tell about the user's code.
        imported = bool(set(sys.modules) - loaded.modules)
        unplanned += [{"kind": "state", "name": channel, "how": "changed", "producer": None,
                       "readers": list(spec.get("later", []))}
                      for channel in _state.unplanned() if not imported or channel in _IMPORT_SAFE]
    result = {
        "step": step,
        "unplanned": unplanned,
        "outputs": records,
        "snapshot": _snapshot(namespace, store) if "snapshot" in spec else {},
        "metrics": _metrics.collect(namespace, spec.get("metrics", [])),
        "warnings": warnings,
        "files": lineage["files"],
        "datasets": lineage["datasets"],
        "modules": loaded_modules(),
        "needs": {name: value_needs(records[name]["kind"], namespace[name]) for name in records},
        "durations": {"load_inputs": loaded.seconds, "save_outputs": time.perf_counter() - started,
                      "inputs": loaded.per_input, "outputs": per_output},
        "resources": _resources.end(),
    }
    write_json_atomic(Path(spec["result"]), result)
    if unplanned:
        raise UnplannedEffectError("\n".join(_unplanned_message(step, u) for u in unplanned))
    return result


def _disk_error(exc: BaseException, step: str, names: list[str], store: ArtifactStore) -> StepRuntimeError | None:
    """A full disk (or quota, or file size limit) while storing outputs is about the disk, not the value."""
    import errno

    seen = []
    while exc is not None and exc not in seen and len(seen) < 10:     # a library may wrap the OSError
        seen.append(exc)
        code = getattr(exc, "errno", None)
        if code is None and "No space left on device" in str(exc):      # pyarrow's errors carry no errno
            code = errno.ENOSPC
        if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            break
        exc = exc.__cause__ or exc.__context__
    else:
        return None
    where = getattr(exc, "filename", None) or store.tmp_dir
    what = ", ".join(f"'{n}'" for n in names)
    fix = ("the process has a file size limit (ulimit -f); raise it" if code == errno.EFBIG
           else f"free space on the device holding {store.root}")
    return StepRuntimeError(f"{os.strerror(code)}: step '{step}' could not save "
                            f"variable{'s' if len(names) > 1 else ''} {what} to {where}. "
                            f"Nothing is wrong with the value: {fix}, then run again.")


def _unplanned_changes(loaded: _Loaded, namespace: dict, verify: dict) -> list[dict]:
    """Inputs that later steps also read, changed here without the plan carrying the change on."""
    found = []
    for name, (original, before) in loaded.verified.items():
        if name not in namespace:
            how = "deleted"
        else:
            current = namespace[name]
            if current is original and before == UNHASHABLE:
                continue                  # nothing to compare with: a value that never hashed
            if content_hash(current) == before:
                continue
            how = "in place" if current is original else "reassigned"
        info = verify.get(name, {})
        found.append({"kind": "mutation", "name": name, "how": how, "producer": info.get("producer"),
                      "readers": list(info.get("readers", []))})
    return found


def _hidden_changes(loaded: _Loaded) -> list[dict]:
    """Values that arrived inside an input's object graph, unasked for, and changed through it."""
    return [{"kind": "mutation", "name": name, "how": f"through '{holder}'", "via": holder, "producer": None,
             "readers": []}
            for (name, holder), (obj, before) in loaded.hidden.items()
            if before != UNHASHABLE and content_hash(obj) != before]


def _unplanned_message(step: str, u: dict) -> str:
    if u.get("via"):
        n, via = u["name"], u["via"]
        return (f"step '{step}' changed '{n}' through '{via}': they were made together and hold the same "
                f"object, so in a top-to-bottom run '{n}' changes too, but this step does not read '{n}' and "
                f"could not pass the change on. same-nb has learned this effect: run again and '{step}' will "
                f"carry '{n}'. To make it explicit, use '{n}' in '{step}', or build '{via}' from a copy "
                f"(e.g. `copy.deepcopy({n})`) where it is made.")
    if u["kind"] == "state":
        return (f"step '{step}' changed the process state '{u['name']}' in a way the analysis did not see (a "
                f"call inside a function or library, or a setting made through a variable), so "
                f"{steps_phrase(u['readers'])} would start without it; a top-to-bottom run would not. Make "
                f"the change a top-level statement of the step (e.g. `pd.set_option(...)`, `os.environ[...] = "
                f"...`, `np.random.seed(...)`) so same-nb can carry it, or move it into the steps that need it.")
    source = f"from step '{u['producer']}'" if u.get("producer") else "as a parameter"
    readers = steps_phrase(u["readers"])
    did = {"in place": "changed input '{n}' in place", "reassigned": "rebound input '{n}'",
           "deleted": "deleted input '{n}'"}[u["how"]].format(n=u["name"])
    return (f"step '{step}' {did} without the analysis seeing it (through an alias, a function or a "
            f"library call), but {readers} also read{'s' if len(u['readers']) == 1 else ''} '{u['name']}' "
            f"{source} and would get the value from before this step; a top-to-bottom run would not. "
            f"same-nb has learned this effect: run again and {readers} will read '{u['name']}' from "
            f"'{step}'. To make it explicit, change '{u['name']}' through its own name in '{step}' "
            f"(e.g. `{u['name']}[...] = ...`, `{u['name']} = ...`).")


def loaded_modules() -> list[str]:
    """Third-party modules loaded in this process, by top-level name; a namespace package (``google``,
    ``azure``) by its loaded subpackages, which say which of its distributions is meant. All of them,
    not those loaded since the step began: the kernel was warmed with the step's imports beforehand.
    Kernel machinery (ipykernel, zmq, ...) is still in: it is told apart where the environment's
    metadata is at hand (``envs/requirements.kernel_machinery``, when the run is recorded), not in
    every step's kernel."""
    # A copy (another thread may import meanwhile), without the None entries that block an import.
    modules = {name: m for name, m in list(sys.modules.items()) if m is not None and isinstance(name, str)}
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    tops = {name.partition(".")[0] for name in modules}
    found: set[str] = set()
    for top in tops - stdlib - {"__main__", "same_nb"}:
        found.update(_named_parts(top, modules))
    return sorted(found)


def _named_parts(name: str, modules: dict, depth: int = 0) -> list[str]:
    try:                                  # a lazy module may import, or raise, on attribute access
        module = modules.get(name)
        is_namespace = module is not None and getattr(module, "__file__", None) is None \
            and hasattr(module, "__path__")
    except Exception:
        is_namespace = False
    if not is_namespace or depth >= 2:
        return [name]
    prefix = name + "."
    children = {prefix + n[len(prefix):].split(".")[0] for n in modules if n.startswith(prefix)}
    return sorted({part for child in children for part in _named_parts(child, modules, depth + 1)}) or [name]


_IMPORT_SAFE = ("numpy.random", "torch")
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


def _snapshot(namespace: dict, store: ArtifactStore) -> dict:
    """Every user variable the step ends with, for checking a pipeline run against a plain run."""
    import types

    records = {}
    for name, obj in list(namespace.items()):
        if name.startswith("_") or name in _KERNEL_NAMES or isinstance(obj, types.ModuleType):
            continue
        try:
            records[name] = dump_value(name, obj, store)
        except Exception:                 # values that can't be stored are not compared
            continue
    return records


def _changed_watched(loaded: _Loaded, namespace: dict, store: ArtifactStore) -> list[tuple[str, str]]:
    changed = []
    for name, (original, before) in loaded.watched.items():
        if name not in namespace:
            continue
        current = namespace[name]
        try:
            if fingerprint(name, current, store) == before:
                continue
        except Exception:  # reassigned to something unserializable: not an output, so nothing reads it
            continue
        if current is original:
            changed.append((name, f"input '{name}' was modified in place by this step but is not an output; "
                                  f"later steps read the unmodified value"))
        else:
            changed.append((name, f"input '{name}' was reassigned by this step but is not an output; "
                                  f"later steps read the value it had before this step"))
    return changed


def write_json_atomic(path: Path, data: dict, sort_keys: bool = False) -> None:
    """Write ``data`` as JSON so readers see the old file or the new one, never a part (fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    from threading import get_ident

    # Per thread too: the runs of a sweep share one process and may write one file at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=sort_keys)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
