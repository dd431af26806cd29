"""The parameters cell: literal assignments only, each giving a typed pipeline parameter."""
from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from same_nb.errors import SameError
from same_nb.frontend.ir import Parameter, Pipeline

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
    return value


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
            if isinstance(node, ast.Set) or reason.endswith(("allowed", "YAML", "finite number")):
                raise fail(f"`{_shown(source, node)}`{where} cannot be a parameter ({reason})",
                           node.lineno) from None
            raise fail(f"`{_shown(source, node)}`{where} is not a literal ({reason}); parameters must be "
                       "numbers, strings, booleans, None, or lists/dicts of those", node.lineno) from None
        for target in targets:
            params[target.id] = Parameter(name=target.id, default=default, type=type_name(default),
                                          line=stmt.lineno)
    return list(params.values())


def coerce_value(param: Parameter, raw: Any, *, source: str = "-p") -> Any:
    """Convert a CLI string (or YAML value) to the parameter's type, as papermill would accept it."""
    expected = param.type
    if not isinstance(raw, str) or expected == "str":
        value = raw
    else:
        value = _parse_cli_value(raw, expected)
    if expected == "NoneType" or value is None:
        return value
    actual = type_name(value)
    if actual == expected or (expected == "float" and actual == "int"):
        return float(value) if expected == "float" else value
    raise SameError(f"parameter {param.name!r} expects {expected} (default {param.default!r}), "
                    f"got {raw!r} from {source}")


def _parse_cli_value(raw: str, expected: str) -> Any:
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
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            if expected == "NoneType":
                return raw
            try:
                import yaml
                return yaml.safe_load(text)
            except Exception:
                return raw
    return raw


def resolve_params(pipeline: Pipeline, defaults: dict, overrides: list[tuple[str, str]],
                   params_file: str | Path | None = None) -> dict:
    """Defaults ← manifest ← --params file ← -p, each checked against the parameter's type."""

    by_name = {p.name: p for p in pipeline.parameters}
    values = {p.name: defaults.get(p.name, p.default) for p in pipeline.parameters}
    sources: list[tuple[str, object, str]] = []
    if params_file:
        import yaml

        path = Path(params_file)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise SameError(f"cannot read parameters: {exc}", path=str(path)) from None
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
