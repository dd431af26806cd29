"""SAME's same.yaml, read as same-nb's: each SAME field mapped to its same-nb meaning, or reported.

SAME (https://github.com/SAME-Project/same-project) validates its manifests with the cerberus schema in
``sameproject/data/config.py``; its samples and test data use the apiVersions below. A field with a
same-nb meaning is mapped (``environments.default.image_tag`` → ``environment.base_image``,
``notebook.path`` → the notebook, a dataset's ``environments.default`` URL → ``datasets.NAME.url``,
``metadata.labels`` as a list → labels, other environments → the image of steps tagged
``environment=NAME``); every other SAME field is dropped with a warning that names its path, never an
error. Values are never echoed in warnings: SAME files carry registry passwords and wallet keys.

Standard library only: the run store reads datasets with this module, inside step kernels too.

It also holds what every reader of same.yaml and of YAML parameter values shares (PyYAML is imported
only when a YAML text is read): ``load_yaml`` / ``read_yaml_file``, the one safe loader, which bounds what
a small file can cost (size, nesting, alias expansion) and refuses what has no JSON form (non-finite
floats, integers too long to print); and ``redact_url``, a URL without its credentials, for messages.
"""
from __future__ import annotations

import copy
import math
import re
import sys
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SAME_API_VERSIONS = ("projectsame.io/v1alpha1", "sameproject.io/v1alpha1", "sameproject.ml/v1alpha1")
_SAME_RELEASE = re.compile(r"\d+(\.\d+){1,2}")          # `same init` writes its own version: 0.1.16
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_DATASET_SCHEMES = ("file", "http", "https")
# Top-level keys only SAME writes; a file without apiVersion that has one of them is SAME's.
_SAME_ONLY_KEYS = ("environments", "base_images", "pipeline", "runtime_options", "workflow")

_NOTES = {
    "metadata.sha": "SAME's content hash; same-nb hashes the notebook itself",
    "notebook.name": "a display name; same-nb names the pipeline from metadata.name",
    "notebook.requirements": "same-nb derives each step's requirements from its imports and `!pip install` "
                             "lines (see `same-nb lock`); the file is not read",
    "run.name": "same-nb numbers its runs",
    "run.sha": "SAME's content hash; same-nb hashes the notebook itself",
    "runtime_options": "SAME's backend options; same-nb targets take command-line options",
    "environments.*.packages": "same-nb derives each step's packages from its imports and `!pip install` "
                               "lines and locks them",
    "environments.*.append_current_environment": "same-nb locks what each step imports",
    "environments.*.private_registry": "same-nb passes no registry credentials: give the cluster an "
                                       "imagePullSecret for the image's registry",
    "environments.*.credentials": "same-nb passes no registry credentials: give the cluster an "
                                  "imagePullSecret for the image's registry",
    "datasets.*.schema_uri": "same-nb does not check dataset schemas",
    "pipeline.name": "metadata.name is set",
    "pipeline.package": "notebook.path is set",
}


@dataclass
class Translation:
    data: dict                                            # same-nb's shape, for the pydantic models
    warnings: list[str] = field(default_factory=list)     # "field.path: why it is ignored"
    origins: dict[tuple, str] = field(default_factory=dict)   # same-nb location → the SAME field it came from
    environments: dict[str, str] = field(default_factory=dict)   # SAME environment name → image


def is_same_api_version(value: Any) -> bool:
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    return isinstance(text, str) and (text in SAME_API_VERSIONS or bool(_SAME_RELEASE.fullmatch(text)))


def same_dialect(data: dict) -> bool:
    """Whether a parsed manifest is SAME's: its apiVersion says so, or, without one, it has a field
    only SAME writes."""
    if "apiVersion" in data:
        return is_same_api_version(data["apiVersion"])
    if any(key in data for key in _SAME_ONLY_KEYS):
        return True
    datasets = data.get("datasets")
    if isinstance(datasets, dict) and any(isinstance(spec, dict) and "url" not in spec and
                                          {"environments", "default", "schema_uri"} & set(spec)
                                          for spec in datasets.values()):
        return True
    section = lambda name: data.get(name) if isinstance(data.get(name), dict) else {}  # noqa: E731
    return (isinstance(section("metadata").get("labels"), list) or "sha" in section("metadata")
            or "name" in section("notebook") or "requirements" in section("notebook")
            or "name" in section("run") or "sha" in section("run"))


