"""same.yaml loading, validation messages, resolution against a notebook, and deterministic dumps."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from same_nb.errors import SameError
from same_nb.frontend.manifest import (
    DEFAULT_IMAGE,
    Manifest,
    default_manifest,
    dump_manifest,
    find_manifest,
    load_manifest,
    resolve_manifest,
    slugify_name,
)

from conftest import TESTS

FIXTURES = TESTS / "manifests"
NOTEBOOK_PARAMS = {"alpha": 0.5, "epochs": 10, "tag": None}
STEPS = ["prepare", "train", "evaluate"]


def write(tmp_path: Path, text: str, name: str = "same.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> SameError:
    with pytest.raises(SameError) as info:
        load_manifest(path)
    return info.value


# ---- valid files -------------------------------------------------------------------------------

def test_full_manifest_loads_every_section():
    m = load_manifest(FIXTURES / "full.yaml")
    assert m.api_version == "same-nb/v1"
    assert m.metadata.name == "iris-train" and m.metadata.version == "0.1.0"
    assert m.metadata.labels == {"team": "ml", "example.com/owner": "alice"}
    assert m.notebook.path == "train.ipynb" and m.notebook.kernel == "python3"
    assert m.environment.python_version == "3.11" and m.environment.platform == "linux/x86_64"
    assert m.run.parameters == {"alpha": 0.9, "epochs": 3}
    assert (m.run.cache, m.run.retries) == (True, 1)
    assert m.datasets["iris"].url == "data/iris.csv" and len(m.datasets["iris"].sha256) == 64
    assert m.datasets["remote"].sha256 is None
    train = m.steps["train"].resources
    assert (train.cpu, train.memory, train.gpu, train.accelerator) == ("2", "4Gi", 1, "nvidia-tesla-t4")
    assert (train.cpu_limit, train.memory_limit) == ("4", "8Gi")
    assert m.lineage.openlineage.transport == "file" and m.lineage.openlineage.path == "events.jsonl"


def test_same_project_api_version_is_accepted():
    m = load_manifest(FIXTURES / "same_style.yaml")
    assert m.api_version == "sameproject.ml/v1alpha1"
    assert m.run.parameters["sample_complicated_parameter"]["field_list"] == ["first", "second"]


def test_http_lineage_transport():
    ol = load_manifest(FIXTURES / "http_lineage.yaml").lineage.openlineage
    assert (ol.transport, ol.url, ol.endpoint) == ("http", "http://127.0.0.1:5000", "api/v1/lineage")


def test_minimal_file_gets_defaults(tmp_path):
    m = load_manifest(write(tmp_path, "apiVersion: same-nb/v1\nsteps:\n"))   # null section = absent
    assert m.metadata.name is None and m.steps == {} and m.datasets == {} and m.lineage is None
    assert (m.run.cache, m.run.retries, m.run.env) == (True, 0, {})
    assert m.environment.base_image == DEFAULT_IMAGE


def test_numeric_cpu_is_read_as_a_quantity(tmp_path):
    m = load_manifest(write(tmp_path, "steps:\n  train:\n    resources: {cpu: 2, cpu_limit: 2.5}\n"))
    assert (m.steps["train"].resources.cpu, m.steps["train"].resources.cpu_limit) == ("2", "2.5")


@pytest.mark.parametrize("quantity", ["500m", "2", "0.5", "4Gi", "512Mi", "1e3", "1.5G", "100k"])
def test_kubernetes_quantities_accepted(tmp_path, quantity):
    m = load_manifest(write(tmp_path, f"steps:\n  s:\n    resources: {{memory: '{quantity}'}}\n"))
    assert m.steps["s"].resources.memory == quantity


# ---- errors ------------------------------------------------------------------------------------

def test_bad_quantity_names_file_and_field_path():
    path = FIXTURES / "bad_quantity.yaml"
    err = error_of(path)
    assert str(err).startswith(f"{path}: steps.train.resources.memory: 'lots' is not a Kubernetes quantity")
    assert err.path == str(path)


def test_all_problems_reported_together_one_line_each():
    path = FIXTURES / "many_errors.yaml"
    lines = str(error_of(path)).splitlines()
    assert len(lines) == 5, lines
    assert all(line.startswith(f"{path}: ") for line in lines)
    body = [line[len(f"{path}: "):] for line in lines]
    assert "run.retries: must be >= 0, got -1" in body
    assert "run.cache: expected true or false, got str 'yes'" in body
    assert any(b.startswith("datasets.iris.sha256: 'NOT-A-HASH' is not a valid sha256") for b in body)
    assert any(b.startswith("steps.train.resources.memory: 'lots'") for b in body)
    assert "notebok: unknown key (did you mean 'notebook'?)" in body


@pytest.mark.parametrize("text, expected", [
    ("apiVersion: v2\n", "apiVersion: 'v2' is not one of"),
    ("metadata:\n  owner: me\n", "metadata.owner: unknown key (valid keys: name, version, labels)"),
    ("steps:\n  train:\n    imagee: x\n", "steps.train.imagee: unknown key (did you mean 'image'?)"),
    ("steps:\n  train:\n    resources: {cpus: 2}\n", "steps.train.resources.cpus: unknown key (did you mean 'cpu'?)"),
    ("steps:\n  'bad name': {}\n", "steps['bad name']: 'bad name' is not a valid step name"),
    ("steps:\n  1st: {}\n", "steps.1st: '1st' is not a valid step name"),
    ("steps:\n  train: [1]\n", "steps.train: expected a mapping, got a list"),
    ("steps:\n  train: {retries: -2}\n", "steps.train.retries: must be >= 0, got -2"),
    ("steps:\n  train: {cache: 1}\n", "steps.train.cache: expected true or false, got int 1"),
    ("steps:\n  train:\n    resources: {gpu: two}\n", "steps.train.resources.gpu: expected an integer, got str 'two'"),
    ("steps:\n  t:\n    resources: {cpu: '2', cpu_limit: 1}\n", "steps.t.resources: cpu_limit '1' is less than cpu '2'"),
    ("steps:\n  t:\n    resources: {memory: 1Gi, memory_limit: 512Mi}\n",
     "steps.t.resources: memory_limit '512Mi' is less than memory '1Gi'"),
    ("steps:\n  t:\n    resources: {cpu: -1}\n", "steps.t.resources.cpu: '-1' is not a Kubernetes quantity"),
    ("run:\n  retries: 1.5\n", "run.retries: expected an integer, got float 1.5"),
    ("run:\n  env: {PORT: 80}\n", "run.env.PORT: expected a string, got int 80 (quote it in YAML)"),
    ("run:\n  env: {'9LIVES': x}\n", "run.env.9LIVES: '9LIVES' is not a valid environment variable name"),
    ("run:\n  parameters: [1]\n", "run.parameters: expected a mapping, got a list"),
    ("environment:\n  python_version: 3.10\n",
     "environment.python_version: expected a string, got float 3.1 (quote it in YAML)"),
    ("metadata:\n  labels: {team: 7}\n", "metadata.labels.team: expected a string, got int 7"),
    ("metadata:\n  name: ''\n", "metadata.name: must not be empty"),
    ("datasets:\n  d: {}\n", "datasets.d.url: is required"),
    ("datasets:\n  d: {url: 's3://b/k'}\n", "datasets.d.url: unsupported URL scheme 's3'"),
    ("datasets:\n  d: {url: x, sha256: " + "A" * 64 + "}\n", "datasets.d.sha256: 'AAAA"),
    ("lineage:\n  openlineage: {transport: file}\n", "lineage.openlineage: transport 'file' needs 'path'"),
    ("lineage:\n  openlineage: {transport: http, url: 'http://h', path: x}\n",
     "lineage.openlineage: path not used with transport 'http'"),
    ("lineage:\n  openlineage: {transport: kafka, path: x}\n", "lineage.openlineage.transport: 'kafka' is not one of"),
    # Kubernetes secrets, volumes and images: every value that reaches pipeline.py or a Dockerfile
    ("run:\n  secrets: {DB_PASSWORD: {secret: Db_Creds, key: password}}\n",
     "run.secrets.DB_PASSWORD.secret: 'Db_Creds' is not a Kubernetes object name"),
    ("run:\n  secrets: {DB_PASSWORD: {secret: \"db$(id)\", key: password}}\n",
     "run.secrets.DB_PASSWORD.secret: 'db$(id)' is not a Kubernetes object name"),
    ("run:\n  secrets: {DB_PASSWORD: {secret: db, key: \"pass word\"}}\n",
     "run.secrets.DB_PASSWORD.key: 'pass word' is not a valid Secret key"),
    ("run:\n  secrets: {DB.PASSWORD: {secret: db, key: password}}\n",
     "run.secrets['DB.PASSWORD']: 'DB.PASSWORD' is not a valid environment variable name for a secret"),
    ("run:\n  secrets: {DB_PASSWORD: {secret: db}}\n", "run.secrets.DB_PASSWORD.key: is required"),
    ("run:\n  secrets: {DB_PASSWORD: hunter2}\n", "run.secrets.DB_PASSWORD: expected a mapping, got str 'hunter2'"),
    ("run:\n  env: {A: x}\n  secrets: {A: {secret: db, key: a}}\n", "run: A set in both env and secrets; keep one"),
    ("steps:\n  t:\n    env: {A: x}\n    secrets: {A: {secret: db, key: a}}\n",
     "steps.t: A set in both env and secrets; keep one"),
    ("run:\n  volumes: [{pvc: data, mount_path: data}]\n", "run.volumes[0].mount_path: 'data' is not a mount path"),
    ("run:\n  volumes: [{pvc: data, mount_path: /a/../etc}]\n", "run.volumes[0].mount_path: '/a/../etc' is not a mount"),
    ("run:\n  volumes: [{pvc: data, mount_path: \"/data\\nx\"}]\n", "run.volumes[0].mount_path: '/data\\nx' is not a"),
    ("run:\n  volumes: [{pvc: data, mount_path: /opt/same-nb}]\n",
     "run.volumes[0].mount_path: '/opt/same-nb' would hide /opt/same-nb"),
    ("run:\n  volumes: [{pvc: Data_1, mount_path: /data}]\n", "run.volumes[0].pvc: 'Data_1' is not a Kubernetes object"),
    ("run:\n  volumes: [{pvc: d, mount_path: /d, sub_path: /abs}]\n", "run.volumes[0].sub_path: '/abs' is not a sub-path"),
    ("run:\n  volumes: [{pvc: d, mount_path: /d, read_only: true}]\n",
     "run.volumes[0].read_only: Kubeflow (kfp-kubernetes' mount_pvc) mounts a claim read-write only"),
    ("run:\n  volumes: [{pvc: a, mount_path: /d}, {pvc: b, mount_path: /d/}]\n",
     "run.volumes: two volumes are mounted at '/d'"),
    ("environment:\n  index_url: http://pypi.example.com/simple\n",
     "environment.index_url: 'http://pypi.example.com/simple' is not an https:// URL"),
    ("environment:\n  index_url: \"https://pypi.example.com/simple\\\"; curl x\"\n",
     "environment.index_url: 'https://pypi.example.com/simple\"; curl x' is not a URL"),
    ("environment:\n  index_url: \"https://u:tok@pypi.example.com/simple\"\n",
     "environment.index_url: must not hold credentials"),
    ("environment:\n  image: \"registry.example.com/Team/churn\"\n",
     "environment.image: 'registry.example.com/Team/churn' is not an image reference"),
    ("environment:\n  base_image: \"python:3.11\\nRUN curl x | sh\"\n",
     "environment.base_image: 'python:3.11\\nRUN curl x | sh' is not an image reference"),
    ("steps:\n  t: {image: \"python:3.11 $(id)\"}\n", "steps.t.image: 'python:3.11 $(id)' is not an image reference"),
])
def test_each_kind_of_error_names_its_field(tmp_path, text, expected):
    path = write(tmp_path, text)
    err = error_of(path)
    assert str(err).startswith(f"{path}: {expected}"), str(err)
    assert len(str(err).splitlines()) == 1


def test_yaml_syntax_error_names_line_and_column():
    err = error_of(FIXTURES / "syntax_error.yaml")
    assert err.line == 5
    assert "invalid YAML" in err.message and "column" in err.message
    assert str(err).startswith(f"{FIXTURES / 'syntax_error.yaml'}, line 5: ")


def test_duplicate_key_is_an_error_not_a_silent_overwrite():
    err = error_of(FIXTURES / "duplicate_key.yaml")
    assert err.line == 5 and "duplicate key 'train'" in err.message


def test_empty_file_is_an_error():
    err = error_of(FIXTURES / "empty.yaml")
    assert err.message == "is empty" and err.path.endswith("empty.yaml")


def test_top_level_must_be_a_mapping(tmp_path):
    assert "top level must be a mapping" in error_of(write(tmp_path, "- a\n- b\n")).message


def test_missing_and_unreadable_files(tmp_path):
    assert error_of(tmp_path / "nope.yaml").message == "manifest not found"
    assert "cannot read manifest" in error_of(tmp_path).message
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"metadata:\n  name: caf\xe9\n")
    assert "cannot read manifest" in error_of(bad).message


# ---- finding -----------------------------------------------------------------------------------

def test_find_manifest(tmp_path):
    notebook = tmp_path / "train.ipynb"
    assert find_manifest(notebook) is None
    beside = write(tmp_path, "run: {}\n")
    assert find_manifest(notebook) == beside
    other = write(tmp_path, "run: {}\n", "other.yaml")
    assert find_manifest(notebook, other) == other
    with pytest.raises(SameError, match="manifest not found"):
        find_manifest(notebook, tmp_path / "missing.yaml")
    with pytest.raises(SameError, match="not a file"):
        find_manifest(notebook, tmp_path)


# ---- defaults and resolution -------------------------------------------------------------------

def test_default_manifest_uses_slugified_notebook_stem():
    m = default_manifest(Path("work/My Training_Notebook v2.ipynb"))
    assert m.metadata.name == "my-training-notebook-v2"
    assert m.notebook.path == "My Training_Notebook v2.ipynb"
    assert m.step_config("anything").image == DEFAULT_IMAGE


@pytest.mark.parametrize("text, slug", [
    ("Train Model", "train-model"), ("__x__", "x"), ("Café.Étude", "cafe-etude"),
    ("01_load", "01-load"), ("a" * 80, "a" * 63), ("日本", ""),
])
def test_slugify_name(text, slug):
    assert slugify_name(text) == slug


def test_resolve_without_manifest_fills_defaults():
    m = resolve_manifest(None, Path("nb/iris.ipynb"), NOTEBOOK_PARAMS, STEPS)
    assert (m.metadata.name, m.notebook.path, m.api_version) == ("iris", "iris.ipynb", "same-nb/v1")
    assert m.run.parameters == NOTEBOOK_PARAMS


def test_resolve_merges_parameters_with_manifest_winning():
    source = load_manifest(FIXTURES / "full.yaml")
    m = resolve_manifest(source, Path("train.ipynb"), NOTEBOOK_PARAMS, STEPS)
    assert m.run.parameters == {"alpha": 0.9, "epochs": 3, "tag": None}
    assert m.metadata.name == "iris-train"
    assert source.run.parameters == {"alpha": 0.9, "epochs": 3}   # the input is not mutated


def test_resolve_normalises_same_api_version():
    m = resolve_manifest(load_manifest(FIXTURES / "same_style.yaml"), Path("sample_notebook.ipynb"),
                         {"sample_parameter": 1.0, "sample_complicated_parameter": {}}, [])
    assert m.api_version == "same-nb/v1" and m.metadata.name == "SampleNotebook"


def test_resolve_rejects_unknown_parameter_listing_valid_ones(tmp_path):
    m = load_manifest(write(tmp_path, "run:\n  parameters: {alpah: 1}\n"))
    with pytest.raises(SameError) as info:
        resolve_manifest(m, tmp_path / "nb.ipynb", NOTEBOOK_PARAMS, STEPS)
    assert str(info.value) == ("run.parameters.alpah: 'alpah' is not a parameter of the notebook "
                               "(did you mean 'alpha'?); known parameters: alpha, epochs, tag")


def test_resolve_rejects_unknown_step_listing_known_ones(tmp_path):
    m = load_manifest(write(tmp_path, "steps:\n  trian: {retries: 1}\n  deploy: {}\n"))
    with pytest.raises(SameError) as info:
        resolve_manifest(m, tmp_path / "nb.ipynb", {}, STEPS)
    lines = str(info.value).splitlines()
    assert lines == [
        "steps.trian: 'trian' is not a step of the notebook (did you mean 'train'?); "
        "known steps: evaluate, prepare, train",
        "steps.deploy: 'deploy' is not a step of the notebook; known steps: evaluate, prepare, train",
    ]


def test_resolve_rejects_manifest_for_another_notebook():
    m = load_manifest(FIXTURES / "full.yaml")
    with pytest.raises(SameError, match="the manifest is for 'train.ipynb', not 'eval.ipynb'"):
        resolve_manifest(m, Path("eval.ipynb"), NOTEBOOK_PARAMS, STEPS)


def test_step_config_merges_override_over_run_defaults():
    m = load_manifest(FIXTURES / "full.yaml")
    train = m.step_config("train")
    assert (train.image, train.retries, train.cache) == ("python:3.11", 2, False)
    assert train.env == {"LOG_LEVEL": "info", "MODE": "train"}
    assert train.resources.memory_limit == "8Gi"
    prepare = m.step_config("prepare")
    assert (prepare.image, prepare.retries, prepare.cache) == (DEFAULT_IMAGE, 1, True)
    assert prepare.env == {"LOG_LEVEL": "info", "MODE": "run"}
    assert prepare.resources.cpu == "500m"
    assert m.step_config("evaluate").resources.cpu is None


def test_kubernetes_settings_load_and_merge_per_step(tmp_path):
    m = load_manifest(write(tmp_path, """
