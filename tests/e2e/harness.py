"""End-to-end harness: a real Hypercorn over HTTPS/HTTP/2 and Debian's Chromium.

``start_server(instance_dir)`` prepares an instance folder with the project's own CLI
(``quart --app app prepare-instance`` and ``setup-link``) and runs Hypercorn from
``hypercorn.toml`` on free local ports, the way ``./start.sh`` does. The ``server``
fixture gives each test module its own server and database; WebSocket tests
(``tests/e2e/test_ws_*.py``) can use it too: ``server.ws_url``, ``create_user`` and
``login_client`` need no browser.

Hypercorn's output goes to ``test-artifacts/e2e/hypercorn-<name>.log`` and is attached to
the report of every failed test that used the server.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
# The venv the tests run in (./test.sh uses .venv); fall back to the project's .venv.
VENV_BIN = Path(sys.executable).parent if (Path(sys.executable).parent / "hypercorn").exists() else ROOT / ".venv" / "bin"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's environment without its MEDCHAT_* settings, plus ``extra``.

    CI exports MEDCHAT_TEST_DATABASE_URL and friends for the unit suite; an end-to-end
    server runs on its instance folder's SQLite and the in-process broker unless a test
    asks otherwise through ``env`` (e.g. ``{"MEDCHAT_REDIS_URL": ...}``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class ServerProcess:
    """A Hypercorn process serving MedChat from one instance folder."""

    instance: Path
    https_port: int
    http_port: int
    log_path: Path
    setup_token: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    hypercorn_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        """The plain-HTTP listener (it only redirects to ``base_url``)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}/ws"

    @property
    def setup_url(self) -> str:
        assert self.setup_token, "no setup link was issued for this instance"
        return f"{self.base_url}/setup/{self.setup_token}"

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``quart --app app ARGS`` against this instance folder."""
        return subprocess.run(
            [str(VENV_BIN / "quart"), "--app", "app", *args],
            cwd=ROOT, env=self.env, input=input, capture_output=True, text=True, timeout=60, check=check,
        )

    def start(self) -> ServerProcess:
        """Start Hypercorn and wait until /healthz answers over HTTPS."""
        assert self.process is None, "already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')} https={self.https_port} http={self.http_port}\n".encode())
            log.flush()
            # CLI flags override hypercorn.toml's bind, insecure_bind, certfile and keyfile
            # (and whatever ``hypercorn_args`` names, e.g. a short --keep-alive); everything
            # else (ALPN h2, limits, workers, logging) comes from the toml.
            self.process = subprocess.Popen(  # noqa: S603
                [
                    str(VENV_BIN / "hypercorn"), "--config", "hypercorn.toml",
                    "--bind", f"127.0.0.1:{self.https_port}",
                    "--insecure-bind", f"127.0.0.1:{self.http_port}",
                    "--certfile", str(self.instance / "cert.pem"),
                    "--keyfile", str(self.instance / "key.pem"),
                    *self.hypercorn_args,
                    "app:create_app()",
                ],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: the worker goes with it
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last_error: Exception | None = None
        with httpx.Client(verify=False, timeout=2.0) as client:  # noqa: S501 - self-signed test certificate
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"hypercorn exited with {self.process.returncode}:\n{self.log_text()}")
                try:
                    response = client.get(f"{self.base_url}/healthz")
                    if response.status_code == 200:
                        return
                    last_error = RuntimeError(f"/healthz answered {response.status_code}: {response.text}")
                except httpx.HTTPError as exc:
                    last_error = exc
                time.sleep(0.1)
        raise RuntimeError(f"hypercorn did not answer /healthz within {STARTUP_TIMEOUT} s ({last_error!r}):\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL the whole process group if it lingers."""
        proc, self.process = self.process, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the group id is the leader's pid
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal_group(pgid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT)
        # The worker process is a child of the master: make sure nothing of ours is left.
        deadline = time.monotonic() + 5
        while self._signal_group(pgid, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal_group(pgid, signal.SIGKILL)

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> bool:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the whole process group at once: a crash, no shutdown hook runs."""
        proc, self.process = self.process, None
        if proc is None:
            return
        pgid = proc.pid
        self._signal_group(pgid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
        deadline = time.monotonic() + 5
        while self._signal_group(pgid, 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== SIGKILL {time.strftime('%H:%M:%S')}\n".encode())

    def restart(self) -> ServerProcess:
        """Stop and start again on the same ports with the same instance (data is kept)."""
        self.stop()
        return self.start()

    def worker_pid(self) -> int:
        """The pid of Hypercorn's worker process (the master's child that serves requests)."""
        assert self.process is not None, "not running"
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmdline:  # multiprocessing's worker, not its resource tracker
                return int(child)
        raise AssertionError(f"no Hypercorn worker among the children {children} of {self.process.pid}")

    def worker_rss_kib(self) -> int:
        """The worker's resident memory (VmRSS) in KiB."""
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def create_user(self, username: str, password: str, *, display_name: str | None = None, department: str = "", job_title: str = "", admin: bool = False) -> None:
        """Create an account with a password through the CLI (``create-user --password-stdin``)."""
        args = ["create-user", username, "--display-name", display_name or username.title(), "--password-stdin"]
        if department:
            args += ["--department", department]
        if job_title:
            args += ["--job-title", job_title]
        if admin:
            args.append("--admin")
        done = self.cli(*args, input=password + "\n", check=False)
        assert done.returncode == 0, f"create-user {username} failed: {done.stdout}{done.stderr}"


