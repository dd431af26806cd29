"""The `same-nb` console script: inspect and compile on good and bad notebooks, in real subprocesses.

Bad input must exit 1 with one `error:` line naming the file, never a traceback. The commands run
concurrently (one module-scoped batch) to keep the suite fast.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from same_nb.cli import main

from conftest import NOTEBOOKS, notebook_data

EXE = shutil.which("same-nb")


def prepare(root: Path) -> dict[str, list[list[str]]]:
    """Inputs under root; name -> commands run one after the other (each a `same-nb` argv)."""
    for name in ("branching", "opaque_mutation", "undefined_name", "kale_conventions", "error_not_json", "error_not_notebook",
                 "error_r_kernel", "error_no_code", "error_duplicate_step", "error_cycle",
                 "error_after_missing", "error_params_not_literal"):
        shutil.copy(NOTEBOOKS / f"{name}.ipynb", root)
    good = (NOTEBOOKS / "branching.ipynb").read_bytes()
    (root / "truncated.ipynb").write_bytes(good[: len(good) // 2])
    (root / "binary.ipynb").write_bytes(bytes(range(256)) * 4)
    (root / "syntax.ipynb").write_text(json.dumps(notebook_data([(["step:a"], "x = 1"),
                                                                 (["step:b"], "y = (x\nz = 2")])))
    (root / "a_folder.ipynb").mkdir()
    (root / "blocker").write_text("a file where the bundle folder should go")
    nb = lambda name: str(root / f"{name}.ipynb")  # noqa: E731
    cases = {name: [["inspect", nb(name)]] for name in (
        "error_not_json", "error_not_notebook", "error_r_kernel", "error_no_code", "error_duplicate_step",
        "error_cycle", "truncated", "binary", "a_folder", "missing", "syntax", "branching", "opaque_mutation", "undefined_name")}
    cases.update({
        "json_bad": [["inspect", "--json", nb("error_cycle")]],
        "json_good": [["inspect", "--json", nb("branching")]],
        "compile_to_file": [["compile", "--no-lock", nb("branching"), "-o", str(root / "blocker")]],
        "compile_syntax": [["compile", "--no-lock", nb("syntax"), "-o", str(root / "never")]],
        "compile_warnings": [["compile", "--no-lock", nb("undefined_name"), "-o", str(root / "undefined")]],
        "compile_twice": [["compile", "--no-lock", nb("kale_conventions"), "-o", str(root / "bundle")],
                          ["compile", "--no-lock", nb("kale_conventions"), "-o", str(root / "bundle")]],
        "help": [["--help"]], "help_inspect": [["inspect", "--help"]], "help_compile": [["compile", "--help"]],
        "no_command": [[]],
    })
    return cases


def run_all(cases: dict[str, list[list[str]]], root: Path) -> dict:
    def run(commands: list[list[str]]) -> list[tuple[subprocess.CompletedProcess, dict]]:
        results = []
        for argv in commands:
            proc = subprocess.run([EXE, *argv], capture_output=True, text=True, timeout=120, cwd=root)
            bundle = root / "bundle"
            files = {str(p.relative_to(bundle)): (p.read_bytes(), p.stat().st_mtime_ns)
                     for p in sorted(bundle.rglob("*")) if p.is_file()} if bundle.is_dir() else {}
            results.append((proc, files))
        return results

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(cases, pool.map(run, cases.values())))


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    assert EXE, "the same-nb console script is not installed (pip install -e .)"
    root = tmp_path_factory.mktemp("cli")
    cases = prepare(root)
    sources = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.glob("*.ipynb") if p.is_file()}
    results = run_all(cases, root)
    return root, results, sources


def result(cli, name: str, index: int = 0) -> subprocess.CompletedProcess:
    return cli[1][name][index][0]


@pytest.mark.parametrize("name, message", [
    ("error_not_json", "not valid JSON: Expecting property name enclosed in double quotes at line 3, column 3"),
    ("error_not_notebook", "not a notebook"),
    ("error_r_kernel", "kernel is 'r' (ir); same-nb runs Python notebooks only"),
    ("error_no_code", "the notebook has no code cells"),
    ("error_duplicate_step", "cell 3 (id c3): duplicate step name 'load': cell 1 (id c1) and cell 3 (id c3)"),
    ("error_cycle", "the steps form a cycle: a → b → c → a"),
    ("truncated", "not valid JSON"),
    ("binary", "not a notebook: the file is not UTF-8 text"),
    ("a_folder", "is a directory, not a notebook"),
    ("missing", "no such file"),
])
def test_bad_input_exits_1_with_one_error_line_and_no_traceback(cli, name, message):
    proc = result(cli, name)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert f"{name}.ipynb" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_inspect_prints_steps_dag_and_no_problems(cli):
    proc = result(cli, "branching")
    assert proc.returncode == 0 and proc.stderr == ""
    out = proc.stdout
    assert "Pipeline branching" in out and "Parameters: n: int = 6" in out
    for step in ("load", "left", "right", "join"):
        assert step in out
    assert "base ← load" in out and "n (param)" in out
    assert "2. left  |  right   (run in parallel)" in out
    assert "load → left  [base]" in out and "right → join  [right]" in out
    assert "No problems found." in out


def test_inspect_prints_diagnostics_with_cell_and_line(cli):
    proc = result(cli, "undefined_name")
    assert proc.returncode == 0
    assert "warning: [a] cell 1 (id c1), line 1: 'mystery' is not defined anywhere" in proc.stdout
    assert "Diagnostics (0 errors, 1 warnings):" in proc.stdout


def test_inspect_exits_1_when_the_code_has_errors(cli):
    proc = result(cli, "syntax")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "error: [b] cell 2 (id c2), line 1:" in proc.stdout


def test_inspect_json_is_machine_readable(cli):
    good = json.loads(result(cli, "json_good").stdout)
    assert good["ok"] is True
    assert good["levels"] == [["load"], ["left", "right"], ["join"]]
    assert [s["name"] for s in good["pipeline"]["steps"]] == ["load", "left", "right", "join"]
    assert good["pipeline"]["steps"][1]["inputs"] == [{"name": "base", "kind": "variable", "producer": "load"}]
    bad = result(cli, "json_bad")
    assert bad.returncode == 1
    error = json.loads(bad.stdout)
    assert error["ok"] is False and "cycle: a → b → c → a" in error["error"]["message"]
    assert error["error"]["path"].endswith("error_cycle.ipynb")


def test_compile_writes_the_bundle_and_is_byte_identical_the_second_time(cli):
    root, results, sources = cli
    (first, files1), (second, files2) = results["compile_twice"]
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "Compiled 3 steps into" in first.stdout
    assert sorted(files1) == ["README.md", "pipeline.json", "same.yaml", "steps/load.ipynb",
                              "steps/scale.ipynb", "steps/summarize.ipynb"]
    assert files2 == files1                                    # same bytes, not even rewritten
    now = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.glob("*.ipynb") if p.is_file()}
    assert now == sources                                      # no source notebook was touched


def test_compile_failures_exit_1_without_traceback(cli):
    to_file = result(cli, "compile_to_file")
    assert to_file.returncode == 1 and "Traceback" not in to_file.stderr
    assert to_file.stderr.startswith("error: ") and "cannot write the bundle" in to_file.stderr
    syntax = result(cli, "compile_syntax")
    assert syntax.returncode == 1 and "Traceback" not in syntax.stderr
    assert "cannot compile: error: [b] cell 2 (id c2), line 1:" in syntax.stderr
    assert not (cli[0] / "never").exists()


def test_compile_prints_each_warning_with_step_cell_and_line(cli):
    proc = result(cli, "compile_warnings")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "warning: [a] cell 1 (id c1), line 1: 'mystery' is not defined anywhere in the notebook, "
        "nor a parameter or builtin"]


def test_help_is_useful_on_every_command(cli):
    top = result(cli, "help")
    assert top.returncode == 0 and "inspect" in top.stdout and "compile" in top.stdout and "examples:" in top.stdout
    inspect = result(cli, "help_inspect").stdout
    assert "--json" in inspect and "--manifest" in inspect and "Exits 1 when there are errors" in inspect
    compile_help = result(cli, "help_compile").stdout
    assert "-o DIR" in compile_help and "Compiling twice gives identical files" in compile_help
    none = result(cli, "no_command")
    assert none.returncode == 2 and "COMMAND" in none.stdout


@pytest.mark.parametrize("fixture", ["error_after_missing", "error_invalid_step_name", "error_params_not_literal",
                                     "error_not_json", "old_format_v3"])
def test_main_in_process_reports_errors_without_raising(fixture, capsys):
    code = main(["inspect", str(NOTEBOOKS / f"{fixture}.ipynb")])
    out, err = capsys.readouterr()
    if fixture == "old_format_v3":
        assert code == 0 and "one → two  [a]" in out
    else:
        assert code == 1 and err.startswith("error: ") and f"{fixture}.ipynb" in err and "Traceback" not in err


def test_every_command_has_a_useful_help(capsys):
    from same_nb.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.choices and "inspect" in a.choices)
    for command, parser in sub.choices.items():
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        out = capsys.readouterr().out
        assert exit_info.value.code == 0, command
        assert out.startswith(f"usage: same-nb {command}"), command
        assert parser.description, f"{command} has no description"
        undocumented = [a.dest for a in parser._actions if not a.help]
        assert not undocumented, f"{command}: arguments without help: {undocumented}"
