"""same-nb: tagged notebooks to reproducible pipelines.

The package root is the public facade: ``same_nb.log_metric``, ``same_nb.dataset`` and
``same_nb.load_step`` for notebooks, and ``%load_ext same_nb`` for the ``%same_nb`` magic.
Kept import-light on purpose: the CLI and the in-step runtime import this package, so nothing
heavy (nbformat, papermill, sqlalchemy) may be imported here, and nothing inside the package imports
this module for anything but the package itself (layers import ``same_nb._version``).
"""
from ._version import __version__

__all__ = ["__version__", "dataset", "load_step", "log_metric"]


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


def load_step(step: str, run: int | None = None, notebook: str | None = None) -> None:
    """Bind what step ``step`` saw when it started in a recorded run, to debug it here: its inputs
    (loaded from the artifact store, hashes verified), its parameters, the imports and configuration
    replayed from earlier steps, and the random generator states it continued from; then print them.

    ``run``: the run number; by default the latest run of the notebook where the step failed.
    ``notebook``: the pipeline's notebook (relative to the current folder); by default this kernel's
    notebook when Jupyter names it and it has runs, else the one notebook here with recorded runs.
    The store is the one beside the notebook, or ``$SAME_NB_DB``. Values are bound into IPython's user
    namespace when called in a kernel, else into the caller's globals. Files on disk and the step's
    own cells are not restored: run the cells next."""
    import sys

    from .local.debug import summary
    from .service import load_step as _load_step

    shell = _ipython()
    namespace = shell.user_ns if shell is not None else sys._getframe(1).f_globals
    print(summary(_load_step(namespace, step, run=run, notebook=notebook)))


def _ipython():
    import sys

    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def load_ipython_extension(ipython) -> None:
    """``%load_ext same_nb``: registers ``%same_nb load STEP [--run N] [--notebook PATH]``."""
    ipython.register_magic_function(_magic, "line", "same_nb")


def _magic(line: str) -> None:
    import argparse
    import shlex

    parser = argparse.ArgumentParser(prog="%same_nb", exit_on_error=False, add_help=False,
                                     description="same-nb in the notebook: load STEP [--run N] [--notebook PATH]")
    commands = parser.add_subparsers(dest="command")
    load = commands.add_parser("load", exit_on_error=False, add_help=False)
    load.add_argument("step")
    load.add_argument("--run", type=int)
    load.add_argument("--notebook")
    usage = "usage: %same_nb load STEP [--run N] [--notebook PATH]"
    try:
        args = parser.parse_args(shlex.split(line))
    except (argparse.ArgumentError, ValueError) as exc:
        print(f"%same_nb: {exc}\n{usage}")
        return
    except SystemExit:                # argparse exits on some errors even with exit_on_error=False
        print(usage)
        return
    if args.command != "load":
        print(usage)
        return
    from .store.stepload import StepLoadError

    try:
        load_step(args.step, run=args.run, notebook=args.notebook)
    except StepLoadError as exc:
        raise StepLoadError(_in_magic_terms(exc.message)) from None


def _in_magic_terms(message: str) -> str:
    """A refusal worded for ``load_step(run=, notebook=)``, in the magic's options instead."""
    import re

    message = re.sub(r"\bnotebook=('[^']*'|\"[^\"]*\")", r"--notebook \1", message)
    message = re.sub(r"\bnotebook=(?![\w'\"])", "--notebook PATH", message)
    return re.sub(r"\brun=(N\b|(?![\w]))", "--run N", message)
