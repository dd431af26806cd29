"""Effects across steps: walk every statement in notebook order and turn the effects table into a plan.

Names resolve through the imports seen so far (``import numpy as np`` makes ``np.random.seed``
``numpy.random.seed``); a notebook function's calls count where it is used. The plan says, per step:
- which global random generators it uses: the steps on one generator form a chain, each reading the
  generator state (a pseudo-variable, ``ir.STATE_VARIABLES``) the previous one saved;
- which configuration statements earlier steps ran: replayed at its start, the variables they read
  becoming its inputs (``reads_at_start``, resolved by the data flow like any read);
- which literal paths it reads and writes: ordered writer → reader, writer → writer, reader → writer.
Changes that cannot be replayed (a setting inside a loop that does more) are reported, not carried.
"""
from __future__ import annotations

import builtins
import posixpath
import re
from dataclasses import dataclass, field

from same_nb.frontend import effects as fx
from same_nb.frontend.effectscan import DYNAMIC, CellScan, DefScan, Site, StmtScan, shell_writes
from same_nb.frontend.grouping import StepDraft
from same_nb.frontend.ir import RESERVED_PREFIX, Diagnostic
from same_nb.frontend.notebook import NotebookCell

_BUILTINS = frozenset(dir(builtins)) | {"get_ipython", "display"}
_ROOT = re.compile(r"[^.(\[]*")


@dataclass
class Candidate:
    """A configuration statement that later steps replay."""
    channel: str
    text: str
    step: str
    index: int                         # the step's position in the notebook
    cell: NotebookCell
    line: int
    imports: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)          # notebook variables / parameters it reads
    own: dict[str, bool] = field(default_factory=dict)      # read name -> bound by its own step before it
    wrap: bool = False
    cwd: object = None                 # os.chdir / %cd: the literal directory, DYNAMIC otherwise
    files: list[tuple[str, str]] = field(default_factory=list)   # what replaying it touches
    position: int = 0                  # the statement's position in the notebook


@dataclass
class StepEffects:
    name: str
    rng: list[str] = field(default_factory=list)
    config: list[str] = field(default_factory=list)          # carried configuration channels
    events: list[tuple[str, str, bool]] = field(default_factory=list)   # (path, read|write|list|mkdir, weak)
    hidden: tuple | None = None        # (cell, line, what): the first statement that may set hidden state
    touches: dict[str, list[int]] = field(default_factory=dict)          # name -> statement positions


@dataclass
class EffectPlan:
    steps: dict[str, StepEffects]
    candidates: list[Candidate]
    diagnostics: list[Diagnostic]
    rng_chains: dict[str, list[str]]   # channel -> steps in notebook order
    positions: dict[tuple[str, int], int] = field(default_factory=dict)   # (step, candidate index) -> pos


@dataclass
class _Effect:
    channel: str
    effect: str
    site: Site
    path: str | None = None


