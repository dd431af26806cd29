"""Bundle: the IR becomes files on disk (same.yaml, pipeline.json, one papermill-ready notebook per
step, locks), and every human-readable generated text comes from ``templates/``.

May import: ``same_nb.envs``, ``same_nb.frontend``, ``same_nb.errors``, ``same_nb._version``.
"""
