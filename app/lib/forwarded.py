"""Who is on the other end of a request or socket, behind a known number of proxies."""

from __future__ import annotations


def peer_address(forwarded_for: str | None, remote_addr: str | None, trusted_hops: int) -> str:
    """The client's address as the nearest trusted proxy saw it.

    ``X-Forwarded-For`` only counts behind ``trusted_hops`` configured reverse proxies
    (``TRUSTED_PROXY_COUNT``); each appends the address it received from, so the client is
    the ``trusted_hops``-th entry from the right. Anything left of that was written by the
    client itself and is never believed. With too few entries, or no proxies configured,
    the socket's own peer address is the answer.
    """
    if trusted_hops > 0:
        hops = [part.strip() for part in (forwarded_for or "").split(",") if part.strip()]
        if len(hops) >= trusted_hops:
            return hops[-trusted_hops]
    return remote_addr or ""
