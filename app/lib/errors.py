"""Errors below the actions layer that both doors must answer alike."""

from __future__ import annotations


class Unavailable(Exception):
    """The database could not serve the request now (a lock timeout, a lost connection).

    Nothing was changed (the transaction rolled back), so the request may simply be sent
    again: the form door answers 503 with Retry-After, the socket an error frame ``busy``
    with ``retry_after``. Resending a message with the same client_msg_id is safe.
    """

    code = "busy"
    status = 503

    def __init__(self, message: str = "The server is busy. Nothing was saved; try again in a moment.", retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
