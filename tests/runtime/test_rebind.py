"""Notebook functions and classes loaded in another step read that step's globals, as in a
top-to-bottom notebook run. Each "kernel" is a module-like namespace whose __name__ is __main__;
test_runtime_serializers covers the same through a separate producer process."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from same_nb.runtime import ArtifactStore, dump_value, load_value


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path)


def kernel(source: str = "", **variables) -> dict:
    ns = {"__name__": "__main__", **variables}
    exec(compile(textwrap.dedent(source), "<cell>", "exec", dont_inherit=True), ns)
    return ns


def transfer(store, producer: dict, name: str, consumer: dict):
    consumer[name] = load_value(dump_value(name, producer[name], store), store, consumer)
    return consumer[name]


def test_function_reads_the_consuming_kernels_globals(store):
    producer = kernel("threshold = 1\ndef f(): return threshold * 2")
    assert producer["f"]() == 2
    consumer = kernel(threshold=5)
    assert transfer(store, producer, "f", consumer)() == 10
    consumer["threshold"] = 7  # read at call time, not at load time
    assert consumer["f"]() == 14


def test_function_from_another_process(tmp_path):
    code = textwrap.dedent('''
        import json, sys
        from same_nb.runtime import ArtifactStore, dump_value
        ns = {"__name__": "__main__"}
        exec("threshold = 1\\ndef f(): return threshold * 2", ns)
        print(json.dumps(dump_value("f", ns["f"], ArtifactStore(sys.argv[1]))))
    ''')
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    f = load_value(json.loads(out.stdout), ArtifactStore(tmp_path), kernel(threshold=5))
    assert f() == 10


def test_function_metadata_is_kept(store):
    producer = kernel('''
        def f(a: int, b=2, *, c=3) -> int:
            "adds"
            return a + b + c + offset
        f.tag = "kept"
        offset = 0
    ''')
    f = transfer(store, producer, "f", kernel(offset=100))
    assert f(1) == 106 and f(1, 1, c=1) == 103
    assert (f.__name__, f.__qualname__, f.__doc__, f.__module__) == ("f", "f", "adds", "__main__")
    assert f.__defaults__ == (2,) and f.__kwdefaults__ == {"c": 3}
    assert f.__annotations__ == {"a": int, "return": int} and f.tag == "kept"


def test_missing_globals_are_filled_from_the_saved_values_but_never_override(store):
    producer = kernel('''
        scale = 3
        def helper(x): return x * scale
        def f(x): return helper(x) + bias
        bias = 1
    ''')
    consumer = kernel(bias=10)
    f = transfer(store, producer, "f", consumer)
    assert f(2) == 16
    assert consumer["bias"] == 10 and consumer["scale"] == 3
    assert consumer["helper"].__globals__ is consumer  # the helper is rebound too
    consumer["scale"] = 4
    assert f(2) == 18


def test_recursion_through_globals_and_closures(store):
    producer = kernel('''
        def fact(n): return 1 if n <= base else n * fact(n - 1)
        def make():
            def countdown(n): return [] if n == 0 else [n * step] + countdown(n - 1)
            return countdown
        countdown = make()
        base = 1
        step = 1
    ''')
    assert producer["fact"](5) == 120
    consumer = kernel(base=3, step=10)
    assert transfer(store, producer, "fact", consumer)(5) == 5 * 4
    assert transfer(store, producer, "countdown", consumer)(2) == [20, 10]


def test_decorator_written_with_wraps_rebinds_the_wrapped_function(store):
    producer = kernel('''
        import functools
        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return ("logged", fn(*args))
            return wrapper
        @logged
        def f(): return threshold
        threshold = 1
    ''')
    f = transfer(store, producer, "f", kernel(threshold=5))
    assert f() == ("logged", 5)
    assert f.__wrapped__() == 5 and f.__name__ == "f"


def test_lru_cache_functions_are_rebuilt_with_their_parameters(store):
    producer = kernel('''
        import functools
        @functools.lru_cache(maxsize=16, typed=True)
        def scaled(x): return x * factor
        @functools.cache
        def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2) + extra
        def uses_cached(x): return scaled(x) + 1
        factor = 2
        extra = 0
    ''')
    producer["scaled"](1)
    consumer = kernel(factor=10, extra=0)
    scaled = transfer(store, producer, "scaled", consumer)
    assert scaled(3) == 30
    assert scaled.cache_parameters() == {"maxsize": 16, "typed": True}
    assert scaled.cache_info().currsize == 1  # a fresh cache: only the call above
    assert transfer(store, producer, "fib", consumer)(10) == 55
    # A cached helper referenced by another function travels with it and is rebound as well.
    other = kernel(factor=100)
    assert transfer(store, producer, "uses_cached", other)(1) == 101


def test_class_members_see_the_consuming_kernel(store):
    producer = kernel('''
        import functools
        class Base:
            def base(self): return level
        class Model(Base):
            def method(self): return level
            @staticmethod
            def static(): return level
            @classmethod
            def klass(cls): return (cls.__name__, level)
            @property
            def prop(self): return level
            @prop.setter
            def prop(self, value): self.set_to = (value, level)
            @functools.cached_property
            def cached(self): return level
            def sup(self): return super().base() + 1
        level = 1
    ''')
    Model = transfer(store, producer, "Model", kernel(level=5))
    m = Model()
    assert (m.method(), Model.static(), Model.klass(), m.prop, m.cached, m.base(), m.sup()) == \
        (5, 5, ("Model", 5), 5, 5, 5, 6)
    m.prop = 9
    assert m.set_to == (9, 5)


def test_instance_of_a_notebook_class_is_rebound_through_its_class(store):
    producer = kernel('''
        class Scaler:
            def __init__(self, k): self.k = k
            def apply(self, x): return x * self.k + shift
        scaler = Scaler(2)
        shift = 0
    ''')
    scaler = transfer(store, producer, "scaler", kernel(shift=100))
    assert scaler.k == 2 and scaler.apply(1) == 102


def test_dataclass_loads_into_a_fresh_kernel(store):
    producer = kernel('''
        from dataclasses import dataclass, field
        @dataclass(frozen=True)
        class Point:
            x: int
            y: int = 0
            tags: list = field(default_factory=list)
            def norm1(self): return abs(self.x) + abs(self.y)
        p = Point(3, -4)
    ''')
    consumer = kernel()
    Point = transfer(store, producer, "Point", consumer)
    p = transfer(store, producer, "p", consumer)
    assert p == Point(3, -4) and p.norm1() == 7 and Point(1).tags == []


def test_partial_of_a_notebook_function_reads_the_consuming_steps_globals(store):
    """A partial is rebuilt over its rebound function, keeping its arguments."""
    producer = kernel('''
        import functools
        def f(a): return a + threshold
        p = functools.partial(f, 1)
        threshold = 1
    ''')
    assert transfer(store, producer, "p", kernel(threshold=5))() == 6
