"""Which outputs of a step are one object, or hold a common mutable object.

In one kernel, ``b = a`` or ``pair = [shared, shared]`` makes two names reach the same list: a later
``pair[0].append(1)`` changes ``shared`` too. Saved one by one, each name would arrive as its own
copy and the link would be silently gone. Outputs that share are saved together as one artifact (a
"group"), so a step loading them gets one object graph again, and a step that loads only some of
them still holds the others and can tell when it changed them.

The walk is bounded (``LIMIT`` objects per output) and skips what cannot be changed in place or is
shared by design: atoms, strings, classes, functions, modules. Arrays are compared by memory.
Standard library only at import.
"""
from __future__ import annotations

import gc
import sys
import types
from typing import Any

LIMIT = 20_000
_ATOMS = (int, float, complex, bool, str, bytes, type(None), range, slice)
_NOT_DATA = (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType, types.CodeType,
             types.MethodDescriptorType, types.WrapperDescriptorType, types.GetSetDescriptorType)
_IMMUTABLE_CONTAINERS = (tuple, frozenset)


def shared_groups(values: dict[str, Any]) -> list[list[str]]:
    """Groups (in ``values`` order) of two or more names whose values are, or hold, one mutable object."""
    names = list(values)
    parent = {n: n for n in names}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    owner: dict[int, str] = {}
    arrays: list[tuple[str, Any]] = []
    for name in names:
        for key, obj in _mutable_reachable(values[name]):
            if key in owner:
                a, b = find(owner[key]), find(name)
                if a != b:
                    parent[b] = a
            else:
                owner[key] = name
            if _is_array(obj):
                arrays.append((name, obj))
    if len(arrays) > 1:
        np = sys.modules["numpy"]
        for i, (a, x) in enumerate(arrays):
            for b, y in arrays[i + 1:]:
                if find(a) != find(b) and np.may_share_memory(x, y):
                    parent[find(b)] = find(a)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(find(name), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def _is_array(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _mutable_reachable(root: Any):
    """(id, object) for every mutable object reachable from ``root``, up to LIMIT visited objects."""
    seen: set[int] = set()
    stack = [root]
    visited = popped = 0
    while stack and visited < LIMIT and popped < 10 * LIMIT:
        obj = stack.pop()
        popped += 1
        if isinstance(obj, _ATOMS) or isinstance(obj, _NOT_DATA) or id(obj) in seen:
            continue
        seen.add(id(obj))
        visited += 1
        if _is_array(obj):
            yield id(obj), obj
            continue                    # its memory is compared separately; elements are not objects
        if not isinstance(obj, _IMMUTABLE_CONTAINERS):
            yield id(obj), obj
        if isinstance(obj, types.MethodType):
            stack.append(obj.__self__)
            continue
        stack.extend(gc.get_referents(obj))