# SAME fields that change nothing a run computes (names, hashes, schema pointers, the other environments
# of a dataset): reported as notes, not warnings, so the warnings left are the ones that matter.
_COSMETIC = re.compile(r"(metadata\.sha|notebook\.name|run\.name|run\.sha|pipeline\.(name|package)"
                       r"|datasets\.[^.:]+\.schema_uri|datasets\.[^.:]+\.(environments\.)?(?!default:)[^.:]+"
                       r"|run\.parameters\.[^.:]+(?=: .*ignored \(SAME manifest\)$)): ")


def is_cosmetic(line: str) -> bool:
    """Whether a manifest warning line names a SAME field that changes nothing a run computes."""
    return bool(_COSMETIC.match(line))


def _note(path: str) -> str:
    general = re.sub(r"^(environments|datasets)\.[^.]+\.", r"\1.*.", path)
    return _NOTES.get(path) or _NOTES.get(general) or "a SAME field with no same-nb equivalent"


def dataset_url(spec: Any) -> tuple[str | None, list[tuple[str, str]]]:
    """A SAME dataset's URL for same-nb (its ``default`` environment) and the (sub-path, reason) pairs
    of what is left out. Accepts SAME's ``{schema_uri, environments: {default: URL, …}}`` and its
    older ``{default: URL, …}``."""
    if not isinstance(spec, dict):
        return None, [("", "expected a mapping")]
    envs = spec.get("environments") if "environments" in spec else spec
    prefix = "environments." if "environments" in spec else ""
    dropped = [(key, _note("datasets.*." + key)) for key in spec
               if key not in ("environments", "default") and envs is not spec]
    if not isinstance(envs, dict):
        return None, dropped + [("environments", "expected a mapping of environment names to URLs")]
    for name in envs:
        if name != "default":
            dropped.append((f"{prefix}{name}", "same-nb has one URL per dataset and uses `default`"))
    url = envs.get("default")
    if not isinstance(url, str) or not url:
        return None, dropped + [(f"{prefix}default", "no default URL: the dataset is not declared")]
    scheme = _URL_SCHEME.match(url)
    if scheme and scheme[1].lower() not in _DATASET_SCHEMES:
        return None, dropped + [(f"{prefix}default", f"same-nb fetches local paths, file://, http:// and "
                                                     f"https:// URLs, not {scheme[1]}://: the dataset is "
                                                     "not declared")]
    return url, dropped


def _labels(value: Any, out: Translation) -> dict:
    """SAME's labels are a list; same-nb's are a mapping. `key=value` and `key: value` strings and
    one-key mappings map; a bare string becomes a label with an empty value."""
    labels: dict[str, str] = {}
    for i, item in enumerate(value):
        if isinstance(item, dict):
            for k, v in item.items():
                labels[str(k)] = "" if v is None else str(v)
        elif isinstance(item, str) and re.fullmatch(r"[^=:]+[=:].*", item):
            k, v = re.split(r"\s*[=:]\s*", item, maxsplit=1)
            labels[k.strip()] = v.strip()
        elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
            labels[str(item)] = ""
        else:
            out.warnings.append(f"metadata.labels[{i}]: not a label (a string or a mapping); ignored")
    return labels


def _environments(key: str, value: Any, data: dict, out: Translation) -> None:
    if not isinstance(value, dict):
        out.warnings.append(f"{key}: expected a mapping of environment names; ignored")
        return
    if "default" not in value:
        out.warnings.append(f"{key}: no `default` environment; steps use environment.base_image")
    for name, env in value.items():
        where = f"{key}.{name}"
        if not isinstance(env, dict):
            out.warnings.append(f"{where}: expected a mapping with image_tag; ignored")
            continue
        for sub in env:
            if sub == "private_registry" and env[sub] is False:
                continue                                 # a public image: nothing to carry over
            if sub != "image_tag":
                out.warnings.append(f"{where}.{sub}: {_note(f'environments.{name}.{sub}')}; ignored")
        image = env.get("image_tag")
        if not isinstance(image, str) or not image.strip():
            if "image_tag" in env:
                out.warnings.append(f"{where}.image_tag: expected an image name; ignored")
            continue
        if name == "default":
            section = data.setdefault("environment", {})
            if not isinstance(section, dict) or "base_image" in section:
                out.warnings.append(f"{where}.image_tag: environment.base_image is set; ignored")
            else:
                section["base_image"] = image
                out.origins[("environment", "base_image")] = f"{where}.image_tag"
        else:
            out.environments[str(name)] = image


