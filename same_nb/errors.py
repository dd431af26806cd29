"""The one error type same-nb raises for bad input, with a location the user can act on."""
from __future__ import annotations


class SameError(Exception):
    """A problem the user can fix. The CLI prints it without a traceback and exits non-zero.

    ``path``, ``cell`` (1-based position in the notebook), ``cell_id`` and ``line`` (1-based,
    within the cell) are optional; ``str()`` renders whichever are known.
    """

    def __init__(self, message: str, *, path: str | None = None, cell: int | None = None,
                 cell_id: str | None = None, line: int | None = None, step: str | None = None):
        self.message = message
        self.path = path
        self.cell = cell
        self.cell_id = cell_id
        self.line = line
        self.step = step
        super().__init__(str(self))

    def location(self) -> str:
        parts = []
        if self.path:
            parts.append(str(self.path))
        if self.step:
            parts.append(f"step {self.step}")
        if self.cell is not None:
            parts.append(f"cell {self.cell}" + (f" (id {self.cell_id})" if self.cell_id else ""))
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts)

    def __str__(self) -> str:
        loc = self.location()
        return f"{loc}: {self.message}" if loc else self.message

    def to_dict(self) -> dict:
        return {"message": self.message, "path": self.path, "step": self.step,
                "cell": self.cell, "cell_id": self.cell_id, "line": self.line}
