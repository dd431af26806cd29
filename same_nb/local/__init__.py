"""Local target: run a compiled bundle on this machine with papermill.

The scheduler (independent steps in parallel, cache lookups, resume, cancellation), warm kernels,
one step's execution, cache keys, and progress rendering.

May import: ``same_nb.store``, ``same_nb.bundle``, ``same_nb.envs``, ``same_nb.frontend``,
``same_nb.runtime``, ``same_nb.errors``, ``same_nb._version``. Never ``same_nb.kubeflow`` (targets
are peers) or the service: what a run needs is handed to it in a ``RunRequest``.
"""
