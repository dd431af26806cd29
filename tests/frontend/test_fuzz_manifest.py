"""Property test of same.yaml loading: whatever the file holds, `load_manifest` returns a Manifest or
raises SameError naming the file, never anything else.

Random documents built from the real schema's keys with random values, mutations of a valid
manifest, random YAML text and random bytes. ~100 examples by default; a long run:
    SAME_NB_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz_manifest.py -q
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from same_nb.errors import SameError
from same_nb.frontend.manifest import Manifest, load_manifest

from conftest import TESTS

EXAMPLES = int(os.environ.get("SAME_NB_FUZZ_EXAMPLES", "100"))
VALID = yaml.safe_load((TESTS / "manifests" / "full.yaml").read_text())

KEYS = ["apiVersion", "metadata", "name", "version", "labels", "notebook", "path", "kernel", "environment",
        "base_image", "python_version", "platform", "run", "parameters", "cache", "retries", "env",
        "datasets", "url", "sha256", "steps", "image", "resources", "cpu", "memory", "gpu", "accelerator",
        "cpu_limit", "memory_limit", "lineage", "openlineage", "transport", "endpoint", "namespace",
        "secrets", "secret", "key", "volumes", "pvc", "mount_path", "sub_path", "read_only", "index_url",
        "train", "", "é", "1", "null"]
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["500m", "4Gi", "2", "-1", "1e400", "0.5Ki", "nvidia", "http://x", "file:///etc",
                     "linux/x86_64", "3.11", "same-nb/v1", "../../etc/passwd", "a" * 300, "Inf", "NaN",
                     "/data", "db-creds", "DB_PASSWORD", "https://pypi.example.com/simple", "python:3.11-slim"]),
)
value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5)),
    max_leaves=20)


@st.composite
def mutated_valid(draw) -> object:
    """The valid manifest with a few values replaced, removed or retyped along random key paths."""
    doc = yaml.safe_load(yaml.safe_dump(VALID))
    for _ in range(draw(st.integers(1, 4))):
        node = doc
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node, key=str)))
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if not isinstance(node, dict):
            break
        key = draw(st.one_of(st.sampled_from(sorted(node, key=str) or ["x"]), st.sampled_from(KEYS)))
        if draw(st.booleans()) and key in node:
            del node[key]
        else:
            node[key] = draw(value)
    return doc


def _dump(data: object) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return repr(data)


documents = st.one_of(
    mutated_valid().map(_dump),
    st.dictionaries(st.sampled_from(KEYS), value, max_size=8).map(_dump),
    value.map(_dump),
    st.text(alphabet=st.sampled_from(list("{}[]:-,'\"&*!|>#%@` \n\tab1é")), max_size=80),
    st.sampled_from(["a: &x [*x]", "!!python/object:os.system ls", "a: !!binary ===", "? [a]\n: 1",
                     "a: 1\na: 2", "%YAML 9.9\n---\na: 1", "--- 1\n--- 2", "a: b: c"]),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
@given(content=st.one_of(documents.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=200)))
def test_load_manifest_returns_a_manifest_or_raises_same_error_naming_the_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "same.yaml"
        path.write_bytes(content)
        try:
            manifest = load_manifest(path)
        except SameError as exc:
            assert exc.path == str(path), exc.to_dict()
            assert exc.message.strip()
        else:
            assert isinstance(manifest, Manifest)


def test_the_valid_manifest_still_loads() -> None:
    """The mutation seed must itself be valid, or every mutated example would only test errors."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "same.yaml"
        path.write_text(yaml.safe_dump(VALID))
        assert load_manifest(path).metadata.name == "iris-train"