def translate(source: dict) -> Translation:
    """SAME's manifest → same-nb's shape. same-nb's own keys pass through unchanged (so a SAME
    apiVersion with same-nb fields keeps working); unknown keys are left for the caller to drop with a
    warning when validation names them."""
    data = copy.deepcopy(source)
    out = Translation(data=data)
    if "apiVersion" in data and not isinstance(data["apiVersion"], str):
        data["apiVersion"] = str(data["apiVersion"])
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        for key in ("name", "version"):
            if isinstance(metadata.get(key), (int, float)) and not isinstance(metadata.get(key), bool):
                metadata[key] = str(metadata[key])
            out.origins[("metadata", key)] = f"metadata.{key}"
        if isinstance(metadata.get("labels"), list):
            metadata["labels"] = _labels(metadata["labels"], out)
        out.origins[("metadata", "labels")] = "metadata.labels"
        _drop(metadata, "metadata", ("sha",), out)
    notebook = data.get("notebook")
    if isinstance(notebook, dict):
        _drop(notebook, "notebook", ("name", "requirements"), out)
        out.origins[("notebook", "path")] = "notebook.path"
    run = data.get("run")
    if isinstance(run, dict):
        _drop(run, "run", ("name", "sha"), out)
        out.origins[("run", "parameters")] = "run.parameters"
    for key in ("environments", "base_images"):        # base_images: SAME's name before 0.1
        if key in data:
            _environments(key, data.pop(key), data, out)
    pipeline = data.pop("pipeline", None)
    if isinstance(pipeline, dict):
        _pipeline(pipeline, data, out)
    elif pipeline is not None:
        out.warnings.append("pipeline: expected a mapping; ignored")
    if "runtime_options" in data:
        data.pop("runtime_options")
        out.warnings.append(f"runtime_options: {_note('runtime_options')}; ignored")
    datasets = data.get("datasets")
    if isinstance(datasets, dict):
        for name, spec in list(datasets.items()):
            if isinstance(spec, dict) and "url" in spec:
                continue                                 # same-nb's own form
            url, dropped = dataset_url(spec)
            for sub, why in dropped:
                out.warnings.append(f"datasets.{name}{'.' + sub if sub else ''}: {why}"
                                    + ("" if why.endswith("not declared") else "; ignored"))
            if url is None:
                del datasets[name]
            else:
                datasets[name] = {"url": url}
                out.origins[("datasets", name)] = f"datasets.{name}"
    return out


def _drop(section: dict, where: str, keys: tuple[str, ...], out: Translation) -> None:
    for key in keys:
        if key in section:
            section.pop(key)
            out.warnings.append(f"{where}.{key}: {_note(f'{where}.{key}')}; ignored")


def _pipeline(pipeline: dict, data: dict, out: Translation) -> None:
    """SAME's first manifests named the pipeline and its notebook (`package`) here."""
    targets = {"name": ("metadata", "name"), "package": ("notebook", "path")}
    for key, value in pipeline.items():
        where = f"pipeline.{key}"
        if key not in targets:
            out.warnings.append(f"{where}: {_note(where)}; ignored")
            continue
        section_name, field_name = targets[key]
        section = data.setdefault(section_name, {})
        if not isinstance(section, dict) or section.get(field_name) is not None or not isinstance(value, str):
            out.warnings.append(f"{where}: {_note(where) if isinstance(value, str) else 'expected a string'}; "
                                "ignored")
            continue
        section[field_name] = value
        out.origins[(section_name, field_name)] = where


def environment_tag(tags: list[str]) -> str | None:
    """The SAME environment a step's cells name with `environment=NAME`, if any."""
    from same_nb.frontend.tags import parse_tags

    return next((t.arg for t in parse_tags(tags) if t.meaning == "environment"), None)


# ---- safe YAML ---------------------------------------------------------------------------------
# Every YAML text same-nb reads (same.yaml, `--params FILE`, a `-p` value) goes through load_yaml. A
# YAML file is small input, so what it may cost is bounded: its size, its nesting (the C parser's
# composer recurses and crashes the process at ~100,000 levels) and what aliases expand to (a 400-byte
# "billion laughs" file expands to 10^9 values). Values with no JSON form are refused where they are.

