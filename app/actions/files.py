"""Shared files (issue 11): an upload is received, checked, cleaned and staged here.

``do_stage_upload`` is the one way a file enters MedChat, for both doors (the PWA's raw
upload and the no-JavaScript form). In order:

1. the person must be a member of the conversation (before a byte is read), and the
   upload's id is theirs: a retry with the same ``client_upload_id`` gets the first upload
   back without sending it again;
2. the bytes are written to a private temporary file as they arrive, counted (past
   ``UPLOAD_MAX_BYTES`` the upload stops at once: ``TooLarge``) and sniffed from their first
   bytes (``app.lib.sniff``: a program or a web page is refused after its first 8 KiB, not
   after 25 MiB); text is checked chunk by chunk;
3. the whole file is checked for what it claims to be: a photo is decoded and re-encoded
   without metadata in the media sandbox (``app.media``), an Office file is read from its
   ZIP directory (no macros, ActiveX, embedded objects or remote templates);
4. what will be served (the cleaned photo, the text or document as sent) goes into the blob
   store under a random key, and a ``staged`` row names it. Nothing staged is shown to
   anyone: it becomes part of a message, and is scanned for viruses, in later steps.

Any refusal changes nothing (no row, no blob, no temporary file) and is audited as
``file_refused`` with its reason, never with the file's name or content.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from app.actions import Actor, audit
from app.actions.access import access_conversation
from app.actions.errors import ActionError
from app.blobs import new_key
from app.lib import sniff
from app.lib.errors import Unavailable
from app.lib.filenames import display_name
from app.lib.private_files import create_private_file, make_private_folder
from app.lib.tokens import is_client_msg_id
from app.media import MediaRefused
from app.records import AttachmentRecord
from app.services import Services
from app.store import attachments as rows
from app.store.db import Conflict
from app.vocab import AttachmentKind, AuditAction

log = logging.getLogger("medchat.files")

# A file left in incoming/ this long is an upload whose process died (live ones are written
# to within UPLOAD_IDLE_SECONDS, or ended).
INCOMING_ABANDONED_SECONDS = 3600


class TooLarge(ActionError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("too_large", f"The file is larger than {_size(limit)}: it cannot be shared.")


class Unsupported(ActionError):
    """Not a file MedChat shares (its type, or it failed the check of that type)."""

    status = 415


class Busy(ActionError):
    status = 503

    def __init__(self) -> None:
        super().__init__("busy", "The server is receiving many files right now. Try again in a few seconds.", retry_after=5)


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


@dataclass(frozen=True)
class Staged:
    attachment: AttachmentRecord
    new: bool  # False: a retry of an upload that had arrived (nothing was read)


@dataclass
class _Received:
    path: Path
    size: int
    sha256: str
    type: sniff.FileType


def _file_type_for(kind: str) -> AttachmentKind:
    return {"image": AttachmentKind.IMAGE, "pdf": AttachmentKind.PDF, "text": AttachmentKind.TEXT}.get(kind, AttachmentKind.DOCUMENT)


@contextlib.contextmanager
def _upload_slot(svc: Services) -> Iterator[None]:
    if svc.uploads_open >= svc.settings.upload_concurrency:
        raise Busy()
    svc.uploads_open += 1
    try:
        yield
    finally:
        svc.uploads_open -= 1


async def do_stage_upload(
    svc: Services, actor: Actor, conversation_id: int, client_upload_id: str, raw_name: str, chunks: AsyncIterable[bytes]
) -> Staged:
    """Receive, check, clean and stage one file; return its staged row (or, for a retry of
    the same ``client_upload_id``, the row of the first upload, without reading ``chunks``)."""
    await access_conversation(svc, actor.user, conversation_id)  # strangers learn nothing, not even a 400
    if not is_client_msg_id(client_upload_id):
        raise ActionError("bad_upload_id", "The upload has no valid id: reload the page and try again.")
    earlier = await _earlier(svc, actor, conversation_id, client_upload_id)
    if earlier is not None:
        return Staged(earlier, new=False)
    with _upload_slot(svc):
        make_private_folder(svc.incoming)
        temps: list[Path] = []
        try:
            try:
                received = await _receive(svc, chunks, temps)
                stored, thumb, meta = await _check_and_clean(svc, received, temps)
            except (sniff.Refused, MediaRefused) as refused:
                await _audit_refusal(svc, actor, conversation_id, refused.code)
                raise Unsupported(refused.code, refused.message) from None
            except TooLarge:
                await _audit_refusal(svc, actor, conversation_id, "too_large")
                raise
            return await _stage(svc, actor, conversation_id, client_upload_id, raw_name, received, stored, thumb, meta)
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)


async def _earlier(svc: Services, actor: Actor, conversation_id: int, client_upload_id: str) -> AttachmentRecord | None:
    async with svc.db.reading() as s:
        earlier = await rows.staged_upload(s, actor.user.id, client_upload_id)
    if earlier is not None and earlier.conversation_id != conversation_id:
        raise ActionError("bad_upload_id", "This upload id was used in another conversation: reload the page and try again.")
    return earlier


def _temp(svc: Services, temps: list[Path], suffix: str) -> Path:
    path = svc.incoming / f"{new_key()}.{suffix}"
    create_private_file(path)
    temps.append(path)
    return path


async def _receive(svc: Services, chunks: AsyncIterable[bytes], temps: list[Path]) -> _Received:
    """Write the upload to a private temporary file, counting and sniffing as it arrives."""
    limit = svc.settings.upload_max_bytes
    path = _temp(svc, temps, "upload")
    digest = hashlib.sha256()
    head = b""
    found: sniff.FileType | None = None
    text: sniff.TextCheck | None = None
    size = 0
    with path.open("wb") as out:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TooLarge(limit)
            digest.update(chunk)
            out.write(chunk)
            if found is None:
                head += chunk
                if len(head) < sniff.HEAD_BYTES:
                    continue
                found, text = _sniffed(head)
                if text is not None:
                    text.feed(head)
            elif text is not None:
                text.feed(chunk)
    if found is None:  # the whole file is shorter than the head
        found, text = _sniffed(head)
        if text is not None:
            text.feed(head)
    if text is not None:
        text.feed(b"", final=True)
    return _Received(path, size, digest.hexdigest(), found)


def _sniffed(head: bytes) -> tuple[sniff.FileType, sniff.TextCheck | None]:
    found = sniff.sniff_head(head)
    return found, (sniff.TextCheck() if found is sniff.TEXT else None)


_NOT_YET = {
    sniff.HEIC: "HEIC photos cannot be shared yet: on an iPhone, choose \u201cMost Compatible\u201d (JPEG) in Settings \u2192 Camera \u2192 Formats.",
    sniff.PDF: "PDFs cannot be shared yet.",
}


async def _check_and_clean(svc: Services, got: _Received, temps: list[Path]) -> tuple[Path, Path | None, dict[str, int]]:
    """The file to store (cleaned where it can be), its thumbnail, and its dimensions."""
    if got.type in _NOT_YET:
        raise sniff.Refused("not_supported", _NOT_YET[got.type])
    if got.type.kind == "image":
        target, thumb = _temp(svc, temps, "clean"), _temp(svc, temps, "thumb")
        result = await svc.media.clean_image(
            got.path, target, thumb, max_pixels=svc.settings.image_max_pixels, thumb_px=svc.settings.thumbnail_px
        )
        if result.get("mime") != got.type.mime:  # the decoder and the sniffer must agree
            raise sniff.Refused("damaged", "The photo could not be read: it is damaged.")
        return target, thumb, {"width": int(result["width"]), "height": int(result["height"])}
    if got.type is sniff.OFFICE_CANDIDATE:
        office = await asyncio.to_thread(sniff.check_office, got.path)
        if office.extension not in svc.settings.upload_office_types:
            raise sniff.Refused("not_allowed", f"{office.extension.upper()} files cannot be shared here.")
        got.type = office
    return got.path, None, {}


async def _stage(
    svc: Services, actor: Actor, conversation_id: int, client_upload_id: str, raw_name: str,
    got: _Received, stored: Path, thumb: Path | None, meta: dict[str, int],
) -> Staged:
    size = (await asyncio.to_thread(stored.stat)).st_size
    digest = got.sha256 if stored == got.path else await asyncio.to_thread(_sha256, stored)
    key, thumb_key = new_key(), (new_key() if thumb is not None else None)
    await svc.blobs.put(key, stored)
    if thumb is not None and thumb_key is not None:
        await svc.blobs.put(thumb_key, thumb)
    now = svc.clock.now()
    try:
        async with svc.db.transaction() as s:
            made = await rows.add_staged(
                s, conversation_id=conversation_id, uploader_id=actor.user.id, client_upload_id=client_upload_id,
                name=display_name(raw_name, got.type.extension), kind=_file_type_for(got.type.kind), mime=got.type.mime,
                size=size, sha256=digest, original_sha256=got.sha256, blob_key=key, thumb_key=thumb_key,
                width=meta.get("width"), height=meta.get("height"), pages=meta.get("pages"), now=now,
            )
        return Staged(made, new=True)
    except BaseException as exc:
        await _drop_blobs(svc, [key, thumb_key])
        if isinstance(exc, Conflict):  # the same upload, sent twice at once: the first one stands
            earlier = await _earlier(svc, actor, conversation_id, client_upload_id)
            if earlier is not None:
                return Staged(earlier, new=False)
        raise


async def _drop_blobs(svc: Services, keys: list[str | None]) -> None:
    """Delete blobs no row names; whatever cannot be deleted now is noted for the sweep."""
    left = []
    for key in filter(None, keys):
        try:
            await svc.blobs.delete(key)
        except OSError:
            left.append(key)
    if left:
        async with svc.db.transaction() as s:
            await rows.forget_blobs(s, left, svc.clock.now() + timedelta(minutes=1))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 16):
            digest.update(block)
    return digest.hexdigest()


async def _audit_refusal(svc: Services, actor: Actor, conversation_id: int, code: str) -> None:
    async with svc.db.transaction() as s:
        await audit.record(s, actor, AuditAction.FILE_REFUSED, at=svc.clock.now(), conversation_id=conversation_id, detail=code)


async def sweep_files(svc: Services) -> tuple[int, int]:
    """Delete staged uploads never sent (older than ``UPLOAD_STAGED_HOURS``), the blobs noted
    for deletion, and abandoned temporary files; return (uploads, blobs) deleted."""
    now = svc.clock.now()
    async with svc.db.transaction() as s:
        expired = await rows.delete_staged_before(s, now - timedelta(hours=svc.settings.upload_staged_hours), now)
    async with svc.db.reading() as s:
        due = await rows.due_blob_deletions(s, now)
    deleted = 0
    for key in due:
        try:
            await svc.blobs.delete(key)  # False (already gone) is done too
        except OSError:
            log.warning("blob %s could not be deleted; the next sweep tries again", key)
            continue
        async with svc.db.transaction() as s:
            await rows.blob_deleted(s, key)
        deleted += 1
    await asyncio.to_thread(_remove_abandoned, svc.incoming, time.time() - INCOMING_ABANDONED_SECONDS)
    return expired, deleted


def _remove_abandoned(folder: Path, before: float) -> None:
    if not folder.exists():
        return
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < before:
                path.unlink()


async def sweep_files_forever(svc: Services, interval: float) -> None:
    """``sweep_files`` every ``interval`` seconds (create_app starts and cancels it)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep_files(svc)
        except Unavailable:
            log.warning("files sweep skipped: the database is busy")
        except Exception:  # noqa: BLE001 - a failed sweep must not end the sweeping
            log.exception("files sweep failed")
