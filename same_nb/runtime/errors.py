"""Errors raised inside a step. Runtime-local: this package must not import the rest of same-nb."""
from __future__ import annotations


class StepRuntimeError(Exception):
    """Base class: something about a step's variables or artifacts that the user can act on."""


class StepBoundaryError(StepRuntimeError):
    """A variable cannot be passed from one step to another (an open file, a generator...)."""


class MissingOutputError(StepRuntimeError):
    """A step finished without defining a variable that later steps read."""


class UnplannedEffectError(StepRuntimeError):
    """A step changed something a later step reads, and the plan did not carry the change."""


class ModuleValueError(StepRuntimeError):
    """A module was asked to be serialized; modules are re-imported by each step instead."""


class SpecError(StepRuntimeError):
    """The step spec file is missing or malformed (a runner bug, not a user error)."""


class ArtifactError(StepRuntimeError):
    """An artifact is missing from the store or its bytes do not match its hash."""

    def __init__(self, message: str, *, sha256: str, name: str | None = None, path: str | None = None):
        self.sha256 = sha256
        self.name = name
        self.path = path
        super().__init__(message)


class MissingArtifactError(ArtifactError):
    pass


class CorruptArtifactError(ArtifactError):
    pass