SETUP_LINK = re.compile(r"/setup/([A-Za-z0-9_\-]+)")


def start_server(
    instance_dir: Path, *, env: Mapping[str, str] | None = None, name: str | None = None, hypercorn_args: Sequence[str] = (),
) -> ServerProcess:
    """Prepare ``instance_dir`` with the project's CLI and start Hypercorn on free ports.

    ``env`` adds ``MEDCHAT_*`` settings (e.g. ``{"MEDCHAT_SESSION_IDLE_SECONDS": "5"}``);
    ``hypercorn_args`` adds command-line flags that win over hypercorn.toml (``["--keep-alive", "1"]``).
    The caller stops the server (``server.stop()``).
    """
    instance_dir.mkdir(parents=True, exist_ok=True)
    https_port, http_port = free_port(), free_port()
    while http_port == https_port:
        http_port = free_port()
    server_env = _clean_env({
        "MEDCHAT_INSTANCE_PATH": str(instance_dir),
        # As ./start.sh does: the public URL names the port it binds; plain HTTP redirects there.
        "MEDCHAT_PUBLIC_URL": f"https://127.0.0.1:{https_port}",
        "MEDCHAT_HTTPS_REDIRECT": "true",
        **(env or {}),
    })
    label = name or instance_dir.name
    server = ServerProcess(
        instance=instance_dir, https_port=https_port, http_port=http_port,
        log_path=ARTIFACTS / f"hypercorn-{label}.log", env=server_env, hypercorn_args=list(hypercorn_args),
    )
    if server.log_path.exists():
        server.log_path.unlink()
    prepared = server.cli("prepare-instance", check=False)
    assert prepared.returncode == 0, f"prepare-instance failed:\n{prepared.stdout}{prepared.stderr}"
    for needed in ("cert.pem", "key.pem", "secret_key"):
        assert (instance_dir / needed).exists(), f"prepare-instance made no {needed}"
    link = server.cli("setup-link", check=False)
    assert link.returncode == 0, f"setup-link failed:\n{link.stdout}{link.stderr}"
    match = SETUP_LINK.search(link.stdout)
    server.setup_token = match.group(1) if match else None  # None when accounts already exist
    return server.start()


async def login_client(server: ServerProcess, username: str, password: str) -> httpx.AsyncClient:
    """An HTTP/2 client logged in as ``username`` (cookies kept); the caller closes it."""
    client = httpx.AsyncClient(base_url=server.base_url, http2=True, verify=False, timeout=10.0)  # noqa: S501
    try:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "no csrf_token on /login"
        done = await client.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)})
        assert done.status_code == 303, f"login as {username}: {done.status_code} {done.text[:500]}"
    except BaseException:
        await client.aclose()
        raise
    return client


async def browser_sign_in(context: Any, username: str, password: str) -> Any:
    """A new page of ``context`` logged in as ``username`` through the real login form."""
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    async with page.expect_navigation(url=re.compile(r"/chats$")):
        await page.click("main button[type=submit]")
    return page


async def signed_in_page(browser: Any, server: ServerProcess, username: str, password: str, *, js: bool = True, **options: Any) -> Any:
    """A fresh context (own cookies) on ``server`` with one page logged in as ``username``."""
    options.setdefault("viewport", {"width": 1280, "height": 900})
    context = await browser.new_context(base_url=server.base_url, ignore_https_errors=True, java_script_enabled=js, **options)
    return await browser_sign_in(context, username, password)


async def nojs_context(browser: Any, base_url: str | None = None, **options: Any) -> Any:
    """A fresh browser context (own cookies) with JavaScript off that accepts the test certificate."""
    options.setdefault("viewport", {"width": 1000, "height": 800})
    if base_url:
        options["base_url"] = base_url
    return await browser.new_context(java_script_enabled=False, ignore_https_errors=True, **options)
