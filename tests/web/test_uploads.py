"""POST /chats/<id>/uploads: the PWA's upload door (the file as the body, JSON answers).

What the action decides is tested in tests/actions/test_files.py; here: the CSRF header is
checked before the body is read, the body cap is the upload's own (not the 64 KiB of forms),
and every refusal is a JSON error with a status, never a 500.
"""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from app.services import Services
from app.store.models import Attachment
from tests.helpers import conversation_id_of
from tests.support import Client

JSON = {"Accept": "application/json"}


async def _direct(alice: Client, bob_name: str = "bob") -> int:
    r = await alice.submit("/chats/direct", {"username": bob_name}, page="/directory")
    assert r.status_code == 303
    return conversation_id_of(r.headers["Location"])


async def _attachments(svc: Services) -> int:
    async with svc.db.reading() as s:
        return int((await s.execute(select(func.count()).select_from(Attachment))).scalar_one())


def _photo(width: int = 300, height: int = 200) -> bytes:
    """Noise, so that the PNG is as big as a photo of that size (not a few bytes of one colour)."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buf, "PNG")
    return buf.getvalue()


async def _upload(client: Client, conv: int, data: bytes, *, token: str | None, upload_id: str | None = None, name: str = "photo.png", **headers: str) -> Any:
    upload_id = upload_id or str(uuid.uuid4())
    sent = {**JSON, **({"X-CSRF-Token": token} if token else {}), **headers}
    return await client.post(f"/chats/{conv}/uploads", query_string={"upload_id": upload_id, "name": name}, data=data, headers=sent)


async def test_a_member_uploads_a_photo_bigger_than_a_form_and_gets_it_back_once(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await _direct(alice)
    token = await alice.csrf("/chats")
    photo = _photo(900, 600)
    assert len(photo) > 20 * svc.settings.max_content_length  # far more than any form may carry
    upload_id = str(uuid.uuid4())
    r = await _upload(alice, conv, photo, token=token, upload_id=upload_id, name="../ward 7/rash.png")
    assert r.status_code == 201, await r.get_data(as_text=True)
    body = (await r.get_json())["attachment"]
    assert body["name"] == "rash.png" and body["kind"] == "image" and body["state"] == "staged"
    assert (body["width"], body["height"], body["thumbnail"], body["upload_id"]) == (900, 600, True, upload_id)
    assert not {"blob_key", "thumb_key", "sha256"} & set(body)  # where and what the bytes are stays inside
    again = await _upload(alice, conv, photo, token=token, upload_id=upload_id)
    assert again.status_code == 200 and (await again.get_json())["attachment"]["id"] == body["id"]
    assert await _attachments(svc) == 1


async def test_an_upload_bigger_than_a_form_limit_passes_but_not_bigger_than_the_upload_limit(login_as: Any, svc: Services, app_config: dict[str, Any]) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await _direct(alice)
    token = await alice.csrf("/chats")
    text = ("Obs chart, bed 4: all normal.\n" * 4000).encode()  # 120 KB: twice a form's cap
    r = await _upload(alice, conv, text, token=token, name="obs.txt")
    assert r.status_code == 201, await r.get_data(as_text=True)
    too_big = b"x" * (svc.settings.upload_max_bytes + 1)
    r = await _upload(alice, conv, too_big, token=token, name="big.txt")
    assert r.status_code == 413
    assert (await r.get_json())["error"] == "too_large"
    assert await _attachments(svc) == 1


async def test_without_the_csrf_header_or_from_another_site_nothing_is_read_or_kept(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    conv = await _direct(alice)
    token = await alice.csrf("/chats")
    r = await _upload(alice, conv, b"note\n", token=None)
    assert r.status_code == 403
    r = await _upload(alice, conv, b"note\n", token=token[:-2] + "xx")
    assert r.status_code == 403
    r = await _upload(alice, conv, b"note\n", token=token, Origin="https://evil.example")
    assert r.status_code == 403
    assert await _attachments(svc) == 0


async def test_refusals_are_json_errors_with_their_status(login_as: Any, svc: Services) -> None:
    alice = await login_as("alice")
    await login_as("bob")
    carol = await login_as("carol")
    conv = await _direct(alice)
    token = await alice.csrf("/chats")
    r = await _upload(alice, conv, b"MZ\x90\x00" + b"\x00" * 9000, token=token, name="setup.exe")
    assert r.status_code == 415
    assert await r.get_json() == {"error": "program", "message": "Programs and scripts cannot be shared."}
    r = await _upload(alice, conv, b"<html><body>hi</body></html>", token=token, name="photo.png")
    assert (r.status_code, (await r.get_json())["error"]) == (415, "markup")
    r = await _upload(alice, conv, b"note\n", token=token, upload_id="not-an-id")
    assert (r.status_code, (await r.get_json())["error"]) == (400, "bad_upload_id")
    r = await _upload(carol, conv, b"note\n", token=await carol.csrf("/chats"))
    assert r.status_code == 404
    assert await _attachments(svc) == 0
