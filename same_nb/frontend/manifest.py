"""same.yaml: the pipeline manifest. Load and validate it, resolve defaults, dump it back.

The schema follows SAME's same.yaml where it fits (apiVersion, metadata, notebook, run,
datasets) and adds per-step overrides and lineage settings. Every problem in a file is
reported at once, one line each, naming the field path.

SAME's own manifests (its apiVersions, or no apiVersion and a field only SAME writes) load too:
``manifest_same`` maps each SAME field to its same-nb meaning, and what has none — or what same-nb
cannot take — becomes a warning naming the field (``Manifest.warnings``), never an error. Unknown
keys stay errors in same-nb's own format.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from same_nb.errors import SameError
from same_nb.frontend.manifest_dump import dump_manifest as dump_manifest  # re-exported
from same_nb.frontend.manifest_errors import describe, dotted, format_error
from same_nb.frontend.manifest_same import Translation, environment_tag, is_cosmetic, read_yaml_file, same_dialect, translate
from same_nb.frontend.manifest_schema import (  # noqa: F401 - the schema is part of this module's API
    API_VERSION,
    DEFAULT_IMAGE,
    MANIFEST_NAME,
    SAME_API_VERSION,
    Dataset,
    Environment,
    LockRef,
    Manifest,
    Metadata,
    NotebookSection,
    OpenLineage,
    Resources,
    RunSettings,
    StepConfig,
    StepOverride,
)

# ---- loading -------------------------------------------------------------------------------

def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a same.yaml; any problem raises SameError naming the file and field."""
    path = Path(path)
    if not path.exists():
        raise SameError("manifest not found", path=str(path))
    data = read_yaml_file(path, "manifest")     # bounded: size, nesting, aliases; no NaN or huge integers
    if data is None:
        raise SameError("is empty", path=str(path))
    if not isinstance(data, dict):
        raise SameError(f"top level must be a mapping of keys, got {describe(data)}", path=str(path))
    if same_dialect(data):
        manifest = _validate_same(translate(data), path)
    else:
        try:
            manifest = Manifest.model_validate(data)
        except ValidationError as exc:
            _raise_problems([format_error(err, Manifest) for err in exc.errors()], path)
    return manifest


def _raise_problems(problems: list[str], path: Path):
    # Each line names the file: SameError prefixes the first, we prefix the rest.
    raise SameError(f"\n{path}: ".join(problems), path=str(path)) from None


