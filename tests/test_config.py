"""Configuration layers: defaults, instance/config.py, MEDCHAT_* variables, test dict."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app import create_app
from app.config import DEFAULTS


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
