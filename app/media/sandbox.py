"""Run media jobs in the worker subprocess: bounded in number, memory, CPU and time."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from app.media import MediaRefused

log = logging.getLogger("medchat.media")

WORKER = Path(__file__).resolve().parent / "worker.py"
_FAILED = "The file could not be processed. Try again, or send it in another format."


class MediaSandbox:
    def __init__(self, *, concurrency: int = 2, timeout: float = 30.0, memory_bytes: int = 1024 * 1024 * 1024, cpu_seconds: int = 20) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self.cpu_seconds = cpu_seconds

    async def clean_image(self, source: Path, target: Path, thumbnail: Path, *, max_pixels: int, thumb_px: int) -> dict[str, Any]:
        """``app.media.images.clean_image`` in the worker; ``MediaRefused`` if the photo
        cannot be shared or the worker failed (crashed, hit a limit, took too long)."""
        return await self._run({
            "kind": "image", "source": str(source), "target": str(target), "thumbnail": str(thumbnail),
            "max_pixels": max_pixels, "thumb_px": thumb_px,
        })

    async def _run(self, job: dict[str, Any]) -> dict[str, Any]:
        job = {**job, "memory_bytes": self.memory_bytes, "cpu_seconds": self.cpu_seconds}
        async with self._slots:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", str(WORKER),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            try:
                async with asyncio.timeout(self.timeout):
                    out, err = await proc.communicate(json.dumps(job).encode())
            except TimeoutError:
                proc.kill()
                await proc.wait()
                log.warning("media job %s killed after %.1f s", job["kind"], self.timeout)
                raise MediaRefused("timeout", "The file took too long to process: it cannot be shared.") from None
            except BaseException:
                proc.kill()
                await proc.wait()
                raise
        try:
            answer = json.loads(out)
        except ValueError:
            answer = None
        if proc.returncode != 0 or not isinstance(answer, dict):
            log.warning("media job %s failed (exit %s): %s", job["kind"], proc.returncode, err.decode(errors="replace")[-500:])
            raise MediaRefused("failed", _FAILED)
        if not answer.get("ok"):
            raise MediaRefused(str(answer.get("code")), str(answer.get("message")))
        return dict(answer["result"])
