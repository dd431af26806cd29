"""Numbers as tables and diffs show them."""
from __future__ import annotations


def number_text(value) -> str:
    """A number for a table: integers as they are, others to 4 significant digits, never
    0.30000000000000004; no exponent between 0.0001 and a billion."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    magnitude = abs(value)
    if 1e-4 <= magnitude < 1000:
        return f"{value:.4g}"
    if 1000 <= magnitude < 1e9:
        return f"{value:.1f}"
    return f"{value:.3e}"
