"""same-nb: tagged notebooks to reproducible pipelines.

Kept import-light on purpose: the CLI and the in-step runtime import this package, so nothing
heavy (nbformat, papermill, sqlalchemy) may be imported here.
"""
__version__ = "0.1.0"


def log_metric(name: str, value, step: int | None = None) -> None:
    """Record a metric: printed when run interactively, stored with the step run in a pipeline."""
    from .runtime.metrics import log_metric as _log_metric

    _log_metric(name, value, step)


def dataset(name: str) -> str:
    """The local path of dataset ``name`` from same.yaml, downloaded and sha256-verified once."""
    from .datasets import dataset as _dataset

    return _dataset(name)
