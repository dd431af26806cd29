"""SAME's same.yaml, read as same-nb's: each SAME field mapped to its same-nb meaning, or reported.

SAME (https://github.com/SAME-Project/same-project) validates its manifests with the cerberus schema in
``sameproject/data/config.py``; its samples and test data use the apiVersions below. A field with a
same-nb meaning is mapped (``environments.default.image_tag`` → ``environment.base_image``,
``notebook.path`` → the notebook, a dataset's ``environments.default`` URL → ``datasets.NAME.url``,
``metadata.labels`` as a list → labels, other environments → the image of steps tagged
``environment=NAME``); every other SAME field is dropped with a warning that names its path, never an
error. Values are never echoed in warnings: SAME files carry registry passwords and wallet keys.

Standard library only: the run store reads datasets with this module, inside step kernels too.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
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
