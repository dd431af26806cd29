"""Render the human-readable generated text (step prologue/epilogue, bundle README) from templates/."""
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

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), autoescape=False,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def render(name: str, **context) -> str:
    return _env().get_template(name).render(**context)
