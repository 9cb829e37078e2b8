"""Configuration layers: defaults, instance/config.py, MEDCHAT_* variables, test dict."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app import create_app
from app.config import DEFAULTS
from app.lib.passwords import PasswordHashing


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "instance"
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(folder))
    for name in ("MEDCHAT_SESSION_IDLE_SECONDS", "MEDCHAT_DATABASE_URL", "MEDCHAT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return folder


def test_layers(instance: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    instance.mkdir()
    (instance / "config.py").write_text("SESSION_IDLE_SECONDS = 900\nPAGE_SIZE = 20\n")
    monkeypatch.setenv("MEDCHAT_SESSION_IDLE_SECONDS", "600")
    app = create_app()
    assert app.instance_path == str(instance.resolve())
    assert app.config["SESSION_IDLE_SECONDS"] == 600  # environment beats the instance file
    assert app.config["PAGE_SIZE"] == 20  # the instance file beats the defaults
    assert app.config["SESSION_MAX_SECONDS"] == DEFAULTS["SESSION_MAX_SECONDS"]
    assert app.config["DATABASE_URL"] == f"sqlite+aiosqlite:///{instance.resolve()}/medchat.db"


def test_secret_key_is_generated_once(instance: Path) -> None:
    first = create_app().config["SECRET_KEY"]
    key_file = instance / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert create_app().config["SECRET_KEY"] == first


def test_each_instance_has_its_own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "a"))
    a = create_app().config["SECRET_KEY"]
    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path / "b"))
    assert create_app().config["SECRET_KEY"] != a


def test_request_limits_are_set(instance: Path) -> None:
    app = create_app({"SECRET_KEY": "s" * 40})
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024
    assert app.config["MAX_FORM_MEMORY_SIZE"] == 64 * 1024
    assert app.config["SESSION_IDLE_SECONDS"] == 30 * 60 and app.config["SESSION_MAX_SECONDS"] == 12 * 3600


@pytest.mark.parametrize(
    ("file_text", "env"),
    [
        ("ARGON2_TIME_COST = 1\n", {}),
        ("ARGON2_MEMORY_KIB = 1024\n", {}),
        ("", {"MEDCHAT_ARGON2_TIME_COST": "1"}),
        ("", {"MEDCHAT_ARGON2_MEMORY_KIB": "8"}),
    ],
)
def test_argon2_below_the_floor_is_refused(instance: Path, monkeypatch: pytest.MonkeyPatch, file_text: str, env: dict[str, str]) -> None:
    instance.mkdir()
    (instance / "config.py").write_text(file_text)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="Argon2 cost below"):
        create_app()


@pytest.mark.parametrize(
    "how", ["instance-file", "environment", "dict-without-testing"],
)
def test_a_cheap_password_hasher_is_taken_only_from_a_test(instance: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The suite hashes cheaply (tests/conftest.py FAST_HASHING); production never can."""
    instance.mkdir()
    if how == "instance-file":
        (instance / "config.py").write_text(
            "from app.lib.passwords import PasswordHashing\nPASSWORD_HASHING = PasswordHashing(8, 1, 1)\n"
        )
        make = create_app
    elif how == "environment":
        monkeypatch.setenv("MEDCHAT_PASSWORD_HASHING", '{"memory_kib": 8}')
        make = create_app
    else:
        def make() -> object:
            return create_app({"SECRET_KEY": "k" * 48, "PASSWORD_HASHING": PasswordHashing(8, 1, 1)})
    with pytest.raises(ValueError, match="PASSWORD_HASHING is for tests only"):
        make()


def test_production_hashing_is_argon2id_at_the_configured_cost(instance: Path) -> None:
    """Without a test's hasher the app hashes with ARGON2_* (defaults m=19 MiB, t=2, p=1)."""
    app = create_app()
    hashed = app.extensions["medchat"].passwords.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    cheap = create_app({"TESTING": True, "SECRET_KEY": "k" * 48, "PASSWORD_HASHING": PasswordHashing(8, 1, 1)})
    assert cheap.extensions["medchat"].passwords.hash("x").startswith("$argon2id$v=19$m=8,t=1,p=1$")
