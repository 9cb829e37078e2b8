"""Keep one-time tokens out of Hypercorn's access log.

Setup links (``/setup/<token>``) and invitation links (``/invite/<token>``, also sent when an
administrator resets a password) carry a secret that signs an account in. Hypercorn's
access log writes the request path, so whoever reads the logs could take over an unused
invitation. ``redact_tokens`` replaces such a token with ``[redacted]``; every access-log
atom (path, request line, query, headers such as Referer) goes through it.

Hypercorn reads ``logger_class`` only as a Python class, which hypercorn.toml cannot name,
so ``Logger.atoms`` (Hypercorn's documented customisation point for the atoms) is wrapped
in the worker process when the app is created, before it serves a request.
tests/web/test_access_log.py tests the function; tests/e2e/test_hypercorn_hardening.py
reads a real Hypercorn's log after visiting such links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PATCHED = "_medchat_redacted"
REDACTED = "[redacted]"
# A token is everything after the prefix up to the next "/", "?", "#", quote or space.
_TOKEN_PATH = re.compile(r"(/(?:setup|invite)/)[^/?#\s\"']+", re.IGNORECASE)
_ENCODED_TOKEN_PATH = re.compile(r"(%2F(?:setup|invite)%2F)[^/?#&\s\"'%]+", re.IGNORECASE)


def redact_tokens(text: str) -> str:
    """``text`` with every setup or invitation token replaced by ``[redacted]``."""
    text = _TOKEN_PATH.sub(lambda m: m.group(1) + REDACTED, text)
    return _ENCODED_TOKEN_PATH.sub(lambda m: m.group(1) + REDACTED, text)


def redact_access_log() -> bool:
    """Wrap Hypercorn's access-log atoms (idempotent); False if Hypercorn is absent."""
    try:
        from hypercorn.logging import Logger
    except ImportError:  # pragma: no cover - Hypercorn is a dependency
        return False
    if getattr(Logger, _PATCHED, False):
        return True
    original = Logger.atoms

    def atoms(self: Any, request: Any, response: Any, request_time: float) -> Mapping[str, str]:
        values: Any = original(self, request, response, request_time)
        for key, value in list(values.items()):
            if isinstance(value, str):
                values[key] = redact_tokens(value)
        return values  # type: ignore[no-any-return]

    Logger.atoms = atoms  # type: ignore[method-assign]
    setattr(Logger, _PATCHED, True)
    return True
