"""same.yaml's schema: the pydantic models, with Kubernetes quantities, names, image references and URLs
checked. Values checked here reach generated files (pipeline.py, Dockerfiles, build scripts), so the
checks are strict: what Kubernetes, Docker or pip would refuse later is refused here, with its field."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from same_nb.frontend.manifest_checks import Checks
from same_nb.frontend.manifest_same import SAME_API_VERSIONS, byte_size, is_same_api_version, redact_url

API_VERSION = "same-nb/v1"
SAME_API_VERSION = "sameproject.ml/v1alpha1"  # accepted so SAME users' files load
DEFAULT_IMAGE = "python:3.11-slim"
MANIFEST_NAME = "same.yaml"

_STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ENV_NAME = re.compile(r"[-._A-Za-z][-._A-Za-z0-9]*")   # Kubernetes' rule for env var names
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUNDLE_URI = re.compile(r"(?:gs|s3|minio)://[!-~]+")    # what KFP's launcher downloads
_PYTHON_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_QUANTITY = re.compile(r"(?P<num>\d+(\.\d*)?|\.\d+)(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
# Kubernetes object names (Secret, PersistentVolumeClaim): DNS-1123 subdomains, at most 253 characters.
_DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")             # a key of a Secret's data
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")      # env vars a secret fills: names every shell can read
# Docker's image reference grammar (github.com/distribution/reference, reference.go): name, tag, digest.
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_IMAGE_DOMAIN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_IMAGE_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"(?P<name>(?:{_IMAGE_DOMAIN}/)?{_IMAGE_PATH}(?:/{_IMAGE_PATH})*)(?::(?P<tag>\w[\w.-]{{0,127}}))?"
                    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?", re.ASCII)
IMAGE_ROOT = "/opt/same-nb"       # where a step image keeps same-nb's files (kubeflow/images.py)
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


def _check_api_version(value: str) -> str:
    if value != API_VERSION and not is_same_api_version(value):
        raise _custom("api_version", f"{value!r} is not one of {API_VERSION!r} or SAME's "
                      f"({', '.join(map(repr, SAME_API_VERSIONS))} or a SAME release such as '0.1.16')")
    return value


def _check_url(value: str) -> str:
    if not value:
        raise _custom("bad_url", "must not be empty")
    scheme = _URL_SCHEME.match(value)
    if scheme and scheme[1].lower() not in ("file", "http", "https"):
        raise _custom("bad_url", f"unsupported URL scheme {scheme[1]!r} in {redact_url(value)!r}: use a local "
                      "path, file://, http:// or https://")
    return value


def _check_k8s_name(value: str) -> str:
    if len(value) > 253 or not _DNS1123.fullmatch(value):
        raise _custom("k8s_name", f"{_shown(value)} is not a Kubernetes object name: lowercase letters, digits, '-' "
                      "and '.', starting and ending with a letter or digit, at most 253 characters (DNS-1123)")
    return value


def _shown(value: str) -> str:
    text = repr(value)   # one line: a newline or quote in a hostile value stays escaped
    return text if len(text) <= 80 else f"{text[:79]}…"


def image_parts(value: str) -> tuple[str, str | None, str | None] | None:
    """(repository, tag, digest) of a Docker image reference; None when it is not one."""
    match = _IMAGE.fullmatch(value)
    if not match or len(match["name"]) > 255:
        return None
    return match["name"], match["tag"], match["digest"]


def _check_image(value: str) -> str:
    if image_parts(value) is None:
        raise _custom("image_ref", f"{_shown(value)} is not an image reference: [registry/]repository[:tag][@sha256:digest], "
                      "e.g. 'python:3.11-slim' or 'registry.example.com/team/churn'")
    return value


def _check_index_url(value: str) -> str:
    if not value.isascii() or not value.isprintable() or any(c.isspace() or c in "\"'`\\<>{}|^" for c in value):
        raise _custom("bad_url", f"{_shown(value)} is not a URL: spaces, quotes and control characters must be "
                      "percent-encoded")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise _custom("bad_url", f"{redact_url(value)!r} is not an https:// URL of a package index "
                      "(e.g. 'https://pypi.example.com/simple')")
    if parts.username is not None or parts.password is not None:
        raise _custom("bad_url", "must not hold credentials: it is written into pipeline.yaml and the Dockerfiles in "
                      "clear text; give the index URL without them and let the image builder and pods authenticate "
                      "(a netrc file, or run.secrets for the pods)")
    return value


def _check_mount_path(value: str) -> str:
    parts = value.split("/")
    if not value.startswith("/") or not value.isprintable() or ".." in parts or value == "/":
        raise _custom("mount_path", f"{_shown(value)} is not a mount path: an absolute path other than '/', "
                      "without '..' or control characters")
    if value.rstrip("/") == IMAGE_ROOT or value.startswith(IMAGE_ROOT + "/") or IMAGE_ROOT.startswith(value.rstrip("/") + "/"):
        raise _custom("mount_path", f"{_shown(value)} would hide {IMAGE_ROOT}, where the step image keeps "
                      "same-nb's files; mount the volume elsewhere")
    return value


def _check_sub_path(value: str) -> str:
    if not value or value.startswith("/") or not value.isprintable() or ".." in value.split("/"):
        raise _custom("sub_path", f"{_shown(value)} is not a sub-path: a relative path inside the volume, "
                      "without '..' or control characters")
    return value


def _check_read_only(value: bool) -> bool:
    if value:   # kfp-kubernetes 2.17: PvcMount has mount_path and sub_path, no read-only flag
        raise _custom("read_only", "Kubeflow (kfp-kubernetes' mount_pvc) mounts a claim read-write only; remove "
                      "read_only (and protect the data on the volume itself)")
    return value


def _check_size(value: Any) -> Any:
    if byte_size(value) is None:
        raise _custom("bad_size", f"{str(value)[:40]!r} is not a size in bytes: a whole number of bytes or a "
                      "string such as \"500Mi\" or \"2Gi\"")
    return value


def _check_seconds(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise _custom("bad_seconds", f"{str(value)[:40]!r} is not a number of seconds above 0")
    return value


Quantity = Annotated[str, BeforeValidator(_number_to_text), AfterValidator(_check_quantity)]
StepName = Annotated[str, _pattern(_STEP_NAME, "step name", "letters, digits, '_' and '-', "
                                   "starting with a letter or '_'")]
EnvName = Annotated[str, _pattern(_ENV_NAME, "environment variable name", "letters, digits, '_', '-' and '.', "
                                  "not starting with a digit")]
EnvMap = dict[EnvName, str]
K8sName = Annotated[str, AfterValidator(_check_k8s_name)]
ImageRef = Annotated[str, AfterValidator(_check_image)]
SecretEnvName = Annotated[str, _pattern(_SHELL_NAME, "environment variable name for a secret",
                                        "letters, digits and '_', not starting with a digit")]
SecretKey = Annotated[str, Field(max_length=253), _pattern(_SECRET_KEY, "Secret key",
                                                           "letters, digits, '-', '_' and '.'")]
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
    base_image: ImageRef = DEFAULT_IMAGE
    python_version: Annotated[str, _pattern(_PYTHON_VERSION, "Python version", "like \"3.11\"")] | None = None
    platform: str | None = None
    # Where pods and image builds install packages from (e.g. an internal mirror); None means PyPI.
    index_url: Annotated[str, AfterValidator(_check_index_url)] | None = None
    # The step images' repository (each distinct lock tagged by its id), or one full reference.
    image: ImageRef | None = None
    # Where Kubeflow pods import the compiled bundle from (kfp/bundle.tar.gz uploaded there).
    bundle_uri: Annotated[str, _pattern(_BUNDLE_URI, "bundle URI",
                                        "like minio://mlpipeline/same-nb/x.tar.gz, gs://… or s3://…")] | None = None


class SecretRef(_Model):
    """An environment variable filled from a key of a Kubernetes Secret: same.yaml names the Secret,
    never holds its value."""
    secret: K8sName
    key: SecretKey


class Volume(_Model):
    """A PersistentVolumeClaim mounted into a step's pod."""
    pvc: K8sName
    mount_path: Annotated[str, AfterValidator(_check_mount_path)]
    sub_path: Annotated[str, AfterValidator(_check_sub_path)] | None = None
    read_only: Annotated[bool, AfterValidator(_check_read_only)] = False