MAX_YAML_BYTES = 1 << 20           # 1 MiB: manifests and parameter files are a few KB
MAX_YAML_DEPTH = 100               # levels of nested mappings and lists
MAX_ALIAS_VALUES = 10_000          # values that aliases (`*name`, `<<: *name`) may add to a document
NOT_YAML = object()                # load_yaml(..., syntax_errors=False) on text that is not YAML

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _yaml_error(message: str, source: str | None, mark: Any = None) -> Exception:
    from same_nb.errors import SameError

    if mark is None:
        return SameError(message, path=source)
    return SameError(f"{message} (column {mark.column + 1})", path=source, line=mark.line + 1)


@lru_cache(maxsize=1)
def _yaml_classes() -> tuple:
    """(Loader, resolver, constructor): the C loader when PyYAML has libyaml, built on first use."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        """Safe loader that rejects duplicate keys instead of keeping the last one silently."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict:
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return Loader, yaml.resolver.Resolver(), yaml.constructor.SafeConstructor()


def _where(path: list) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    if len(out) > 80:
        out = out[:79] + "…"
    return f"{out}: " if out else ""


def int_digits_limit() -> int:
    """The most decimal digits Python converts between int and str (0: no limit, before 3.10.7)."""
    return sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0


def int_too_long(value: int) -> bool:
    """Whether Python refuses to print this int in decimal (``sys.get_int_max_str_digits``)."""
    limit = int_digits_limit()
    if not limit or value.bit_length() < limit * 3:      # 3 bits < 1 decimal digit: surely printable
        return False
    try:
        str(value)
    except ValueError:
        return True
    return False


_NUMBER_START = frozenset("-+.0123456789")


def _scalar_problem(event: Any, resolver: Any, constructor: Any) -> str | None:
    """Why a scalar cannot be read: an integer too long to print, or a float that is not finite."""
    import yaml

    value, tag = event.value, event.tag
    if tag is None or tag == "!":
        if not event.implicit[0] or not value or value[0] not in _NUMBER_START:
            return None                             # quoted, or no number: a string
        tag = resolver.resolve(yaml.ScalarNode, value, event.implicit)
    if tag == _INT_TAG:
        limit = int_digits_limit()
        if not limit or len(value) < limit * 0.8:   # hex packs 1.2 decimal digits a character: surely fine
            return None
        try:
            number = constructor.construct_yaml_int(yaml.ScalarNode(tag, value))
        except ValueError:
            number = None
        if number is None or int_too_long(number):
            digits = sum(c.isdigit() for c in value) if number is None else int(number.bit_length() * 0.30103) + 1
            return f"an integer of {digits:,} digits is too long (at most {limit:,} digits)"
    elif tag == _FLOAT_TAG:
        try:
            number = constructor.construct_yaml_float(yaml.ScalarNode(tag, value))
        except ValueError:
            return None                             # the loader reports it
        if not math.isfinite(number):
            shown = value if len(value) <= 40 else value[:39] + "…"
            return (f"{shown} is not a finite number: NaN and infinity have no JSON form (PostgreSQL, Kubeflow "
                    "and the pipeline IR refuse them); use a finite number, or null")
    return None


def _path(stack: list[list], is_key: bool) -> list:
    """The field path of the node being read: each open collection's current key or index."""
    frames = stack[:-1] if is_key else stack
    return [frame[4] if frame[0] else frame[3] - 1 for frame in frames]


