"""The parameters cell: literal assignments only, each giving a typed pipeline parameter."""
from __future__ import annotations

import ast
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from same_nb.errors import SameError
from same_nb.frontend.ir import Parameter, Pipeline
from same_nb.frontend.manifest_same import NOT_YAML, int_digits_limit, int_too_long, load_yaml, read_yaml_file

_TYPES = {bool: "bool", int: "int", float: "float", str: "str", type(None): "NoneType", list: "list",
          dict: "dict"}


def type_name(value: Any) -> str:
    return _TYPES.get(type(value), type(value).__name__)


class _Rejected(ValueError):
    """A literal that a pipeline parameter cannot hold."""


def _literal(node: ast.AST) -> Any:
    """The JSON-safe value of a literal (tuples become lists), so the IR round-trips through JSON."""
    return _plain(ast.literal_eval(node))      # raises ValueError for anything but literals


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Rejected("dict keys must be strings, as in JSON and YAML")
        return {k: _plain(v) for k, v in value.items()}
    if type(value) not in _TYPES:
        raise _Rejected(f"{type(value).__name__} values are not allowed")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Rejected(f"{value} is not allowed, use a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and int_too_long(value):
        raise _Rejected(_too_many_digits(value.bit_length() * 0.30103))
    return value


def plain_value(value: Any) -> str | None:
    """Why a value cannot be a parameter (it has no JSON form), or None when it can."""
    try:
        _plain(value)
    except _Rejected as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply"
    return None


def _too_many_digits(digits: float) -> str:
    return (f"an integer of {int(digits):,} digits is too long (at most "
            f"{int_digits_limit():,} digits)")


def _short(value: Any) -> str:
    """A value as messages show it: its repr, cut to a line."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else f"{text[:_MAX_SHOWN - 1]}… ({len(text):,} characters)"


_KINDS = {ast.JoinedStr: "an f-string is computed", ast.Name: "a variable", ast.Call: "a call is computed",
          ast.BinOp: "it is computed", ast.BoolOp: "it is computed", ast.Compare: "it is computed",
          ast.Attribute: "an attribute is computed", ast.Subscript: "a subscript is computed",
          ast.IfExp: "it is computed", ast.Lambda: "a function", ast.ListComp: "a comprehension is computed",
          ast.DictComp: "a comprehension is computed", ast.SetComp: "a comprehension is computed",
          ast.GeneratorExp: "a generator is computed", ast.Starred: "unpacking is computed",
          ast.Await: "it is computed", ast.NamedExpr: "it is computed"}
_MAX_SHOWN = 60


def _shown(source: str, node: ast.AST) -> str:
    text = " ".join((ast.get_source_segment(source, node) or type(node).__name__).split())
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 1] + "…"


def _offender(node: ast.AST) -> tuple[ast.AST, str] | None:
    """The innermost part of a value that keeps it from being a parameter, and why; None if it is fine.
    A 20-line dict with one f-string in it is reported as that f-string, on its own line."""
    try:
        _literal(node)
        return None
    except _Rejected as exc:
        reason = str(exc)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        reason = ""
    if isinstance(node, ast.Dict) and None in node.keys:
        return node, "`**` unpacking is computed"
    children = (list(node.keys) + list(node.values) if isinstance(node, ast.Dict)
                else list(node.elts) if isinstance(node, (ast.List, ast.Tuple, ast.Set)) else [])
    if not isinstance(node, ast.Set):
        for child in children:
            found = _offender(child)
            if found:
                return found
    return node, reason or _KINDS.get(type(node), "it is computed")


def parse_parameters(source: str, *, path: str, cell: int, cell_id: str) -> list[Parameter]:
    """Parameters declared in the cell, in order; anything but literal assignments is an error."""
    def fail(msg: str, line: int | None) -> SameError:
        return SameError(f"parameters cell: {msg}", path=path, cell=cell, cell_id=cell_id, line=line)

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        digits = re.search(r"Exceeds the limit \(\d+ digits\).*value has (\d+) digits", exc.msg or "")
        if digits:               # Python's own message says to raise the interpreter's limit
            line = (source.splitlines()[exc.lineno - 1:exc.lineno] or [""])[0] if exc.lineno else ""
            name = re.match(r"\s*([A-Za-z_]\w*)\s*[:=]", line)
            raise fail(f"{'`' + name[1] + '`: ' if name else ''}{_too_many_digits(int(digits[1]))}",
                       exc.lineno) from None
        raise fail(f"syntax error: {exc.msg}", exc.lineno) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise fail(f"cannot be parsed: {exc}", None) from None
    params: dict[str, Parameter] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            kind = type(stmt).__name__
            raise fail(f"only assignments of literals and comments are allowed, found {kind} "
                       f"`{_shown(source, stmt)}`", stmt.lineno)
        for target in targets:
            if not isinstance(target, ast.Name):
                raise fail("each parameter must be assigned to a plain name", stmt.lineno)
        try:
            default = _literal(value)
        except RecursionError:
            raise fail(f"`{_shown(source, value)}` is nested too deeply to be a parameter", stmt.lineno) from None
        except (_Rejected, ValueError, TypeError, SyntaxError, MemoryError):
            node, reason = _offender(value) or (value, "it is computed")
            names = ", ".join(t.id for t in targets)
            where = "" if node is value else f" in `{names}`"
            if isinstance(node, ast.Set) or reason.endswith(("allowed", "YAML", "finite number", "digits)")):
                raise fail(f"`{_shown(source, node)}`{where} cannot be a parameter ({reason})",
                           node.lineno) from None
            raise fail(f"`{_shown(source, node)}`{where} is not a literal ({reason}); parameters must be "
                       "numbers, strings, booleans, None, or lists/dicts of those", node.lineno) from None
        for target in targets:
            params[target.id] = Parameter(name=target.id, default=default, type=type_name(default),
                                          line=stmt.lineno)
    return list(params.values())


def split_parameters_source(source: str) -> tuple[str, str] | None:
    """papermill's parameters cell is plain code: `import os` beside the defaults is common. The cell's
    source split by lines into (assignments, other statements), each keeping every line number (the
    other part's lines left blank); None when it does not parse, holds only assignments, or a line
    holds statements of both kinds (`import os; x = 1`). Linear in the cell's size: a cell of 10,000
    parameters and statements splits in milliseconds."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None                           # parse_parameters reports it
    other = [st for st in tree.body if not isinstance(st, (ast.Assign, ast.AnnAssign))]
    if not other:
        return None
    statements_on = Counter()                 # line → statements that touch it
    for st in tree.body:
        statements_on.update(range(st.lineno, (st.end_lineno or st.lineno) + 1))
    code_lines = {n for st in other for n in range(st.lineno, (st.end_lineno or st.lineno) + 1)}
    if any(statements_on[n] > 1 for n in code_lines):
        return None
    lines = source.splitlines()
    keep = "\n".join("" if i + 1 in code_lines else line for i, line in enumerate(lines))
    code = "\n".join(line if i + 1 in code_lines else "" for i, line in enumerate(lines))
    return keep, code.rstrip() + "\n"


def coerce_value(param: Parameter, raw: Any, *, source: str = "-p") -> Any:
    """Convert a CLI string (or YAML value) to the parameter's type, as papermill would accept it.
    Values with no JSON form (NaN, infinity, integers too long to print, dates, sets, …) are refused
    here, naming the parameter, so neither the run store nor a target ever sees them."""
    expected = param.type
    if not isinstance(raw, str) or expected == "str":
        value = raw
    else:
        value = _parse_cli_value(raw, expected, param.name, source)
    try:
        value = _plain(value)
    except _Rejected as exc:
        raise SameError(f"parameter {param.name!r} (from {source}): {exc}") from None
    except RecursionError:
        raise SameError(f"parameter {param.name!r} (from {source}): nested too deeply") from None
    if expected == "NoneType" or value is None:
        return value
    actual = type_name(value)
    if actual == expected or (expected == "float" and actual == "int"):
        return float(value) if expected == "float" else value
    raise SameError(f"parameter {param.name!r} expects {expected} (default {_short(param.default)}), "
                    f"got {_short(raw)} from {source}")


_DECIMAL_INT = re.compile(r"[-+]?[0-9][0-9_]*")


def _parse_cli_value(raw: str, expected: str, name: str, source: str) -> Any:
    text = raw.strip()
    if not text:  # YAML reads "" as null: a blank -p value must be refused, not passed as None
        return raw
    if expected == "bool":
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        return raw
    if expected in ("int", "float", "list", "dict", "NoneType"):
        if _DECIMAL_INT.fullmatch(text) and sum(c.isdigit() for c in text) > int_digits_limit() > 0:
            raise SameError(f"parameter {name!r} (from {source}): "
                            f"{_too_many_digits(sum(c.isdigit() for c in text))}")
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            if expected == "NoneType":
                return raw
        try:
            value = load_yaml(text, None, syntax_errors=False)
        except SameError as exc:        # a bound of the safe loader: too large, an alias bomb, NaN, …
            message = re.sub(r" \(column \d+\)$", "", exc.message) if exc.line == 1 else str(exc)
            raise SameError(f"parameter {name!r} (from {source}): {message}") from None
        return raw if value is NOT_YAML else value
    return raw


def resolve_params(pipeline: Pipeline, defaults: dict, overrides: list[tuple[str, str]],
                   params_file: str | Path | None = None) -> dict:
    """Defaults ← manifest ← --params file ← -p, each checked against the parameter's type."""

    by_name = {p.name: p for p in pipeline.parameters}
    values = {p.name: defaults.get(p.name, p.default) for p in pipeline.parameters}
    sources: list[tuple[str, object, str]] = []
    if params_file:
        path = Path(params_file)
        data = read_yaml_file(path, "parameters")     # bounded: size, nesting, aliases, NaN
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SameError("the parameters file must map names to values", path=str(path))
        sources += [(k, v, str(path)) for k, v in data.items()]
    sources += [(k, v, f"-p {k}") for k, v in overrides]
    for name, raw, origin in sources:
        if name not in by_name:
            valid = ", ".join(by_name) or "none (the notebook has no parameters cell)"
            raise SameError(f"unknown parameter {name!r} (from {origin}); valid parameters: {valid}")
        values[name] = coerce_value(by_name[name], raw, source=origin)
    return values
