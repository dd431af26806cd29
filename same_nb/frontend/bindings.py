"""What the data flow knows about each name as it walks the notebook: the latest binding of each name,
and the records it reports from once every step is resolved."""
from __future__ import annotations

from dataclasses import dataclass, field

from same_nb.frontend.facts import FunctionInfo
from same_nb.frontend.ir import Import
from same_nb.frontend.notebook import NotebookCell


@dataclass
class Binding:
    step: str | None                  # None for a parameter
    kind: str                         # data | import | def | param
    imp: Import | None = None
    deferred: list[str] = field(default_factory=list)    # names whose code a use of the value may run
    info: FunctionInfo | None = None  # what running its own code changes (defs, classes, lambdas)
    stateful: bool = False            # using the value changes it (a closure with `nonlocal` state)
    immutable: bool = False           # a number, string, None or tuple of those: nothing changes it in place
    fallback: Binding | None = None   # bound on only some paths: the earlier binding that may survive
    fallback_taken: bool = False
    maker: tuple[str, Binding] | None = None   # an instance: its notebook class, as bound when it was made
    # The same token through in-place changes (which replace the Binding): tells a class changed in place
    # (its instances see the change) from a class name bound to a new class (they do not).
    token: object = field(default_factory=object)

    @property
    def runs_code(self) -> bool:
        return (self.kind == "def" or bool(self.deferred) or self.info is not None or self.stateful
                or self.maker is not None)


@dataclass
class Unresolved:
    name: str
    step: str
    cell: NotebookCell
    line: int
    deleted_in: str | None = None     # the step whose `del` removed the name before this read
    guarded: bool = False             # read inside `try:` with an `except NameError`


@dataclass
class Shared:
    """A change made in ``step`` through ``via`` that reaches ``name`` only through a link made in ``linked``."""
    step: str
    name: str
    via: str
    linked: str
    certain: bool     # the two names surely hold one object
    cell: NotebookCell
    line: int


def carry(b: Binding, origin: Binding, stateful: bool) -> None:
    """``b`` runs ``origin``'s code: the globals it reads, what it changes, the class it is an instance of."""
    b.deferred.extend(n for n in origin.deferred if n not in b.deferred)
    b.info = b.info or origin.info
    b.stateful = b.stateful or stateful
    b.maker = b.maker or origin.maker