def _check_events(loader: Any, source: str | None, resolver: Any, constructor: Any) -> None:
    """One pass over the parser's events (no recursion, nothing built): nesting depth, what aliases
    expand to, recursive aliases, and the scalars `_scalar_problem` refuses."""
    import yaml

    # Open collections, each [is_mapping, anchor, expanded size at its start, children started, current key]:
    # in a mapping, children alternate key, value.
    stack: list[list] = []
    anchors: dict[str, int] = {}   # anchor → values its node expands to
    expanded = own = 0

    def error(message: str, is_key: bool, mark: Any) -> Exception:
        return _yaml_error(f"{_where(_path(stack, is_key))}{message}", source, mark)

    def start_child(key: Any) -> bool:
        """Count a node starting in the open collection; whether it is a mapping key (then ``key`` names it)."""
        if not stack:
            return False
        top = stack[-1]
        is_key = top[0] and top[3] % 2 == 0
        if is_key:
            top[4] = key
        top[3] += 1
        return is_key

    scalar, alias = yaml.ScalarEvent, yaml.AliasEvent
    starts, ends = (yaml.SequenceStartEvent, yaml.MappingStartEvent), (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    while loader.check_event():
        event = loader.get_event()
        kind = type(event)
        if kind is scalar:
            is_key = start_child(event.value)
            problem = _scalar_problem(event, resolver, constructor)
            if problem:
                raise error(problem, is_key, event.start_mark)
            expanded += 1
            own += 1
            if event.anchor:
                anchors[event.anchor] = 1
        elif kind is alias:
            is_key = start_child(f"*{event.anchor}")
            if any(frame[1] == event.anchor for frame in stack):
                raise error(f"alias *{event.anchor} is inside the node it names (a recursive structure); "
                            "same-nb cannot read it", is_key, event.start_mark)
            expanded += anchors.get(event.anchor, 1)
            own += 1
            if expanded - own > MAX_ALIAS_VALUES:
                raise error(f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (an alias bomb?); write "
                            "the values out instead of repeating *aliases", is_key, event.start_mark)
        elif kind in starts:
            is_key = start_child("?")
            if len(stack) >= MAX_YAML_DEPTH:
                raise error(f"nested more than {MAX_YAML_DEPTH} levels deep", is_key, event.start_mark)
            stack.append([kind is yaml.MappingStartEvent, event.anchor, expanded, 0, "?"])
            expanded += 1
            own += 1
        elif kind in ends:
            frame = stack.pop()
            if frame[1]:
                anchors[frame[1]] = expanded - frame[2]
        elif kind is yaml.DocumentStartEvent:
            anchors.clear()
            stack.clear()


def _too_large(source: str | None, limit: int) -> Exception:
    return _yaml_error(f"is larger than {limit:,} bytes, the most same-nb reads as YAML here", source)


def load_yaml(text: str | bytes, source: str | None = None, *, syntax_errors: bool = True,
              max_bytes: int = MAX_YAML_BYTES) -> Any:
    """The one safe YAML loader: plain Python values (no tags that build objects), duplicate keys
    refused, and bounded: at most MAX_YAML_BYTES, MAX_YAML_DEPTH levels, MAX_ALIAS_VALUES values added by
    aliases, no recursive aliases, no integers too long to print, no NaN or infinity (``max_bytes`` raises
    the size cap for a larger file, e.g. a compiled pipeline spec). Every problem is
    a SameError naming ``source`` (a file, or e.g. "-p alpha") and, where known, the line and field.
    With ``syntax_errors=False`` text that does not parse as YAML gives NOT_YAML instead of an error
    (a `-p` value that is then taken as a string); the bounds are still errors."""
    import yaml

    if len(text) > max_bytes // 4 and len(text.encode("utf-8") if isinstance(text, str) else text) > max_bytes:
        raise _too_large(source, max_bytes)
    Loader, resolver, constructor = _yaml_classes()
    try:
        loader = Loader(text)
        try:
            _check_events(loader, source, resolver, constructor)
        finally:
            loader.dispose()
        loader = Loader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        if not syntax_errors:
            return NOT_YAML
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        raise _yaml_error(f"invalid YAML: {problem}", source, mark) from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        if not syntax_errors:
            return NOT_YAML
        raise _yaml_error(f"invalid YAML: {exc}", source) from None


def read_yaml_file(path: str | Path, what: str = "file", *, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """A YAML file through ``load_yaml``, read only up to the size cap (a FIFO or /dev/zero given as
    a file never hangs or fills memory). Missing or unreadable files raise SameError naming the path."""
    from same_nb.errors import SameError

    path = Path(path)
    try:
        if not path.is_file():
            raise SameError(f"cannot read {what}: " + ("no such file" if not path.exists() else "not a regular file"),
                            path=str(path))
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _too_large(str(path), max_bytes)
        text = data.decode("utf-8")
    except SameError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise SameError(f"cannot read {what}: {exc}", path=str(path)) from None
    return load_yaml(text, str(path), max_bytes=max_bytes)


def redact_url(url: str) -> str:
    """The URL as it may be shown: without ``user:password@`` (nor a token in place of the user)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//", url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


_SIZE = re.compile(r"(?P<num>\d+(\.\d+)?)\s*(?P<unit>[KMGT]i|[kKMGT])?B?")
_UNITS = {"": 1, "k": 1000, "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4,
          "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4}


def byte_size(value: Any) -> int | None:
    """A size in bytes from same.yaml: a whole number of bytes, or a string like "500Mi", "2G", "10GiB".
    None when the value is no such size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str) or len(value) > 40:
        return None
    match = _SIZE.fullmatch(value.strip())
    if not match:
        return None
    size = int(float(match["num"]) * _UNITS[match["unit"] or ""])
    return size if size > 0 else None
