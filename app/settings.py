"""The settings as one typed, frozen object, built once in ``create_app``.

``app/config.py`` holds the defaults and the layers (instance file, ``MEDCHAT_*``
environment, a test's dict); this module turns the result into :class:`Settings`, checking
every value's type once at start-up, so a wrong ``MEDCHAT_PAGE_SIZE=abc`` stops the
server with a clear message instead of surfacing as a 500 on the first page that reads it.
Code reads ``svc.settings.page_size``, never ``config["PAGE_SIZE"]``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Settings:
    """Every key of ``app.config.DEFAULTS``, lower-cased (docs there)."""

    database_url: str  # load_config fills the SQLite default
    database_pool_size: int
    redis_url: str | None
    rate_limit_key_prefix: str
    session_idle_seconds: int
    session_max_seconds: int
    session_touch_seconds: float
    session_sweep_seconds: float
    cookie_secure: bool
    login_rate_limit: int
    login_rate_period_seconds: int
    lockout_after_failures: int
    lockout_base_seconds: int
    lockout_max_seconds: int
    trusted_proxy_count: int
    invite_hours: int
    setup_link_hours: int
    message_max_chars: int
    page_size: int
    group_title_max_chars: int
    group_max_members: int
    directory_page_size: int
    display_timezone: str | None
    noscript_refresh_seconds: int
    max_content_length: int
    max_form_memory_size: int
    max_form_parts: int
    body_timeout: int
    https_redirect: bool
    allowed_origins: tuple[str, ...]
    gc_thresholds: tuple[int, ...]
    upload_max_bytes: int
    upload_idle_seconds: float
    upload_concurrency: int
    upload_office_types: tuple[str, ...]
    upload_staged_hours: float
    files_sweep_seconds: float
    files_path: str  # load_config fills instance/files
    image_max_pixels: int
    thumbnail_px: int
    media_workers: int
    media_timeout_seconds: float
    media_memory_mib: int
    media_cpu_seconds: int
    ws_max_message_bytes: int
    tls_read_buffer_bytes: int
    tls_shared_read_buffer: bool
    tls_shutdown_seconds: float
    ws_heartbeat_seconds: float
    ws_heartbeat_spread: float
    ws_session_check_batch_seconds: float
    ws_send_queue: int
    ws_resume_page: int
    ws_resume_max: int
    message_rate: int
    message_rate_period_seconds: int
    message_burst: int
    ws_handshakes_per_minute: int
    typing_ttl_seconds: float
    typing_min_interval_seconds: float
    presence_max_group: int
    presence_batch_seconds: float
    presence_grace_seconds: float
    presence_instance_ttl_seconds: float
    receipts_all_members_max: int
    argon2_memory_kib: int
    argon2_time_cost: int
    argon2_parallelism: int
    password_min_chars: int
    password_max_chars: int
    password_min_score: int
    public_url: str
    allowed_hosts: tuple[str, ...]
    secret_key: str
    migrate_on_start: bool
    rate_limit_enabled: bool
    record_events: bool
    ws_permessage_deflate: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Read every field from ``config`` (upper-case keys), checking its type."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f.name.upper()
            if key not in config:
                raise SettingsError(f"{key} is missing (app/config.py DEFAULTS lists every setting)")
            values[f.name] = _checked(key, config[key], hints[f.name])
        if len(values["gc_thresholds"]) > 3:
            raise SettingsError(f"GC_THRESHOLDS takes at most three numbers (young, middle, old), not {list(values['gc_thresholds'])!r}")
        unknown = set(values["upload_office_types"]) - OFFICE_TYPES
        if unknown:
            raise SettingsError(f"UPLOAD_OFFICE_TYPES takes only {sorted(OFFICE_TYPES)}, not {sorted(unknown)!r}")
        for key in ("upload_max_bytes", "upload_concurrency", "image_max_pixels", "thumbnail_px", "media_workers", "media_memory_mib", "media_cpu_seconds"):
            if values[key] < 1:
                raise SettingsError(f"{key.upper()} must be at least 1, not {values[key]!r}")
        return cls(**values)


OFFICE_TYPES = {"docx", "xlsx", "pptx"}  # the Office packages app/lib/sniff.py can check


class SettingsError(ValueError):
    """A setting of the wrong type or missing."""


def _checked(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (hint,) = [o for o in options if o is not type(None)]
        origin = typing.get_origin(hint)
    if origin is tuple and typing.get_args(hint)[0] is int:
        if not isinstance(value, list | tuple) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise SettingsError(f"{key} must be a list of positive whole numbers, not {value!r}")
        return tuple(value)
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{key} must be a list of strings, not {value!r}")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{key} must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{key} must be a whole number, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsError(f"{key} must be a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SettingsError(f"{key} must be text, not {value!r}")
        return value
    raise TypeError(f"no check for {hint!r}")  # pragma: no cover - a field type added without a check
