"""The Jupyter server extension: same-nb's REST API under ``/same-nb/api/`` for the JupyterLab sidebar.

Enabled by ``jupyter-config/server-config/same_nb.json`` (installed into
``etc/jupyter/jupyter_server_config.d``), or by hand with ``jupyter server extension enable same_nb.server``.

The outermost room with the CLI: it may import the service and every layer below it; nothing in the
package imports it.
"""
from __future__ import annotations


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "same_nb.server"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from same_nb.server.handlers import StoreCache, handlers

    web_app = serverapp.web_app
    web_app.settings["same_nb_stores"] = StoreCache()
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info("same-nb: REST API at %ssame-nb/api/", web_app.settings["base_url"])
