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


def bytes_text(value) -> str:
    """Bytes in decimal units to three significant digits: 512 B, 1.5 kB, 120 MB, 2.4 GB."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 999.5 or unit == "TB":
            break
        size /= 1000
    if unit == "B":
        return f"{int(size)} B"
    return f"{size:.0f} {unit}" if abs(size) >= 999.5 else f"{size:.3g} {unit}"


def seconds_text(value: float) -> str:
    """Seconds to about three significant digits, trailing zeros dropped: 0.412 s, 6.8 s, 42.1 s, 312 s."""
    decimals = 3 if value < 1 else 2 if value < 10 else 1 if value < 100 else 0
    text = f"{value:.{decimals}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " s"
