"""Which notebook names may hold one object, and in which step each link between two names was made.

Inside one kernel, changing an object through one name changes it under every other name. Across
steps that only holds while both names were linked in the same step: each step receives its own
copy of every input, so a link made in an earlier step no longer joins the two copies.
A link is certain (`b = a`, `a = b = []`), possible (a view, an element, an attribute), or a container
holding an object (`data = [train, test]`): changing data's own slots (`data.append(x)`) leaves train
alone, changing what is inside them (`for d in data: d["x"] = 1`) may change train.
"""
from __future__ import annotations

from dataclasses import dataclass

SAME, PART, HOLDS, HELD = "same", "part", "holds", "held"


@dataclass(frozen=True)
class Reached:
    name: str
    linked: str | None    # None: one object in the changing step's kernel; else the step a link crossed from
    certain: bool         # every link on the way says "the very same object"


class SharedObjects:
    def __init__(self) -> None:
        self.links: dict[str, dict[str, tuple[str, str]]] = {}   # name -> {other: (step that linked, kind)}

    def drop(self, name: str) -> None:
        """``name`` now holds an unrelated object."""
        for other in self.links.pop(name, {}):
            others = self.links.get(other)
            if others is not None:
                others.pop(name, None)
                if not others:
                    del self.links[other]

    def link(self, name: str, other: str, step: str, kind: str) -> None:
        """``kind`` is SAME, PART or HOLDS (``name`` holds ``other``)."""
        self.links.setdefault(name, {})[other] = (step, kind)
        self.links.setdefault(other, {})[name] = (step, HELD if kind == HOLDS else kind)

    def reach(self, name: str, step: str, deep: bool = True) -> list[Reached]:
        """Every other name whose object changes with ``name``'s in ``step`` (``deep``: inside its elements
        too), best path first: one object in the kernel, else a certain link across steps, else a possible one."""
        if name not in self.links:
            return []
        best: dict[str, tuple[int, str | None, bool]] = {name: (0, None, True)}
        todo = [(name, deep)]
        while todo:
            current, inside = todo.pop()
            rank, linked, certain = best[current]
            for other, (made, kind) in self.links.get(current, {}).items():
                if kind == HOLDS and not inside:
                    continue
                crossed = linked if linked is not None else (None if made == step else made)
                now = certain and kind == SAME
                candidate = (0 if crossed is None else 1 if now else 2, crossed, now)
                if other not in best or candidate[0] < best[other][0]:
                    best[other] = candidate
                    todo.append((other, True))
        return [Reached(other, linked, certain) for other, (_, linked, certain) in sorted(best.items())
                if other != name]
