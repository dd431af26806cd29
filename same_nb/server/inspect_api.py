"""Inspect a notebook: GET analyses the saved file, POST ``{path, content}`` the editor's unsaved notebook
(nbformat JSON) as if it were at ``path`` (same.yaml and learned effects beside it), writing nothing.

Both run in the server's budgeted worker processes (:mod:`same_nb.server.worker`), which keep per-cell
analyses memoized by source: a sidebar re-inspecting on every edit pays only for the cells that changed.
"""
from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from same_nb.errors import SameError
from same_nb.server.handlers import InspectHandler, _raise_for, api_errors, parse_body
from same_nb.server.paths import to_api_path

MAX_CONTENT = 16 * 1024 * 1024     # an unsaved notebook's JSON, outputs included
MAX_CONTENT_DEPTH = 64             # body → content → cells → outputs → data → … a widget state


class InspectContentHandler(InspectHandler):
    max_body = MAX_CONTENT

    @web.authenticated
    @authorized
    @api_errors
    async def post(self) -> None:
        raw = self.request.body or b"{}"
        if len(raw) > MAX_CONTENT:
            raise ContentTooLarge(len(raw))
        body = await self.blocking(_parse, raw)
        notebook = self.notebook(body.get("path"))
        if "content" not in body:
            raise SameError("give the notebook's unsaved JSON as 'content' (or GET inspect?path= for the saved file)")
        content = await self.blocking(_sources_only, body["content"])
        api_path = to_api_path(self.root_dir, notebook)
        header, reply = await self.workers.call("inspect_content", f"inspecting the unsaved {api_path}",
                                                notebook=str(notebook), content=content, root=self.root_dir,
                                                api_path=api_path)
        _raise_for(header)
        self.set_header("Content-Type", "application/json")
        self.finish(reply)


class ContentTooLarge(SameError):
    status = 413

    def __init__(self, size: int):
        super().__init__(f"the unsaved notebook is {size / 2**20:.1f} MB, over the {MAX_CONTENT // 2**20} MB the "
                         "server analyses from the editor; clear large outputs, or save it and inspect the saved "
                         "file")


def _parse(raw: bytes) -> dict:
    return parse_body(raw, MAX_CONTENT_DEPTH)


def _sources_only(content) -> dict:
    """The notebook JSON (an object, or a string holding one) without outputs and attachments, which the
    analysis never reads: less to send to the worker and to validate."""
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except RecursionError:
            raise SameError("invalid notebook JSON in 'content': it nests too deeply") from None
        except ValueError as exc:
            raise SameError(f"invalid notebook JSON in 'content': {exc}") from None
    if not isinstance(content, dict):
        raise SameError(f"'content' must be the notebook's nbformat JSON object, not {type(content).__name__}")
    cells = content.get("cells")
    if isinstance(cells, list):
        stripped = []
        for cell in cells:
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                cell = {**cell, "outputs": [], "execution_count": None}
            if isinstance(cell, dict) and "attachments" in cell:
                cell = {k: v for k, v in cell.items() if k != "attachments"}
            stripped.append(cell)
        content = {**content, "cells": stripped}
    return content
