"""The step runtime: what runs inside each step's kernel (or Kubeflow pod) to pass variables.

Standard library only at import time, and only relative imports, so this folder also works when
copied on its own as a top-level package (KFP pods do not install same-nb). pandas, numpy,
pyarrow and cloudpickle are imported only when a value needs them.

May import: nothing outside this folder (the bottom layer).
"""
from .artifacts import ArtifactStore
from .boundary import check_transferable
from .errors import (
                     ArtifactError,
                     CorruptArtifactError,
                     MissingArtifactError,
                     MissingOutputError,
                     ModuleValueError,
                     SpecError,
                     StepBoundaryError,
                     StepRuntimeError,
)
from .serializers import SERIALIZERS, Serializer, dump_value, fingerprint, load_value
from .step import load_inputs, save_outputs

__all__ = [
    "ArtifactStore", "check_transferable", "dump_value", "fingerprint", "load_value", "load_inputs",
    "save_outputs", "SERIALIZERS", "Serializer", "ArtifactError", "CorruptArtifactError",
    "MissingArtifactError", "MissingOutputError", "ModuleValueError", "SpecError",
    "StepBoundaryError", "StepRuntimeError",
]
