"""same-nb: tagged notebooks to reproducible pipelines.

The package root is the public facade: ``same_nb.log_metric`` and ``same_nb.dataset`` for notebooks.
Kept import-light on purpose: the CLI and the in-step runtime import this package, so nothing
heavy (nbformat, papermill, sqlalchemy) may be imported here, and nothing inside the package imports
this module for anything but the package itself (layers import ``same_nb._version``).
"""
from ._version import __version__

__all__ = ["__version__", "dataset", "log_metric"]


def log_metric(name: str, value, step: int | None = None) -> None:
    """Record a metric: printed when run interactively, stored with the step run in a pipeline."""
    from .runtime.metrics import log_metric as _log_metric

    _log_metric(name, value, step)


def dataset(name: str) -> str:
    """The local path of dataset ``name`` from same.yaml, downloaded and sha256-verified once."""
    from .store.datasets import dataset as _dataset

    return _dataset(name)
