"""Serializer backends for machine-learning libraries' own formats (the rows are in ``serializers.py``).

Each backend is used only when its library is installed and already imported: ``matches`` looks the
library up in ``sys.modules`` and never imports it, and the dump/load functions import it inside.
Standard library only at import, like the rest of the runtime.

- xgboost ``Booster``: its UBJSON model (``save_raw``/``load_model``), feature names and types included;
  ``DMatrix``, which cannot be pickled, with its data (``save_binary``); a ``QuantileDMatrix`` (or
  another DMatrix xgboost cannot save) is refused with the fix.
- LightGBM ``Booster``: ``model_to_string`` / ``Booster(model_str=...)``.
- PyTorch tensors: ``torch.save`` (``torch.load(weights_only=True)`` reads them back); an
  ``nn.Module``: its tensors in torch's format, the module itself by cloudpickle, so a class defined
  in the notebook travels by value.
- Keras models: the ``.keras`` zip, with fixed timestamps and without the save date so the same model
  gives the same bytes.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

from . import notebook_pickle
from .errors import StepBoundaryError

PICKLE_PROTOCOL = 5


class Inexact(Exception):
    """This backend cannot write this value so that it loads back identical: try the next one."""


def _type_in(obj: Any, module: str, *names: str) -> bool:
    """``obj`` is one of ``module``'s classes (or a subclass), checked only if the module is loaded."""
    mod = sys.modules.get(module)
    if mod is None:
        return False
    types_ = tuple(t for t in (getattr(mod, n, None) for n in names) if isinstance(t, type))
    return bool(types_) and isinstance(obj, types_)


# -- xgboost ------------------------------------------------------------------------------------

def is_xgboost_booster(obj: Any) -> bool:
    return _type_in(obj, "xgboost", "Booster")


def dump_xgboost_booster(booster: Any, path: Path) -> None:
    Path(path).write_bytes(bytes(booster.save_raw(raw_format="ubj")))


def load_xgboost_booster(path: Path) -> Any:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(Path(path).read_bytes()))
    return booster


def is_xgboost_dmatrix(obj: Any) -> bool:
    return _type_in(obj, "xgboost", "DMatrix")


def dump_xgboost_dmatrix(dmatrix: Any, path: Path) -> None:
    import xgboost

    try:
        dmatrix.save_binary(str(path), silent=True)
    except xgboost.core.XGBoostError as exc:
        raise StepBoundaryError(
            f"an {type(dmatrix).__module__.split('.')[0]}.{type(dmatrix).__name__} cannot be saved between "
            f"steps (xgboost saves only a plain DMatrix: {str(exc).splitlines()[0]}); pass the data it was "
            "made from (the DataFrame or array) and build it in the step that uses it") from None


def load_xgboost_dmatrix(path: Path) -> Any:
    import xgboost

    with warnings.catch_warnings():     # loading from a file path ("URI") is deprecated but still supported
        warnings.simplefilter("ignore")
        return xgboost.DMatrix(str(path), silent=True)


# -- LightGBM -----------------------------------------------------------------------------------

def is_lightgbm_booster(obj: Any) -> bool:
    return _type_in(obj, "lightgbm", "Booster")


def dump_lightgbm_booster(booster: Any, path: Path) -> None:
    Path(path).write_text(booster.model_to_string(num_iteration=-1), encoding="utf-8")


def load_lightgbm_booster(path: Path) -> Any:
    import lightgbm

    return lightgbm.Booster(model_str=Path(path).read_text(encoding="utf-8"))


# -- PyTorch ------------------------------------------------------------------------------------

def is_torch_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and type(obj) is getattr(torch, "Tensor", None)


def is_torch_module(obj: Any) -> bool:
    return _type_in(obj, "torch.nn", "Module")


def dump_torch_tensor(tensor: Any, path: Path) -> None:
    import torch

    if tensor.requires_grad and tensor.grad_fn is not None:
        raise Inexact                   # a non-leaf tensor keeps its graph only through pickle
    with open(path, "wb") as f:
        torch.save(tensor, f)


def load_torch_tensor(path: Path) -> Any:
    import torch

    with open(path, "rb") as f:
        return torch.load(f, weights_only=True)


class _CloudPickleModule:
    """What ``torch.save(pickle_module=...)`` needs: the tensors go to torch's own storage records
    (its persistent ids), everything else — the module, its notebook-defined class — through the
    deterministic cloudpickle pickler."""
    __name__ = "same_nb_cloudpickle"

    @staticmethod
    def Pickler(file: Any, protocol: int = PICKLE_PROTOCOL):   # noqa: N802 - the pickle module API
        return notebook_pickle.pickler_class()(file, protocol=protocol)


def dump_torch_module(module: Any, path: Path) -> None:
    import torch

    with open(path, "wb") as f:
        torch.save(module, f, pickle_module=_CloudPickleModule, pickle_protocol=PICKLE_PROTOCOL)


def load_torch_module(path: Path) -> Any:
    import torch

    with open(path, "rb") as f:
        return torch.load(f, weights_only=False)     # a module is code: it comes from this run's own store


# -- Keras --------------------------------------------------------------------------------------

def is_keras_model(obj: Any) -> bool:
    return _type_in(obj, "keras", "Model") or _type_in(obj, "tf_keras", "Model")


def _defined_in_notebook(model: Any) -> bool:
    layers = [model, *getattr(model, "_flatten_layers", lambda: [])()]
    return any(type(layer).__module__ == "__main__" for layer in layers)


def _normalized_zip(data: bytes) -> bytes:
    """The same model always gives the same bytes: entries with a fixed date, no save date."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            content = src.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(content)
                meta.pop("date_saved", None)
                content = json.dumps(meta, sort_keys=True).encode()
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return out.getvalue()


def dump_keras_model(model: Any, path: Path) -> None:
    if _defined_in_notebook(model):
        raise Inexact                   # keras can't find a notebook's own layer classes when loading
    folder = tempfile.mkdtemp(prefix="same-nb-keras-")
    try:
        target = os.path.join(folder, "model.keras")     # keras requires the extension
        model.save(target)
        Path(path).write_bytes(_normalized_zip(Path(target).read_bytes()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_keras_model(path: Path) -> Any:
    module = "tf_keras" if "tf_keras" in sys.modules and "keras" not in sys.modules else "keras"
    keras = __import__(module)
    folder = tempfile.mkdtemp(prefix="same-nb-keras-")
    try:
        target = os.path.join(folder, "model.keras")
        shutil.copyfile(path, target)
        return keras.models.load_model(target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
