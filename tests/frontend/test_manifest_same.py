"""SAME's same.yaml files: each field mapped to its same-nb meaning, or a warning naming it, never an error."""
from __future__ import annotations

from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.frontend.manifest import dump_manifest, load_manifest, manifest_diagnostics, resolve_manifest
from same_nb.frontend.manifest_same import dataset_url, is_same_api_version, same_dialect

from conftest import TESTS

CORPUS = TESTS / "corpus" / "same"

# SAME's test/data/testdata/same_configs/good_same.yaml, the fullest manifest in its repository.
GOOD_SAME = """\
apiVersion: sameproject.io/v1alpha1
metadata:
  name: SampleComplicatedNotebook
  version: 0.0.53
datasets:
  USER_HISTORY:
    schema_uri: http://schemas.contoso.org/user_schema
    environments:
      default: user_history.csv
      STAGING: s3://contoso_test_DS/reco/202101211344/user_data.parquet
      PROD: s3://contoso_DS/reco/202101250655/user_data.parquet
environments:
  default:
    image_tag: library/python:3.10-slim-buster
  python37:
    image_tag: library/python:3.7-slim-buster
    private_registry: false
  private_environment:
    image_tag: sameprivateregistry.azurecr.io/sample-private-org/sample-private-image:latest
    private_registry: true
    credentials:
      image_pull_secret_name: regcred
      image_pull_secret_password: hunter2
notebook:
  name: "Sample Complicated Notebook"
  path: sample_notebook.ipynb
run:
  name: "Sample Complicated Notebook - Run"
  sha: 24a95219b3fce8402561d6b713bb435d6d5d51f2132d3c32703df8562db5b718
  parameters:
    sample_parameter: 0.841
"""


