"""Defaults and how configuration loads.

Layers, later wins: the defaults below, then ``instance/config.py``, then ``MEDCHAT_*``
environment variables (values parsed as JSON where they parse, so ``MEDCHAT_SESSION_IDLE_SECONDS=600``
is an int), then the dict a test hands to ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from quart import Quart

from app.lib.hosts import normalise_public_url
from app.lib.private_files import make_private_folder
from app.lib.timefmt import display_zone

DEFAULTS: dict[str, Any] = {
    # Storage. None means the SQLite file instance/medchat.db.
    "DATABASE_URL": None,
    "DATABASE_POOL_SIZE": 10,
    # Broker. None means the in-process broker (one Hypercorn process).
    "REDIS_URL": None,
    # With REDIS_URL: the prefix of the keys the shared rate limits (messages, WebSocket
    # handshakes) count in, so that two MedChat installations can share one Redis.
    "RATE_LIMIT_KEY_PREFIX": "medchat:limits",
    # Sessions (seconds).
    "SESSION_IDLE_SECONDS": 30 * 60,
    "SESSION_MAX_SECONDS": 12 * 60 * 60,
    # Write last_seen at most this often (a socket re-checks its session on activity as
    # often); the idle timeout is this precise.
    "SESSION_TOUCH_SECONDS": 30,
    # How often each process ends the sessions that ran out unseen (0: never; a request
    # that finds one ends it too). Ending is idempotent across processes.
    "SESSION_SWEEP_SECONDS": 60,
    # Cookies carry Secure and the __Host- prefix. Only a plain-HTTP development setup turns it off.
    "COOKIE_SECURE": True,
    # Login throttling: quart-rate-limiter allows this many POST /login per period and client
    # address (a ward behind one NAT logs in at shift change); then a per-account lockout.
    "LOGIN_RATE_LIMIT": 30,
    "LOGIN_RATE_PERIOD_SECONDS": 60,
    "LOCKOUT_AFTER_FAILURES": 5,
    "LOCKOUT_BASE_SECONDS": 60,
    "LOCKOUT_MAX_SECONDS": 60 * 60,
    # Number of reverse proxies in front of MedChat whose X-Forwarded-For is trusted.
    "TRUSTED_PROXY_COUNT": 0,
    # Invites and the first-administrator setup link (hours).
    "INVITE_HOURS": 72,
    "SETUP_LINK_HOURS": 24,
    # Messages.
    "MESSAGE_MAX_CHARS": 4000,
    "PAGE_SIZE": 50,
    "GROUP_TITLE_MAX_CHARS": 100,
    "GROUP_MAX_MEMBERS": 1000,
    # The staff directory and the lists to pick group members from: people per page.
    "DIRECTORY_PAGE_SIZE": 25,
    # Pages without JavaScript show times in this zone (None: this machine's zone); with
    # JavaScript the browser's zone. Storage is always UTC.
    "DISPLAY_TIMEZONE": None,
    # No-JavaScript pages refresh themselves this often (seconds).
    "NOSCRIPT_REFRESH_SECONDS": 30,
    # Requests: a chat message of 4000 four-byte characters, percent-encoded, fits.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "MAX_FORM_MEMORY_SIZE": 64 * 1024,
    "MAX_FORM_PARTS": 200,
    "BODY_TIMEOUT": 30,
    # Plain-HTTP requests are answered with a redirect to PUBLIC_URL (./start.sh turns it on
    # for its plain-HTTP port); nothing but /healthz is served over plain HTTP then.
    "HTTPS_REDIRECT": False,
    # Origins allowed to open /ws and to POST, besides the server's own.
    "ALLOWED_ORIGINS": [],
    # The serving process's garbage-collector thresholds (Python's gc.set_threshold; its
    # defaults are 700, 10, 10; [] keeps them). With 1000 sockets the heap holds ~380,000
    # objects that live as long as their sockets. With Python's young generation of 700 the
    # short-lived objects of each frame are often still alive when it is collected, so they
    # are promoted, and a full collection (a walk of the whole heap, ~360 ms) came every few
    # seconds under load. A young generation of 10,000 lets them die first; the older
    # generations keep Python's ratios, so full collections still come as garbage piles up
    # (the cycles of closed sockets are reclaimed) (docs/performance.md, issue 10).
    "GC_THRESHOLDS": [10_000, 10, 10],
    # Shared files (issue 11; docs/files-plan.md). The most one file may be (bytes); an upload
    # is cut off as soon as it passes this, without the server holding more than a chunk of it
    # (a reverse proxy in front should refuse bigger bodies too: docs/deployment notes).
    "UPLOAD_MAX_BYTES": 25 * 1024 * 1024,
    # An upload that sends nothing for this long ends with 408 (a lost phone connection).
    "UPLOAD_IDLE_SECONDS": 30,
    # Uploads received at once by one process; past it 503 with Retry-After (memory, disk, CPU).
    "UPLOAD_CONCURRENCY": 8,
    # The Office formats the hospital accepts, by their sniffed type ([] accepts none).
    "UPLOAD_OFFICE_TYPES": ["docx", "xlsx", "pptx"],
    # A staged upload never sent in a message is deleted after this long (hours), by a sweep
    # every FILES_SWEEP_SECONDS (0: never) that also deletes the bytes of removed files.
    "UPLOAD_STAGED_HOURS": 1,
    "FILES_SWEEP_SECONDS": 300,
    # Where shared files' bytes live: a folder (None: instance/files), private to MedChat.
    "FILES_PATH": None,
    # Photos: the most pixels one may have (a 48 MP phone photo is 8064 x 6048); thumbnails'
    # longer side.
    "IMAGE_MAX_PIXELS": 64_000_000,
    "THUMBNAIL_PX": 640,
    # The media worker (app/media): processes at once, seconds before it is killed, its address
    # space (MiB) and CPU seconds. Decoding runs there, never in the server.
    "MEDIA_WORKERS": 2,
    "MEDIA_TIMEOUT_SECONDS": 30,
    "MEDIA_MEMORY_MIB": 1024,
    "MEDIA_CPU_SECONDS": 20,
    # WebSocket (issue: real time).
    "WS_MAX_MESSAGE_BYTES": 64 * 1024,
    # asyncio's TLS read buffer per connection (Python's default is 256 KiB; app/ws/tls_buffer.py).
    "TLS_READ_BUFFER_BYTES": 32 * 1024,
    # One such buffer per thread, shared by every TLS connection of a selector event loop,
    # instead of one per connection (issue 10: 32 KiB less per idle socket; app/ws/tls_buffer.py).
    "TLS_SHARED_READ_BUFFER": True,
    # How long a closing TLS connection waits for the peer's close_notify (asyncio: 30 s);
    # a vanished peer holds its buffers that long (app/ws/tls_close.py).
    "TLS_SHUTDOWN_SECONDS": 10,
    "WS_HEARTBEAT_SECONDS": 20,
    # A socket's first heartbeat comes after this share of the interval at random (0..1; 1:
    # anywhere in it), so sockets opened together do not re-check their sessions together.
    "WS_HEARTBEAT_SPREAD": 1.0,
    # The heartbeats' session re-checks of this many seconds are one query (a batch).
    "WS_SESSION_CHECK_BATCH_SECONDS": 0.5,
    "WS_SEND_QUEUE": 256,
    "WS_RESUME_PAGE": 200,
    "WS_RESUME_MAX": 5000,
    "MESSAGE_RATE": 30,
    "MESSAGE_RATE_PERIOD_SECONDS": 10,
    "MESSAGE_BURST": 10,
    "WS_HANDSHAKES_PER_MINUTE": 30,
    "TYPING_TTL_SECONDS": 6,
    # At most one typing change per person and conversation this often; a stop only after a start.
    "TYPING_MIN_INTERVAL_SECONDS": 2.0,
    # Presence is shared in direct chats and groups of at most this many members, and
    # changes reach a socket at most once per PRESENCE_BATCH_SECONDS (batched).
    "PRESENCE_MAX_GROUP": 50,
    "PRESENCE_BATCH_SECONDS": 1.0,
    # A user's last socket on a process closed: "offline" only if none came back this soon
    # (a reload does not flash "offline").
    "PRESENCE_GRACE_SECONDS": 5.0,
    # With REDIS_URL: each process says it is alive every third of this; the others drop the
    # presence of a process not heard from for this long (it died), as if it had said "offline".
    "PRESENCE_INSTANCE_TTL_SECONDS": 30.0,
    # Receipts go to every member in conversations up to this size (2: a direct chat); in
    # groups only to the senders whose ticks changed and the member's own devices, the only
    # ones that draw anything from them (ticks are under one's own messages). Telling every
    # member of a 50-member group made each message cost 50 x 50 receipt frames.
    "RECEIPTS_ALL_MEMBERS_MAX": 2,
    # Argon2id cost: m in KiB, t iterations, p lanes. Never below m=19 MiB, t=2, p=1.
    "ARGON2_MEMORY_KIB": 19 * 1024,
    "ARGON2_TIME_COST": 2,
    "ARGON2_PARALLELISM": 1,
    "PASSWORD_MIN_CHARS": 12,
    "PASSWORD_MAX_CHARS": 256,
    "PASSWORD_MIN_SCORE": 3,
    # The address people use: the base of every printed link (setup, invite, reset) and of the
    # plain-HTTP redirect. Never taken from a request's Host header. ./start.sh sets it from
    # the port it binds; a hospital sets its own name.
    "PUBLIC_URL": "https://localhost:8443",
    # Host names requests may carry besides PUBLIC_URL's (and its loopback aliases when it is
    # localhost); any other Host gets 400. E.g. ["medchat", "10.1.2.3"].
    "ALLOWED_HOSTS": [],
    # Filled from instance/secret_key (made on first start) unless set here.
    "SECRET_KEY": None,
    # Bring the database schema to the newest migration when the server starts.
    "MIGRATE_ON_START": True,
    # quart-rate-limiter's limits (login, WebSocket handshakes); off only in tests that measure other things.
    "RATE_LIMIT_ENABLED": True,
    # Keep every published event in Services.published (tests read it).
    "RECORD_EVENTS": False,
    # Offer permessage-deflate on /ws (off: app/ws/deflate.py explains why).
    "WS_PERMESSAGE_DEFLATE": False,
    # Objects a test may hand in instead of the real ones (not settings: Settings skips them):
    # a Clock (app/lib/clock.py) and a PasswordHashing with cheaper parameters.
    "CLOCK": None,
    "PASSWORD_HASHING": None,
}

ENV_PREFIX = "MEDCHAT"


def instance_path_from_env() -> str | None:
    """Return the instance folder named by MEDCHAT_INSTANCE_PATH, if any."""
    path = os.environ.get("MEDCHAT_INSTANCE_PATH")
    return str(Path(path).resolve()) if path else None


def load_config(app: Quart, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from the layers, then derive what depends on them."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile(os.path.join(app.instance_path, "config.py"), silent=True)
    if test_config is None:
        app.config.from_prefixed_env(ENV_PREFIX)
    else:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(Path(app.instance_path))
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = "sqlite+aiosqlite:///" + os.path.join(
            app.instance_path, "medchat.db"
        )
    if not app.config["FILES_PATH"]:
        app.config["FILES_PATH"] = os.path.join(app.instance_path, "files")
    app.config["PUBLIC_URL"] = normalise_public_url(str(app.config["PUBLIC_URL"] or ""))
    # None means this machine's zone: resolved once, so pages and settings name the same zone.
    app.config["DISPLAY_TIMEZONE"] = display_zone(app.config["DISPLAY_TIMEZONE"]).key
    if app.config["ARGON2_MEMORY_KIB"] < 19 * 1024 or app.config["ARGON2_TIME_COST"] < 2:
        raise ValueError("Argon2 cost below m=19 MiB, t=2 is refused")
    # A test may hand in a cheaper hasher object (tests/conftest.py); nothing else may: not
    # instance/config.py, not the environment, not a dict without TESTING.
    hasher_from_test = test_config is not None and "PASSWORD_HASHING" in test_config and bool(test_config.get("TESTING"))
    if app.config.get("PASSWORD_HASHING") is not None and not hasher_from_test:
        raise ValueError("PASSWORD_HASHING is for tests only (create_app({'TESTING': True, ...})); set ARGON2_* instead")


def instance_secret_key(instance: Path) -> str:
    """Read the secret key from the instance folder, creating it (mode 600) on first use."""
    make_private_folder(instance)
    key_file = instance / "secret_key"
    if not key_file.exists():
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                os.fchmod(fd, 0o600)  # whatever the umask
                handle.write(secrets.token_urlsafe(64))
    key = key_file.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{key_file} holds no usable secret key")
    return key
