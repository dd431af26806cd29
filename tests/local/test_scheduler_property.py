"""A property test of the local scheduler (runner.py, kernels.py, prepared.py), through the real CLI.

Random DAGs (seeded) become real notebooks: one ``step:sK`` cell per step, reading its parents'
variables and defining its own. Each is run with ``same-nb run NB -j J`` in a fresh process, in three
cache states: cold, fully warm (nothing changed), and partly warm (one step's source or the one
parameter changed, so only that step and whatever its change reaches re-run). After every run:

- the run succeeds, and each step has one step run: executed exactly when expected, otherwise a cache hit;
- an executed step ran exactly once (one start and one end mark) and started after each of its
  parents finished, inside the kernels (marks) and in the store (timestamps);
- no more than J steps computed at once;
- every step's value (the one it wrote when it last executed) equals a plain Python evaluation of the DAG.

Each step writes its marks to ``.marks/<step>``: hidden folders are not recorded as the step's files, and
no step reads another's, so the marks add no edge and never affect the cache. The first case is the shape
that once made ``KernelPool.take`` look up a step ``prepare()`` had skipped (s1→s2→s3→s4 plus an
independent s5, -j 2). ``SAME_NB_SCHEDULER_CASES`` sets how many DAG×J×cache-state runs to make
(default 12: four DAGs, three cache states each), ``SAME_NB_SCHEDULER_SEED`` which random DAGs.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from same_nb.store.database import open_store

pytestmark = pytest.mark.slow

MOD = 1_000_003
CASES = int(os.environ.get("SAME_NB_SCHEDULER_CASES", "12"))
SEED = int(os.environ.get("SAME_NB_SCHEDULER_SEED", "2"))   # 2: DAGs of 3, 9 (16 edges) and 7 steps, -j 1 to 8
STATES = ("cold", "warm", "partly warm")


@dataclass
class Dag:
    n: int
    parents: dict[int, list[int]]                  # step k -> earlier steps it reads
    consts: dict[int, int]
    param_step: int                                # the one step that reads the parameter `base`
    base: int = 7
    muls: dict[tuple[int, int], int] = field(default_factory=dict)   # (parent, child) -> multiplier

    def names(self) -> list[str]:
        return [f"s{k}" for k in range(1, self.n + 1)]

    def source(self, k: int) -> str:
        head = "base" if k == self.param_step else str(self.consts[k])
        terms = "".join(f" + {self.muls[(p, k)]} * v{p}" for p in self.parents[k])
        mark = f'open(".marks/s{k}", "a").write'
        return (f"import time\n"
                f'{mark}(f"start {{time.time_ns()}}\\n")\n'
                f"v{k} = ({head}{terms}) % {MOD}\n"
                f'{mark}(f"end {{time.time_ns()}} {{v{k}}}\\n")\n')

    def cells(self) -> list[tuple[list[str], str]]:
        return [(["parameters"], f"base = {self.base}")] + \
               [([f"step:s{k}"], self.source(k)) for k in range(1, self.n + 1)]

    def values(self) -> dict[str, int]:
        """The plain Python evaluation of the same DAG."""
        v: dict[int, int] = {}
        for k in range(1, self.n + 1):
            head = self.base if k == self.param_step else self.consts[k]
            v[k] = (head + sum(self.muls[(p, k)] * v[p] for p in self.parents[k])) % MOD
        return {f"s{k}": x for k, x in v.items()}

    def most_reaching(self) -> int:
        """The step, other than the parameter's, with the most descendants (the first of equals)."""
        below = {k: set() for k in self.parents}
        for k in sorted(self.parents, reverse=True):
            for p in self.parents[k]:
                below[p] |= below[k] | {k}
        return max((k for k in below if k != self.param_step), key=lambda k: (len(below[k]), -k))

    def edges(self) -> set[tuple[str, str]]:
        return {(f"s{p}", f"s{k}") for k, ps in self.parents.items() for p in ps}


def random_dag(rng: random.Random) -> Dag:
    n = rng.randint(3, 12)
    density = rng.choice([0.15, 0.3, 0.5])
    parents = {k: [p for p in range(1, k) if rng.random() < density] for k in range(1, n + 1)}
    consts = {k: rng.randint(1, 999) for k in range(1, n + 1)}
    feeding = sorted({p for ps in parents.values() for p in ps}) or list(parents)   # a changed parameter reaches further
    dag = Dag(n, parents, consts, rng.choice(feeding))
    dag.muls = {(p, k): rng.randint(2, 97) for k, ps in parents.items() for p in ps}
    return dag


def chain_and_one() -> Dag:
    """s1→s2→s3→s4 plus independent s5: with -j 2 the pool's limit (jobs + 2) was full of kernels for
    s2..s4 when s5 became ready, and ``take('s5')`` found no kernel."""
    parents = {1: [], 2: [1], 3: [2], 4: [3], 5: []}
    dag = Dag(5, parents, {k: 10 * k for k in parents}, param_step=5)
    dag.muls = {(p, k): 3 for k, ps in parents.items() for p in ps}
    return dag


def plan(cases: int) -> list[tuple[Dag, list[int]]]:
    """(DAG, -j for each cache state): every run is one DAG×J×cache-state combination."""
    rng = random.Random(SEED)
    plans = [(chain_and_one(), [2, 2, 2])]
    while sum(len(js) for _, js in plans) < cases:
        plans.append((random_dag(rng), [rng.randint(1, 8) for _ in STATES]))
    budget, out = cases, []
    for dag, js in plans:
        out.append((dag, js[:budget]))
        budget -= len(out[-1][1])
    return out


