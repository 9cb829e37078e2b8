"""Blobs as files under one folder of the instance (``instance/files/blobs`` by default).

Layout ``<root>/<k[0:2]>/<key>``, folders 0700 and files 0600 (``app.lib.private_files``).
``put`` renames the finished upload in (the caller writes it in ``root``'s file system, e.g.
``<root>/../incoming``), after an fsync of the file, and fsyncs the folder after the rename:
a blob that ``put`` returned for survives a power cut, like an acknowledged message.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from app.blobs import CHUNK_BYTES, BlobMissing, check_key
from app.lib.private_files import FILE_MODE, make_private_folder


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    async def put(self, key: str, source: Path) -> None:
        target = self._path(key)
        await asyncio.to_thread(self._put, source, target)

    @staticmethod
    def _put(source: Path, target: Path) -> None:
        make_private_folder(target.parent)
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fchmod(fd, FILE_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
        if target.exists():
            raise FileExistsError(f"blob {target.name} exists")  # keys are never reused
        os.replace(source, target)  # same file system: atomic
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise BlobMissing(key) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)
