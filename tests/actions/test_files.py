"""do_stage_upload: a file enters MedChat counted, sniffed, checked and cleaned, or not at all.

Uploads are fed as chunks, the way the door hands them on while they arrive; a chunk source
that must not be read fails the test if it is.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.actions import conversations, files
from app.actions.errors import ActionError, NotFound
from app.records import Staff
from app.services import Services
from app.store.models import Attachment, AuditEntry, BlobDeletion
from app.vocab import AttachmentKind, AttachmentState
from tests.helpers import actor_for
from tests.lib.test_sniff import office

GPS_TRACE = b"PhoneModel Z"


def _phone_photo() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    exif[0x0110] = GPS_TRACE.decode()
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 12.5)
    buf = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 30, 30)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


class Chunks:
    """An upload arriving in pieces; counts what was read."""

    def __init__(self, data: bytes, size: int = 4096) -> None:
        self.parts = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        self.read = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.read += 1
            yield part


class Untouchable:
    def __aiter__(self) -> AsyncIterator[bytes]:
        raise AssertionError("the upload's body was read")


def uid() -> str:
    return str(uuid.uuid4())


async def stage(svc: Services, who: Staff, conversation_id: int, data: bytes | Iterable[bytes] | Any, name: str = "file", upload_id: str | None = None) -> files.Staged:
    chunks = Chunks(data) if isinstance(data, bytes) else data
    return await files.do_stage_upload(svc, actor_for(who), conversation_id, uid() if upload_id is None else upload_id, name, chunks)


async def count(svc: Services, model: Any) -> int:
    async with svc.db.reading() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def refusals(svc: Services) -> list[str]:
    async with svc.db.reading() as s:
        return [r.detail for r in (await s.execute(select(AuditEntry).where(AuditEntry.action == "file_refused"))).scalars()]


async def blob_bytes(svc: Services, key: str) -> bytes:
    return b"".join([c async for c in svc.blobs.read(key)])


def leftovers(svc: Services) -> list[Path]:
    return list(svc.incoming.iterdir()) if svc.incoming.exists() else []


async def test_a_phone_photo_is_staged_cleaned_and_upright(svc: Services, staff: dict[str, Staff], group: int) -> None:
    photo = _phone_photo()
    staged = await stage(svc, staff["alice"], group, photo, name="C:\\Users\\nurse\\wound bed 4.jpeg")
    a = staged.attachment
    assert staged.new
    assert (a.kind, a.mime, a.state, a.width, a.height) == (AttachmentKind.IMAGE, "image/jpeg", AttachmentState.STAGED, 32, 64)
    assert a.name == "wound bed 4.jpeg" and a.conversation_id == group and a.message_id is None
    stored = await blob_bytes(svc, a.blob_key)
    assert a.size == len(stored) and GPS_TRACE not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as im:
        assert im.size == (32, 64)
    assert a.thumb_key is not None
    with Image.open(io.BytesIO(await blob_bytes(svc, a.thumb_key))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= svc.settings.thumbnail_px
    assert leftovers(svc) == []


async def test_a_retry_with_the_same_upload_id_gets_the_first_upload_without_reading_again(svc: Services, staff: dict[str, Staff], group: int) -> None:
    upload_id = uid()
    first = await stage(svc, staff["alice"], group, b"Handover: bed 4 needs obs at 14:00\n", name="handover.txt", upload_id=upload_id)
    again = await stage(svc, staff["alice"], group, Untouchable(), name="handover.txt", upload_id=upload_id)
    assert not again.new and again.attachment == first.attachment
    assert (first.attachment.kind, first.attachment.mime) == (AttachmentKind.TEXT, "text/plain; charset=utf-8")
    assert await count(svc, Attachment) == 1
    # The same id is Bob's own to use; in another conversation it is Alice's mistake.
    assert (await stage(svc, staff["bob"], group, b"mine\n", upload_id=upload_id)).new
    other = await conversations.do_create_group(svc, actor_for(staff["alice"]), "Other", ["dave"])
    with pytest.raises(ActionError) as wrong:
        await stage(svc, staff["alice"], other, Untouchable(), upload_id=upload_id)
    assert wrong.value.code == "bad_upload_id"


@pytest.mark.parametrize("upload_id", ["", "not-a-uuid", "x" * 36, "../../etc"])
async def test_an_upload_without_a_valid_id_is_refused_before_it_is_read(svc: Services, staff: dict[str, Staff], group: int, upload_id: str) -> None:
    with pytest.raises(ActionError) as refused:
        await stage(svc, staff["alice"], group, Untouchable(), upload_id=upload_id)
    assert refused.value.code == "bad_upload_id" and refused.value.status == 400


async def test_a_stranger_cannot_upload_and_nothing_is_read(svc: Services, staff: dict[str, Staff], group: int) -> None:
    with pytest.raises(NotFound):
        await stage(svc, staff["dave"], group, Untouchable())
    with pytest.raises(NotFound):
        await stage(svc, staff["alice"], 10**9, Untouchable())
    assert await count(svc, Attachment) == 0


@pytest.fixture
def small_uploads(app_config: dict[str, Any]) -> None:
    app_config["UPLOAD_MAX_BYTES"] = 20_000


@pytest.fixture
def only_excel(app_config: dict[str, Any]) -> None:
    app_config["UPLOAD_OFFICE_TYPES"] = ["xlsx"]


@pytest.fixture
def one_upload_at_a_time(app_config: dict[str, Any]) -> None:
    app_config["UPLOAD_CONCURRENCY"] = 1


@pytest.mark.usefixtures("small_uploads")
async def test_too_large_stops_at_the_limit_and_leaves_nothing(svc: Services, staff: dict[str, Staff], group: int) -> None:
    big = Chunks(b"a" * 1_000_000, size=4096)  # 245 chunks of text
    with pytest.raises(files.TooLarge) as refused:
        await stage(svc, staff["alice"], group, big)
    assert refused.value.status == 413 and "20 KiB" in refused.value.message
    assert big.read == 5  # 5 × 4096 > 20,000: the sixth chunk is never asked for
    assert await count(svc, Attachment) == 0 and leftovers(svc) == []
    assert await refusals(svc) == ["too_large"]


@pytest.mark.parametrize(("content", "code"), [
    (b"MZ\x90\x00" + b"\x00" * 60_000, "program"),
    (b"\x7fELF" + b"\x00" * 60_000, "program"),
    (b"#!/bin/sh\nrm -rf /\n", "program"),
    (b"<!DOCTYPE html><script>alert(1)</script>", "markup"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "markup"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "not_supported"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "not_supported"),
    (b"", "empty"),
    (b"Rar!\x1a\x07\x00", "archive"),
    (b"GIF89a" + b"\x00" * 100, "unknown"),
    (b"notes " * 3000 + b"\x00 hidden binary after the first 8 KiB", "unknown"),
    (b"\xff\xd8\xff\xe0" + b"not really a photo" * 100, "damaged"),
])
async def test_files_we_do_not_share_are_refused_with_a_reason_and_leave_nothing(svc: Services, staff: dict[str, Staff], group: int, content: bytes, code: str) -> None:
    with pytest.raises(files.Unsupported) as refused:
        await stage(svc, staff["alice"], group, content, name="innocent.txt")
    assert refused.value.code == code and refused.value.status == 415 and refused.value.message
    assert await count(svc, Attachment) == 0 and await count(svc, BlobDeletion) == 0
    assert leftovers(svc) == [] and list((Path(svc.settings.files_path) / "objects").glob("*/*")) == []
    assert await refusals(svc) == [code]  # the reason, never the file's name


async def test_a_program_is_refused_after_its_first_bytes_not_its_last(svc: Services, staff: dict[str, Staff], group: int) -> None:
    program = Chunks(b"MZ" + b"\x00" * 5_000_000, size=4096)
    with pytest.raises(files.Unsupported):
        await stage(svc, staff["alice"], group, program)
    assert program.read == 2  # 8 KiB of head, then the verdict


async def test_office_documents_are_checked_and_only_the_configured_kinds_shared(svc: Services, staff: dict[str, Staff], group: int, tmp_path: Path) -> None:
    docx = office(tmp_path, "word").read_bytes()
    staged = await stage(svc, staff["alice"], group, docx, name="discharge letter")
    assert staged.attachment.kind == AttachmentKind.DOCUMENT and staged.attachment.name == "discharge letter.docx"
    assert await blob_bytes(svc, staged.attachment.blob_key) == docx  # documents are kept as sent
    macro = office(tmp_path, "word", extra={"word/vbaProject.bin": b"\x00" * 100}).read_bytes()
    with pytest.raises(files.Unsupported) as refused:
        await stage(svc, staff["alice"], group, macro, name="rota.docm")
    assert refused.value.code == "active_content"


@pytest.mark.usefixtures("only_excel")
async def test_an_office_kind_the_hospital_did_not_allow_is_refused(svc: Services, staff: dict[str, Staff], group: int, tmp_path: Path) -> None:
    with pytest.raises(files.Unsupported) as refused:
        await stage(svc, staff["alice"], group, office(tmp_path, "word").read_bytes())
    assert refused.value.code == "not_allowed" and "DOCX" in refused.value.message
    assert (await stage(svc, staff["alice"], group, office(tmp_path, "xl").read_bytes())).attachment.name == "file.xlsx"


async def test_the_shown_name_is_cleaned_and_ends_with_the_real_type(svc: Services, staff: dict[str, Staff], group: int) -> None:
    staged = await stage(svc, staff["alice"], group, b"echo hi\r\n", name="../../\u202eexe.bat")
    assert staged.attachment.name == "exe.bat.txt"


@pytest.mark.usefixtures("one_upload_at_a_time")
async def test_past_the_concurrent_uploads_the_next_one_waits_for_a_retry(svc: Services, staff: dict[str, Staff], group: int) -> None:
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"first part of a long text\n"
        await gate.wait()
        yield b"the rest\n"

    first = asyncio.create_task(stage(svc, staff["alice"], group, slow()))
    await asyncio.sleep(0.05)
    with pytest.raises(files.Busy) as busy:
        await stage(svc, staff["bob"], group, Untouchable())
    assert busy.value.status == 503 and busy.value.retry_after > 0
    gate.set()
    assert (await first).new
    assert (await stage(svc, staff["bob"], group, b"now\n")).new  # the slot is free again


async def test_the_sweep_deletes_uploads_never_sent_and_their_bytes(svc: Services, staff: dict[str, Staff], group: int, clock: Any) -> None:
    old = (await stage(svc, staff["alice"], group, _phone_photo())).attachment
    clock.advance(3600 + 1)
    fresh = (await stage(svc, staff["alice"], group, b"just now\n")).attachment
    svc.incoming.mkdir(exist_ok=True)
    crashed = svc.incoming / "abandoned.upload"
    crashed.write_bytes(b"half a photo")
    os.utime(crashed, (time.time() - 2 * 3600, time.time() - 2 * 3600))
    assert await files.sweep_files(svc) == (1, 2)  # the photo and its thumbnail
    assert not await svc.blobs.exists(old.blob_key) and old.thumb_key and not await svc.blobs.exists(old.thumb_key)
    assert await svc.blobs.exists(fresh.blob_key)
    assert await count(svc, Attachment) == 1 and await count(svc, BlobDeletion) == 0
    assert not crashed.exists()
    assert await files.sweep_files(svc) == (0, 0)
