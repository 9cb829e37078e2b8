"""./start.sh itself: the ports are configurable and links and redirects name the port it binds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import ROOT, free_port

pytestmark = pytest.mark.e2e


def test_start_sh_binds_the_configured_ports_and_names_them_in_links(tmp_path: Path) -> None:
    port, http_port = free_port(), free_port()
    while http_port == port:
        http_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env.update({
        "MEDCHAT_INSTANCE_PATH": str(tmp_path / "instance"),
        "MEDCHAT_PORT": str(port),
        "MEDCHAT_HTTP_PORT": str(http_port),
        "PYTHONUNBUFFERED": "1",
    })
    log = tmp_path / "start.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603
            ["bash", str(ROOT / "start.sh")], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120  # the first run may check the venv against requirements.txt
        health = None
        with httpx.Client(verify=False, timeout=2.0) as client:  # noqa: S501 - the development certificate
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    health = client.get(f"https://127.0.0.1:{port}/healthz")
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            assert health is not None and health.status_code == 200, log.read_text(errors="replace")
            redirect = client.get(f"http://127.0.0.1:{http_port}/chats?x=1", headers={"Host": "phish.example"})
        assert redirect.status_code == 308
        assert redirect.headers["location"] == f"https://localhost:{port}/chats?x=1"
        output = log.read_text(errors="replace")
        assert re.search(rf"https://localhost:{port}/setup/[A-Za-z0-9_-]{{40,}}", output), output
        assert f"https://localhost:{port}" in output
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


def test_start_sh_refuses_a_port_that_is_not_a_number(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env.update({"MEDCHAT_INSTANCE_PATH": str(tmp_path / "instance"), "MEDCHAT_PORT": "84x3"})
    done = subprocess.run(["bash", str(ROOT / "start.sh")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert done.returncode == 2
    assert "port numbers" in done.stderr
