"""Step graph helpers: topological order, cycle reporting, independent sets."""
from __future__ import annotations

from same_nb.frontend.ir import Edge


def find_cycle(nodes: list[str], edges: list[Edge]) -> list[str] | None:
    """A cycle as [a, b, ..., a], or None. Iterative DFS so 5,000-step graphs don't recurse."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        succ.setdefault(e.src, []).append(e.dst)
    state: dict[str, int] = {}          # 1 = on stack, 2 = done
    for root in nodes:
        if state.get(root):
            continue
        stack = [(root, iter(succ.get(root, ())))]
        path = [root]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(succ.get(nxt, ()))))
                path.append(nxt)
    return None


def topological_order(nodes: list[str], edges: list[Edge]) -> list[str]:
    """Kahn's algorithm with notebook order as the tie-break, so output is stable."""
    index = {n: i for i, n in enumerate(nodes)}
    indeg = {n: 0 for n in nodes}
    succ: dict[str, set[str]] = {n: set() for n in nodes}
    for e in edges:
        if e.dst not in succ[e.src]:
            succ[e.src].add(e.dst)
            indeg[e.dst] += 1
    import heapq
    ready = [(index[n], n) for n in nodes if indeg[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(ready, (index[m], m))
    return order


def levels(nodes: list[str], edges: list[Edge]) -> list[list[str]]:
    """Steps grouped by depth: every step in one level can run at the same time."""
    depth: dict[str, int] = {}
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        preds[e.dst].append(e.src)
    for n in topological_order(nodes, edges):
        depth[n] = 1 + max((depth[p] for p in preds[n]), default=-1)
    out: list[list[str]] = []
    for n in nodes:
        while len(out) <= depth.get(n, 0):
            out.append([])
        out[depth.get(n, 0)].append(n)
    return out
