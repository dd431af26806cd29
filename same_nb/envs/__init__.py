"""Environments: what each step needs installed, pinned to what ran, and proof that it installs.

Imports to distributions, per-step lockfiles (uv, with hashes), clean venvs that verify a lock and
host ``run --isolated`` kernels.

May import: ``same_nb.frontend`` (the IR), ``same_nb.errors``, ``same_nb._version``.
"""
