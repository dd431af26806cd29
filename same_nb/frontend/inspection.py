"""Inspect a notebook: its Pipeline IR, resolved same.yaml, step order and levels of independent steps."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from same_nb.frontend.dag import levels, topological_order
from same_nb.frontend.ir import Pipeline


@dataclass
class Inspection:
    pipeline: Pipeline
    manifest: object                      # frontend.manifest.Manifest (resolved)
    order: list[str]
    levels: list[list[str]]

    @property
    def ok(self) -> bool:
        return not self.pipeline.errors

    def to_dict(self) -> dict:
        return {"ok": self.ok, "order": self.order, "levels": self.levels,
                "pipeline": self.pipeline.to_dict(),
                "manifest": self.manifest.model_dump(mode="json", exclude_none=True)}


def _manifest_for(pipeline: Pipeline, notebook: Path, manifest_path: str | Path | None):
    from same_nb.frontend.manifest import find_manifest, load_manifest, manifest_diagnostics, resolve_manifest

    found = find_manifest(notebook, Path(manifest_path) if manifest_path else None)
    manifest = load_manifest(found) if found else None
    resolved = resolve_manifest(manifest, notebook, {p.name: p.default for p in pipeline.parameters},
                                [s.name for s in pipeline.steps],
                                {s.name: [t for c in s.cells for t in c.tags] for s in pipeline.steps})
    pipeline.diagnostics.extend(manifest_diagnostics(resolved, found))   # SAME fields same-nb ignores
    return resolved


def inspect_notebook(path: str | Path, manifest_path: str | Path | None = None, *,
                     learned: list[dict] | None = None, content: bytes | None = None) -> Inspection:
    """``learned``: effects earlier runs observed (``same_nb.store.learned``), applied to the IR.
    ``content``: the notebook's bytes from an unsaved editor, analysed as the file at ``path``."""
    from same_nb.frontend.pipeline import build_pipeline

    notebook = Path(path)
    pipeline = build_pipeline(notebook, content)
    if learned:
        from same_nb.frontend.learned import apply_learned

        apply_learned(pipeline, learned)
    manifest = _manifest_for(pipeline, notebook, manifest_path)
    if getattr(manifest.metadata, "name", None):
        pipeline.name = manifest.metadata.name
    names = [s.name for s in pipeline.steps]
    return Inspection(pipeline=pipeline, manifest=manifest, order=topological_order(names, pipeline.edges),
                      levels=levels(names, pipeline.edges))


