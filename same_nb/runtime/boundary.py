"""Refuse values that cannot cross a step boundary, with a message saying what to do instead.

Each step runs in its own kernel (or pod), so an open file, a connection, a generator or a lock
made in one step cannot exist in the next. Checked without importing anything: a socket can only
be a socket if ``socket`` is already in ``sys.modules``.
"""
from __future__ import annotations

import io
import sys
import types
from typing import Any

from .errors import StepBoundaryError
from .serializers import qualified_type_name

_SCALARS = (int, float, str, bytes, bool, type(None))
_DB_MODULES = ("sqlite3", "psycopg", "psycopg2", "pymysql", "MySQLdb", "sqlalchemy.engine")
_IN_MEMORY_FILES = (io.BytesIO, io.StringIO)  # picklable: they carry their content


def _subclass_of(cls: type, module: str, *names: str) -> bool:
    mod = sys.modules.get(module)
    return mod is not None and any(issubclass(cls, t) for t in (getattr(mod, n, None) for n in names) if t)


def steps_phrase(names: list[str]) -> str:
    """"step 'a'", "steps 'a' and 'b'", or "a later step" when none are known."""
    if not names:
        return "a later step"
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        return f"step {quoted[0]}"
    return "steps " + ", ".join(quoted[:-1]) + " and " + quoted[-1]


def describe(obj: Any) -> tuple[str, str] | None:
    """(what it is, how to fix it) if ``obj`` cannot cross a step boundary; else None.

    The fix text has ``{consumer}`` and ``{producer}`` placeholders ("step 'train'").
    """
    found = _describe_type(type(obj))
    if found and found[0] == "an open file" and obj.closed:
        return "a closed file", found[1]
    return found


def _describe_type(cls: type) -> tuple[str, str] | None:
    if issubclass(cls, _SCALARS):
        return None
    if issubclass(cls, types.GeneratorType):
        return "a generator", "Create it inside {consumer}, or pass list(...) of it from {producer}."
    if issubclass(cls, types.AsyncGeneratorType):
        return "an async generator", "Create it inside {consumer} instead."
    if issubclass(cls, types.CoroutineType):
        return "a coroutine", "Await it in {producer} and pass its result instead."
    if issubclass(cls, io.IOBase) and not issubclass(cls, _IN_MEMORY_FILES):
        return "an open file", "Open it inside {consumer} instead."
    if _subclass_of(cls, "socket", "socket"):
        return "a network socket", "Open the connection inside {consumer} instead."
    db = _database_object(cls)
    if db:
        return db, "Connect inside {consumer} instead, or pass the query results."
    if _subclass_of(cls, "subprocess", "Popen"):
        return "a subprocess handle", "Wait for it in {producer} and pass its output instead."
    if _subclass_of(cls, "threading", "Thread"):
        return "a thread", "Join it in {producer} and pass its results instead."
    primitive = _sync_primitive(cls)
    if primitive:
        return primitive, "Create it inside {consumer} instead."
    if _subclass_of(cls, "multiprocessing.pool", "Pool") or _subclass_of(cls, "concurrent.futures", "Executor"):
        return "a worker pool", "Create it inside {consumer} instead."
    return None


def _database_object(cls: type) -> str | None:
    module = cls.__module__ or ""
    from_db_module = any(module == m or module.startswith(m + ".") for m in _DB_MODULES)
    # Looked up on the type: instance __getattr__ (a DataFrame's columns) must not fool the check.
    if callable(getattr(cls, "cursor", None)) and callable(getattr(cls, "commit", None)):
        return "a database connection"
    for base in cls.__mro__:
        if "Cursor" in base.__name__ and from_db_module:
            return "a database cursor"
        if ("Connection" in base.__name__ or base.__name__ == "Engine") and from_db_module:
            return "a database connection"
    return None


def _sync_primitive(cls: type) -> str | None:
    threading = sys.modules.get("threading")
    if threading is None:
        return None
    kinds = ((type(threading.Lock()), "a lock"), (type(threading.RLock()), "a lock"),
             (threading.Condition, "a condition variable"), (threading.Event, "an event"),
             (threading.Semaphore, "a semaphore"), (threading.Barrier, "a barrier"))
    return next((what for kind, what in kinds if issubclass(cls, kind)), None)


def _find_inside(name: str, container: Any) -> tuple[str, Any, tuple[str, str]] | None:
    """First value directly inside a list/tuple/dict that cannot cross: (its path, it, description)."""
    if isinstance(container, dict):
        items, values = container.items(), container.values()
    elif isinstance(container, (list, tuple)):
        items, values = enumerate(container), container
    else:
        return None
    # Big containers hold few distinct types: judge each type once, scan for positions only on a hit.
    bad = {cls for cls in set(map(type, values)) if _describe_type(cls) is not None}
    if not bad:
        return None
    key, value = next((k, v) for k, v in items if type(v) in bad)
    return f"{name}[{key!r}]", value, describe(value)


def check_transferable(name: str, obj: Any, producer: str, consumers: list[str]) -> None:
    """Raise StepBoundaryError if ``obj`` (or a value directly inside a list/tuple/dict) can't be passed on."""
    found = describe(obj)
    where = ""
    if found is None:
        inside = _find_inside(name, obj)
        if inside is None:
            return
        where, obj, found = inside
    what, fix = found
    to = steps_phrase(consumers)
    fix = fix.format(consumer=to if consumers else "the step that needs it", producer=f"step '{producer}'")
    if where:
        subject = f"variable '{name}' holds {what} at {where} ({qualified_type_name(obj)}), which"
    else:
        subject = f"variable '{name}' ({qualified_type_name(obj)}, {what})"
    raise StepBoundaryError(f"{subject} cannot be passed from step '{producer}' to {to}. {fix}")
