"""Start, stop and restart a real Hypercorn for the benchmarks, pinned to one core.

Started the way tests/e2e/harness.py and ./start.sh do it: the project's CLI prepares an
instance folder (``quart --app app prepare-instance``: certificate, secret key, schema) and
Hypercorn runs from hypercorn.toml, with --bind/--insecure-bind/--certfile/--keyfile on the
command line. Differences, all for load:

- ``taskset -c <core>`` (default 0) in front of Hypercorn; its worker inherits the affinity;
- the message and handshake limits are raised (MEDCHAT_MESSAGE_RATE/_BURST,
  MEDCHAT_WS_HANDSHAKES_PER_MINUTE): the generator sends far more than one person would;
- the access log goes to a file (bench/results/hypercorn-<name>.log).

The running server is described in ``<instance>/server.json`` (ports, pids, env) so that
loadgen.py can find the worker's pid (RSS, py-spy) and restart it.

    python bench/server.py start --instance bench/results/instance-sqlite
    python bench/server.py stop  --instance bench/results/instance-sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS = ROOT / "bench" / "results"

LOAD_ENV = {
    # The generator sends for many people from one address: lift the per-user message
    # bucket and the per-user/per-address handshake limit (documented in docs/performance.md).
    "MEDCHAT_MESSAGE_RATE": "1000000",
    "MEDCHAT_MESSAGE_BURST": "1000000",
    "MEDCHAT_WS_HANDSHAKES_PER_MINUTE": "1000000",
    # Sessions are minted once by setup_data.py; a long run must not hit the 30-minute idle timeout.
    "MEDCHAT_SESSION_IDLE_SECONDS": "43200",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(instance: Path, https_port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["MEDCHAT_INSTANCE_PATH"] = str(instance.resolve())
    env["MEDCHAT_PUBLIC_URL"] = f"https://127.0.0.1:{https_port}"
    # No HTTPS_REDIRECT: BENCH_PLAIN=1 measures ws:// on the insecure bind, standing in for
    # a TLS-terminating proxy in front.
    env.update(LOAD_ENV)
    env.update(extra or {})
    return env


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "quart"), "--app", "app", *args],
        cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"quart {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out += [int(x) for x in handle.read().split()]
    except OSError:
        pass
    return out


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sched_wait_seconds(pid: int) -> float:
    """Time the process's main thread spent runnable but waiting for a CPU (/proc/<pid>/schedstat).

    High values mean other processes (e.g. test suites on the same core) took the CPU."""
    try:
        with open(f"/proc/{pid}/schedstat") as handle:
            return int(handle.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class BenchServer:
    """One Hypercorn (master + worker) on free ports, serving one instance folder."""

    def __init__(self, instance: Path, *, core: str = "0", env: dict[str, str] | None = None, name: str | None = None,
                 https_port: int | None = None, http_port: int | None = None) -> None:
        self.instance = instance.resolve()
        self.core = core
        self.extra_env = dict(env or {})
        self.name = name or self.instance.name
        self.https_port = https_port or free_port()
        self.http_port = http_port or free_port()
        while self.http_port == self.https_port:
            self.http_port = free_port()
        self.env = server_env(self.instance, self.https_port, self.extra_env)
        self.log_path = RESULTS / f"hypercorn-{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    # -- description shared with loadgen.py ------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.instance / "server.json"

    def describe(self) -> dict[str, Any]:
        return {
            "instance": str(self.instance), "name": self.name, "core": self.core,
            "https_port": self.https_port, "http_port": self.http_port, "pid": self.pid,
            "worker_pids": self.worker_pids(), "extra_env": self.extra_env,
            "base_url": f"https://127.0.0.1:{self.https_port}",
            "wss_url": f"wss://127.0.0.1:{self.https_port}/ws",
            "ws_url": f"ws://127.0.0.1:{self.http_port}/ws",
        }

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.describe(), indent=2))

    @classmethod
    def load(cls, instance: Path) -> BenchServer:
        info = json.loads((instance / "server.json").read_text())
        server = cls(Path(info["instance"]), core=info["core"], env=info["extra_env"], name=info["name"],
                     https_port=info["https_port"], http_port=info["http_port"])
        server.pid = info["pid"]
        return server

    # -- lifecycle -----------------------------------------------------------------------
    def prepare(self) -> None:
        self.instance.mkdir(parents=True, exist_ok=True)
        out = cli(self.env, "prepare-instance")
        print(out.strip(), file=sys.stderr)

    def start(self, timeout: float = 60.0) -> BenchServer:
        RESULTS.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')} https={self.https_port} http={self.http_port}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    "taskset", "-c", self.core,
                    str(VENV_BIN / "hypercorn"), "--config", "hypercorn.toml",
                    "--bind", f"127.0.0.1:{self.https_port}",
                    "--insecure-bind", f"127.0.0.1:{self.http_port}",
                    "--certfile", str(self.instance / "cert.pem"),
                    "--keyfile", str(self.instance / "key.pem"),
                    # bench/experiments.py wraps app.create_app with what-if patches (never the headline figures)
                    # and bench/loopmon.py traces the event loop per second (never in app/)
                    "bench.experiments:create_app()"
                    if self.extra_env.get("MEDCHAT_BENCH_EXPERIMENTS") or self.extra_env.get("MEDCHAT_BENCH_LOOPMON")
                    else "app:create_app()",
                ],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self.process.pid
        self.wait_healthy(timeout)
        self.save()
        return self

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Poll /healthz over HTTPS; return the seconds it took."""
        started = time.monotonic()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        last: Exception | None = None
        while time.monotonic() - started < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"hypercorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{self.https_port}/healthz", context=ctx, timeout=2) as resp:
                    if resp.status == 200 and self.worker_pid():
                        return time.monotonic() - started
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
            time.sleep(0.05)
        raise RuntimeError(f"hypercorn not healthy within {timeout} s ({last!r}); see {self.log_path}")

    def worker_pids(self) -> list[int]:
        """Hypercorn's worker processes (spawned children of the master, not the resource tracker)."""
        if self.pid is None:
            return []
        return [p for p in children(self.pid) if "resource_tracker" not in cmdline(p)]

    def worker_pid(self) -> int | None:
        pids = self.worker_pids()
        return pids[0] if pids else None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the group (graceful), then SIGKILL what lingers."""
        if self.pid is None:
            return
        pgid = self.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    break
            elif not _alive(self.pid):
                break
            time.sleep(0.05)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process is not None:
            self.process.wait(timeout=5)
        self.process = None
        self.pid = None

    def restart(self) -> float:
        """Stop, start on the same ports; return the seconds until /healthz answered."""
        self.stop()
        started = time.monotonic()
        self.start()
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "restart", "info"])
    parser.add_argument("--instance", type=Path, default=RESULTS / "instance-sqlite")
    parser.add_argument("--core", default="0", help="CPU list for taskset (default 0)")
    parser.add_argument("--database-url", default=None, help="MEDCHAT_DATABASE_URL (default: SQLite in the instance)")
    parser.add_argument("--env", action="append", default=[], help="extra NAME=value for the server")
    parser.add_argument("--experiment", default="", help="comma-separated bench/experiments.py patches")
    parser.add_argument("--monitor", nargs="?", const="", default=None, metavar="FILE",
                        help="trace the event loop per second (bench/loopmon.py) into FILE "
                             "(default bench/results/loopmon-<instance>.jsonl; appended across restarts)")
    args = parser.parse_args()
    if args.action == "start":
        extra = dict(kv.split("=", 1) for kv in args.env)
        if args.database_url:
            extra["MEDCHAT_DATABASE_URL"] = args.database_url
        if args.experiment:
            extra["MEDCHAT_BENCH_EXPERIMENTS"] = args.experiment
        if args.monitor is not None:
            extra["MEDCHAT_BENCH_LOOPMON"] = str(Path(args.monitor or RESULTS / f"loopmon-{args.instance.resolve().name}.jsonl").resolve())
        server = BenchServer(args.instance, core=args.core, env=extra)
        server.prepare()
        server.start()
        print(json.dumps(server.describe(), indent=2))
        # Detach: the Popen object goes away, the server keeps running in its own session.
        server.process = None
        return
    server = BenchServer.load(args.instance)
    if args.action == "stop":
        server.stop()
        server.state_file.unlink(missing_ok=True)
        print("stopped")
    elif args.action == "restart":
        took = server.restart()
        server.process = None
        print(json.dumps({"healthy_after_s": took, **server.describe()}, indent=2))
    else:
        print(json.dumps(server.describe(), indent=2))


if __name__ == "__main__":
    main()
