"""The command line: init-db, create-user, setup-link (in process and as a real `quart` run)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from app import create_app
from app.services import Services
from app.store.staff import user_row_by_username

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "lantern orchard velvet quarry"


@pytest.fixture
def cli_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Quart:
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "instance"))
    return create_app({"TESTING": True, "SECRET_KEY": "c" * 48, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"})


def run(app: Quart, *args: str, input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=list(args), input=input)


def read_user(app: Quart, username: str) -> Any:
    services: Services = app.extensions["medchat"]

    async def read() -> Any:
        try:
            async with services.db.reading() as s:
                return await user_row_by_username(s, username)
        finally:
            await services.db.dispose()

    return asyncio.run(read())


def test_init_db_is_idempotent(cli_app: Quart, tmp_path: Path) -> None:
    first = run(cli_app, "init-db")
    assert first.exit_code == 0, first.output
    assert "database at head" in first.output
    assert (tmp_path / "cli.db").stat().st_size > 0
    second = run(cli_app, "init-db")
    assert second.exit_code == 0, second.output


def test_create_user(cli_app: Quart) -> None:
    result = run(cli_app, "create-user", "Alice.W", "--display-name", "Alice Whitfield", "--department", "ICU", "--job-title", "Nurse", "--admin", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "created alice.w (admin)" in result.output
    assert PASSWORD not in result.output
    row = read_user(cli_app, "alice.w")
    assert row is not None and row.role == "admin" and row.department == "ICU" and row.job_title == "Nurse"
    assert row.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["bob", "--display-name", "Bob Brown", "--password-stdin"], "password1234\n", "common"),
        (["bob", "--display-name", "Bob Brown", "--password-stdin"], "short\n", "at least 12"),
        (["b", "--display-name", "Bob Brown", "--password-stdin"], PASSWORD + "\n", "username"),
    ],
)
def test_create_user_refuses(cli_app: Quart, args: list[str], stdin: str, message: str) -> None:
    result = run(cli_app, "create-user", *args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert read_user(cli_app, "bob") is None


def test_create_user_twice(cli_app: Quart) -> None:
    args = ["create-user", "bob", "--display-name", "Bob Brown", "--password-stdin"]
    assert run(cli_app, *args, input=PASSWORD + "\n").exit_code == 0
    again = run(cli_app, *args, input=PASSWORD + "\n")
    assert again.exit_code != 0 and "taken" in again.output


def test_create_user_requires_password_stdin(cli_app: Quart) -> None:
    assert run(cli_app, "init-db").exit_code == 0
    result = run(cli_app, "create-user", "bob", "--display-name", "Bob Brown", input=PASSWORD + "\n")
    assert result.exit_code != 0
    assert read_user(cli_app, "bob") is None


def test_setup_link(cli_app: Quart) -> None:
    assert run(cli_app, "init-db").exit_code == 0
    result = run(cli_app, "setup-link")
    assert result.exit_code == 0, result.output
    assert "https://localhost:8443/setup/" in result.output
    token = result.output.split("/setup/", 1)[1].split()[0]
    assert len(token) >= 40
    assert run(cli_app, "create-user", "root", "--display-name", "Rosa Admin", "--admin", "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    result = run(cli_app, "setup-link")
    assert result.exit_code == 0
    assert "accounts exist" in result.output and "/setup/" not in result.output


def _quart(tmp_path: Path, *args: str, input: str | None = None, extra_env: dict[str, str] | None = None, umask: int = -1) -> subprocess.CompletedProcess[str]:
    return _python(tmp_path, "-m", "quart", "--app", "app", *args, input=input, extra_env=extra_env, umask=umask)


def _python(tmp_path: Path, *args: str, input: str | None = None, extra_env: dict[str, str] | None = None, umask: int = -1) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env.update({"MEDCHAT_INSTANCE_PATH": str(tmp_path / "inst"), **(extra_env or {})})
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT, env=env, input=input, capture_output=True, text=True, timeout=120, check=False, umask=umask,
    )


def modes(folder: Path) -> dict[str, int]:
    """The permission bits of a folder ("." ) and of everything in it."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in sorted(folder.rglob("*")):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def private(found: dict[str, int]) -> bool:
    return all(mode == (0o700 if name == "." else 0o600) for name, mode in found.items())