environment:
  index_url: https://pypi.example.com/simple
  image: registry.example.com:5000/team/churn
  base_image: python:3.11-slim@sha256:""" + "ab" * 32 + """
run:
  env: {MODE: run, SHARED: x}
  secrets:
    DB_PASSWORD: {secret: db-creds, key: password}
    API_TOKEN: {secret: api, key: token}
  volumes: [{pvc: data, mount_path: /data}, {pvc: cache, mount_path: /cache}]
steps:
  train:
    env: {API_TOKEN_FILE: /data/t}
    secrets: {SHARED: {secret: other, key: shared}, API_TOKEN: {secret: api2, key: t}}
    volumes: [{pvc: scratch, mount_path: /data/, sub_path: train}]
"""))
    assert m.environment.index_url == "https://pypi.example.com/simple"
    assert m.environment.image == "registry.example.com:5000/team/churn"
    train, other = m.step_config("train"), m.step_config("other")
    # a step's entry replaces the run's of that name, env or secret alike; a mount path replaces its mount
    assert train.env == {"MODE": "run", "API_TOKEN_FILE": "/data/t"}
    assert {k: (v.secret, v.key) for k, v in train.secrets.items()} == {
        "DB_PASSWORD": ("db-creds", "password"), "API_TOKEN": ("api2", "t"), "SHARED": ("other", "shared")}
    assert sorted((v.pvc, v.mount_path, v.sub_path) for v in train.volumes) == [
        ("cache", "/cache", None), ("scratch", "/data/", "train")]
    assert other.env == {"MODE": "run", "SHARED": "x"} and sorted(other.secrets) == ["API_TOKEN", "DB_PASSWORD"]
    assert [v.pvc for v in other.volumes] == ["data", "cache"]
    # errors name the field a setting came from
    assert train.field_of("secrets", "API_TOKEN") == "steps.train.secrets.API_TOKEN"
    assert train.field_of("secrets", "DB_PASSWORD") == "run.secrets.DB_PASSWORD"
    assert train.field_of("env", "MODE") == "run.env.MODE"
    assert train.field_of("resources", "accelerator") == "steps.train.resources.accelerator"


@pytest.mark.parametrize("image", ["python", "python:3.11-slim", "library/python:3.10-slim-buster",
                                   "registry.example.com/team/churn", "localhost:5000/a/b:v1.2",
                                   "ghcr.io/org/img@sha256:" + "0" * 64, "python:3.11@sha256:" + "f" * 64,
                                   "public.ecr.aws/j1r0q0g6/notebooks/notebook-servers/codeserver-python:v1.5.0",
                                   "[::1]:5000/x"])
def test_image_references_docker_accepts_load(tmp_path, image):
    m = load_manifest(write(tmp_path, f"environment: {{base_image: '{image}', image: '{image}'}}\n"))
    assert m.environment.base_image == m.environment.image == image


def test_step_config_uses_environment_base_image(tmp_path):
    m = load_manifest(write(tmp_path, "environment: {base_image: 'registry.local/ml:1'}\n"))
    assert m.step_config("train").image == "registry.local/ml:1"


# ---- dumping -----------------------------------------------------------------------------------

def test_dump_is_deterministic_and_round_trips(tmp_path):
    m = resolve_manifest(load_manifest(FIXTURES / "full.yaml"), Path("train.ipynb"), NOTEBOOK_PARAMS, STEPS)
    text = dump_manifest(m)
    again = resolve_manifest(load_manifest(FIXTURES / "full.yaml"), Path("train.ipynb"), NOTEBOOK_PARAMS, STEPS)
    assert dump_manifest(again) == text
    reloaded = load_manifest(write(tmp_path, text))
    assert reloaded == m
    assert dump_manifest(reloaded) == text


def test_dump_field_order_sorted_maps_no_aliases_no_nulls():
    params = {"zeta": [1, 2], "alpha": {"b": 1, "a": 2}, "shared": [1, 2], "tag": None}
    params["shared2"] = params["shared"]   # the same object twice would give a YAML alias
    m = resolve_manifest(None, Path("nb.ipynb"), params, [])
    text = dump_manifest(m)
    top = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert top == ["apiVersion", "metadata", "notebook", "environment", "run", "datasets", "steps"]
    assert "&" not in text and "*" not in text
    keys = [line.strip().split(":")[0] for line in text.split("parameters:")[1].splitlines()
            if line.startswith("    ") and line[4] not in " -"]
    assert keys == sorted(keys) == ["alpha", "shared", "shared2", "tag", "zeta"]
    assert "tag: null" in text           # a None parameter default is a value, not an unset field
    assert "lineage" not in text and "version" not in text and "kernel" not in text


def test_dump_writes_tuples_as_lists_and_rejects_unrepresentable_values(tmp_path):
    m = resolve_manifest(None, Path("nb.ipynb"), {"sizes": (1, 2)}, [])
    assert load_manifest(write(tmp_path, dump_manifest(m))).run.parameters == {"sizes": [1, 2]}
    bad = resolve_manifest(None, Path("nb.ipynb"), {"z": 1 + 2j}, [])
    with pytest.raises(SameError, match="cannot write same.yaml"):
        dump_manifest(bad)


def test_dump_of_a_set_parameter_does_not_depend_on_hash_seed(tmp_path):
    script = ("from pathlib import Path; from same_nb.frontend.manifest import resolve_manifest, dump_manifest; "
              "print(dump_manifest(resolve_manifest(None, Path('nb.ipynb'), "
              "{'tags': {'alpha', 'beta', 'gamma', 'delta', 'eps'}}, [])))")
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(outputs) == 1
    reloaded = load_manifest(write(tmp_path, outputs.pop()))
    assert reloaded.run.parameters == {"tags": {"alpha", "beta", "gamma", "delta", "eps"}}


def test_manifest_model_rejects_unknown_keys_directly():
    with pytest.raises(ValidationError, match="bogus"):
        Manifest.model_validate({"bogus": 1})
