"""A step task's settings in pipeline.py, and the pipeline's parameters.

``task_statements`` turns a step's same.yaml settings (caching, retries, resources, accelerators,
environment, Kubernetes secrets and volumes) into statements on its task; ``check_settings`` refuses,
before anything is written, what Kubeflow cannot take (an unknown accelerator, a secret in ``env``);
``pipeline_parameters`` writes the pipeline function's parameters with same.yaml's defaults, refusing
a value KFP cannot carry exactly. Every user value reaches pipeline.py through ``python_literal``
(bundle/escape.py).
"""
from __future__ import annotations

import keyword
import math
import re
from typing import TYPE_CHECKING

from same_nb.bundle.escape import python_literal, visible
from same_nb.errors import SameError
from same_nb.frontend.ir import Pipeline

if TYPE_CHECKING:
    from same_nb.frontend.manifest_schema import Manifest, StepConfig

# KFP passes list and dict parameters through protobuf, which turns every number into a float
# ([64, 32] arrives as [64.0, 32.0]), and kfp.local cannot leave an Optional parameter unset: such
# parameters travel as Python-literal text instead (exact), decoded in the pod.
PARAMETER_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list": "str", "dict": "str",
                   "NoneType": "str"}
LITERAL_TYPES = ("list", "dict", "NoneType")
KFP_EXACT_INT = 2 ** 53     # KFP keeps numbers as protobuf doubles: integers beyond this arrive rounded
# kfp-kubernetes as pipeline.py imports it (KUBERNETES_IMPORT, when uses_kubernetes): under a name no
# pipeline parameter can shadow, since parameters starting with 'same_nb' are refused.
KUBERNETES = "same_nb_kubernetes"
KUBERNETES_IMPORT = f"from kfp import kubernetes as {KUBERNETES}"
# The calls task_statements may write (pipeline.py is refused if it calls anything else).
TASK_CALLS = {"set_caching_options", "set_retry", "set_cpu_request", "set_cpu_limit", "set_memory_request",
              "set_memory_limit", "set_accelerator_type", "set_accelerator_limit", "set_env_variable",
              "set_display_name", "after", "use_secret_as_env", "mount_pvc"}

# Accelerator names set_accelerator_type takes, exactly as documented, each with the aliases same.yaml
# also accepts (matched ignoring case, '-' or '_').
# - "kubernetes": open-source KFP makes the name the container's resource limit, so it is the extended
#   resource a device plugin exposes: nvidia.com/gpu and amd.com/gpu in Kubernetes' "Schedule GPUs"
#   (https://kubernetes.io/docs/tasks/manage-gpus/scheduling-gpus/), gpu.intel.com/i915 and gpu.intel.com/xe in
#   Intel's GPU plugin (https://intel.github.io/intel-device-plugins-for-kubernetes/cmd/gpu_plugin/README.html),
#   google.com/tpu on GKE (https://cloud.google.com/kubernetes-engine/docs/how-to/tpus).
# - "vertex": Vertex AI Pipelines reads it as MachineSpec's AcceleratorType enum
#   (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/MachineSpec#acceleratortype); its
#   NVIDIA_TESLA_K80 is left out, past Google's end of support. GPU aliases include Compute Engine's
#   accelerator names (nvidia-tesla-t4, …; https://cloud.google.com/compute/docs/gpus).
ACCELERATORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nvidia.com/gpu": ("kubernetes", ("gpu", "nvidia", "nvidia-gpu", "cuda")),
    "amd.com/gpu": ("kubernetes", ("amd", "amd-gpu", "rocm")),
    "gpu.intel.com/i915": ("kubernetes", ("intel", "intel-gpu", "i915")),
    "gpu.intel.com/xe": ("kubernetes", ("intel-xe",)),
    "google.com/tpu": ("kubernetes", ("gke-tpu",)),
    "NVIDIA_TESLA_P100": ("vertex", ("p100", "tesla-p100")),
    "NVIDIA_TESLA_V100": ("vertex", ("v100", "tesla-v100")),
    "NVIDIA_TESLA_P4": ("vertex", ("p4", "tesla-p4")),
    "NVIDIA_TESLA_T4": ("vertex", ("t4", "tesla-t4")),
    "NVIDIA_TESLA_A100": ("vertex", ("a100", "tesla-a100", "a100-40gb")),
    "NVIDIA_A100_80GB": ("vertex", ("a100-80gb",)),
    "NVIDIA_L4": ("vertex", ("l4",)),
    "NVIDIA_H100_80GB": ("vertex", ("h100", "h100-80gb")),
    "NVIDIA_H100_MEGA_80GB": ("vertex", ("h100-mega", "h100-mega-80gb")),
    "NVIDIA_H200_141GB": ("vertex", ("h200", "h200-141gb")),
    "NVIDIA_B200": ("vertex", ("b200",)),
    "NVIDIA_GB200": ("vertex", ("gb200",)),
    "NVIDIA_RTX_PRO_6000": ("vertex", ("rtx-pro-6000",)),
    "TPU_V2": ("vertex", ("tpu-v2",)),
    "TPU_V3": ("vertex", ("tpu-v3",)),
    "TPU_V4_POD": ("vertex", ("tpu-v4",)),
    "TPU_V5_LITEPOD": ("vertex", ("tpu-v5e", "tpu-v5-lite")),
}
DEFAULT_ACCELERATOR = "nvidia.com/gpu"      # KFP's own default when only a GPU count is given

