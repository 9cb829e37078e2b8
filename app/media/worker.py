"""The media worker: one job from stdin (JSON), one answer on stdout (JSON), then exit.

Started by ``app.media.sandbox`` as ``python -I app/media/worker.py`` (isolated: no user
site, no environment paths, and without importing the app, which would take ten times
longer than the job's own imports). Before it reads anything it lowers its own limits:
address space (``memory_bytes``) and CPU seconds (``cpu_seconds``), so a hostile file that
gets past the decoders' own checks ends this process, not the server.

Answer: ``{"ok": true, "result": {...}}``, or ``{"ok": false, "code": "...", "message": "..."}``
for a file that cannot be shared. Anything else (a crash, a limit hit) is the sandbox's to
report as a failure.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any


def _limit(job: dict[str, Any]) -> None:
    memory = int(job["memory_bytes"])
    cpu = int(job["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> int:
    job = json.loads(sys.stdin.read())
    _limit(job)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import images  # type: ignore[import-not-found]  # this folder's images.py, without the app

    try:
        if job["kind"] != "image":
            raise ValueError(f"unknown job kind {job['kind']!r}")
        result = images.clean_image(
            Path(job["source"]), Path(job["target"]), Path(job["thumbnail"]),
            max_pixels=int(job["max_pixels"]), thumb_px=int(job["thumb_px"]),
        )
    except images.ImageRefused as refused:
        print(json.dumps({"ok": False, "code": refused.code, "message": refused.message}))
        return 0
    print(json.dumps({"ok": True, "result": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
