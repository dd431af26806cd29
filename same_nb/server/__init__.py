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
    import atexit

    from same_nb.server.handlers import StoreCache
    from same_nb.server.routes import handlers
    from same_nb.server.worker import Workers

    web_app = serverapp.web_app
    web_app.settings["same_nb_stores"] = StoreCache()
    workers = web_app.settings["same_nb_workers"] = Workers()
    atexit.register(workers.close)
    # A function-style extension has no shutdown hook: stop the workers with the server's own
    # extension clean-up, so none outlives its event loop (tests start many servers in one process).
    cleanup = serverapp.cleanup_extensions

    async def cleanup_extensions() -> None:
        await workers.aclose()
        await cleanup()

    serverapp.cleanup_extensions = cleanup_extensions
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info("same-nb: REST API at %ssame-nb/api/", web_app.settings["base_url"])
