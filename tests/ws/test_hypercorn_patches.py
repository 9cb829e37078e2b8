"""The Hypercorn 0.18 adaptations in app/ws: the frame guard, idempotence, hypercorn.toml,
and a fingerprint of every Hypercorn method they wrap or rely on.

The end-to-end behaviour is tested against a real Hypercorn in
tests/e2e/test_hypercorn_hardening.py.
"""

from __future__ import annotations

import ast
import hashlib
import struct
from pathlib import Path
from typing import Any

import hypercorn
import pytest
from hypercorn.config import Config
from hypercorn.protocol import ws_stream
from wsproto.events import TextMessage

from app.config import DEFAULTS
from app.ws.access_log import redact_access_log
from app.ws.frame_limit import FrameSizeGuard, refuse_oversized_frames
from app.ws.plain_http import http1_only_on_plain_http
from app.ws.tls_close import quiet_tls_close

ROOT = Path(__file__).resolve().parents[2]
HYPERCORN = Path(hypercorn.__file__).parent

# sha256 (first 16 hex digits) of each method's source in Hypercorn 0.18.0. A change means
# the patch next to it must be re-read against the new code before this list is updated.
FINGERPRINTS = {
    ("protocol/ws_stream.py", "WSStream.handle"): "e25b8b2f1d6688fd",  # app/ws/frame_limit.py
    ("protocol/ws_stream.py", "WSStream._handle_events"): "ef885584d8ef890b",  # frame_limit
    ("protocol/ws_stream.py", "WebsocketBuffer.extend"): "bfe9273e1663cbae",  # frame_limit
    ("protocol/ws_stream.py", "WSStream._send_wsproto_event"): "dd53bf0e425416e7",  # frame_limit
    ("protocol/h11.py", "H11Protocol._check_protocol"): "7d44b320f16bf523",  # plain_http.py
    ("protocol/h11.py", "H11Protocol._create_stream"): "6bd0bac8d8001d70",  # plain_http
    ("protocol/h11.py", "H11Protocol._handle_events"): "c434c80ed4051728",  # plain_http
    ("asyncio/tcp_server.py", "TCPServer._close"): "90b931e1889906f8",  # tls_close.py
    ("asyncio/tcp_server.py", "TCPServer.run"): "c7fb5f70c6d97f5b",  # tls_close
    ("logging.py", "Logger.atoms"): "a6c6f880ca36313f",  # access_log.py
}


def _method_source(path: Path, qualified: str) -> str:
    source = path.read_text()
    cls, name = qualified.split(".")
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == name:
                    return ast.get_source_segment(source, item) or ""
    raise AssertionError(f"{qualified} is gone from {path}")


@pytest.mark.parametrize(("file", "method"), sorted(FINGERPRINTS), ids=lambda v: str(v))
def test_the_patched_hypercorn_code_is_the_code_the_patches_were_written_for(file: str, method: str) -> None:
    digest = hashlib.sha256(_method_source(HYPERCORN / file, method).encode()).hexdigest()[:16]
    assert digest == FINGERPRINTS[(file, method)], f"Hypercorn's {method} changed: re-check the app/ws patch that wraps it"


def _frame(opcode: int, length: int, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = bytes([first, 0x80 | length])
    elif length < 1 << 16:
        head = bytes([first, 0x80 | 126]) + struct.pack("!H", length)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack("!Q", length)
    return head + b"mask"


def test_the_guard_refuses_on_the_declared_length_before_any_payload() -> None:
    guard = FrameSizeGuard(65536)
    assert not guard.feed(_frame(1, 65536) + b"x" * 65536)  # exactly the limit: fine
    assert guard.feed(_frame(1, 16 * 1024 * 1024))  # the header alone is enough
    assert FrameSizeGuard(65536).feed(_frame(2, 65537))  # 16-bit length, binary


def test_the_guard_follows_headers_split_anywhere_and_skips_payloads() -> None:
    stream = _frame(1, 200) + b"a" * 200 + _frame(9, 4) + b"ping" + _frame(1, 70000)
    guard = FrameSizeGuard(65536)
    results = [guard.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert results[-1] and not any(results[:-1])  # the last header byte decides
    assert len(guard.header) == 0 and guard.skip == 70000


def test_the_guard_sums_fragments_and_ignores_control_frames_between_them() -> None:
    guard = FrameSizeGuard(1000)
    assert not guard.feed(_frame(1, 600, fin=False) + b"a" * 600)
    assert not guard.feed(_frame(10, 0))  # a pong in between
    assert guard.feed(_frame(0, 401, fin=False))
    fresh = FrameSizeGuard(1000)
    assert not fresh.feed(_frame(1, 600) + b"a" * 600 + _frame(1, 600) + b"b" * 600)  # two messages


def test_the_buffer_counts_before_it_writes() -> None:
    refuse_oversized_frames(65536)
    buffer = ws_stream.WebsocketBuffer(10)
    buffer.extend(TextMessage(data="12345", frame_finished=False, message_finished=False))
    with pytest.raises(ws_stream.FrameTooLargeError):
        buffer.extend(TextMessage(data="x" * 1000, frame_finished=False, message_finished=False))
    assert buffer.value is not None and buffer.value.getvalue() == "12345"  # nothing of it kept


def test_the_patches_are_idempotent(app: Any) -> None:
    from hypercorn.asyncio.tcp_server import TCPServer
    from hypercorn.logging import Logger
    from hypercorn.protocol.h11 import H11Protocol

    before = (ws_stream.WSStream.handle, ws_stream.WebsocketBuffer.extend, H11Protocol._check_protocol,
              H11Protocol._create_stream, TCPServer._close, Logger.atoms)
    assert refuse_oversized_frames(65536) and http1_only_on_plain_http() and redact_access_log() and quiet_tls_close(10)
    after = (ws_stream.WSStream.handle, ws_stream.WebsocketBuffer.extend, H11Protocol._check_protocol,
             H11Protocol._create_stream, TCPServer._close, Logger.atoms)
    assert before == after


def test_hypercorn_toml_sets_the_timeouts_and_hides_the_server_name() -> None:
    config = Config.from_toml(ROOT / "hypercorn.toml")
    assert config.include_server_header is False
    assert config.response_headers("h2") == [h for h in config.response_headers("h2") if h[0] != b"server"]
    # The header (and idle) timeout: a slowloris is closed after this many seconds.
    assert config.keep_alive_timeout <= 30
    # A silent connection is closed, but only after the app's own heartbeat close
    # (3 missed pings, checked every WS_HEARTBEAT_SECONDS: at most 4 intervals).
    assert config.read_timeout is not None
    assert config.read_timeout > 4 * DEFAULTS["WS_HEARTBEAT_SECONDS"]
    assert config.ssl_handshake_timeout <= 10
    assert config.websocket_max_message_size == DEFAULTS["WS_MAX_MESSAGE_BYTES"]
