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
    """The local path of dataset ``name`` from same.yaml, downloaded and sha256-verified once.
    In a Kubeflow pod: the copy shipped with the step (its path relative to the working directory)."""
    import os

    shipped = os.environ.get("SAME_NB_DATASETS")
    if shipped is not None:         # a pod: only the runtime is there, not the store
        import json

        paths = json.loads(shipped)
        if name not in paths:
            raise LookupError(f"dataset {name!r} was not shipped with this step: only same.yaml datasets with "
                              f"a local path inside the notebook's folder are ({', '.join(sorted(paths)) or 'none'})")
        return paths[name]
    from .store.datasets import dataset as _dataset

    return _dataset(name)
