"""same_nb.envs.pylock: wheel tags against a target, pylock.toml → target-only hashed requirements, uv's
explanations of unsolvable resolutions read for the name at fault. No network here."""
from __future__ import annotations

import pytest

from same_nb.envs.pylock import _blame, _cause, load_toml, parse_wheel_filename, render, select, wheel_matches

LINUX = "x86_64-manylinux_2_28"


def test_wheel_file_names_expand_compressed_tag_sets():
    name, version, tags = parse_wheel_filename(
        "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl")
    assert (name, version) == ("numpy", "2.4.6")
    assert tags == {("cp311", "cp311", "manylinux_2_27_x86_64"), ("cp311", "cp311", "manylinux_2_28_x86_64")}
    assert ("py2", "none", "any") in parse_wheel_filename("six-1.17.0-py2.py3-none-any.whl")[2]
    assert parse_wheel_filename("pkg-1.0-1build-py3-none-any.whl")[1] == "1.0"
    with pytest.raises(ValueError):
        parse_wheel_filename("pkg-1.0.tar.gz")


@pytest.mark.parametrize("filename, ok", [
    ("numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", True),
    ("numpy-2.4.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
    ("numpy-1.0-cp311-cp311-manylinux1_x86_64.whl", True),
    ("numpy-1.0-cp311-cp311-linux_x86_64.whl", True),
    ("numpy-2.4.6-cp311-cp311-manylinux_2_34_x86_64.whl", False),       # needs a newer glibc
    ("numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl", False),       # another Python
    ("numpy-2.4.6-cp311-cp311t-manylinux_2_28_x86_64.whl", False),      # free-threaded ABI
    ("numpy-2.4.6-cp311-cp311-manylinux_2_28_aarch64.whl", False),
    ("numpy-2.4.6-cp311-cp311-musllinux_1_2_x86_64.whl", False),
    ("numpy-2.4.6-cp311-cp311-win_amd64.whl", False),
    ("numpy-2.4.6-cp311-cp311-macosx_11_0_arm64.whl", False),
    ("cryptography-46-cp38-abi3-manylinux_2_28_x86_64.whl", True),       # the stable ABI, from 3.8 on
    ("cryptography-46-cp312-abi3-manylinux_2_28_x86_64.whl", False),     # ... but from 3.12 on
    ("uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
    ("six-1.17.0-py2.py3-none-any.whl", True),
    ("tomli-2.0-py311-none-any.whl", True),
    ("future-2.0-py313-none-any.whl", False),
    ("pkg-1.0-cp311-none-any.whl", True),
])
def test_wheels_match_cpython_311_on_manylinux_2_28_x86_64(filename, ok):
    assert wheel_matches(filename, "3.11", LINUX) is ok


def test_other_targets():
    assert wheel_matches("numpy-2.4.6-cp312-cp312-macosx_11_0_arm64.whl", "3.12", "aarch64-apple-darwin")
    assert wheel_matches("numpy-2.4.6-cp312-cp312-macosx_10_13_universal2.whl", "3.12", "macos")
    assert not wheel_matches("numpy-2.4.6-cp312-cp312-macosx_14_0_arm64.whl", "3.12", "macos")
    assert not wheel_matches("numpy-2.4.6-cp312-cp312-macosx_11_0_x86_64.whl", "3.12", "aarch64-apple-darwin")
    assert wheel_matches("numpy-2.4.6-cp312-cp312-win_amd64.whl", "3.12", "windows")
    assert not wheel_matches("numpy-2.4.6-cp312-cp312-win32.whl", "3.12", "x86_64-pc-windows-msvc")
    assert wheel_matches("numpy-2.4.6-cp312-cp312-musllinux_1_2_x86_64.whl", "3.12", "x86_64-unknown-linux-musl")
    assert not wheel_matches("numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl", "3.12",
                             "x86_64-unknown-linux-musl")
    assert wheel_matches("numpy-2.4.6-cp312-cp312-manylinux_2_28_aarch64.whl", "3.12", "aarch64-manylinux_2_28")
    assert not wheel_matches("numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl", "3.12", "x86_64-manylinux2014")
    # A platform this module does not model: uv's own choice of wheels stands.
    assert wheel_matches("numpy-2.4.6-cp312-cp312-android_24_arm64_v8a.whl", "3.12", "aarch64-linux-android")


def wheel(filename: str, digest: str) -> dict:
    return {"url": f"https://files.example/packages/ab/{filename}", "hashes": {"sha256": digest}}


PYLOCK = {
    "packages": [
        {"name": "numpy", "version": "2.4.6",
         "sdist": {"url": "https://files.example/numpy-2.4.6.tar.gz", "hashes": {"sha256": "0" * 64}},
         "wheels": [wheel("numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "1" * 64),
                    wheel("numpy-2.4.6-cp311-cp311-win_amd64.whl", "2" * 64),
                    wheel("numpy-2.4.6-cp311-cp311-macosx_11_0_arm64.whl", "3" * 64),
                    wheel("numpy-2.4.6-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "4" * 64)]},
        {"name": "oldpkg", "version": "1.0", "marker": "python_version < '3.13'",
         "sdist": {"name": "oldpkg-1.0.tar.gz", "url": "https://files.example/oldpkg-1.0.tar.gz",
                   "hashes": {"sha256": "5" * 64}},
         "wheels": [wheel("oldpkg-1.0-cp39-cp39-win_amd64.whl", "6" * 64)]},
        {"name": "fromgit", "version": "0.1", "vcs": {"type": "git", "url": "https://example/x.git",
                                                      "commit-id": "abc"}},
        {"name": "nofiles", "version": "2.0", "wheels": [wheel("nofiles-2.0-cp311-cp311-win_amd64.whl", "7" * 64)]},
    ]}


def test_select_keeps_the_targets_wheels_else_the_sdist():
    packages, problems = select(PYLOCK, "3.11", LINUX)
    by_name = {p.name: p for p in packages}
    assert by_name["numpy"].hashes == ["sha256:" + "1" * 64]
    assert by_name["numpy"].files == ["numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"]
    assert by_name["oldpkg"].files == ["oldpkg-1.0.tar.gz"] and by_name["oldpkg"].hashes == ["sha256:" + "5" * 64]
    assert set(problems) == {"fromgit", "nofiles"}
    assert "cannot carry a hash" in problems["fromgit"]
    assert "nofiles 2.0 has no file with a hash for Python 3.11" in problems["nofiles"]
    assert render(packages) == (
        f"numpy==2.4.6 \\\n    --hash=sha256:{'1' * 64}\n"
        f"oldpkg==1.0 ; python_version < '3.13' \\\n    --hash=sha256:{'5' * 64}\n")


def test_load_toml_reads_uvs_inline_tables():
    text = ('lock-version = "1.0"\n[[packages]]\nname = "six"\nversion = "1.17.0"\n'
            'wheels = [{ url = "https://files.example/six-1.17.0-py2.py3-none-any.whl", hashes = { sha256 = "'
            + "a" * 64 + '" } }]\n')
    packages, problems = select(load_toml(text), "3.11", LINUX)
    assert [(p.name, p.hashes) for p in packages] == [("six", ["sha256:" + "a" * 64])] and not problems


UNSOLVED = "error: No solution found when resolving dependencies\n  cause: Because "
CONCLUSION = ", we can conclude that your requirements are unsatisfiable.\n"
NOT_FOUND = (UNSOLVED + "same-nb-env-missing-q7 was not found in the package registry and you require "
             "same-nb-env-missing-q7" + CONCLUSION)
LOCAL_VERSION = (UNSOLVED + "there is no version of numpy{python_full_version < '3.14'}==2.4.6+local and "
                 "pandas>=3.1.1 depends on numpy{python_full_version < '3.14'}==2.4.6+local, we can conclude "
                 "that pandas>=3.1.1 cannot be used.\n         And because you require pandas==3.1.1" + CONCLUSION)
CONFLICT = (UNSOLVED + "pandas>=3.1.1 depends on numpy{python_full_version < '3.14'}>=2.0.2 and "
            "numpy{python_full_version < '3.14'}==0.0.1, we can conclude that pandas>=3.1.1 cannot be used.\n"
            "         And because you require pandas==3.1.1" + CONCLUSION)


def test_uvs_explanations_name_what_is_at_fault():
    assert _cause(NOT_FOUND) == ("same-nb-env-missing-q7 was not found in the package registry and you "
                                 "require same-nb-env-missing-q7")
    assert _blame(_cause(NOT_FOUND), {"pyyaml", "same-nb-env-missing-q7"}, {"numpy"}) == \
        ({"same-nb-env-missing-q7"}, set())
    # An installed version the index lacks is the constraint's fault, not the direct requirement's.
    assert _blame(_cause(LOCAL_VERSION), {"pandas"}, {"numpy", "six"}) == (set(), {"numpy"})
    assert _blame(_cause(CONFLICT), {"pandas"}, {"numpy", "six"}) == (set(), {"numpy"})
    assert _blame(_cause(CONFLICT), {"pandas"}, set()) == ({"pandas"}, set())
    assert _blame("something uv never said", {"pandas"}, {"numpy"}) == (set(), set())
