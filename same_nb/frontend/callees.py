"""What well-known callees do to the objects they are given: one declarative table per question.

Names are matched as written in the notebook, with the usual import aliases (`np`, `pd`, `plt`).
A callee missing from every table is unknown: the analysis records what it is passed
(`OpaqueCall`) and the runtime fingerprints those values instead.
"""
from __future__ import annotations

# Methods that change their receiver in place (`items.append(x)` changes items).
MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "remove", "pop", "clear", "update", "setdefault", "sort", "reverse",
    "add", "discard", "popitem", "difference_update", "intersection_update", "symmetric_difference_update",
    "appendleft", "extendleft", "popleft", "rotate", "fit", "fit_transform", "fit_predict", "partial_fit",
    "set_params", "resize", "fill", "put", "itemset", "__setitem__", "__delitem__",
})
# Builtins that never change their arguments.
PURE_BUILTINS = frozenset({
    "print", "len", "str", "repr", "int", "float", "bool", "list", "tuple", "dict", "set", "frozenset",
    "sorted", "sum", "min", "max", "any", "all", "enumerate", "zip", "range", "isinstance", "issubclass",
    "type", "id", "hash", "round", "abs", "format", "display", "iter", "getattr", "hasattr", "callable",
    "map", "filter", "divmod", "pow", "hex", "bin", "oct", "ord", "chr", "reversed", "open", "bytes",
    "complex", "ascii", "dir", "help", "vars", "slice", "object", "super", "bytearray", "memoryview",
})
# Library functions that read their arguments only (prefix match on the dotted callee: "np." covers
# np.argmax, np.mean, ...). ARGUMENT_MUTATORS is checked first, so its entries are exceptions.
NON_MUTATING_PREFIXES = (
    "np.", "numpy.", "pd.", "pandas.", "math.", "cmath.", "statistics.", "json.", "os.path.", "copy.",
    "pickle.", "plt.", "matplotlib.pyplot.", "sns.", "seaborn.", "itertools.", "functools.", "operator.",
    "re.", "string.", "textwrap.", "scipy.stats.", "sklearn.metrics.", "hashlib.",
    "collections.", "datetime.", "decimal.", "fractions.", "random.choice", "random.sample",
)
# Library functions that change an argument in place: dotted callee -> position of that argument.
ARGUMENT_MUTATORS = {
    "random.shuffle": 0, "np.random.shuffle": 0, "numpy.random.shuffle": 0, "np.copyto": 0, "numpy.copyto": 0,
    "np.put": 0, "numpy.put": 0, "np.place": 0, "numpy.place": 0, "np.putmask": 0, "numpy.putmask": 0,
    "np.fill_diagonal": 0, "numpy.fill_diagonal": 0, "heapq.heappush": 0, "heapq.heappop": 0,
    "heapq.heapify": 0, "heapq.heappushpop": 0, "heapq.heapreplace": 0, "bisect.insort": 0,
    "bisect.insort_left": 0, "bisect.insort_right": 0, "next": 0,
}
# Methods that change their first argument rather than (or as well as) their receiver: `rng.shuffle(x)`.
ARGUMENT_MUTATING_METHODS = {"shuffle": 0}
# Methods whose arguments are only read (`model.fit(X, y)` changes model, never X or y).
READ_ONLY_ARGUMENT_METHODS = frozenset(MUTATING_METHODS - {"shuffle"}) | {
    "predict", "predict_proba", "predict_log_proba", "transform", "inverse_transform", "score",
    "decision_function", "get", "join", "format", "merge", "concat", "groupby", "apply", "map", "query",
    "eval", "plot", "scatter", "hist", "bar", "imshow", "savefig", "write", "dump", "dumps", "isin",
    "equals", "startswith", "endswith", "replace", "split", "count", "index", "__contains__", "dot",
    "matmul", "reindex", "loc", "iloc", "astype", "fillna", "dropna", "drop", "rename", "assign",
}

# Values that may be (a view of, or a part of) their receiver: `d.get(k)`, `a.reshape(2, 3)`, `m.fit(X)`.
VIEW_METHODS = frozenset({
    "get", "setdefault", "__getitem__", "reshape", "view", "ravel", "squeeze", "transpose", "swapaxes",
    "to_numpy", "fit", "partial_fit", "set_params", "__enter__", "asformat",
})
# Methods that return their receiver itself: `fitted = model.fit(X, y)` is model.
RETURNS_SELF = frozenset({"fit", "partial_fit", "set_params", "__enter__"})
# Iterating over these gives the receiver's own elements: `for m in models.values()`.
ELEMENT_METHODS = frozenset({"values", "items", "keys", "itertuples", "iteritems", "__iter__"})
# Functions whose result is (a view of) their first argument.
VIEW_FUNCTIONS = frozenset({
    "np.asarray", "numpy.asarray", "np.asanyarray", "numpy.asanyarray", "np.ravel", "numpy.ravel",
    "np.reshape", "numpy.reshape", "np.squeeze", "numpy.squeeze", "np.transpose", "numpy.transpose",
    "np.atleast_1d", "np.atleast_2d", "np.atleast_3d", "np.expand_dims", "numpy.expand_dims",
    "np.swapaxes", "np.moveaxis", "numpy.moveaxis",
})
# Functions whose result yields the elements of their arguments: `for r in sorted(rows)`.
ELEMENT_FUNCTIONS = frozenset({
    "enumerate", "zip", "reversed", "iter", "sorted", "list", "tuple", "filter", "set", "frozenset",
    "itertools.chain", "itertools.islice", "itertools.product", "itertools.zip_longest", "chain",
})
# `functools.partial(g, ...)` calls g later.
PARTIAL_FUNCTIONS = frozenset({"functools.partial", "partial"})
# Default values that are a fresh mutable object, shared by every call that does not pass the argument.
MUTABLE_CONSTRUCTORS = frozenset({
    "list", "dict", "set", "bytearray", "defaultdict", "deque", "Counter", "OrderedDict", "array", "zeros",
    "ones", "empty", "DataFrame", "Series",
})
# Decorators that make a function keep results across calls.
CACHE_DECORATORS = frozenset({"lru_cache", "cache", "functools.lru_cache", "functools.cache"})


def reads_arguments_only(callee: str | None, method: str | None) -> bool:
    """Whether a call by that dotted name (or that method name) is known not to change its arguments."""
    if method is not None:
        return method in READ_ONLY_ARGUMENT_METHODS
    if callee is None or callee in ARGUMENT_MUTATORS:
        return False
    return callee in PURE_BUILTINS or callee.startswith(NON_MUTATING_PREFIXES)


def mutated_argument(callee: str | None, method: str | None) -> int | None:
    """Position of the argument a known in-place library call changes, if any."""
    if method is not None:
        return ARGUMENT_MUTATING_METHODS.get(method)
    return ARGUMENT_MUTATORS.get(callee) if callee is not None else None
