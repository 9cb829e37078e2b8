"""Random tokens and how they are kept: only a hash of a bearer secret is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid


def new_token() -> str:
    """Return a URL-safe random token with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def keyed_digest(key: str, *parts: str) -> str:
    """Return an HMAC-SHA256 of the parts (used for CSRF tokens)."""
    message = "\x1f".join(parts).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Compare secrets in constant time."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_client_msg_id() -> str:
    """Return a fresh client message id (a UUID string), as the no-JS form carries."""
    return str(uuid.uuid4())


def is_client_msg_id(value: str) -> bool:
    """Tell whether ``value`` is a canonical UUID string."""
    try:
        return str(uuid.UUID(value)) == value.lower() and len(value) == 36
    except ValueError:
        return False