SecretMap = dict[SecretEnvName, SecretRef]


def _check_volumes(volumes: list[Volume]) -> list[Volume]:
    paths = [v.mount_path.rstrip("/") for v in volumes]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:
        raise _custom("mount_path", f"two volumes are mounted at {', '.join(map(repr, twice))}")
    return volumes


Volumes = Annotated[list[Volume], AfterValidator(_check_volumes)]


def _env_and_secrets(env: dict[str, str], secrets: dict[str, SecretRef]) -> None:
    both = sorted(set(env) & set(secrets))
    if both:
        raise _custom("env_and_secret", f"{', '.join(both)} set in both env and secrets; keep one")


class RunSettings(_Model):
    parameters: dict[str, Any] = Field(default_factory=dict)
    cache: bool = True
    retries: NonNegative = 0
    env: EnvMap = Field(default_factory=dict)
    secrets: SecretMap = Field(default_factory=dict)    # env var name → {secret, key}
    volumes: Volumes = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source_per_variable(self) -> "RunSettings":
        _env_and_secrets(self.env, self.secrets)
        return self


class Dataset(_Model):
    url: Annotated[str, AfterValidator(_check_url)]
    sha256: Annotated[str, _pattern(_SHA256, "sha256", "64 lowercase hex characters")] | None = None
    # Download bounds (same_nb.store.datasets has the defaults: 1 hour, 10 GiB).
    timeout: Annotated[Any, AfterValidator(_check_seconds)] = None        # seconds for the whole download
    max_size: Annotated[Any, AfterValidator(_check_size)] = None          # bytes, or "500Mi", "2Gi", …


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
    image: ImageRef | None = None
    resources: Resources | None = None
    env: EnvMap = Field(default_factory=dict)
    retries: NonNegative | None = None
    cache: bool | None = None
    lock: LockRef | None = None
    secrets: SecretMap = Field(default_factory=dict)
    volumes: Volumes = Field(default_factory=list)    # added to run.volumes; same mount_path replaces

    @model_validator(mode="after")
    def _one_source_per_variable(self) -> "StepOverride":
        _env_and_secrets(self.env, self.secrets)
        return self


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
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    volumes: list[Volume] = Field(default_factory=list)
    # The same.yaml field each setting came from ("run.env", "steps.train.env", …): errors name it.
    _fields: dict[str, str] = PrivateAttr(default_factory=dict)

    def field_of(self, kind: str, name: str = "") -> str:
        """The same.yaml path of ``kind`` ('env', 'secrets', 'resources', …) entry ``name`` of this step."""
        where = self._fields.get(f"{kind}.{name}") or self._fields.get(kind) or f"steps.{self.name}.{kind}"
        return f"{where}.{name}" if name else where