# Environment variable names that hold a secret, as word sequences: such a value in env would sit in
# pipeline.yaml in clear text, so a Kubeflow compile refuses it and points to run.secrets. Whole words
# only: TOKENIZERS_PARALLELISM and MAX_TOKENS are not secrets.
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "api key", "access key",
                "accesskey", "private key", "privatekey", "credential", "credentials", "signing key",
                "encryption key", "connection string")


def task_statements(config: StepConfig, task: str, after: list[str], display_name: str | None = None) -> list[str]:
    """The statements of pipeline.py that apply a task's settings from same.yaml to the task
    variable ``task``, after the tasks named in ``after``. Secrets and volumes call kfp-kubernetes
    as ``KUBERNETES`` (see ``uses_kubernetes``). Refuses what ``check_settings`` refuses."""
    problems = step_problems(config)
    if problems:
        raise SameError("\n".join(problems), step=config.name)
    lit = python_literal
    calls = [f"set_caching_options({lit(bool(config.cache))})"]
    if config.retries:
        calls.append(f"set_retry(num_retries={lit(int(config.retries))})")
    r = config.resources
    for method, value in (("set_cpu_request", r.cpu), ("set_cpu_limit", r.cpu_limit),
                          ("set_memory_request", r.memory), ("set_memory_limit", r.memory_limit)):
        if value is not None:
            calls.append(f"{method}({lit(str(value))})")
    if r.gpu or r.accelerator:
        # An accelerator named without a count gets one.
        calls.append(f"set_accelerator_type({lit(accelerator_name(r.accelerator or DEFAULT_ACCELERATOR))})")
        calls.append(f"set_accelerator_limit({lit(int(r.gpu) if r.gpu is not None else 1)})")
    calls += [f"set_env_variable({lit(str(k))}, {lit(str(v))})" for k, v in sorted(config.env.items())]
    statements = [f"{task}.{call}" for call in calls]
    for secret, key_to_env in _secret_groups(config):
        statements.append(f"{KUBERNETES}.use_secret_as_env({task}, secret_name={lit(secret)}, "
                          f"secret_key_to_env={lit(key_to_env)})")
    for volume in sorted(config.volumes, key=lambda v: v.mount_path):
        sub_path = f", sub_path={lit(volume.sub_path)}" if volume.sub_path else ""
        statements.append(f"{KUBERNETES}.mount_pvc({task}, pvc_name={lit(volume.pvc)}, "
                          f"mount_path={lit(volume.mount_path)}{sub_path})")
    statements += [f"{task}.after({a})" for a in after]
    if display_name is not None:
        statements.insert(0, f"{task}.set_display_name({lit(display_name)})")
    return statements


def uses_kubernetes(configs: dict[str, StepConfig]) -> bool:
    """Whether pipeline.py needs ``KUBERNETES_IMPORT``: some step has secrets or volumes."""
    return any(c.secrets or c.volumes for c in configs.values())


def check_settings(manifest: Manifest, steps: list[str], path: str | None = None) -> None:
    """Refuse, one line per problem, the same.yaml settings a Kubeflow compile cannot take: an
    environment variable named like a secret (its value would be in pipeline.yaml in clear text) and
    an accelerator name that is not documented for KFP or Vertex AI."""
    problems = list(dict.fromkeys(p for step in steps for p in step_problems(manifest.step_config(step))))
    if problems:
        raise SameError("\n".join(problems), path=path)


def step_problems(config: StepConfig) -> list[str]:
    problems = []
    for name in sorted(config.env):
        if looks_secret(name):
            problems.append(
                f"{config.field_of('env', name)}: looks like a secret, and env values are written into pipeline.yaml "
                f"in clear text; keep the value in a Kubernetes Secret and name it in same.yaml instead: "
                f"run.secrets: {{{name}: {{secret: <secret name>, key: <key in it>}}}}")
    accelerator = config.resources.accelerator
    if accelerator is not None and accelerator_name(accelerator, strict=False) is None:
        families: dict[str, list[str]] = {}
        for name, (family, _) in ACCELERATORS.items():
            families.setdefault(family, []).append(name)
        problems.append(
            f"{config.field_of('resources', 'accelerator')}: {short_value(accelerator)} is not a known accelerator; "
            f"Kubeflow on Kubernetes takes a device plugin's resource name ({', '.join(families['kubernetes'])}), "
            f"Vertex AI Pipelines an accelerator type ({', '.join(families['vertex'])}); aliases such as gpu, t4, "
            f"a100 or nvidia-tesla-t4 work too")
    return problems


