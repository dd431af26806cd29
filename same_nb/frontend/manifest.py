"""same.yaml: the pipeline manifest. Load and validate it, resolve defaults, dump it back.

The schema follows SAME's same.yaml where it fits (apiVersion, metadata, notebook, run,
datasets) and adds per-step overrides and lineage settings. Every problem in a file is
reported at once, one line each, naming the field path.
"""
from __future__ import annotations

import difflib
import re
import types
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from same_nb.errors import SameError

API_VERSION = "same-nb/v1"
SAME_API_VERSION = "sameproject.ml/v1alpha1"  # accepted so SAME users' files load
DEFAULT_IMAGE = "python:3.11-slim"
MANIFEST_NAME = "same.yaml"

_STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ENV_NAME = re.compile(r"[-._A-Za-z][-._A-Za-z0-9]*")   # Kubernetes' rule for env var names
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PYTHON_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_QUANTITY = re.compile(r"(?P<num>\d+(\.\d*)?|\.\d+)(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def _custom(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)   # no context: the message is used verbatim


def _number_to_text(value: Any) -> Any:
    # YAML reads `cpu: 2` as an int; Kubernetes takes it as the quantity "2".
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _check_quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise _custom("k8s_quantity", f"{value!r} is not a Kubernetes quantity (e.g. '500m', '2', '4Gi')")
    return value


def _quantity_value(text: str) -> Decimal:
    match = _QUANTITY.fullmatch(text)
    assert match, text   # only called on validated quantities
    number, suffix = Decimal(match["num"]), match["suffix"] or ""
    if suffix in _BINARY:
        return number * 1024 ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    return number.scaleb(int(suffix[1:]))


def _pattern(regex: re.Pattern[str], what: str, hint: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise _custom("bad_value", f"{value!r} is not a valid {what}: {hint}")
        return value
    return AfterValidator(check)


def _check_url(value: str) -> str:
    if not value:
        raise _custom("bad_url", "must not be empty")
    scheme = _URL_SCHEME.match(value)
    if scheme and scheme[1].lower() not in ("file", "http", "https"):
        raise _custom("bad_url", f"unsupported URL scheme {scheme[1]!r} in {value!r}: use a local path, "
                      "file://, http:// or https://")
    return value


Quantity = Annotated[str, BeforeValidator(_number_to_text), AfterValidator(_check_quantity)]
StepName = Annotated[str, _pattern(_STEP_NAME, "step name", "letters, digits, '_' and '-', "
                                   "starting with a letter or '_'")]
EnvName = Annotated[str, _pattern(_ENV_NAME, "environment variable name", "letters, digits, '_', '-' and '.', "
                                  "not starting with a digit")]
EnvMap = dict[EnvName, str]
NonNegative = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    # defer_build: validators are built on first use, keeping `import` cheap for the CLI.
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_unset(cls, data: Any) -> Any:
        # `steps:` with everything below commented out reads as null: treat it as absent.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class Metadata(_Model):
    name: Annotated[str, Field(min_length=1)] | None = None
    version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class NotebookSection(_Model):
    path: Annotated[str, Field(min_length=1)] | None = None   # relative to the manifest's folder
    kernel: str | None = None


class Environment(_Model):
    base_image: Annotated[str, Field(min_length=1)] = DEFAULT_IMAGE
    python_version: Annotated[str, _pattern(_PYTHON_VERSION, "Python version", "like \"3.11\"")] | None = None
    platform: str | None = None


class RunSettings(_Model):
    parameters: dict[str, Any] = Field(default_factory=dict)
    cache: bool = True
    retries: NonNegative = 0
    env: EnvMap = Field(default_factory=dict)


class Dataset(_Model):
    url: Annotated[str, AfterValidator(_check_url)]
    sha256: Annotated[str, _pattern(_SHA256, "sha256", "64 lowercase hex characters")] | None = None


class Resources(_Model):
    cpu: Quantity | None = None
    memory: Quantity | None = None
    gpu: NonNegative | None = None
    accelerator: str | None = None
    cpu_limit: Quantity | None = None
    memory_limit: Quantity | None = None

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> "Resources":
        for request, limit in (("cpu", "cpu_limit"), ("memory", "memory_limit")):
            low, high = getattr(self, request), getattr(self, limit)
            if low is not None and high is not None and _quantity_value(high) < _quantity_value(low):
                raise _custom("limit_below_request", f"{limit} {high!r} is less than {request} {low!r}")
        return self


class LockRef(_Model):
    """Written by `same-nb compile`: the step's lockfile in the bundle and its sha256."""
    path: Annotated[str, Field(min_length=1)]
    sha256: Annotated[str, _pattern(_SHA256, "sha256", "64 lowercase hex characters")]
    fallback: bool = False


class StepOverride(_Model):
    image: Annotated[str, Field(min_length=1)] | None = None
    resources: Resources | None = None
    env: EnvMap = Field(default_factory=dict)
    retries: NonNegative | None = None
    cache: bool | None = None
    lock: LockRef | None = None


class OpenLineage(_Model):
    transport: Literal["file", "http"]
    path: Annotated[str, Field(min_length=1)] | None = None
    url: Annotated[str, AfterValidator(_check_url)] | None = None
    endpoint: str | None = None

    @model_validator(mode="after")
    def _fields_match_transport(self) -> "OpenLineage":
        needed, unused = ("path", ("url", "endpoint")) if self.transport == "file" else ("url", ("path",))
        if getattr(self, needed) is None:
            raise _custom("transport_field", f"transport {self.transport!r} needs {needed!r}")
        extra = [name for name in unused if getattr(self, name) is not None]
        if extra:
            raise _custom("transport_field", f"{', '.join(extra)} not used with transport {self.transport!r}")
        return self


class Lineage(_Model):
    openlineage: OpenLineage | None = None


class StepConfig(_Model):
    """One step's effective settings: its override merged over the run-level defaults."""
    name: str
    image: str
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(default_factory=dict)
    retries: int = 0
    cache: bool = True


class Manifest(_Model):
    api_version: Literal["same-nb/v1", "sameproject.ml/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    metadata: Metadata = Field(default_factory=Metadata)
    notebook: NotebookSection = Field(default_factory=NotebookSection)
    environment: Environment = Field(default_factory=Environment)
    run: RunSettings = Field(default_factory=RunSettings)
    datasets: dict[str, Dataset] = Field(default_factory=dict)
    steps: dict[StepName, StepOverride] = Field(default_factory=dict)
    lineage: Lineage | None = None

    def step_config(self, name: str) -> StepConfig:
        override = self.steps.get(name) or StepOverride()
        return StepConfig(
            name=name,
            image=override.image or self.environment.base_image,
            resources=(override.resources or Resources()).model_copy(deep=True),
            env={**self.run.env, **override.env},
            retries=self.run.retries if override.retries is None else override.retries,
            cache=self.run.cache if override.cache is None else override.cache,
        )


# ---- loading -------------------------------------------------------------------------------

class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that rejects duplicate keys instead of keeping the last one silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a same.yaml; any problem raises SameError naming the file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SameError("manifest not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SameError(f"cannot read manifest: {exc}", path=str(path)) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        if mark is None:
            raise SameError(f"invalid YAML: {problem}", path=str(path)) from None
        raise SameError(f"invalid YAML: {problem} (column {mark.column + 1})",
                        path=str(path), line=mark.line + 1) from None
    except yaml.YAMLError as exc:
        raise SameError(f"invalid YAML: {exc}", path=str(path)) from None
    if data is None:
        raise SameError("is empty", path=str(path))
    if not isinstance(data, dict):
        raise SameError(f"top level must be a mapping of keys, got {_describe(data)}", path=str(path))
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = [_format_error(err) for err in exc.errors()]
        # Each line names the file: SameError prefixes the first, we prefix the rest.
        raise SameError(f"\n{path}: ".join(problems), path=str(path)) from None


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


_TYPE_NAMES = {"string_type": "a string", "int_type": "an integer", "bool_type": "true or false",
               "dict_type": "a mapping", "model_type": "a mapping", "float_type": "a number",
               "list_type": "a list"}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {value!r}"


def _dotted(loc: tuple | list) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _format_error(err: Any) -> str:
    loc, kind, value, ctx = list(err["loc"]), err["type"], err.get("input"), err.get("ctx") or {}
    if loc and loc[-1] == "[key]":   # a map key failed its own validator
        loc = loc[:-1]
    where = _dotted(loc) or "(top level)"
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "valid keys: " + ", ".join(known)
        return f"{where}: unknown key ({hint})"
    if kind == "missing":
        return f"{where}: is required"
    if kind in _TYPE_NAMES:
        quote = " (quote it in YAML)" if kind == "string_type" and isinstance(value, (int, float)) else ""
        return f"{where}: expected {_TYPE_NAMES[kind]}, got {_describe(value)}{quote}"
    if kind == "greater_than_equal":
        return f"{where}: must be >= {ctx['ge']}, got {value!r}"
    if kind == "literal_error":
        return f"{where}: {value!r} is not one of {ctx['expected']}"
    if kind == "string_too_short":
        return f"{where}: must not be empty"
    return f"{where}: {err['msg']}"


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation


def _known_keys(loc: list) -> list[str]:
    """The keys a model accepts at ``loc`` (for 'did you mean' hints)."""
    annotation: Any = Manifest
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or n: f for n, f in annotation.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[part].annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


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
                     step_names: list[str]) -> Manifest:
    """Fill defaults from the notebook and check the manifest against its parameters and steps.

    ``parameters`` maps each notebook parameter to its default; manifest overrides win.
    """
    notebook_path = Path(notebook_path)
    defaults = default_manifest(notebook_path)
    resolved = (manifest or defaults).model_copy(deep=True)
    problems = []
    if resolved.notebook.path and Path(resolved.notebook.path).name != notebook_path.name:
        problems.append(f"notebook.path: the manifest is for {resolved.notebook.path!r}, "
                        f"not {notebook_path.name!r}")
    problems += [_unknown("parameter", f"run.parameters.{name}", name, sorted(parameters))
                 for name in resolved.run.parameters if name not in parameters]
    problems += [_unknown("step", f"steps.{name}", name, sorted(step_names))
                 for name in resolved.steps if name not in step_names]
    if problems:
        raise SameError("\n".join(problems))
    resolved.api_version = API_VERSION
    resolved.metadata.name = resolved.metadata.name or defaults.metadata.name
    resolved.notebook.path = resolved.notebook.path or defaults.notebook.path
    resolved.run.parameters = {**parameters, **resolved.run.parameters}
    return resolved


# ---- dumping -------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(tuple, lambda dumper, data: dumper.represent_list(list(data)))
# A set's iteration order changes between processes (hash seeds); write its members sorted.
_Dumper.add_representer(set, lambda dumper, data: dumper.represent_mapping(
    "tag:yaml.org,2002:set", {item: None for item in sorted(data, key=repr)}))


def _plain(value: Any) -> Any:
    """Models keep field order and drop unset (None) fields; maps get sorted keys."""
    if isinstance(value, BaseModel):
        out = {}
        for name, field in type(value).model_fields.items():
            item = getattr(value, name)
            if item is not None:
                out[field.alias or name] = _plain(item)
        return out
    if isinstance(value, dict):
        return {k: _plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_manifest(manifest: Manifest) -> str:
    """Deterministic YAML for a manifest: the same manifest always gives the same text."""
    try:
        return yaml.dump(_plain(manifest), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True, width=1000)
    except yaml.representer.RepresenterError as exc:
        raise SameError(f"cannot write same.yaml: a value has no YAML form ({exc.args[-1]!r})") from None
