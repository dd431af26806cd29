"""same_nb.frontend.params: the parameters cell (literal assignments only) and typing of parameter values."""
from __future__ import annotations

import json

import pytest

from same_nb.errors import SameError
from same_nb.frontend.ir import Parameter
from same_nb.frontend.params import coerce_value, parse_parameters


def parse(source: str) -> list[Parameter]:
    return parse_parameters(source, path="nb.ipynb", cell=2, cell_id="p1")


def test_parameters_are_typed_from_their_defaults():
    params = parse("# knobs\nalpha = 0.5\nname = 'run'\nepochs = 3  # more is slower\n"
                   "flags = [1, 2]\nopts = {'a': 1}\nnothing = None\nverbose = False\nrate: float = -1e-3")
    assert [(p.name, p.default, p.type, p.line) for p in params] == [
        ("alpha", 0.5, "float", 2), ("name", "run", "str", 3), ("epochs", 3, "int", 4),
        ("flags", [1, 2], "list", 5), ("opts", {"a": 1}, "dict", 6), ("nothing", None, "NoneType", 7),
        ("verbose", False, "bool", 8), ("rate", -1e-3, "float", 9)]


def test_values_are_json_safe_so_the_ir_round_trips():
    params = parse("pair = (1, 2)\nnested = {'k': [(1, 'a'), {'x': (True, None)}]}\na = b = 7")
    assert [(p.name, p.default, p.type) for p in params] == [
        ("pair", [1, 2], "list"), ("nested", {"k": [[1, "a"], {"x": [True, None]}]}, "dict"),
        ("a", 7, "int"), ("b", 7, "int")]
    for p in params:
        assert json.loads(json.dumps(p.default)) == p.default


def test_a_reassigned_parameter_keeps_its_last_value():
    assert [(p.name, p.default, p.line) for p in parse("x = 1\ny = 2\nx = 3")] == [("x", 3, 3), ("y", 2, 2)]


def test_empty_or_comment_only_cell_has_no_parameters():
    assert parse("") == []
    assert parse("# nothing to tune\n\n") == []


@pytest.mark.parametrize("source, line, message", [
    ("alpha = 0.5\nbeta = alpha * 2", 2, "`alpha * 2` is not a literal (it is computed)"),
    ("n = len('abc')", 1, "`len('abc')` is not a literal"),
    ("import os", 1, "only assignments of literals and comments are allowed, found Import `import os`"),
    ("x = 1\nprint(x)", 2, "found Expr `print(x)`"),
    ("'''docstring'''", 1, "found Expr"),
    ("x: int", 1, "found AnnAssign"),
    ("a, b = 1, 2", 1, "each parameter must be assigned to a plain name"),
    ("d['k'] = 1", 1, "each parameter must be assigned to a plain name"),
    ("s = {1, 2}", 1, "`{1, 2}` cannot be a parameter (set values are not allowed)"),
    ("b = b'raw'", 1, "bytes values are not allowed"),
    ("c = 1 + 2j", 1, "complex values are not allowed"),
    ("d = {1: 'one'}", 1, "dict keys must be strings"),
    ("big = 1e999", 1, "inf is not allowed, use a finite number"),
    ("x = [1, -1e999]", 1, "-inf is not allowed"),
    ("x = f'{1}'", 1, "is not a literal"),
    ("x = (", 1, "syntax error"),
    ("%config x=1", 1, "syntax error"),
])
def test_anything_but_literal_assignments_is_an_error_naming_the_line(source, line, message):
    with pytest.raises(SameError) as info:
        parse(source)
    err = info.value
    assert message in err.message
    assert err.message.startswith("parameters cell: ")
    assert (err.path, err.cell, err.cell_id, err.line) == ("nb.ipynb", 2, "p1", line)


def test_unparsable_source_is_a_same_error():
    with pytest.raises(SameError, match="parameters cell"):
        parse("x = 1\x00")
    with pytest.raises(SameError, match="parameters cell"):
        parse("x = " + "[" * 300 + "]" * 300)


def param(default) -> Parameter:
    from same_nb.frontend.params import type_name
    return Parameter(name="p", default=default, type=type_name(default))


@pytest.mark.parametrize("default, raw, value", [
    (1, "5", 5), (1, " -3 ", -3), (0.5, "2", 2.0), (0.5, "1e-3", 0.001), (False, "true", True),
    (True, "no", False), (True, "1", True), ("a", "5", "5"), ("a", "", ""), ([1], "[2, 3]", [2, 3]),
    ({"a": 1}, "{'b': 2}", {"b": 2}), ({"a": 1}, "{b: 2}", {"b": 2}), (None, "anything", "anything"),
    (0.5, 3, 3.0), (1, 4, 4), ("a", "x y", "x y"),
])
def test_cli_and_yaml_values_are_converted_to_the_parameter_type(default, raw, value):
    result = coerce_value(param(default), raw)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("default, raw", [
    (1, "abc"), (1, "2.5"), (1, "True"), (0.5, "fast"), (True, "maybe"), ([1], "{'a': 1}"), ("a", 5),
    (1, True), ({"a": 1}, "[1]"),
])
def test_wrong_types_are_refused_naming_parameter_and_source(default, raw):
    with pytest.raises(SameError) as info:
        coerce_value(param(default), raw, source="-p p")
    assert "parameter 'p' expects" in info.value.message and "-p p" in info.value.message


def test_a_computed_part_of_a_long_value_is_shown_alone_on_its_own_line():
    # Not the whole 20-line dict: the f-string, on the line where it is.
    source = "config = {\n" + "".join(f"    'k{i}': {i},\n" for i in range(18)) + \
        "    'path': f'{base}/data.csv',\n}"
    with pytest.raises(SameError) as info:
        parse(source)
    assert info.value.line == 20
    assert info.value.message == ("parameters cell: `f'{base}/data.csv'` in `config` is not a literal (an f-string "
                                  "is computed); parameters must be numbers, strings, booleans, None, or "
                                  "lists/dicts of those")


@pytest.mark.parametrize("source, line, message", [
    ("x = [1,\n  n]", 2, "`n` in `x` is not a literal (a variable)"),
    ("x = {'a': {'b': len(y)}}", 1, "`len(y)` in `x` is not a literal (a call is computed)"),
    ("x = {'a': 1,\n 'b': {1, 2}}", 2, "`{1, 2}` in `x` cannot be a parameter (set values are not allowed)"),
    ("x = {**base}", 1, "`{**base}` is not a literal (`**` unpacking is computed)"),
    ("x = '" + "a" * 100 + "' + y", 1, "`'" + "a" * 58 + "…` is not a literal"),
])
def test_offending_part_is_named(source, line, message):
    with pytest.raises(SameError) as info:
        parse(source)
    assert message in info.value.message and info.value.line == line
