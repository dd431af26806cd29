"""Render the human-readable generated text (step prologue/epilogue, bundle README) from templates/.

A user string reaches a template only through one of its escaping filters (bundle/escape.py):
``code`` (a Markdown code span), ``pydoc`` (inside a docstring), ``comment`` (one printable line for a
Python, shell or YAML comment), ``shell`` (one shell word); or as a value the caller made with
``python_literal``/``repr``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path


def templates_dir() -> Path:
    package = Path(__file__).resolve().parents[1]
    packaged = package / "templates"                     # wheel: force-included into the package
    return packaged if packaged.is_dir() else package.parent / "templates"


@lru_cache(maxsize=1)
def _env():
    import jinja2

    from same_nb.bundle.escape import docstring_text, markdown_code, shell_word, visible

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), autoescape=False,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters.update(code=markdown_code, pydoc=docstring_text, comment=visible, shell=shell_word)
    return env


def render(name: str, **context) -> str:
    return _env().get_template(name).render(**context)
