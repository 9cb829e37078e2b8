"""Work on shared files that must not run in the server's process (issue 11).

Decoding a photo from a stranger's phone is parsing hostile input with C libraries: a crafted
file can take gigabytes of memory, loop, or crash the decoder. So it runs in a subprocess
of its own (``app.media.sandbox.MediaSandbox`` runs ``python -I app/media/worker.py``) with limits on
memory and CPU, a timeout after which it is killed, and nothing but a JSON job in and a JSON
answer out. ``app.media.images`` is what the worker does with a photo. Only actions (and the
composition root) may use this package; it imports nothing of the app but ``app.lib``.
"""

from __future__ import annotations


class MediaRefused(ValueError):
    """The file cannot be shared; ``code`` for logs and audits, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
