"""Escaping for every user string that reaches generated text (file names, step and parameter names,
parameter values, same.yaml fields): Python literals, docstrings and comments, Markdown, shell words,
YAML comments. Templates receive only what these functions return, never a raw user string.
"""
from __future__ import annotations

import math
import re
import shlex

from same_nb.errors import SameError

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` on one line with only printable characters: line breaks, control and format characters
    (NUL, U+2028, U+202E, BOM, …) become Python-style escapes. Safe in any comment (Python, shell,
    YAML, whose parsers reject or break on such characters) and readable."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def docstring_text(text: str) -> str:
    """``text`` for the inside of a ``\"\"\"`` docstring (or any non-raw string literal): backslashes
    and quotes escaped, unprintable characters as escapes. The docstring's value is ``text`` itself."""
    return visible(text.replace("\\", "\\\\").replace('"', '\\"'))


def python_literal(value: object, what: str = "value") -> str:
    """Python source that evaluates to exactly ``value``: str, bool, None, int, float, list, tuple,
    dict. Integers beyond the interpreter's digit limit are written in hex (exact, no limit);
    non-finite floats as ``float('nan')``/``float('inf')``. Anything else is refused."""
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, int):
        try:
            return repr(value)
        except ValueError:           # more digits than int→str allows (sys.get_int_max_str_digits)
            return hex(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "-float('inf')"
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v, what) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(python_literal(v, what) + ", " for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k, what)}: {python_literal(v, what)}"
                               for k, v in value.items()) + "}"
    raise SameError(f"{what}: a {type(value).__name__} cannot be written into generated code; "
                    f"use a string, number, bool, None, list or dict")


def markdown_code(text: str) -> str:
    """``text`` as one Markdown code span: nothing in it is Markdown or HTML, it stays on one line,
    and a backtick inside cannot close it."""
    text = visible(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    # CommonMark strips one space from both ends when both are spaces or backticks would touch the fence.
    pad = " " if text[:1] == "`" or text[-1:] == "`" or (text[:1] == " " and text[-1:] == " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def shell_word(text: str) -> str:
    """``text`` as one shell word on one printable line (for commands shown to users to copy):
    POSIX quoting, or bash's ``$'...'`` with escapes when it holds line breaks or control characters."""
    if text.isprintable():
        return shlex.quote(text)

    def char(ch: str) -> str:
        if ch in "\\'":
            return "\\" + ch
        if ch.isprintable():
            return ch
        if ch in _ESCAPES or ord(ch) >= 0x100:
            return _escape_char(ch)
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}"   # bash's \xHH is a byte

    return "$'" + "".join(map(char, text)) + "'"