# While the app runs: it has written (WAL mode), so medchat.db-wal and -shm exist.
WRITE_AND_LIST = f"""
import asyncio, json, os, stat, sys
from pathlib import Path
from app import create_app
from app.actions.accounts import StaffFields, create_user_with_password

app = create_app()
svc = app.extensions["medchat"]
folder = Path(app.instance_path)

async def main():
    try:
        await svc.db.upgrade_to_head()
        await create_user_with_password(svc, StaffFields("nurse1", "Nora Nurse"), {PASSWORD!r})
        found = {{".": stat.S_IMODE(folder.stat().st_mode)}}
        for path in sorted(folder.rglob("*")):
            found[path.name] = stat.S_IMODE(path.lstat().st_mode)
        print(json.dumps(found))
    finally:
        await svc.db.dispose()

asyncio.run(main())
"""


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_instance_files_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    import json

    instance = tmp_path / "inst"
    done = _quart(tmp_path, "prepare-instance", umask=umask)
    assert done.returncode == 0, done.stderr
    found = modes(instance)
    assert {"secret_key", "cert.pem", "key.pem", "medchat.db"} <= set(found), found
    assert private(found), {k: oct(v) for k, v in found.items()}
    # The app at work: the database in WAL mode has its -wal and -shm files.
    ran = _python(tmp_path, "-c", WRITE_AND_LIST, umask=umask)
    assert ran.returncode == 0, ran.stderr
    live = json.loads(ran.stdout.strip().splitlines()[-1])
    assert {"medchat.db-wal", "medchat.db-shm"} <= set(live), live
    assert private(live), {k: oct(v) for k, v in live.items()}
    assert private(modes(instance))


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_a_new_instance_folder_made_by_the_app_is_private(tmp_path: Path, umask: int) -> None:
    import json

    ran = _python(tmp_path, "-c", WRITE_AND_LIST, umask=umask)
    assert ran.returncode == 0, ran.stderr
    live = json.loads(ran.stdout.strip().splitlines()[-1])
    assert {"secret_key", "medchat.db", "medchat.db-wal", "medchat.db-shm"} <= set(live), live
    assert private(live), {k: oct(v) for k, v in live.items()}


def test_prepare_instance_repairs_an_open_folder(tmp_path: Path) -> None:
    instance = tmp_path / "inst"
    assert _quart(tmp_path, "prepare-instance", umask=0o022).returncode == 0
    # As an older MedChat left it: a world-readable folder and files.
    (instance / "config.py").write_text("DISPLAY_TIMEZONE = 'UTC'\n")
    (instance / "backups").mkdir()
    (instance / "backups" / "old.db").write_bytes(b"x")
    os.chmod(instance, 0o755)  # noqa: S103 - the state being repaired
    os.chmod(instance / "backups", 0o755)  # noqa: S103 - the state being repaired
    for path in instance.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o644)
    assert not private(modes(instance))
    done = _quart(tmp_path, "prepare-instance", umask=0o022)
    assert done.returncode == 0, done.stderr
    found = modes(instance)
    assert found["backups"] == 0o700
    del found["backups"]
    assert private(found), {k: oct(v) for k, v in found.items()}


def test_real_quart_commands_use_the_instance_folder(tmp_path: Path) -> None:
    done = _quart(tmp_path, "init-db")
    assert done.returncode == 0, done.stderr
    instance = tmp_path / "inst"
    assert (instance / "medchat.db").exists()
    key = instance / "secret_key"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600
    first_key = key.read_text()
    link = _quart(tmp_path, "setup-link", extra_env={"MEDCHAT_PUBLIC_URL": "https://chat.ward.example"})
    assert link.returncode == 0, link.stderr
    assert "https://chat.ward.example/setup/" in link.stdout
    made = _quart(tmp_path, "create-user", "nurse1", "--display-name", "Nora Nurse", "--password-stdin", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    again = _quart(tmp_path, "init-db")
    assert again.returncode == 0, again.stderr
    assert key.read_text() == first_key  # the second start keeps the key and the data
    assert "accounts exist" in _quart(tmp_path, "setup-link").stdout
