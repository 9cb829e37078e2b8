"""One place turns exceptions into HTML pages or JSON errors."""

from __future__ import annotations

import logging

from quart import Quart, Response, has_request_context, jsonify, render_template, request
from quart_rate_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException, InternalServerError

from app.actions.errors import ActionError
from app.lib.errors import Unavailable

log = logging.getLogger("medchat")

TITLES = {
    400: "That request was not understood",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed that way",
    408: "Took too long",
    413: "Too large",
    415: "Not a file MedChat shares",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Busy, try again",
}


def _wants_json() -> bool:
    if not has_request_context():
        return True  # a refused WebSocket handshake
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return request.path == "/healthz" or request.path.startswith("/api/") or best == "application/json"


async def error_page(status: int, message: str, code: str = "") -> Response:
    if _wants_json():
        response = jsonify({"error": code or TITLES.get(status, "error").lower().replace(" ", "_"), "message": message})
    else:
        response = Response(await render_template("errors/error.html", status=status, title=TITLES.get(status, "Error"), message=message), mimetype="text/html")
    response.status_code = status
    return response


def register_errors(app: Quart) -> None:
    @app.errorhandler(RateLimitExceeded)
    async def _rate_limited(exc: RateLimitExceeded) -> Response:
        from app.actions import audit
        from app.vocab import AuditAction
        from app.web.context import client_ip, svc

        await audit.record_alone(svc(), None, AuditAction.RATE_LIMITED, ip=client_ip(), detail=f"{request.method} {request.path}")
        response = await error_page(429, f"Too many attempts from this address. Wait {exc.retry_after} s and try again.", "rate_limited")
        for name, value in exc.get_headers():
            response.headers[name] = value
        return response

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description if status != 500 else "The server could not finish this request."
        return await error_page(status, message or TITLES.get(status, ""))

    @app.errorhandler(Unavailable)
    async def _unavailable(exc: Unavailable) -> Response:
        response = await error_page(503, exc.message, exc.code)
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response

    @app.errorhandler(ActionError)
    async def _action(exc: ActionError) -> Response:
        response = await error_page(exc.status, exc.message, exc.code)
        if exc.retry_after:
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response

    @app.errorhandler(Exception)
    async def _crash(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return await _http(exc)
        log.exception("unhandled error")
        return await error_page(500, InternalServerError.description or "", "server_error")
