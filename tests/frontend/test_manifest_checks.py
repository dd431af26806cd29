"""same.yaml's `checks` section (frontend/manifest_checks.py): shape, defaults and one line per problem."""
from __future__ import annotations

import pytest

from same_nb.errors import SameError
from same_nb.frontend.manifest import load_manifest


def _load(tmp_path, text: str):
    path = tmp_path / "same.yaml"
    path.write_text(text)
    return load_manifest(path)


def test_checks_load_with_defaults(tmp_path):
    manifest = _load(tmp_path, "checks:\n  drift: {psi_fail: 0.25}\n")
    assert manifest.checks.to_config() == {"baseline": "previous", "schema": "warn",
                                           "drift": {"psi_warn": None, "psi_fail": 0.25, "variables": None}}
    full = _load(tmp_path, "checks: {baseline: 7, schema: fail, drift: {psi_warn: 0.1, psi_fail: 1, "
                           "variables: [df, X_train]}}\n")
    assert full.checks.to_config() == {"baseline": 7, "schema": "fail",
                                       "drift": {"psi_warn": 0.1, "psi_fail": 1.0, "variables": ["df", "X_train"]}}
    assert _load(tmp_path, "run: {cache: true}\n").checks is None


@pytest.mark.parametrize(("text", "message"), [
    ("checks: {drift: {psi_warn: 0.3, psi_fail: 0.25}}", "checks.drift: psi_warn 0.3 is above psi_fail 0.25"),
    ("checks: {drift: {psi_warn: 0}}", "checks.drift.psi_warn: '0' is not a PSI threshold"),
    ("checks: {drift: {psi_fail: 'high'}}", "checks.drift.psi_fail: 'high' is not a PSI threshold"),
    ("checks: {drift: {psi_fail: true}}", "checks.drift.psi_fail: 'True' is not a PSI threshold"),
    ("checks: {drift: {}}", "checks.drift: set psi_warn, psi_fail or both"),
    ("checks: {drift: {psi_fail: 0.2, variables: ['a b']}}", "checks.drift.variables[0]: 'a b' is not a Python"),
    ("checks: {schema: loud}", "checks.schema: 'loud' is not one of 'off', 'warn' or 'fail'"),
    ("checks: {baseline: latest}", "checks.baseline: 'latest' is not a baseline"),
    ("checks: {baseline: 0}", "checks.baseline: '0' is not a baseline"),
    ("checks: {drift: {psi_fail: 0.2, psi: 1}}", "checks.drift.psi"),
])
def test_bad_checks_name_the_field(tmp_path, text, message):
    with pytest.raises(SameError) as caught:
        _load(tmp_path, text + "\n")
    assert message in str(caught.value) and str(tmp_path / "same.yaml") in str(caught.value)


def test_checks_survive_the_compiled_dump(tmp_path):
    import yaml

    from same_nb.frontend.manifest_dump import dump_manifest
    from same_nb.frontend.manifest_schema import Manifest

    manifest = _load(tmp_path, "checks: {schema: off, drift: {psi_warn: 0.1, variables: [df]}}\n")
    again = Manifest.model_validate(yaml.safe_load(dump_manifest(manifest)))
    assert again.checks == manifest.checks and again.checks.to_config()["schema"] == "off"
