"""Pipeline IR: the plain, serializable model that every target consumes.

It holds no kfp, papermill or nbformat objects, so it round-trips through JSON
(``Pipeline.to_dict`` / ``Pipeline.from_dict``) and can be cached by notebook hash.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

IR_VERSION = 2

# Pseudo-variables that carry a global random generator's state between the steps that use it, in
# notebook order (``same_nb.frontend.effects``). The `_same_nb_` prefix is reserved in user code.
STATE_VARIABLES = {"_same_nb_rng_random": "random", "_same_nb_rng_numpy": "numpy.random",
                   "_same_nb_rng_torch": "torch"}
RESERVED_PREFIX = "_same_nb_"


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """Like dataclasses.asdict, without deep-copying every leaf: 5x faster on large pipelines."""
    cls = type(value)
    if cls in (str, int, float, bool, type(None)):
        return value
    names = _FIELDS.get(cls)
    if names is None and is_dataclass(cls):
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    if names is not None:
        return {n: _plain(getattr(value, n)) for n in names}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass
class Diagnostic:
    severity: str                 # "error" | "warning"
    message: str
    code: str = ""                # stable short id, e.g. "undefined-name"
    step: str | None = None
    cell: int | None = None       # 1-based position in the notebook (markdown cells count)
    cell_id: str | None = None
    line: int | None = None       # 1-based line within the cell

    def where(self) -> str:
        parts = []
        if self.cell is not None:
            parts.append(f"cell {self.cell}" + (f" (id {self.cell_id})" if self.cell_id else ""))
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts)

    def render(self) -> str:
        where = self.where()
        prefix = f"[{self.step}] " if self.step else ""
        return f"{self.severity}: {prefix}{where + ': ' if where else ''}{self.message}"


@dataclass
class Cell:
    number: int                   # 1-based position in the notebook
    id: str
    source: str
    tags: list[str] = field(default_factory=list)
    cell_type: str = "code"       # code | markdown


@dataclass
class Import:
    module: str                   # dotted module as written, e.g. "sklearn.linear_model"
    top: str                      # top-level package, e.g. "sklearn"
    statement: str                # source to replay, e.g. "from sklearn import svm as s"
    names: list[str] = field(default_factory=list)   # names it binds
    cell: int | None = None
    line: int | None = None


@dataclass
class Input:
    name: str
    kind: str                     # "variable" | "parameter"
    producer: str | None = None   # producing step for variables


@dataclass
class Replay:
    """A top-level statement of an earlier step that changed configuration, run again at the start of
    a later step so the later step starts with the configuration a top-to-bottom run has."""
    channel: str                  # "pandas.options", "os.environ", "monkeypatch:pandas", ...
    statement: str                # Python source (IPython syntax already converted), from the AST
    step: str                     # the step whose code made the change
    imports: list[str] = field(default_factory=list)   # import statements it needs, as at that point
    cell: int | None = None
    line: int | None = None
    guard: str = ""               # run only if this module is already imported (the step does not use it)
    after_inputs: bool = False    # reads notebook variables (or is guarded): runs once inputs are loaded
    wrap: bool = False            # binds names: runs inside a function so it binds none in the step


@dataclass
class Parameter:
    name: str
    default: Any
    type: str                     # int | float | str | bool | NoneType | list | dict
    line: int | None = None


@dataclass
class Step:
    name: str
    cells: list[Cell] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)          # the step's own imports
    replay_imports: list[Import] = field(default_factory=list)   # earlier imports it uses
    params: list[str] = field(default_factory=list)              # parameters it reads
    after: list[str] = field(default_factory=list)               # explicit dependencies
    requirements: list[str] = field(default_factory=list)        # from !pip / %pip lines
    definitions: list[str] = field(default_factory=list)         # functions/classes it defines
    watch: list[str] = field(default_factory=list)   # inputs passed to opaque calls: checked at run time
    # Process state and files (``same_nb.frontend.effectflow``):
    state_writes: list[str] = field(default_factory=list)  # channels its code is planned to change
    replay: list[Replay] = field(default_factory=list)     # configuration replayed before its code
    file_reads: list[str] = field(default_factory=list)    # literal paths, relative to the notebook folder
    file_writes: list[str] = field(default_factory=list)

    @property
    def variable_inputs(self) -> list[Input]:
        return [i for i in self.inputs if i.kind == "variable"]


@dataclass
class Edge:
    src: str
    dst: str
    kind: str                     # "data" | "after" | "file" | "state"
    names: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)     # "file out.csv", "state cwd", "after: tag"

    def reasons(self) -> list[str]:
        """Why the edge exists: the variables it carries, the state channels, the files, the tag."""
        found = [f"state {STATE_VARIABLES[n]}" if n in STATE_VARIABLES else n for n in self.names]
        return found + [w for w in self.why if w not in found] or (["after:"] if self.kind == "after" else [])


@dataclass
class Pipeline:
    name: str
    notebook: str                 # path as given
    notebook_sha256: str
    kernel: str = "python3"
    parameters: list[Parameter] = field(default_factory=list)
    parameters_cell: Cell | None = None
    prelude: list[Cell] = field(default_factory=list)  # Kale imports/functions cells, run in every step
    metrics: list[str] = field(default_factory=list)   # Kale pipeline-metrics names
    steps: list[Step] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    ir_version: int = IR_VERSION

    def verified_inputs(self, name: str) -> dict[str, dict]:
        """Inputs of step ``name`` that a later step (in notebook order) reads in the same version, with
        those readers: the step checks at run time that it left them unchanged, since a change would
        not reach them."""
        names = [s.name for s in self.steps]
        step, later = self.step(name), self.steps[names.index(name) + 1:]
        mutable = {p.name for p in self.parameters if p.type in ("list", "dict")}
        verify = {}
        for inp in step.inputs:
            if inp.kind != "variable" and inp.name not in mutable:
                continue
            readers = [s.name for s in later if any(i.name == inp.name and i.kind == inp.kind
                                                    and i.producer == inp.producer for i in s.inputs)]
            if readers:
                verify[inp.name] = {"producer": inp.producer, "readers": readers}
        return verify

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def upstream(self, name: str) -> list[str]:
        return sorted({e.src for e in self.edges if e.dst == name})

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Pipeline":
        def build(klass, d):
            return klass(**{f.name: d[f.name] for f in fields(klass) if f.name in d})

        def step(d):
            s = build(Step, d)
            s.cells = [build(Cell, c) for c in d.get("cells", [])]
            s.inputs = [build(Input, i) for i in d.get("inputs", [])]
            s.imports = [build(Import, i) for i in d.get("imports", [])]
            s.replay_imports = [build(Import, i) for i in d.get("replay_imports", [])]
            s.replay = [build(Replay, r) for r in d.get("replay", [])]
            return s

        p = build(cls, data)
        p.parameters = [build(Parameter, x) for x in data.get("parameters", [])]
        p.parameters_cell = build(Cell, data["parameters_cell"]) if data.get("parameters_cell") else None
        p.prelude = [build(Cell, c) for c in data.get("prelude", [])]
        p.steps = [step(s) for s in data.get("steps", [])]
        p.edges = [build(Edge, e) for e in data.get("edges", [])]
        p.diagnostics = [build(Diagnostic, x) for x in data.get("diagnostics", [])]
        return p