def same_nb(*args) -> subprocess.CompletedProcess:
    """``same-nb ARGS`` in a fresh process, importing the same_nb under test (whatever the
    console script's install points at)."""
    import same_nb as package

    env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}
    root = str(Path(package.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-c", "import sys; from same_nb.cli import main; sys.exit(main())"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)


def write(nb: Path, dag: Dag) -> None:
    from conftest import notebook_data

    nb.write_text(json.dumps(notebook_data(dag.cells()), indent=1))


def read_marks(folder: Path) -> dict[str, list[tuple[str, int, int | None]]]:
    marks = {}
    for path in sorted((folder / ".marks").iterdir()):
        marks[path.name] = [(w[0], int(w[1]), int(w[2]) if len(w) > 2 else None)
                            for w in (line.split() for line in path.read_text().splitlines())]
    return marks


def to_rerun(dag: Dag, changed: int, before: dict[str, int]) -> set[str]:
    """The steps a correct cache executes after ``changed``'s code or parameter changed: it, and every
    step one of whose inputs now has a different value."""
    after = dag.values()
    return {f"s{k}" for k in range(1, dag.n + 1)
            if k == changed or any(before[f"s{p}"] != after[f"s{p}"] for p in dag.parents[k])}


def check_run(folder: Path, dag: Dag, jobs: int, proc, expected_executed: set[str],
              last_values: dict[str, int], label: str) -> None:
    assert proc.returncode == 0, f"{label}: {proc.stdout}\n{proc.stderr}"
    with open_store(notebook_dir=folder) as store:
        run = store.get_run(store.list_runs(limit=1)[0]["id"])
    assert run["status"] == "success", label
    rows = {}
    for s in run["steps"]:
        assert s["step_name"] not in rows, f"{label}: {s['step_name']} has two step runs"
        rows[s["step_name"]] = s
    assert set(rows) == set(dag.names()), label
    executed = {n for n, s in rows.items() if s["status"] == "success"}
    cached = {n for n, s in rows.items() if s["status"] == "cached"}
    assert executed | cached == set(rows), f"{label}: {[(n, s['status']) for n, s in rows.items()]}"
    assert all(rows[n]["cache_hit"] for n in cached) and not any(rows[n]["cache_hit"] for n in executed)
    assert executed == expected_executed, (f"{label}: executed {sorted(executed)}, expected "
                                           f"{sorted(expected_executed)}; reasons "
                                           f"{ {n: rows[n]['reason'] for n in rows} }")

    marks = read_marks(folder)
    assert set(marks) == executed, f"{label}: marks of {sorted(marks)}, executed {sorted(executed)}"
    spans = {}
    for name, lines in marks.items():
        assert [w[0] for w in lines] == ["start", "end"], f"{label}: {name} ran {lines}"
        spans[name] = (lines[0][1], lines[1][1])
        last_values[name] = lines[1][2]
    for child, parent in ((f"s{k}", f"s{p}") for k, ps in dag.parents.items() for p in ps):
        if child in executed and parent in executed:
            assert spans[child][0] >= spans[parent][1], f"{label}: {child} started before its parent {parent} ended"
            assert rows[child]["started_at"] >= rows[parent]["finished_at"], f"{label}: store order {parent}→{child}"
    # At most `jobs` steps compute at once: count overlaps at each start.
    for name, (start, _) in spans.items():
        running = [n for n, (a, b) in spans.items() if a <= start < b]
        assert len(running) <= jobs, f"{label}: {sorted(running)} computed at once with -j {jobs}"
    assert last_values == dag.values(), f"{label}: values differ from a plain evaluation"


PLAN = plan(CASES)


@pytest.mark.parametrize("index", range(len(PLAN)),
                         ids=[f"dag{i}-{d.n}steps-j{'-'.join(map(str, js))}" for i, (d, js) in enumerate(PLAN)])
def test_scheduler_runs_each_step_once_after_its_parents(tmp_path, monkeypatch, index):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    dag, jobs = plan(CASES)[index]                      # a fresh copy: the test changes it
    nb = tmp_path / "dag.ipynb"
    write(nb, dag)

    from same_nb.local.prepared import prepare

    edges = {(e.src, e.dst) for e in prepare(nb).pipeline.edges}
    assert edges == dag.edges(), "the notebook's steps must have exactly the DAG's edges"

    last_values: dict[str, int] = {}
    params: list[str] = []
    for state, j in zip(STATES, jobs):
        label = f"DAG {index} ({dag.n} steps, edges {sorted(dag.edges())}), {state}, -j {j}"
        if state == "cold":
            expected = set(dag.names())
        elif state == "warm":
            expected = set()
        else:
            before = dag.values()
            changed = dag.param_step if index % 2 else dag.most_reaching()
            if changed == dag.param_step:               # a parameter: only the step that reads it changes
                dag.base += 1
                params = ["-p", "base", str(dag.base)]
            else:                                       # one step's source
                dag.consts[changed] += 1
                write(nb, dag)
            expected = to_rerun(dag, changed, before)
        marks = tmp_path / ".marks"
        shutil.rmtree(marks, ignore_errors=True)
        marks.mkdir()
        proc = same_nb("run", nb, "-j", j, "-q", *params)
        check_run(tmp_path, dag, j, proc, expected, last_values, label)
