"""Keep the CLI process's start-up lean.

jsonschema imports the optional `rfc3987_syntax` format checker when it is installed; building its
grammar costs ~2 s on every nbformat/papermill import. Notebook validation never uses IRI formats,
so the CLI process marks it absent. Only the CLI calls this: a host process (Jupyter server) keeps
its own imports untouched.
"""
from __future__ import annotations

import sys

SLOW_OPTIONAL_MODULES = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    for name in SLOW_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # None makes `import name` raise ImportError
