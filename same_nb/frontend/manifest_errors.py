"""same.yaml validation errors as one line each: the field path, then what is wrong and what fits."""
from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

_TYPE_NAMES = {"string_type": "a string", "int_type": "an integer", "bool_type": "true or false",
               "dict_type": "a mapping", "model_type": "a mapping", "float_type": "a number",
               "list_type": "a list"}


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {value!r}"


def dotted(loc: tuple | list) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def format_error(err: Any, root: type[BaseModel]) -> str:
    loc, kind, value, ctx = list(err["loc"]), err["type"], err.get("input"), err.get("ctx") or {}
    if loc and loc[-1] == "[key]":   # a map key failed its own validator
        loc = loc[:-1]
    where = dotted(loc) or "(top level)"
    if kind == "extra_forbidden":
        known = _known_keys(root, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "valid keys: " + ", ".join(known)
        return f"{where}: unknown key ({hint})"
    if kind == "missing":
        return f"{where}: is required"
    if kind in _TYPE_NAMES:
        quote = " (quote it in YAML)" if kind == "string_type" and isinstance(value, (int, float)) else ""
        return f"{where}: expected {_TYPE_NAMES[kind]}, got {describe(value)}{quote}"
    if kind == "greater_than_equal":
        return f"{where}: must be >= {ctx['ge']}, got {value!r}"
    if kind == "literal_error":
        return f"{where}: {value!r} is not one of {ctx['expected']}"
    if kind == "string_too_short":
        return f"{where}: must not be empty"
    return f"{where}: {err['msg']}"


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation


def _known_keys(root: type[BaseModel], loc: list) -> list[str]:
    """The keys a model accepts at ``loc`` (for 'did you mean' hints)."""
    annotation: Any = root
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or n: f for n, f in annotation.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[part].annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []
