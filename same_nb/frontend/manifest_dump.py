"""same.yaml written back: deterministic YAML for a (resolved) manifest."""
from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from same_nb.errors import SameError


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(tuple, lambda dumper, data: dumper.represent_list(list(data)))
# A set's iteration order changes between processes (hash seeds); write its members sorted.
_Dumper.add_representer(set, lambda dumper, data: dumper.represent_mapping(
    "tag:yaml.org,2002:set", {item: None for item in sorted(data, key=repr)}))


def _plain(value: Any) -> Any:
    """Models keep field order and drop unset (None) fields; maps get sorted keys."""
    if isinstance(value, BaseModel):
        out = {}
        for name, field in type(value).model_fields.items():
            item = getattr(value, name)
            if item is not None:
                out[field.alias or name] = _plain(item)
        return out
    if isinstance(value, dict):
        return {k: _plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_manifest(manifest: BaseModel) -> str:
    """Deterministic YAML for a manifest: the same manifest always gives the same text."""
    try:
        return yaml.dump(_plain(manifest), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True, width=1000)
    except yaml.representer.RepresenterError as exc:
        raise SameError(f"cannot write same.yaml: a value has no YAML form ({exc.args[-1]!r})") from None