def accelerator_name(value: str, strict: bool = True) -> str | None:
    """The documented accelerator name ``value`` stands for (ACCELERATORS), or None (SameError when
    ``strict``) when it stands for none."""
    name = _ACCELERATOR_LOOKUP.get(_accelerator_key(value))
    if name is None and strict:
        raise SameError(f"{short_value(value)} is not a known accelerator")
    return name


def accelerator_family(name: str) -> str:
    """'kubernetes' (open-source KFP) or 'vertex' (Vertex AI Pipelines): where a documented name works."""
    return ACCELERATORS[name][0]


def _accelerator_key(value: str) -> str:
    return value.strip().lower().replace("_", "-")


def _accelerator_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for name, (_, aliases) in ACCELERATORS.items():
        keys = [name, *aliases] + ([f"nvidia-{a}" for a in aliases] if name.startswith("NVIDIA_") else [])
        for key in map(_accelerator_key, keys):
            assert lookup.setdefault(key, name) == name, f"accelerator alias {key} names two accelerators"
    return lookup


_ACCELERATOR_LOOKUP = _accelerator_lookup()


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name marks it as holding a secret (SECRET_WORDS as whole
    words of the name, split at '_', '-', '.', digits and camelCase)."""
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", name)]
    return any(words[i:i + len(seq)] == seq for seq in _SECRET_SEQUENCES for i in range(len(words)))


_SECRET_SEQUENCES = [entry.split() for entry in SECRET_WORDS]


def _secret_groups(config: StepConfig) -> list[tuple[str, dict[str, str]]]:
    """One use_secret_as_env per Secret, unless one key fills two variables (a dict holds a key once)."""
    groups: list[tuple[str, dict[str, str]]] = []
    for env, ref in sorted(config.secrets.items()):
        group = next((g for s, g in groups if s == ref.secret and ref.key not in g), None)
        if group is None:
            groups.append((ref.secret, group := {}))
        group[ref.key] = env
    return sorted(groups, key=lambda g: (g[0], sorted(g[1].items())))


def pipeline_parameters(pipeline: Pipeline, defaults: dict, path: str | None = None) -> list[str]:
    """``name: type = default`` for the pipeline function; defaults come from same.yaml. A default
    KFP cannot keep exactly is refused, naming the parameter."""
    parameters = []
    for p in pipeline.parameters:
        value = defaults.get(p.name, p.default)
        if not p.name.isidentifier() or keyword.iskeyword(p.name):
            raise SameError(f"parameter {p.name!r} is not a Python name", path=path)
        if not fits(value, p.type):
            raise SameError(f"parameter '{p.name}': same.yaml sets {short_value(value)}, but the notebook's default is "
                            f"a {p.type}", path=path)
        problem = kfp_value_problem(value, literal=p.type in LITERAL_TYPES)
        if problem:
            where = "same.yaml's value" if p.name in defaults else "its default"
            raise SameError(f"parameter '{p.name}': {where} cannot be a Kubeflow pipeline parameter: {problem}",
                            path=path)
        text = python_literal(value, f"parameter {p.name!r}")
        parameters.append(f"{p.name}: {PARAMETER_TYPES[p.type]} = "
                          f"{python_literal(text) if p.type in LITERAL_TYPES else text}")
    return parameters


def kfp_value_problem(value: object, literal: bool = False) -> str | None:
    """Why KFP cannot carry ``value`` exactly as a parameter (None when it can). Numbers travel as
    protobuf doubles in JSON: no NaN or infinity, integers exact only up to 2**53. List, dict and
    None-default parameters (``literal``) travel as Python-literal text, decoded in the pod with
    ast.literal_eval: any int is exact there, but NaN and infinity have no literal."""
    if isinstance(value, float) and not math.isfinite(value):
        if literal:
            return (f"it holds {value}, which Python-literal text cannot carry (the pod decodes it with "
                    f"ast.literal_eval); use a finite number")
        return (f"{value} is not a finite number, and KFP keeps numbers as JSON, which has no NaN or infinity; "
                f"use a finite number, or a string parameter the notebook converts with float()")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > KFP_EXACT_INT and not literal:
        digits = (f"{value}" if value.bit_length() < 10_000
                  else f"an integer of about {int(value.bit_length() * 0.30103):,} digits")
        return (f"{short_value(digits)} is beyond 2**53 (9007199254740992), and KFP keeps numbers as 64-bit floats, "
                f"so it would arrive rounded; use a string parameter the notebook converts with int()")
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next(filter(None, (kfp_value_problem(v, literal=True) for v in items)), None)


def short_value(value: object) -> str:
    """A value as a message shows it: its repr, cut to a line."""
    try:
        text = value if isinstance(value, str) and value.isdigit() else repr(value)
    except ValueError:
        text = "a very long integer"
    text = visible(text)
    return text if len(text) <= 60 else f"{text[:59]}… ({len(text):,} characters)"


def fits(value: object, type_name: str) -> bool:
    if type_name == "NoneType":                 # a run may set any literal
        return True
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return type(value).__name__ == type_name


