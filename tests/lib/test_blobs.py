"""app/blobs: a shared file's bytes under a random key, private, durable, and never a path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.blobs import CHUNK_BYTES, KEY, BlobMissing, new_key
from app.blobs.local import LocalBlobStore


def test_keys_are_random_and_safe_in_a_path() -> None:
    keys = {new_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(KEY.fullmatch(k) for k in keys)


async def test_put_read_delete_round_trip_private_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    data = os.urandom(3 * CHUNK_BYTES + 17)
    upload = incoming / "upload.tmp"
    upload.write_bytes(data)
    key = new_key()
    await store.put(key, upload)
    assert not upload.exists()  # taken in, not copied
    assert await store.exists(key)
    chunks = [c async for c in store.read(key)]
    assert b"".join(chunks) == data and max(map(len, chunks)) <= CHUNK_BYTES and len(chunks) == 4
    stored = tmp_path / "blobs" / key[:2] / key
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert await store.delete(key) is True
    assert await store.delete(key) is False
    assert not await store.exists(key)
    with pytest.raises(BlobMissing):
        [c async for c in store.read(key)]


async def test_a_key_is_never_reused_or_a_path(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    key = new_key()
    await store.put(key, first)
    with pytest.raises(FileExistsError):
        await store.put(key, second)
    assert b"".join([c async for c in store.read(key)]) == b"first"
    for bad in ("../../etc/passwd", "", "A" * 26, key + "x", key[:-1] + "/", "..", "aa/../../x"):
        with pytest.raises(ValueError):
            await store.exists(bad)
        with pytest.raises(ValueError):
            [c async for c in store.read(bad)]
