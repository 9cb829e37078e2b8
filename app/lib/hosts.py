"""The public address: the base of every printed link and the hosts requests may name."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class PublicUrlError(ValueError):
    """PUBLIC_URL is not an absolute http(s) URL with a host."""


def normalise_public_url(raw: str) -> str:
    """Return ``raw`` as ``scheme://host[:port]`` (no path, no trailing slash) or raise."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise PublicUrlError(f"PUBLIC_URL must look like https://chat.hospital.example (got {raw!r})")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise PublicUrlError(f"PUBLIC_URL is a scheme, a host and maybe a port, nothing else (got {raw!r})")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header value: no port, no IPv6 brackets, lower case."""
    value = host_header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def allowed_host_names(public_url: str, extra: list[str] | tuple[str, ...] = ()) -> frozenset[str]:
    """The host names requests may carry: PUBLIC_URL's, the loopback aliases when that is a
    loopback name (the development certificate covers all three), and ``extra``."""
    name = urlsplit(public_url).hostname or ""
    names = {name.lower(), *(host_name(h) for h in extra if h.strip())}
    if name in LOOPBACK_NAMES:
        names |= LOOPBACK_NAMES
    return frozenset(n for n in names if n)