class Manifest(_Model):
    api_version: Annotated[str, AfterValidator(_check_api_version)] = Field(API_VERSION, alias="apiVersion")
    metadata: Metadata = Field(default_factory=Metadata)
    notebook: NotebookSection = Field(default_factory=NotebookSection)
    environment: Environment = Field(default_factory=Environment)
    run: RunSettings = Field(default_factory=RunSettings)
    datasets: dict[str, Dataset] = Field(default_factory=dict)
    steps: dict[StepName, StepOverride] = Field(default_factory=dict)
    lineage: Lineage | None = None
    checks: Checks | None = None            # data checks against a baseline run (manifest_checks.py)
    # Not fields: never validated from a file, never dumped.
    _warnings: list[str] = PrivateAttr(default_factory=list)            # SAME fields same-nb ignores, …
    _same_environments: dict[str, str] = PrivateAttr(default_factory=dict)   # SAME environment → image

    @property
    def warnings(self) -> list[str]:
        """One line per field that loaded with a warning: "field.path: why", oldest first."""
        return list(self._warnings)

    def step_config(self, name: str) -> StepConfig:
        override = self.steps.get(name) or StepOverride()
        step = f"steps.{name}"
        # A step's env or secret entry replaces the run's entry of that name, whichever kind each is.
        env = {k: v for k, v in self.run.env.items() if k not in override.secrets} | override.env
        secrets = {k: v for k, v in self.run.secrets.items() if k not in override.env} | override.secrets
        mounts = {v.mount_path.rstrip("/"): v for v in self.run.volumes} | {
            v.mount_path.rstrip("/"): v for v in override.volumes}
        config = StepConfig(
            name=name,
            image=override.image or self.environment.base_image,
            resources=(override.resources or Resources()).model_copy(deep=True),
            env=env,
            retries=self.run.retries if override.retries is None else override.retries,
            cache=self.run.cache if override.cache is None else override.cache,
            secrets={k: v.model_copy() for k, v in secrets.items()},
            volumes=[v.model_copy() for v in mounts.values()],
        )
        config._fields = {"resources": f"{step}.resources",
                          **{f"env.{k}": f"{step}.env" if k in override.env else "run.env" for k in env},
                          **{f"secrets.{k}": f"{step}.secrets" if k in override.secrets else "run.secrets"
                             for k in secrets}}
        return config
