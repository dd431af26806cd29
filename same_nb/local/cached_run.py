"""A rerun where every step is cached, recorded without SQLAlchemy (``store/lean.py``).

The run goes through the normal runner with the lean store; its progress is held back by
:class:`HeldProgress` until the run is recorded, and the first step that would execute (or be
skipped) stops the attempt before any kernel starts, so the caller rolls it back and runs the normal
path with nothing shown or recorded twice.
"""
from __future__ import annotations

from same_nb.store.lean import NotAllCached


class HeldProgress:
    """Holds a progress display's calls; :meth:`replay` shows them once the run is recorded."""

    def __init__(self, progress):
        self.progress = progress
        self.calls: list[tuple[str, tuple]] = []

    def update(self, name, st) -> None:
        if st.status != "cached":
            raise NotAllCached(f"step {name} is {st.status}")
        self.calls.append(("update", (name, st)))

    def __getattr__(self, method: str):
        def hold(*args) -> None:
            self.calls.append((method, args))
        return hold

    def replay(self) -> None:
        for method, args in self.calls:
            getattr(self.progress, method)(*args)
