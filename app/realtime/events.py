"""Events: what an action tells the open sockets after it has committed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One wake-up. ``user_ids`` names who receives it; ``session_ids`` (hashes) names
    sessions whose sockets must close. ``data`` is the JSON frame sent to clients."""

    kind: str
    user_ids: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    session_ids: tuple[str, ...] = ()
    # Set on events that should not reach the socket they came from (typing echo).
    except_socket: str | None = None
    # The process that published it (presence bookkeeping across instances).
    origin: str | None = None
    # The change-stream position the frame carries (None: not a stream change).
    position: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "user_ids": list(self.user_ids),
                "data": self.data,
                "session_ids": list(self.session_ids),
                "except_socket": self.except_socket,
                "origin": self.origin,
                "position": self.position,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        obj = json.loads(raw)
        return cls(
            kind=str(obj["kind"]),
            user_ids=tuple(int(u) for u in obj.get("user_ids", ())),
            data=dict(obj.get("data", {})),
            session_ids=tuple(str(x) for x in obj.get("session_ids", ())),
            except_socket=obj.get("except_socket"),
            origin=obj.get("origin"),
            position=int(obj["position"]) if obj.get("position") is not None else None,
        )