def write(tmp_path: Path, text: str, name: str = "same.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fields(warnings: list[str]) -> list[str]:
    return [w.split(": ", 1)[0] for w in warnings]


def test_every_manifest_in_sames_repository_loads():
    manifests = sorted(p for p in CORPUS.rglob("*.yaml"))
    assert len(manifests) >= 40
    for path in manifests:
        m = load_manifest(path)                     # never raises on SAME's own files
        assert all(": " in w for w in m.warnings), path


def test_good_same_maps_each_field_and_warns_about_the_rest(tmp_path):
    m = load_manifest(write(tmp_path, GOOD_SAME))
    assert m.api_version == "sameproject.io/v1alpha1"
    assert (m.metadata.name, m.metadata.version) == ("SampleComplicatedNotebook", "0.0.53")
    assert m.environment.base_image == "library/python:3.10-slim-buster"      # environments.default.image_tag
    assert m.notebook.path == "sample_notebook.ipynb"
    assert m.run.parameters == {"sample_parameter": 0.841}
    assert m.datasets["USER_HISTORY"].url == "user_history.csv"               # environments.default
    assert fields(m.warnings) == [
        "notebook.name", "run.name", "run.sha",
        "environments.private_environment.private_registry",
        "environments.private_environment.credentials",
        "datasets.USER_HISTORY.schema_uri",
        "datasets.USER_HISTORY.environments.STAGING", "datasets.USER_HISTORY.environments.PROD",
    ]
    assert all(w.endswith("ignored") for w in m.warnings)
    assert not any("hunter2" in w or "regcred" in w for w in m.warnings)    # values are never echoed


@pytest.mark.parametrize("version", ["projectsame.io/v1alpha1", "sameproject.io/v1alpha1",
                                     "sameproject.ml/v1alpha1", "0.1.16"])
def test_sames_api_versions_load(tmp_path, version):
    m = load_manifest(write(tmp_path, f"apiVersion: {version}\nmetadata:\n  labels: []\n  name: x pipeline\n"
                                      "  version: 0.0.0\nnotebook:\n  name: x\n  path: x.ipynb\nrun:\n  name: x run\n"))
    assert m.api_version == version and m.metadata.labels == {} and m.metadata.name == "x pipeline"


def test_labels_list_becomes_a_mapping(tmp_path):
    m = load_manifest(write(tmp_path, "apiVersion: 0.1.16\nmetadata:\n"
                                      "  labels: [team=ml, 'owner: alice', gpu, {tier: 1}, [x]]\n"))
    assert m.metadata.labels == {"team": "ml", "owner": "alice", "gpu": "", "tier": "1"}
    assert m.warnings == ["metadata.labels[4]: not a label (a string or a mapping); ignored"]


def test_unknown_keys_and_bad_values_in_a_same_file_are_warnings(tmp_path):
    m = load_manifest(write(tmp_path, "apiVersion: projectsame.io/v1alpha1\nworkflow:\n  parameters: {kfp: 1}\n"
                                      "notebook:\n  path: 7\n  kernel: python3\nmetadata:\n  sha: abc\n  extra: 1\n"
                                      "run:\n  parameters: [1]\n  other: x\n"
                                      "environments:\n  default:\n    image_tag: ''\n"))
    assert m.notebook.path is None and m.notebook.kernel == "python3" and m.run.parameters == {}
    assert sorted(fields(m.warnings)) == sorted([
        "metadata.sha", "environments.default.image_tag", "workflow", "metadata.extra",
        "notebook.path", "run.parameters", "run.other"])


def test_same_nb_fields_in_a_same_file_keep_their_checks(tmp_path):
    with pytest.raises(SameError, match="run.retries: must be >= 0"):
        load_manifest(write(tmp_path, "apiVersion: sameproject.ml/v1alpha1\nrun:\n  retries: -1\n"))


def test_unknown_keys_stay_errors_in_same_nbs_own_format(tmp_path):
    with pytest.raises(SameError, match="environments: unknown key"):
        load_manifest(write(tmp_path, "apiVersion: same-nb/v1\nenvironments: {}\n"))


def test_a_file_without_apiversion_is_sames_when_it_has_a_same_only_field(tmp_path):
    assert same_dialect({"environments": {}}) and same_dialect({"notebook": {"name": "x"}})
    assert same_dialect({"metadata": {"labels": []}})
    assert same_dialect({"datasets": {"d": {"default": "x.csv"}}})              # SAME's test/sdk/data/same.yaml
    assert not same_dialect({"metadata": {"owner": "me"}}) and not same_dialect({"run": {"cache": True}})
    m = load_manifest(write(tmp_path, "environments:\n  default: {image_tag: 'library/python:3.9'}\n"))
    assert m.environment.base_image == "library/python:3.9" and m.warnings == []


def test_old_same_format_base_images_and_pipeline(tmp_path):
    m = load_manifest(write(tmp_path, "apiVersion: projectsame.io/v1alpha1\nmetadata: {version: 0.1}\n"
                                      "pipeline:\n  name: Sample\n  package: sample.ipynb\n  description: d\n"
                                      "base_images:\n  default:\n    image_tag: 'library/python:3.9-slim-buster'\n"
                                      "    packages: [numpy]\n    append_current_environment: true\n"
                                      "runtime_options:\n  wallet_private_key: '0xsecret'\n"))
    assert (m.metadata.name, m.metadata.version, m.notebook.path) == ("Sample", "0.1", "sample.ipynb")
    assert m.environment.base_image == "library/python:3.9-slim-buster"
    assert fields(m.warnings) == ["base_images.default.packages", "base_images.default.append_current_environment",
                                  "pipeline.description", "runtime_options"]
    assert not any("secret" in w for w in m.warnings)


@pytest.mark.parametrize("spec, url, dropped", [
    ({"environments": {"default": "a.csv"}}, "a.csv", []),
    ({"default": "https://h/a.csv", "PROD": "s3://b/a"}, "https://h/a.csv", ["PROD"]),
    ({"environments": {"default": "ipfs://Qm/x.json"}}, None, ["environments.default"]),
    ({"schema_uri": "u", "environments": {"prod": "x"}}, None, ["schema_uri", "environments.prod",
                                                                "environments.default"]),
])
def test_dataset_url_takes_the_default_environment(spec, url, dropped):
    got, left = dataset_url(spec)
    assert got == url and [p for p, _ in left] == dropped


def test_unsupported_dataset_scheme_is_a_warning_not_an_error(tmp_path):
    m = load_manifest(write(tmp_path, "apiVersion: projectsame.io/v1alpha1\ndatasets:\n  example:\n"
                                      "    environments:\n      default: ipfs://QmY/default.json\n"))
    assert m.datasets == {}
    assert m.warnings == ["datasets.example.environments.default: same-nb fetches local paths, file://, http:// "
                          "and https:// URLs, not ipfs://: the dataset is not declared"]


def test_is_same_api_version():
    assert is_same_api_version("0.1.16") and is_same_api_version(0.2) and is_same_api_version("sameproject.ml/v1alpha1")
    assert not is_same_api_version("same-nb/v1") and not is_same_api_version("v2") and not is_same_api_version(None)


def test_resolve_maps_environment_tags_to_step_images(tmp_path):
    m = load_manifest(write(tmp_path, GOOD_SAME))
    r = resolve_manifest(m, Path("sample_notebook.ipynb"), {"sample_parameter": 0.1}, ["a", "b", "c"],
                         {"a": ["same_step_1", "environment=private_environment"], "b": ["environment=gpu"],
                          "c": ["environment=default"]})
    assert r.step_config("a").image.startswith("sameprivateregistry.azurecr.io/")
    assert r.step_config("b").image == r.step_config("c").image == "library/python:3.10-slim-buster"
    assert r.warnings[-1].startswith("steps.b: tag 'environment=gpu' names no environment in same.yaml "
                                     "(environments: private_environment, python37)")
    assert "steps:\n  a:\n    image: sameprivateregistry" in dump_manifest(r)
    assert r.api_version == "same-nb/v1"


def test_resolve_is_lenient_with_a_same_manifest_for_another_notebook(tmp_path):
    m = load_manifest(write(tmp_path, GOOD_SAME))
    r = resolve_manifest(m, Path("good_notebook.ipynb"), {}, ["s"])
    assert r.notebook.path == "good_notebook.ipynb" and r.run.parameters == {}
    assert r.warnings[-2:] == [
        "notebook.path: the manifest is for 'sample_notebook.ipynb', not 'good_notebook.ipynb'; ignored (SAME manifest)",
        "run.parameters.sample_parameter: 'sample_parameter' is not a parameter of the notebook; known parameters: "
        "none; ignored (SAME manifest)"]
    with pytest.raises(SameError, match="the manifest is for"):          # same-nb's own format stays strict
        resolve_manifest(load_manifest(write(tmp_path, "notebook: {path: a.ipynb}\n", "own.yaml")),
                         Path("b.ipynb"), {}, [])


def test_warnings_become_diagnostics_naming_the_file(tmp_path):
    path = write(tmp_path, GOOD_SAME, "good_same.yaml")
    diags = manifest_diagnostics(load_manifest(path), path)
    assert all(d.code == "manifest" for d in diags)
    # A display name changes nothing a run computes: a note. A registry credential same-nb does not pass: a warning.
    assert diags[0].severity == "info" and diags[0].render().startswith("info: good_same.yaml: notebook.name: ")
    assert [d.severity for d in diags if "private_registry" in d.message] == ["warning"]


def test_inspect_shows_the_warnings(tmp_path):
    import json
    import shutil

    from same_nb.frontend.inspection import inspect_notebook

    src = CORPUS / "test" / "ops" / "testdata" / "same_notebooks" / "multienv"
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    insp = inspect_notebook(tmp_path / "multiple_images.ipynb")
    assert insp.ok
    rendered = [d.render() for d in insp.pipeline.diagnostics if d.code == "manifest"]
    assert "info: same.yaml: run.name: same-nb numbers its runs; ignored" in rendered
    assert insp.manifest.step_config("same_step_1").image.startswith("sameprivateregistry.azurecr.io/")
    assert json.dumps(insp.to_dict())                                     # still serialisable