class EffectFlow:
    def __init__(self, params: set[str]):
        self.params = params
        self.aliases: dict[str, tuple[str, str]] = {}       # name -> (qualified, import statement)
        self.defs: dict[str, DefScan] = {}
        self.cwd: str | None = "."                          # relative to the notebook folder; None: unknown
        self.syspath: list[str] = []
        self.bound: set[str] = set()                        # names bound so far
        self.diagnostics: list[Diagnostic] = []
        self.candidates: list[Candidate] = []
        self.pos = 0

    def run(self, steps: list[StepDraft], scans: dict[str, CellScan], prelude: list[CellScan] = ()) -> EffectPlan:
        plan = EffectPlan({}, self.candidates, self.diagnostics, {})
        # Prelude cells (Kale's `imports`/`functions`) run at the top of every step: their imports name
        # the modules every step's calls resolve against.
        for scan in prelude:
            for st in scan.statements:
                for alias, qualified, statement in st.imports:
                    self.aliases[alias] = (qualified, statement)
        for index, draft in enumerate(steps):
            here = plan.steps[draft.name] = StepEffects(draft.name)
            for cell in draft.cells:
                scan = scans.get(cell.id)
                for st in (scan.statements if scan else ()):
                    self.pos += 1
                    self._statement(here, index, cell, st)
            for channel_name in here.rng:
                plan.rng_chains.setdefault(channel_name, []).append(draft.name)
        return plan

    # -- resolution -----------------------------------------------------------------------------
    def resolve(self, name: str) -> tuple[str | None, bool]:
        """(qualified name, whether it is a module attribute chain) for a dotted name as written."""
        root = _root(name)
        rest = name[len(root):]
        if root in self.aliases:
            return self.aliases[root][0] + rest, "(" not in rest and "[" not in rest
        if root in _BUILTINS and root not in self.defs:
            return name, False
        return None, False

    def effects_of(self, site: Site) -> list[_Effect]:
        if site.kind == "call":
            qualified, module_chain = self.resolve(site.name)
            rules = list(fx.rules_for("call", qualified)) if qualified else []
            if not module_chain and "." in site.name:
                rules += fx.rules_for("method", site.name.rpartition(".")[2])
            kwargs = dict(site.kwargs)
            rules = [r for r in rules if not (r.unless and kwargs.get(r.unless, None) is not None)]
        elif site.kind == "store":
            qualified, _ = self.resolve(site.name)
            rules = list(fx.rules_for("store", qualified)) if qualified else []
            if not rules and qualified and _root(site.name) in self.aliases:
                return [_Effect(fx.MONKEYPATCH + qualified.split(".")[0], "config", site)]
        elif site.kind == "magic":
            rules = list(fx.rules_for("magic", site.name))
            if site.name == "env" and "=" not in site.text and len(site.text.split()) < 2:
                rules = []                                   # `%env` / `%env X` only read
        elif site.kind == "cell":
            rules = list(fx.rules_for("cell", site.name))
        else:
            return []
        restored = {r.channel for scope in site.scopes for r in fx.rules_for("scope", self.resolve(scope)[0] or "")}
        found = []
        for rule in rules:
            if rule.channel == fx.FILE:
                found.extend(self._file_effects(rule, site))
            elif rule.channel not in restored:
                found.append(_Effect(rule.channel, rule.effect, site))
        return found

    def _file_effects(self, rule: fx.Rule, site: Site) -> list[_Effect]:
        if site.kind == "magic":                             # %run script.py
            tokens = [t for t in site.text.split() if not t.startswith("-")]
            raw = tokens[0] if tokens else DYNAMIC
        elif site.kind == "cell":
            raw = site.args[0]
        else:
            raw = _argument(site, rule.path)
        path = self.normalize(raw)
        if path is None:
            return []
        if rule.effect != "open":
            effect = "write" if rule.effect == "append" else rule.effect
            return [_Effect(fx.FILE, effect, site, path)]
        mode = _argument(site, rule.mode) if _has_argument(site, rule.mode) else "r"
        if not isinstance(mode, str):                        # decided at run time: both
            return [_Effect(fx.FILE, "read", site, path), _Effect(fx.FILE, "write", site, path)]
        writes = bool(set(mode) & set("wxa+"))
        reads = "r" in mode or "+" in mode or not writes
        return ([_Effect(fx.FILE, "read", site, path)] if reads else []) + (
            [_Effect(fx.FILE, "write", site, path)] if writes else [])

    def normalize(self, raw: object) -> str | None:
        """A literal path relative to the notebook folder (absolute stays absolute); None if unknown."""
        if not isinstance(raw, str) or not raw or raw.startswith("~"):
            return None
        if raw.startswith("/"):
            return posixpath.normpath(raw)
        if self.cwd is None:
            return None
        return posixpath.normpath(posixpath.join(self.cwd, raw))

    def _used(self, st: StmtScan) -> list[tuple[str, DefScan]]:
        """Notebook functions and classes the statement reads, with the ones they read in turn."""
        found, todo, seen = [], [n for n in st.loads if n in self.defs], set()
        while todo:
            name = todo.pop(0)
            if name in seen or name not in self.defs:
                continue
            seen.add(name)
            found.append((name, self.defs[name]))
            todo.extend(self.defs[name].loads)
        return found

    # -- one statement --------------------------------------------------------------------------
    def _statement(self, here: StepEffects, index: int, cell: NotebookCell, st: StmtScan) -> None:
        direct = [(site, e) for site in st.sites for e in self.effects_of(site)]
        via = [(name, site, e) for name, scan in self._used(st) for site in scan.sites for e in self.effects_of(site)]
        for _, e in direct:
            self._record(here, e)
        for _, _, e in via:
            self._record(here, e)
        self._files_of_sites(here, st)
        config = [e for _, e in direct if _kind(e.channel) == fx.CONFIG]
        via_config = [e for _, _, e in via if _kind(e.channel) == fx.CONFIG]
        if config or via_config:
            self._config(here, index, cell, st, config + via_config, bool(via_config))
        self._hidden(here, cell, st, direct)
        for name in st.binds:
            if name.startswith(RESERVED_PREFIX):
                self.diagnostics.append(Diagnostic(
                    "error", f"{name!r}: names starting with {RESERVED_PREFIX!r} are reserved for same-nb's "
                    "generated code; rename it", code="reserved-name", step=here.name, cell=cell.number,
                    cell_id=cell.id, line=st.line))
        for name in (*st.binds, *st.touches):
            here.touches.setdefault(name, []).append(self.pos)
        self.bound.update(st.binds)
        imported = {alias for alias, _, _ in st.imports}
        for alias, qualified, statement in st.imports:
            self.aliases[alias] = (qualified, statement)
            self.defs.pop(alias, None)
        for name in st.binds:
            if name in st.defs:
                self.defs[name] = st.defs[name]
                self.aliases.pop(name, None)
            elif name not in imported:
                self.aliases.pop(name, None)
                self.defs.pop(name, None)
        self._move(direct)

    def _record(self, here: StepEffects, e: _Effect) -> None:
        kind = _kind(e.channel)
        if kind == fx.RNG and e.channel not in here.rng:
            here.rng.append(e.channel)
        elif kind == fx.FILE:
            here.events.append((e.path, e.effect, False))

    def _files_of_sites(self, here: StepEffects, st: StmtScan) -> None:
        for site in st.sites:
            if site.kind == "shell":
                for path, _ in shell_writes(site.text):
                    normalized = self.normalize(path)
                    if normalized:
                        here.events.append((normalized, "write", False))
            elif site.kind == "import":
                top = site.name.split(".")[0]
                for base in (self.cwd, *self.syspath):
                    if base is not None:
                        for rel in (f"{top}.py", f"{top}/__init__.py"):
                            here.events.append((posixpath.normpath(posixpath.join(base, rel)), "read", True))

    def _move(self, direct: list[tuple[Site, _Effect]]) -> None:
        """Follow os.chdir / %cd and sys.path changes with literal arguments, for later relative paths."""
        for site, e in direct:
            if e.channel == "cwd":
                target = _cwd_target(site)
                self.cwd = self.normalize(target) if isinstance(target, str) else None
            elif e.channel == "sys.path" and site.kind == "call" and site.name.endswith(("append", "insert")):
                value = site.args[-1] if site.args else DYNAMIC
                if isinstance(value, str) and not value.startswith("/") and self.cwd is not None:
                    self.syspath.append(posixpath.normpath(posixpath.join(self.cwd, value)))

    # -- configuration ----------------------------------------------------------------------------
    def _config(self, here: StepEffects, index: int, cell: NotebookCell, st: StmtScan, found: list[_Effect],
                through_function: bool) -> None:
        channels = list(dict.fromkeys(e.channel for e in found))
        problem = self._unreplayable(st, through_function)
        if problem:
            self.diagnostics.append(Diagnostic(
                "warning", f"this statement changes {', '.join(channels)}, but {problem}, so same-nb cannot "
                "replay it in later steps: they would start without the change. Put the setting in a "
                "top-level statement of its own (e.g. `pd.set_option(...)` on its own line)",
                code="state-not-carried", step=here.name, cell=cell.number, cell_id=cell.id, line=st.line))
            return
        for channel_name in channels:
            if channel_name not in here.config:
                here.config.append(channel_name)
        reads = [n for n in st.loads if n not in self.aliases and n not in _BUILTINS and n not in st.binds
                 and (n in self.bound or n in self.params)]
        cwd = _cwd_target(found[0].site) if channels == ["cwd"] and not through_function else DYNAMIC
        files = [(e.path, e.effect) for site in st.sites for e in self.effects_of(site) if e.channel == fx.FILE]
        self.candidates.append(Candidate(
            channel=channels[0], text=st.text, step=here.name, index=index, cell=cell, line=st.line,
            imports=list(dict.fromkeys(self.aliases[n][1] for n in st.loads if n in self.aliases)),
            reads=list(dict.fromkeys(reads)), own={n: n in here.touches for n in reads}, wrap=bool(st.binds),
            cwd=cwd, files=[f for f in files if f[0]], position=self.pos))

    def _unreplayable(self, st: StmtScan, through_function: bool) -> str | None:
        if st.text is None or st.defs or st.imports:
            return "it is not a statement same-nb can run again on its own"
        if through_function:
            name = st.expr_call
            scan = self.defs.get(name or "")
            if scan is None or not scan.simple_body or not all(self._settles(s) for s in scan.sites):
                return "it happens inside a notebook function that also does other things"
        for site in st.sites:
            if not self._settles(site) and not (through_function and site.kind == "call" and site.name == st.expr_call):
                what = f"`{site.name}(...)`" if site.kind == "call" else f"`{site.name}`"
                return f"it also runs {what}, which is not configuration"
        return None

    def _settles(self, site: Site) -> bool:
        """Whether running the site again only sets configuration (or computes nothing lasting)."""
        if any(_kind(e.channel) == fx.CONFIG for e in self.effects_of(site)):
            return True
        if site.kind != "call":
            return False
        if site.name == "get_ipython":
            return True
        qualified, module_chain = self.resolve(site.name)
        if qualified in fx.SAFE_CALLS:
            return True
        return not module_chain and "." in site.name and site.name.rpartition(".")[2] in fx.SAFE_METHODS

    # -- hidden state ---------------------------------------------------------------------------
    def _hidden(self, here: StepEffects, cell: NotebookCell, st: StmtScan, direct) -> None:
        if here.hidden is not None or direct:
            return
        what = None
        for site in st.sites:
            if site.kind == "shell" and " install" not in site.text and not shell_writes(site.text):
                what = f"the shell command `{site.text.strip()[:60]}`"
            elif site.kind == "magic" and site.name == "run":
                what = f"`%run {site.text}`"
        callee = st.expr_call
        if what is None and callee:
            qualified, module_chain = self.resolve(callee)
            if module_chain and not fx.matches(qualified, tuple(fx.DISPLAY_CALLS)):
                if qualified.rpartition(".")[2].startswith(fx.SETTER_PREFIXES):
                    what = f"`{callee}(...)`"
            elif callee in self.defs:
                for site in self.defs[callee].sites:
                    q, chain = self.resolve(site.name) if site.kind == "call" else (None, False)
                    if chain and q.rpartition(".")[2].startswith(fx.SETTER_PREFIXES) and not self.effects_of(site):
                        what = f"`{callee}()`, which calls `{site.name}(...)`"
                        break
        if what:
            here.hidden = (cell, st.line, what)


def _root(name: str) -> str:
    return _ROOT.match(name).group()


def _kind(channel_name: str) -> str:
    return fx.FILE if channel_name == fx.FILE else fx.channel(channel_name).kind


def _argument(site: Site, where: tuple) -> object:
    kwargs = dict(site.kwargs)
    for w in where:
        if w == "self":
            return site.recv
        if isinstance(w, int) and w < len(site.args):
            return site.args[w]
        if isinstance(w, str) and w in kwargs:
            return kwargs[w]
    return DYNAMIC


def _has_argument(site: Site, where: tuple) -> bool:
    kwargs = dict(site.kwargs)
    return any((isinstance(w, int) and w < len(site.args)) or (isinstance(w, str) and w in kwargs) for w in where)


def _cwd_target(site: Site) -> object:
    if site.kind == "magic":
        tokens = [t for t in site.text.split() if not t.startswith("-")]
        if site.name != "cd" or len(tokens) != 1 or any(c in tokens[0] for c in "${~"):
            return DYNAMIC
        return tokens[0]
    return site.args[0] if site.kind == "call" and site.args else DYNAMIC
