"""Property test of the command line: whatever the arguments, `same-nb` answers with an exit code
(0, 1, or argparse's 2) and a message, never a traceback.

Commands that start kernels or installers (run, rerun, verify, lock) are fuzzed only with arguments
that must be refused before anything executes. ~100 examples by default; a long run:
    SAME_NB_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz_cli.py -q
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import IPython.core.inputtransformer2  # noqa: F401  jedi raises the recursion limit on import: before Hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from same_nb.cli import main

from conftest import notebook_data

EXAMPLES = int(os.environ.get("SAME_NB_FUZZ_EXAMPLES", "100"))
CELLS = [(["parameters"], "n = 3\nname = 'a'"), (["step:load"], "x = list(range(n))"),
         (["step:total"], "t = sum(x)")]

SAFE_COMMANDS = ["inspect", "compile", "runs", "show", "trace", "compare"]
OPTIONS = ["--manifest", "-o", "--output", "--target", "--no-lock", "--python-version", "--platform",
           "--dir", "--limit", "--offset", "--metrics", "--json", "--dot", "-p", "--params", "-j",
           "--no-cache", "--resume", "--timeout", "--host", "-q", "--isolated", "--wait"]
VALUES = ["nb.ipynb", "missing.ipynb", "same.yaml", "bad.yaml", "params.yaml", "notes.txt", ".", "sub",
          "local", "kubeflow", "3.11", "9.99", "linux/x86_64", "win/arm", "0", "1", "-1", "2", "99999999999",
          "1:load:x", "abcdef12", "0" * 64, "x:y", "", " ", "é", "\x7f", "--", "-", "nb.ipynb/x"]
token = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES),
                  st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                          max_size=12))
# Parameter values that must be refused before a kernel starts: unknown names or the wrong type for n.
bad_param = st.one_of(
    st.tuples(st.just("-p"), st.sampled_from(["alpha", "N", "", "n n", "x"]), token),
    st.tuples(st.just("-p"), st.just("n"), st.sampled_from(["three", "1.5", "[1]", "", "  ", "1e3x"])))
bad_run_option = st.one_of(
    st.tuples(st.just("--params"), st.sampled_from(["missing.yaml", "bad.yaml", "notes.txt", "sub"])),
    st.tuples(st.just("-j"), st.sampled_from(["0", "-3", "x", ""])),
    st.tuples(st.just("--timeout"), st.sampled_from(["0", "-1", "soon", "nan"])),
    st.tuples(st.just("--resume"), st.sampled_from(["0", "x", "99"])),
    st.tuples(st.just("--manifest"), st.sampled_from(["missing.yaml", "bad.yaml"])),
    st.tuples(st.just("--target"), st.sampled_from(["cloud", ""])),
    st.tuples(st.just("--bogus")))


def _call(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = main(args)
        except SystemExit as exc:       # argparse: 2 for bad usage (0 only for --version)
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue()


@contextlib.contextmanager
def _workspace():
    """A temp cwd holding a tiny notebook, a broken manifest, a params file and a text file."""
    previous, saved_db = Path.cwd(), os.environ.pop("SAME_NB_DB", None)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "nb.ipynb").write_text(json.dumps(notebook_data(CELLS)))
        (root / "bad.yaml").write_text("steps: [unclosed\n")
        (root / "params.yaml").write_text("n: four\n")
        (root / "notes.txt").write_text("not a notebook")
        (root / "sub").mkdir()
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(previous)
            if saved_db is not None:
                os.environ["SAME_NB_DB"] = saved_db


FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_random_arguments_never_raise() -> None:
    with _workspace():
        @FUZZ
        @given(command=st.sampled_from(SAFE_COMMANDS), args=st.lists(token, max_size=6))
        def check(command: str, args: list[str]) -> None:
            argv = [command, *[a for a in args if a not in ("-h", "--help")]]
            if command == "compile":
                argv.append("--no-lock")             # locking resolves packages: an installer run
            rc, out = _call(argv)
            assert rc in (0, 1, 2), (argv, rc, out)
            assert "Traceback" not in out, (argv, out)

        check()


def test_invalid_run_arguments_are_refused_before_anything_runs() -> None:
    with _workspace() as root:
        @FUZZ
        @given(first=bad_param | bad_run_option, more=st.lists(bad_param | bad_run_option, max_size=2))
        def check(first: tuple[str, ...], more: list[tuple[str, ...]]) -> None:
            argv = ["run", "nb.ipynb", *first, *[a for group in more for a in group]]
            rc, out = _call(argv)
            assert rc in (1, 2), (argv, rc, out)
            assert "Traceback" not in out, (argv, out)
            assert not (root / ".same" / "runs").exists(), f"{argv} started a run: {out}"

        check()
