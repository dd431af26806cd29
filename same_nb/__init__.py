"""same-nb: tagged notebooks to reproducible pipelines.

Kept import-light on purpose: the CLI and the in-step runtime import this package, so nothing
heavy (nbformat, papermill, sqlalchemy) may be imported here.
"""
__version__ = "0.1.0"
