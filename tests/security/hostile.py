"""Hostile strings, generated from one table, for every place a user string reaches generated code, a
path, a parameter, a manifest or the REST API. Each suite in this folder draws from here.

SAME_NB_SECURITY_CASES=N limits each suite to a deterministic sample of N values (default: all).
"""
from __future__ import annotations

import hashlib
import os

MARKER = "PWNED"      # a hostile value that gets executed creates a file with this name

# Pieces that break out of a quoting context: Python strings and docstrings, YAML, shell, Markdown,
# HTML, Jinja-like templates, f-strings, format strings, paths.
BREAKOUTS = [
    "'", '"', "'''", '"""', "\\", "\n", "\r\n", "\t", "\x00", "`", "$(touch PWNED)", "${HOME}", "{{ 7*7 }}",
    "{0}", "{x!r}", "%s", "#", "--", "-x", "../", "/etc/passwd", "\u202e", "\u2028", "é", "\U0001F600",
    "<script>alert(1)</script>", "]]>", "*/", "key: value", "- item", "&a [*a]", "!!python/object:os.system",
]
# Whole payloads that would run code if pasted into Python or a shell unescaped.
PAYLOADS = [
    f'"""+str(__import__("os").system("touch {MARKER}"))+"""',
    f"'''+str(__import__('os').system('touch {MARKER}'))+'''",
    f'"+__import__("os").system("touch {MARKER}")+"',
    f"'+__import__('os').system('touch {MARKER}')+'",
    f"\nimport os; os.system('touch {MARKER}')\n",
    f"$(touch {MARKER})",
    f"`touch {MARKER}`",
    f"; touch {MARKER}",
    f"{{{{ __import__('os').system('touch {MARKER}') }}}}",
    f"\n---\nkey: !!python/object/apply:os.system ['touch {MARKER}']",
]
LONG = ["x" * 10_000, "ä" * 3_000]


def _sample(values: list[str]) -> list[str]:
    limit = os.environ.get("SAME_NB_SECURITY_CASES")
    if not limit or limit == "all":
        return values
    chosen = set(sorted(values, key=lambda v: hashlib.sha256(v.encode("utf-8", "surrogatepass")).hexdigest())[:int(limit)])
    return [v for v in values if v in chosen]


def strings() -> list[str]:
    """Every hostile string: breakouts alone and wrapped in text, payloads, very long values."""
    out = list(BREAKOUTS) + [f"a{b}b" for b in BREAKOUTS] + list(PAYLOADS) + LONG
    return _sample(list(dict.fromkeys(out)))


def names() -> list[str]:
    """Hostile file and step names: what a file system accepts (no NUL, no '/') and fits in a name."""
    out = [s for s in strings() if "\x00" not in s and "/" not in s and len(s.encode()) < 200 and s not in (".", "..")]
    return out


def ids(values: list[str]) -> list[str]:
    """Readable pytest ids for hostile values."""
    return [f"{i}-{v[:12].encode('unicode_escape').decode()}" for i, v in enumerate(values)]
