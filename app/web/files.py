"""Shared files at the HTML door (issue 11): uploads as they arrive, never whole in memory.

Quart reads a request body into memory with no backpressure, up to the request's
``max_content_length``, and that limit is fixed when the request object is made (MedChat's
is 64 KiB). So the upload routes get their own cap through ``upload_request_class``, are
exempt from the form parsing of the CSRF check (it would read the whole body first: the
token comes in the ``X-CSRF-Token`` header, checked before a byte is read), and read the
body chunk by chunk (``body_chunks``): counted, handed on as it comes, with an idle timeout
per chunk (Quart's ``BODY_TIMEOUT`` covers only whole-body reads, and would cut a 25 MiB
upload from a phone on a slow link). A reverse proxy in front should limit bodies too.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from typing import Any

from quart import Blueprint, Request, jsonify, request
from quart.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

from app.actions import files
from app.records import AttachmentRecord
from app.web.context import actor, login_required, svc

bp = Blueprint("files", __name__)

UPLOAD_PATHS = re.compile(r"/chats/[0-9]{1,20}/uploads")
FORM_ALLOWANCE = 1024 * 1024  # a multipart form's own bytes around its files


def upload_request_class(upload_max_bytes: int) -> type[Request]:
    """Quart's Request with a larger body cap on the upload routes only (the cap also bounds
    the bytes buffered if the view reads slower than the client sends)."""
    cap = upload_max_bytes + FORM_ALLOWANCE

    class MedChatRequest(Request):
        def __init__(self, method: str, scheme: str, path: str, *args: Any, max_content_length: int | None = None, **kwargs: Any) -> None:
            if method == "POST" and UPLOAD_PATHS.fullmatch(path):
                max_content_length = cap
            super().__init__(method, scheme, path, *args, max_content_length=max_content_length, **kwargs)

    return MedChatRequest


def is_upload(path: str) -> bool:
    return UPLOAD_PATHS.fullmatch(path) is not None


async def body_chunks(idle_seconds: float) -> AsyncGenerator[bytes, None]:
    """The request body as it arrives; 408 when nothing came for ``idle_seconds``, 413 as
    soon as Quart's cap (Content-Length or bytes buffered) is passed."""
    chunks = request.body.__aiter__()
    while True:
        try:
            async with asyncio.timeout(idle_seconds):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout("The upload stopped: nothing arrived for a while. Try again.") from None
        if chunk:
            yield chunk


def attachment_json(a: AttachmentRecord) -> dict[str, Any]:
    """What a browser learns of a staged upload: never its blob keys or hashes."""
    return {
        "id": a.id, "upload_id": a.client_upload_id, "name": a.name, "kind": a.kind, "mime": a.mime,
        "size": a.size, "state": a.state, "width": a.width, "height": a.height, "pages": a.pages,
        "thumbnail": a.thumb_key is not None,
    }


@bp.post("/chats/<int:conversation_id>/uploads")
@login_required
async def upload(conversation_id: int) -> ResponseReturnValue:
    """The PWA's upload: the file itself as the body (``xhr.send(file)``), its id and name
    in the query (``?upload_id=<uuid>&name=<file name>``). Answers 201 with the staged
    file, or 200 with the same file for a retry of an upload that already arrived."""
    settings = svc().settings
    if request.content_length is not None and request.content_length > settings.upload_max_bytes:
        raise files.TooLarge(settings.upload_max_bytes)  # before a byte is read
    upload_id = request.args.get("upload_id", "")
    name = request.args.get("name", "")[:1000]
    chunks = body_chunks(settings.upload_idle_seconds)
    try:
        staged = await files.do_stage_upload(svc(), actor(), conversation_id, upload_id, name, chunks)
    except RequestEntityTooLarge:
        raise files.TooLarge(settings.upload_max_bytes) from None
    finally:
        await chunks.aclose()
    return jsonify({"attachment": attachment_json(staged.attachment)}), 201 if staged.new else 200
