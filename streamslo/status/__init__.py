"""The status page: static HTML/JS/CSS at ``/`` reading ``GET /api/status``.

The page (``index.html``, ``app.js``, ``style.css`` beside this file) has no
build step and loads nothing from the network, so it works on an offline
host. :func:`mount_status` adds its routes to any FastAPI app; the JSON comes
from a callable (``Engine.status`` in the embedded mode), built from stage 2's
snapshots by :class:`~streamslo.status.view.StatusView` (``view.py``, where
its shape is documented).

Example::

    app = create_app(config, exporter, registry)
    mount_status(app, engine.status)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse

STATIC = Path(__file__).parent
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


def mount_status(app: FastAPI, status: Callable[[], dict[str, Any]]) -> None:
    """Serve the page at ``/``, its assets under ``/status/`` and the JSON at ``/api/status``."""


    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/status", tags=["status"])
    async def api_status() -> JSONResponse:
        """Per-region quantiles, burn rates, budgets and trigger states (the status page's data)."""
        return JSONResponse(status(), headers={"Cache-Control": "no-store"})

    # Two named assets rather than a StaticFiles mount: the folder also holds Python source.
    for name, media_type in ASSETS.items():
        app.add_api_route(f"/status/{name}", _asset(name, media_type), include_in_schema=False)


def _asset(name: str, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
    path = STATIC / name

    async def serve() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return serve