def _validate_same(tr: Translation, path: Path) -> Manifest:
    """Validate a translated SAME manifest. An unknown key anywhere, or a value same-nb cannot take in a
    field that came from SAME, is dropped with a warning; other problems (in same-nb's own fields)
    stay errors."""
    warnings = list(tr.warnings)
    for _ in range(20):                      # each pass drops at least one field
        try:
            manifest = Manifest.model_validate(tr.data)
            break
        except ValidationError as exc:
            hard, soft = [], []
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if p != "[key]")
                origin = next((tr.origins[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in tr.origins),
                              None)
                if err["type"] == "extra_forbidden":
                    soft.append((loc, f"{dotted(loc)}: not a same-nb field; ignored"))
                elif origin is not None:
                    prefix = next(loc[:n] for n in range(len(loc), 0, -1) if loc[:n] in tr.origins)
                    message = format_error(err, Manifest).split(": ", 1)[-1]
                    soft.append((prefix, f"{origin}: {message}; ignored"))
                else:
                    hard.append(format_error(err, Manifest))
            if hard:
                _raise_problems(hard, path)
            for loc, message in soft:
                if _delete(tr.data, loc) and message not in warnings:
                    warnings.append(message)
    else:   # pragma: no cover - a translation that never validates is a bug
        raise SameError("cannot read this SAME manifest", path=str(path))
    manifest._warnings = warnings
    manifest._same_environments = dict(tr.environments)
    return manifest


def _delete(data: Any, loc: tuple) -> bool:
    for part in loc[:-1]:
        if not isinstance(data, (dict, list)):
            return False
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(data, dict) and loc and loc[-1] in data:
        del data[loc[-1]]
        return True
    return False


def find_manifest(notebook_path: Path, explicit: Path | None = None) -> Path | None:
    """The explicit manifest (which must exist), else same.yaml beside the notebook, else None."""
    if explicit is not None:
        explicit = Path(explicit)
        if not explicit.is_file():
            raise SameError("manifest not found" if not explicit.exists() else "manifest is not a file",
                            path=str(explicit))
        return explicit
    beside = Path(notebook_path).parent / MANIFEST_NAME
    return beside if beside.is_file() else None


# ---- resolving -----------------------------------------------------------------------------

def slugify_name(text: str) -> str:
    """A Kubernetes/KFP-safe name: lowercase [a-z0-9-], no leading/trailing '-', <= 63 chars."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:63].rstrip("-")


def default_manifest(notebook_path: Path) -> Manifest:
    """The manifest of a notebook that has no same.yaml."""
    notebook_path = Path(notebook_path)
    return Manifest(metadata=Metadata(name=slugify_name(notebook_path.stem) or "pipeline"),
                    notebook=NotebookSection(path=notebook_path.name))


def _unknown(kind: str, where: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = ", ".join(known) if known else "none"
    return f"{where}: {name!r} is not a {kind} of the notebook{hint}; known {kind}s: {listing}"


def resolve_manifest(manifest: Manifest | None, notebook_path: Path, parameters: dict[str, object],
                     step_names: list[str], step_tags: dict[str, list[str]] | None = None) -> Manifest:
    """Fill defaults from the notebook and check the manifest against its parameters and steps.

    ``parameters`` maps each notebook parameter to its default; manifest overrides win. ``step_tags``
    (each step's cell tags) gives the steps SAME's `environment=NAME` tag puts in another image.
    """
    notebook_path = Path(notebook_path)
    defaults = default_manifest(notebook_path)
    resolved = (manifest or defaults).model_copy(deep=True)
    resolved._warnings = list(manifest._warnings) if manifest else []
    same = bool(manifest) and manifest.api_version != API_VERSION
    problems, lenient = [], []
    if resolved.notebook.path and Path(resolved.notebook.path).name != notebook_path.name:
        (lenient if same else problems).append(
            f"notebook.path: the manifest is for {resolved.notebook.path!r}, not {notebook_path.name!r}")
        if same:
            resolved.notebook.path = None
    for name in list(resolved.run.parameters):
        if name not in parameters:
            (lenient if same else problems).append(_unknown("parameter", f"run.parameters.{name}", name,
                                                            sorted(parameters)))
            if same:
                del resolved.run.parameters[name]
    problems += [_unknown("step", f"steps.{name}", name, sorted(step_names))
                 for name in resolved.steps if name not in step_names]
    problems += _unplain_parameters(resolved.run.parameters)
    if problems:
        raise SameError("\n".join(problems))
    resolved._warnings += [f"{line}; ignored (SAME manifest)" for line in lenient]
    _same_environments(resolved, manifest, step_tags or {})
    resolved.api_version = API_VERSION
    resolved.metadata.name = resolved.metadata.name or defaults.metadata.name
    resolved.notebook.path = resolved.notebook.path or defaults.notebook.path
    resolved.run.parameters = {**parameters, **resolved.run.parameters}
    return resolved


def _unplain_parameters(values: dict[str, Any]) -> list[str]:
    """run.parameters values with no JSON form (YAML dates, sets, binary, non-string keys): refused
    here as the parameters cell and `-p` refuse them. NaN, infinity and integers too long to print were
    refused when the file was read."""
    from same_nb.frontend.params import plain_value

    problems = []
    for name, value in values.items():
        reason = plain_value(value)
        if reason:
            problems.append(f"run.parameters.{name}: {reason}; parameters must be numbers, strings, booleans, "
                            "null, or lists/mappings of those")
    return problems


def manifest_diagnostics(manifest: Manifest, source: str | Path | None) -> list:
    """The manifest's warnings as IR diagnostics, each naming the file and the field."""
    from same_nb.frontend.ir import Diagnostic

    name = Path(source).name if source else MANIFEST_NAME
    return [Diagnostic("info" if is_cosmetic(line) else "warning", f"{name}: {line}", code="manifest")
            for line in manifest.warnings]


def _same_environments(resolved: Manifest, manifest: Manifest | None, step_tags: dict[str, list[str]]) -> None:
    """SAME's `environment=NAME` cell tag runs the step in same.yaml's environments.NAME.image_tag."""
    images = manifest._same_environments if manifest else {}
    for step, tags in step_tags.items():
        name = environment_tag(tags)
        if name is None or name == "default":
            continue
        override = resolved.steps.get(step) or StepOverride()
        if name not in images:
            known = ", ".join(sorted(images)) or "none"
            resolved._warnings.append(f"steps.{step}: tag 'environment={name}' names no environment in same.yaml "
                                      f"(environments: {known}); the step uses {resolved.environment.base_image}")
        elif override.image is None:
            override.image = images[name]
            resolved.steps[step] = override
