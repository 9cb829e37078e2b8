"""Health, and (with the PWA issue) the manifest, service worker and offline page."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from app.web.context import svc

bp = Blueprint("pwa", __name__)


@bp.get("/healthz")
async def healthz() -> tuple[Response, int]:
    db_ok = await svc().db.ping()
    body = {"status": "ok" if db_ok else "unavailable", "database": "ok" if db_ok else "unreachable"}
    return jsonify(body), 200 if db_ok else 503
