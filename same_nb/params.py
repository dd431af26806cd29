"""The parameters cell: literal assignments only, each giving a typed pipeline parameter."""
from __future__ import annotations

import ast
from typing import Any

from .errors import SameError
from .ir import Parameter

_TYPES = {bool: "bool", int: "int", float: "float", str: "str", type(None): "NoneType", list: "list",
          dict: "dict"}


def type_name(value: Any) -> str:
    return _TYPES.get(type(value), type(value).__name__)


def _literal(node: ast.AST) -> Any:
    value = ast.literal_eval(node)      # raises ValueError for anything but literals
    _check_value(value)
    return value


def _check_value(value: Any) -> None:
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_value(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool)):
                raise ValueError("dict keys must be strings or numbers")
            _check_value(v)
    elif type(value) not in _TYPES:
        raise ValueError(f"{type(value).__name__} values are not allowed")


def parse_parameters(source: str, *, path: str, cell: int, cell_id: str) -> list[Parameter]:
    """Parameters declared in the cell, in order; anything but literal assignments is an error."""
    def fail(msg: str, line: int | None) -> SameError:
        return SameError(f"parameters cell: {msg}", path=path, cell=cell, cell_id=cell_id, line=line)

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise fail(f"syntax error: {exc.msg}", exc.lineno) from None
    params: dict[str, Parameter] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            kind = type(stmt).__name__
            raise fail(f"only assignments of literals and comments are allowed, found {kind} "
                       f"`{ast.get_source_segment(source, stmt) or kind}`", stmt.lineno)
        for target in targets:
            if not isinstance(target, ast.Name):
                raise fail("each parameter must be assigned to a plain name", stmt.lineno)
        try:
            default = _literal(value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:
            segment = ast.get_source_segment(source, value) or "value"
            why = str(exc) if "not allowed" in str(exc) or "keys" in str(exc) else "it is computed"
            raise fail(f"`{segment}` is not a literal ({why}); parameters must be numbers, strings, "
                       "booleans, None, or lists/dicts of those", stmt.lineno) from None
        if isinstance(default, tuple):
            default = list(default)
        for target in targets:
            params[target.id] = Parameter(name=target.id, default=default, type=type_name(default),
                                          line=stmt.lineno)
    return list(params.values())


def coerce_value(param: Parameter, raw: Any, *, source: str = "-p") -> Any:
    """Convert a CLI string (or YAML value) to the parameter's type, as papermill would accept it."""
    expected = param.type
    if not isinstance(raw, str) or expected == "str":
        value = raw
        if expected == "str" and not isinstance(raw, str):
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
