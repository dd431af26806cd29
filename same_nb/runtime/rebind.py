"""Rebind notebook-defined functions and classes to the consuming kernel's globals.

In a top-to-bottom notebook run, a function defined in one cell reads globals at call time, so
``def f(): return threshold * 2`` sees whatever ``threshold`` is when it is called. A function
unpickled in another step instead carries a private copy of the globals it referenced when it was
saved. Rebinding rebuilds it over the step's namespace so both runs agree.

Handled: plain functions and lambdas (including their closures, so a notebook decorator written
with ``functools.wraps`` rebinds the wrapped function too), ``functools.lru_cache``/``cache``
wrappers (rebuilt with the same parameters and an empty cache), and classes (every function in
the class dict: methods, staticmethod, classmethod, property accessors, cached_property), also
when reached as the class of a loaded instance, and a ``functools.partial`` over any of these.
Limit: other callables wrapping a notebook function (a C-level decorator, a callable object) keep
the globals they were saved with.

Globals the function referenced that the consuming namespace lacks are added to it with their
saved values, which is what a top-to-bottom run would see instead of a NameError.
"""
from __future__ import annotations

import functools
import types

_LRU_WRAPPER = type(functools.lru_cache(maxsize=None)(lambda: None))


def is_notebook_function(obj: object) -> bool:
    return isinstance(obj, types.FunctionType) and obj.__module__ == "__main__"


def is_notebook_class(obj: object) -> bool:
    return isinstance(obj, type) and obj.__module__ == "__main__"


def is_notebook_cached_function(obj: object) -> bool:
    return isinstance(obj, _LRU_WRAPPER) and is_notebook_function(getattr(obj, "__wrapped__", None))


def rebind(obj: object, namespace: dict) -> object:
    """Return ``obj`` bound to ``namespace``: functions are rebuilt, classes are updated in place."""
    rebinder = _Rebinder(namespace)
    if isinstance(obj, (types.FunctionType, _LRU_WRAPPER, type, functools.partial)):
        return rebinder.value(obj)
    if is_notebook_class(type(obj)):
        rebinder.klass(type(obj))
    return obj


class _Rebinder:
    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.memo: dict[int, object] = {}  # id(old) -> new; also breaks reference cycles

    def value(self, obj: object) -> object:
        if is_notebook_function(obj):
            return self.function(obj)
        if is_notebook_cached_function(obj):
            return self.cached(obj)
        if is_notebook_class(obj):
            self.klass(obj)
        if type(obj) is functools.partial:
            func = self.value(obj.func)
            return obj if func is obj.func else functools.partial(func, *obj.args, **obj.keywords)
        return obj

    def function(self, f: types.FunctionType) -> types.FunctionType:
        if f.__globals__ is self.namespace:
            return f
        if id(f) in self.memo:
            return self.memo[id(f)]
        closure = None if f.__closure__ is None else tuple(self.cell(c) for c in f.__closure__)
        if id(f) in self.memo:  # a recursive closure rebuilt ``f`` while its cells were rebound
            return self.memo[id(f)]
        new = types.FunctionType(f.__code__, self.namespace, f.__name__, f.__defaults__, closure)
        self.memo[id(f)] = new
        new.__kwdefaults__ = f.__kwdefaults__
        new.__qualname__ = f.__qualname__
        new.__annotations__ = f.__annotations__
        new.__doc__ = f.__doc__
        new.__module__ = f.__module__
        if hasattr(f, "__type_params__"):
            new.__type_params__ = f.__type_params__
        new.__dict__.update({k: self.value(v) for k, v in f.__dict__.items()})
        for name, captured in f.__globals__.items():
            if not (name.startswith("__") and name.endswith("__")) and name not in self.namespace:
                self.namespace[name] = self.value(captured)
        return new

    def cell(self, cell: types.CellType) -> types.CellType:
        if id(cell) in self.memo:
            return self.memo[id(cell)]
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell: a closure variable not assigned yet
            contents = None
        if not (is_notebook_function(contents) or is_notebook_cached_function(contents)):
            self.memo[id(cell)] = cell
            self.value(contents)  # a class in a cell (e.g. ``__class__`` for super()) is updated in place
            return cell
        new = types.CellType()
        self.memo[id(cell)] = new  # before recursing: a recursive inner function refers to this cell
        new.cell_contents = self.value(contents)
        return new

    def cached(self, wrapper: object) -> object:
        if id(wrapper) in self.memo:
            return self.memo[id(wrapper)]
        params = wrapper.cache_parameters()
        new = functools.lru_cache(maxsize=params["maxsize"], typed=params["typed"])(
            self.function(wrapper.__wrapped__))
        self.memo[id(wrapper)] = new
        return new

    def klass(self, cls: type) -> None:
        if id(cls) in self.memo:
            return
        self.memo[id(cls)] = cls
        for base in cls.__mro__[1:]:
            if is_notebook_class(base):
                self.klass(base)
        for name, attr in list(vars(cls).items()):
            new = self.member(cls, name, attr)
            if new is not attr:
                setattr(cls, name, new)

    def member(self, cls: type, name: str, attr: object) -> object:
        if isinstance(attr, (staticmethod, classmethod)):
            func = self.value(attr.__func__)
            return attr if func is attr.__func__ else type(attr)(func)
        if isinstance(attr, property):
            accessors = (attr.fget, attr.fset, attr.fdel)
            rebound = tuple(self.value(a) for a in accessors)
            if all(a is b for a, b in zip(accessors, rebound)):
                return attr
            return type(attr)(*rebound, attr.__doc__)
        if isinstance(attr, functools.cached_property):
            func = self.value(attr.func)
            if func is attr.func:
                return attr
            new = functools.cached_property(func)
            new.__set_name__(cls, name)
            return new
        return self.value(attr)
