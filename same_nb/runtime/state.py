"""Process state inside a step's kernel: global random generators carried between steps, and cheap
fingerprints of every configuration and generator channel (``same_nb.frontend.effects``).

A step on a generator's chain restores the state the previous step on the chain captured, so its
draws continue exactly where a top-to-bottom run would be. ``fingerprint_state`` hashes each channel
so a step can tell which ones its code changed; ``begin`` records that at the start of the user's code
(after the prologue's replays and restores) and ``unplanned`` names the channels changed since that
the plan did not expect. Standard library only at import: a library is only looked at when the step
has imported it already (``sys.modules``), never imported for a fingerprint.
"""
from __future__ import annotations

import hashlib
import os
import sys
from typing import Any, Callable

# Channels whose state is captured and restored, and the module that must be loaded to hold any.
RNG_MODULES = {"random": "random", "numpy.random": "numpy", "torch": "torch"}


def imported(module: str) -> bool:
    """Whether the step has imported ``module`` (a replay for a library the step does not import runs
    only if loading its inputs or its own imports brought the library in)."""
    return module in sys.modules


def capture(channel: str) -> Any:
    """The generator state of ``channel`` now; None when its library was never imported (a fresh
    process then starts from fresh entropy anyway)."""
    module = sys.modules.get(RNG_MODULES[channel])
    if module is None:
        return None
    if channel == "random":
        return module.getstate()
    if channel == "numpy.random":
        return module.random.get_state()
    state = {"cpu": module.get_rng_state()}
    if module.cuda.is_available() and module.cuda.is_initialized():
        state["cuda"] = module.cuda.get_rng_state_all()
    return state


def restore(channel: str, state: Any) -> None:
    """Continue ``channel`` from a state ``capture`` returned in an earlier step."""
    if state is None:
        return
    if channel == "random":
        import random

        random.setstate(state)
    elif channel == "numpy.random":
        import numpy

        numpy.random.set_state(state)
    elif channel == "torch":
        import torch

        torch.set_rng_state(state["cpu"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    else:
        raise ValueError(f"same-nb cannot restore the state of {channel!r}")


# -- fingerprints ---------------------------------------------------------------------------------

def _digest(value: Any) -> str:
    return hashlib.blake2b(repr(value).encode("utf-8", "backslashreplace"), digest_size=12).hexdigest()


def _pandas(pd) -> Any:
    try:
        return pd._config.config._global_config          # every option, nested; no describe_option walk
    except AttributeError:
        return [(k, pd.get_option(k)) for k in ("display.max_rows", "display.max_columns", "display.precision")]


def _numpy_rng(np) -> Any:
    state = np.random.get_state()
    return (state[0], state[1].tobytes(), state[2:])


def _matplotlib(mpl) -> Any:
    # The backend is resolved, and the inline backend turns `interactive` on, at the first figure:
    # no setting of the notebook's.
    return sorted((k, repr(v)) for k, v in mpl.rcParams.items() if k not in ("backend", "interactive"))


def _decimal(decimal) -> Any:
    c = decimal.getcontext()             # flags change with every inexact result: not configuration
    return (c.prec, c.rounding, c.Emin, c.Emax, c.capitals, c.clamp, sorted(k.__name__ for k, v in c.traps.items() if v))


def _logging(logging) -> Any:
    root = logging.getLogger()
    return (root.level, [type(h).__name__ for h in root.handlers], logging.root.manager.disable)


# channel -> (module that must already be imported, what to hash)
_FINGERPRINTS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "pandas.options": ("pandas", _pandas),
    "numpy.printoptions": ("numpy", lambda np: np.get_printoptions()),
    "numpy.errstate": ("numpy", lambda np: np.geterr()),
    "os.environ": ("os", lambda os_: sorted(os_.environ.items())),
    "cwd": ("os", lambda os_: os_.getcwd()),
    "sys.path": ("sys", lambda sys_: list(sys_.path)),
    "warnings": ("warnings", lambda w: [(a, getattr(m, "pattern", m), c, getattr(mm, "pattern", mm), n)
                                         for a, m, c, mm, n in w.filters]),
    "matplotlib": ("matplotlib", _matplotlib),
    "logging": ("logging", _logging),
    "decimal": ("decimal", _decimal),
    "sklearn": ("sklearn", lambda sk: sorted(sk.get_config().items())),
    "random": ("random", lambda r: r.getstate()),
    "numpy.random": ("numpy", _numpy_rng),
    "torch": ("torch", lambda t: bytes(t.get_rng_state().tolist())),
}


_STDLIB = ("os", "sys", "warnings", "logging", "decimal", "random")   # cheap: always fingerprinted


def fingerprint_state() -> dict[str, str]:
    """channel -> hash of its current state: the standard library's channels always, a library's once
    the step has imported it. Comparable only within one process; a channel that cannot be read is
    left out."""
    import importlib

    found = {}
    for channel, (module_name, read) in _FINGERPRINTS.items():
        module = sys.modules.get(module_name)
        if module is None and module_name in _STDLIB:
            module = importlib.import_module(module_name)
        if module is None:
            continue
        try:
            found[channel] = _digest(read(module))
        except Exception:                 # a library in an odd state: that channel is not checked
            continue
    return found


_STARTED: dict[str, Any] = {}


def begin(planned: list[str] | tuple[str, ...] = ()) -> None:
    """Called by the prologue once replays and restores are done: the state the user's code starts from."""
    _STARTED.clear()
    _STARTED.update(fingerprint=fingerprint_state(), planned=list(planned), pid=os.getpid())


def started() -> dict[str, str]:
    """The fingerprints ``begin`` recorded (empty if it was not called in this process)."""
    return dict(_STARTED.get("fingerprint", {}))


def unplanned() -> list[str]:
    """Channels whose state changed since ``begin`` although the plan expected no change there.
    Channels first loaded during the step are not compared (there is nothing to compare with)."""
    before = _STARTED.get("fingerprint")
    if before is None:
        return []
    now = fingerprint_state()
    planned = set(_STARTED.get("planned", ()))
    return sorted(c for c, h in before.items() if c in now and now[c] != h and c not in planned)
