"""What the static analysis records about a cell: plain dataclasses, filled by the walker, read by the data flow."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportInfo:
    module: str              # dotted module as written ("sklearn.linear_model"); for "from . import x" keep the dots
    top: str                 # top-level name ("sklearn")
    statement: str           # replayable source of just this import ("import numpy as np", "from a.b import c as d")
    names: list[str]         # names it binds at top level (["np"], ["d"])
    line: int                # 1-based line in the ORIGINAL cell source
    dynamic: bool = False    # importlib.import_module("x") / __import__("x") with a literal argument
    nested: bool = False     # inside a function/class body (not bound at top level)


@dataclass
class Mutation:
    name: str                # the top-level name whose object is mutated in place
    line: int
    # "item assignment" | "attribute assignment" | "augmented assignment" | "method append()" | "inplace=True" |
    # "del item" | "out=" | "random.shuffle()" ...
    how: str
    # The change reaches inside an element (`rows[0]["v"] = 1`, `for r in rows: r.append(1)`), not only the
    # object's own slots (`rows.append(r)`, `rows[0] = r`): objects it holds change too.
    deep: bool = False


@dataclass
class OpaqueCall:
    name: str                # a top-level name passed as an argument (or whose elements are passed)
    line: int
    callee: str              # dotted callee as written ("process", "np.random.shuffle")
    arg: int | str | None = None   # position or keyword it is passed as; None for *args / **kwargs


@dataclass
class FunctionInfo:
    """What running a top-level def, an assigned lambda or a class's methods changes, found in its body."""
    mutates: list[str] = field(default_factory=list)         # globals it changes in place
    assigns: list[str] = field(default_factory=list)         # globals it rebinds (`global x; x = ...`)
    params: list[str] = field(default_factory=list)          # positional parameters, in order
    mutated_params: list[str] = field(default_factory=list)  # parameters it changes in place
    stateful: bool = False           # a call changes the function itself: a mutable default it changes, a cache
    caches: bool = False             # `@lru_cache`/`@cache`: its results are remembered within one kernel
    factory: bool = False            # a call returns something that runs this code later (instance, closure)
    stateful_results: bool = False   # ... and that keeps state between its own calls (`nonlocal`)
    is_class: bool = False           # its instances keep using it: a change made to it later reaches them


@dataclass
class Statement:
    line: int                                   # first line of the statement in the original cell source
    # names read before being bound (execution order), deduped, in first-read order
    reads: list[str] = field(default_factory=list)
    # names bound at top level (assign, augassign, for/with targets, walrus, def, class, import, except-as)
    binds: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)   # names removed by `del name`
    # def/class/assigned-lambda name -> global names its body reads when called (deferred reads)
    defines: dict[str, list[str]] = field(default_factory=dict)
    mutations: list[Mutation] = field(default_factory=list)
    opaque_calls: list[OpaqueCall] = field(default_factory=list)
    imports: list[ImportInfo] = field(default_factory=list)
    maybe_binds: list[str] = field(default_factory=list)   # names in binds bound on only some paths
    value_binds: list[str] = field(default_factory=list)   # names in binds bound other than by an import
    inplace: list[str] = field(default_factory=list)       # names rebound by `x += ...`, in place when x is mutable
    guarded: list[str] = field(default_factory=list)       # names in reads read only inside `try:` catching NameError
    # bound name -> names whose object it may share after the statement (itself: the object it held before)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    # bound name -> names in aliases that hold the very same object (`b = a`, `a = b = []`, `m2 = m.fit(X)`)
    identical: dict[str, list[str]] = field(default_factory=dict)
    immutable: list[str] = field(default_factory=list)     # names bound to a number, string, None, or a tuple of those
    holds: dict[str, list[str]] = field(default_factory=dict)  # `data = [train, test]`: data -> the names it holds
    renames: dict[str, str] = field(default_factory=dict)  # `lib = np`: bound name -> the name it is bound to
    wraps: dict[str, str] = field(default_factory=dict)    # `h = functools.partial(g, ...)`: h -> g
    calls: dict[str, str] = field(default_factory=dict)    # `m = Model(...)`: m -> Model
    mutators: list[str] = field(default_factory=list)      # `push = items.append`: calling push changes items
    functions: dict[str, FunctionInfo] = field(default_factory=dict)   # same keys as defines
    bases: dict[str, list[str]] = field(default_factory=dict)   # `class Sub(Base):` at top level: Sub -> [Base]
    subclass_queries: list[str] = field(default_factory=list)   # `Base.__subclasses__` read: [Base]


@dataclass
class Finding:
    line: int
    code: str                # "star-import" | "exec" | "eval" | "globals" | "syntax-error" | ...
    message: str
    severity: str = "warning"


@dataclass
class CellAnalysis:
    statements: list[Statement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    requirements: list[tuple[int, str]] = field(default_factory=list)  # (line, "pandas>=2") from !pip / %pip install
