"""Where shared files' bytes live (issue 11): one interface, ``BlobStore``, and its backends.

``app.blobs.local.LocalBlobStore`` keeps them under the instance folder (the embedded
default); an S3-compatible backend (DigitalOcean Spaces) is the plan's next step
(docs/files-plan.md). Keys are random (``new_key``), never derived from a name or the
content, so a key says nothing about the file and cannot be guessed. Only ``app.actions`` (and
the composition root) may use a store: the doors reach files through actions.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

KEY = re.compile(r"[a-z2-7]{26}")
CHUNK_BYTES = 64 * 1024


def new_key() -> str:
    """A fresh random key: 130 bits, lower-case base32, safe in a path and a URL."""
    return base64.b32encode(secrets.token_bytes(17)).decode("ascii").lower()[:26]


def check_key(key: str) -> str:
    if not KEY.fullmatch(key):
        raise ValueError(f"not a blob key: {key[:40]!r}")
    return key


class BlobMissing(LookupError):
    """No blob under that key (never stored, or deleted)."""


class BlobStore(Protocol):
    async def put(self, key: str, source: Path) -> None:
        """Take the finished file at ``source`` in under ``key`` (durably; ``source`` is gone after)."""

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks of at most ``CHUNK_BYTES``; ``BlobMissing`` if there is none."""

    async def delete(self, key: str) -> bool:
        """Remove the blob; False if there was none."""

    async def exists(self, key: str) -> bool: ...
