"""Tests for same_nb.frontend.magics: cell magics, IPython conversion with line mapping, pip lines, substitutions."""
from __future__ import annotations

import ast

import pytest

from same_nb.frontend import magics


def test_find_cell_magic_only_on_the_first_non_blank_line():
    magic = magics.find_cell_magic("\n  \n%%capture out --no-stderr\nx = 1\ny = 2")
    assert (magic.name, magic.args, magic.line, magic.body) == ("capture", "out --no-stderr", 3, "x = 1\ny = 2")
    assert magics.find_cell_magic("# comment\n%%time\nx = 1") is None
    assert magics.find_cell_magic("x = 1") is None


def test_parse_cell_plain_python_needs_no_line_map():
    tree, line_map = magics.parse_cell("x = 1\ny = x % 2")
    assert line_map is None
    assert [node.lineno for node in tree.body] == [1, 2]


def test_parse_cell_maps_joined_continuation_lines_back():
    source = "\n  \n!echo a \\\n   b \\\n   c\nx = 1\ny = !ls\nz = 2"
    tree, line_map = magics.parse_cell(source)
    assert [line_map[node.lineno - 1] for node in tree.body] == [3, 6, 7, 8]


def test_parse_cell_inlines_time_and_timeit_code():
    tree, _ = magics.parse_cell("%time a = f(b)\n%timeit -n 3 -r1 -q c = g(d)")
    first, second = tree.body
    assert ast.unparse(first) == "a = f(b)" and first.lineno == 1
    assert isinstance(second, magics.TimeitBlock) and second.lineno == 2
    assert ast.unparse(second.body[0]) == "c = g(d)"


def test_parse_cell_reports_the_original_line_of_errors():
    with pytest.raises(magics.Unparsable) as error:
        magics.parse_cell("%time \\\n  x = 1\n!ls\ny = (")
    assert error.value.line == 4
    with pytest.raises(magics.Unparsable) as error:
        magics.parse_cell("x = 10 % 3\ny = f(")
    assert error.value.line == 2


@pytest.mark.parametrize("command, specs, problems", [
    ("pip install pandas>=2 'scikit-learn==1.5'", ["pandas>=2", "scikit-learn==1.5"], 0),
    ("pip install -q -U --no-cache-dir a --index-url http://x b", ["a", "b"], 0),
    ("python -m pip install --upgrade 'c[x]>=1' ; echo done", ["c[x]>=1"], 0),
    ("/usr/bin/pip3.11 install d && pip install e", ["d", "e"], 0),
    ("uv pip install f", ["f"], 0),
    ("pip install -r requirements.txt g", ["g"], 1),
    ("pip install -e . {pkg} $name", [], 3),
    ("pip list", [], 0),
    ("echo install me", [], 0),
    ("pip install 'unbalanced", ["'unbalanced"], 0),
])
def test_pip_install_specs(command, specs, problems):
    found, issues = magics.pip_install_specs(command)
    assert found == specs
    assert len(issues) == problems


def test_expansion_names_follow_ipython_substitution():
    assert magics.expansion_names("ls {folder} {len(items) + offset} $pattern $HOME $$literal") == [
        "folder", "len", "items", "offset", "pattern"]
    assert magics.expansion_names("echo {unbalanced") == []
    assert magics.expansion_names("echo {{x}}") == []


def test_option_parsing_of_timeit_capture_and_script_magics():
    assert magics.timeit_code("-n 10 -r3 -qo x = f()") == "x = f()"
    assert magics.timeit_code("-x + y") == "-x + y"
    assert magics.capture_target("--no-stderr out") == "out"
    assert magics.capture_target("--no-display") is None
    assert magics.script_outputs("bash", "--out o --err e --bg") == ["o", "e"]
    assert magics.script_outputs("html", "--out o") == []


def test_magic_effects_of_converted_calls():
    effects = magics.magic_effects("run_line_magic", ["pip", "install {pkg} numpy"])
    assert (effects.reads, effects.requirements) == (["pkg"], ["numpy"])
    assert [code for code, _, _ in effects.findings] == ["pip-install"]
    assert magics.magic_effects("run_line_magic", ["pinfo", "{x}"]).reads == []
    broken = magics.magic_effects("run_line_magic", ["time", "x = ("])
    assert [(code, severity) for code, _, severity in broken.findings] == [("syntax-error", "error")]
