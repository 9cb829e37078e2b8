"""Shared files' rows (issue 11): staged by their uploader, linked to a message, scanned.

The bytes are not here: they live in a blob store under ``blob_key`` (app/blobs), which only
actions reach. A row whose bytes must go (a refused or expired upload) leaves its keys in
``blob_deletions`` in the same transaction, so a crash between the commit and the deletion
leaves a to-do, never an orphan file nobody knows about.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.clock import as_utc
from app.records import AttachmentRecord
from app.store.models import Attachment, BlobDeletion
from app.vocab import AttachmentState


def _record(row: Attachment) -> AttachmentRecord:
    return AttachmentRecord(
        id=row.id, conversation_id=row.conversation_id, uploader_id=row.uploader_id,
        message_id=row.message_id, client_upload_id=row.client_upload_id, name=row.name,
        kind=row.kind, mime=row.mime, size=row.size, sha256=row.sha256, state=row.state,
        blob_key=row.blob_key, thumb_key=row.thumb_key, width=row.width, height=row.height,
        pages=row.pages, created_at=as_utc(row.created_at),
    )


async def add_staged(
    s: AsyncSession,
    *,
    conversation_id: int,
    uploader_id: int,
    client_upload_id: str,
    name: str,
    kind: str,
    mime: str,
    size: int,
    sha256: str,
    original_sha256: str,
    blob_key: str,
    thumb_key: str | None,
    width: int | None,
    height: int | None,
    pages: int | None,
    now: datetime,
) -> AttachmentRecord:
    """A staged upload's row. A second upload with the same ``client_upload_id`` by the same
    person raises ``Conflict`` (the unique constraint): the caller returns the first."""
    row = Attachment(
        conversation_id=conversation_id, uploader_id=uploader_id, client_upload_id=client_upload_id,
        name=name, kind=kind, mime=mime, size=size, sha256=sha256, original_sha256=original_sha256,
        blob_key=blob_key, thumb_key=thumb_key, width=width, height=height, pages=pages,
        state=AttachmentState.STAGED, ordinal=0, scan_attempts=0, scan_result="", created_at=now,
    )
    s.add(row)
    await s.flush()
    return _record(row)


async def staged_upload(s: AsyncSession, uploader_id: int, client_upload_id: str) -> AttachmentRecord | None:
    """The upload this person sent under ``client_upload_id``, whatever became of it."""
    row = (
        await s.execute(
            select(Attachment).where(Attachment.uploader_id == uploader_id, Attachment.client_upload_id == client_upload_id)
        )
    ).scalar_one_or_none()
    return _record(row) if row else None


async def attachment(s: AsyncSession, attachment_id: int) -> AttachmentRecord | None:
    row = await s.get(Attachment, attachment_id)
    return _record(row) if row else None


async def forget_blobs(s: AsyncSession, keys: list[str], due_at: datetime) -> None:
    """Note blobs to delete (idempotent: a key already noted stays as it is)."""
    if not keys:
        return
    values = [{"key": k, "due_at": due_at, "attempts": 0} for k in keys]
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    await s.execute(insert(BlobDeletion).values(values).on_conflict_do_nothing(index_elements=["key"]))


async def due_blob_deletions(s: AsyncSession, now: datetime, limit: int = 100) -> list[str]:
    rows = await s.execute(select(BlobDeletion.key).where(BlobDeletion.due_at <= now).order_by(BlobDeletion.due_at).limit(limit))
    return list(rows.scalars())


async def blob_deleted(s: AsyncSession, key: str) -> None:
    await s.execute(delete(BlobDeletion).where(BlobDeletion.key == key))


async def delete_staged_before(s: AsyncSession, before: datetime, due_at: datetime) -> int:
    """Remove staged uploads never sent that were made before ``before``; their blobs are
    noted for deletion in the same transaction. Returns how many."""
    rows = list(
        (await s.execute(select(Attachment).where(Attachment.state == AttachmentState.STAGED, Attachment.created_at < before))).scalars()
    )
    keys = [k for r in rows for k in (r.blob_key, r.thumb_key) if k]
    await forget_blobs(s, keys, due_at)
    if rows:
        await s.execute(delete(Attachment).where(Attachment.id.in_([r.id for r in rows])))
    return len(rows)
