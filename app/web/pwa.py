"""Health, and the installable web app: the manifest, the service worker and the offline page."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from quart import Blueprint, Response, current_app, jsonify, render_template
from quart.blueprints import BlueprintSetupState

from app.web.context import svc

bp = Blueprint("pwa", __name__)

# Placeholders in static/sw.js that /sw.js fills in (the file itself stays valid JavaScript).
VERSION_MARK = '"__MEDCHAT_VERSION__"'
ASSETS_MARK = "[/* __MEDCHAT_ASSETS__ */]"
THEME_COLOR = "#008069"
BACKGROUND_COLOR = "#0b141a"


@dataclass(frozen=True)
class StaticBundle:
    """What the service worker of this build caches, and the script that does it."""

    version: str  # a hash of every file under static/: a new build gets a new cache
    assets: list[str]  # /static/... URLs the worker precaches
    worker: str  # static/sw.js with the version and the asset list filled in


def bundle_static(folder: Path) -> StaticBundle:
    """Hash the static files and build the service worker script for them."""
    digest = hashlib.sha256()
    assets: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        if rel != "sw.js":
            assets.append(f"/static/{rel}")
    version = digest.hexdigest()[:16]
    source = (folder / "sw.js").read_text(encoding="utf-8") if (folder / "sw.js").exists() else ""
    worker = source.replace(VERSION_MARK, json.dumps(version)).replace(ASSETS_MARK, json.dumps([*assets, "/offline"]))
    return StaticBundle(version=version, assets=assets, worker=worker)


@bp.record_once
def _bundle_at_start(state: BlueprintSetupState) -> None:
    # At app creation, not per request: the version names the service worker's cache.
    folder = Path(state.app.static_folder or "static")
    state.app.extensions["medchat_static"] = bundle_static(folder)
    state.app.jinja_env.globals["static_version"] = state.app.extensions["medchat_static"].version


def _bundle() -> StaticBundle:
    bundle: StaticBundle = current_app.extensions["medchat_static"]
    return bundle


@bp.get("/healthz")
async def healthz() -> tuple[Response, int]:
    db_ok = await svc().db.ping()
    body = {"status": "ok" if db_ok else "unavailable", "database": "ok" if db_ok else "unreachable"}
    return jsonify(body), 200 if db_ok else 503


@bp.get("/sw.js")
async def service_worker() -> Response:
    """The service worker, at the root so its scope is the whole site."""
    response = Response(_bundle().worker, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
async def manifest() -> Response:
    icons = "/static/icons"
    body = {
        "id": "/",
        "name": "MedChat",
        "short_name": "MedChat",
        "description": "Hospital messenger for staff",
        "start_url": "/chats",
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            {"src": f"{icons}/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": f"{icons}/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": f"{icons}/maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }
    return Response(json.dumps(body, indent=1), mimetype="application/manifest+json")


@bp.get("/offline")
async def offline() -> str:
    """What the service worker shows for a page it cannot fetch: no clinical data, ever."""
    return await render_template("offline.html")
