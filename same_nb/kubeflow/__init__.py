"""Kubeflow target: compile the IR to Kubeflow Pipelines v2 (pipeline.py and pipeline.yaml), submit
and track runs, and the component code that runs inside each pod.

``component.py`` runs in pods: standard library and ``same_nb.runtime`` only, so this ``__init__``
imports nothing.

May import: ``same_nb.store``, ``same_nb.bundle``, ``same_nb.envs``, ``same_nb.frontend``,
``same_nb.runtime``, ``same_nb.errors``, ``same_nb._version``. Never ``same_nb.local`` or the service.
"""
