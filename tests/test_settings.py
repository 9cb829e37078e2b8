"""The typed settings: every default is a field, and a wrong type stops the start."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from app import create_app
from app.config import DEFAULTS
from app.settings import Settings, SettingsError

INJECTED = {"CLOCK", "PASSWORD_HASHING"}  # objects a test hands in, not settings


def test_every_default_is_a_setting_and_every_setting_has_a_default() -> None:
    assert {f.name.upper() for f in fields(Settings)} == set(DEFAULTS) - INJECTED


def test_the_app_builds_them_once_from_its_config(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", "PAGE_SIZE": 7, "ALLOWED_HOSTS": ["medchat"], "PRESENCE_BATCH_SECONDS": 2})
    settings = app.extensions["medchat"].settings
    assert settings.page_size == 7
    assert settings.allowed_hosts == ("medchat",)
    assert settings.presence_batch_seconds == 2.0 and isinstance(settings.presence_batch_seconds, float)
    with pytest.raises(AttributeError):
        settings.page_size = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("PAGE_SIZE", "abc", "PAGE_SIZE must be a whole number"),
        ("PAGE_SIZE", True, "PAGE_SIZE must be a whole number"),
        ("COOKIE_SECURE", "yes", "COOKIE_SECURE must be true or false"),
        ("ALLOWED_HOSTS", "medchat", "ALLOWED_HOSTS must be a list of strings"),
        ("PUBLIC_URL", 8443, "PUBLIC_URL must be text"),
        ("TYPING_MIN_INTERVAL_SECONDS", "2", "TYPING_MIN_INTERVAL_SECONDS must be a number"),
        ("GC_THRESHOLDS", ["700"], "GC_THRESHOLDS must be a list of positive whole numbers"),
        ("GC_THRESHOLDS", [700, 0], "GC_THRESHOLDS must be a list of positive whole numbers"),
        ("GC_THRESHOLDS", [700, 10, 10, 10], "GC_THRESHOLDS takes at most three numbers"),
        ("UPLOAD_OFFICE_TYPES", ["docx", "exe"], "UPLOAD_OFFICE_TYPES takes only .*'xlsx'.*'exe'"),
        ("UPLOAD_MAX_BYTES", 0, "UPLOAD_MAX_BYTES must be at least 1"),
        ("MEDIA_WORKERS", "2", "MEDIA_WORKERS must be a whole number"),
    ],
)
def test_a_wrong_type_is_refused_with_its_name(key: str, value: object, says: str) -> None:
    config = {**DEFAULTS, "SECRET_KEY": "k" * 40, "DATABASE_URL": "sqlite+aiosqlite:///x.db", "FILES_PATH": "files", key: value}
    with pytest.raises(SettingsError, match=says):
        Settings.from_config(config)


def test_a_missing_key_is_named() -> None:
    config = {k: v for k, v in DEFAULTS.items() if k != "PAGE_SIZE"} | {"SECRET_KEY": "k" * 40, "DATABASE_URL": "sqlite+aiosqlite:///x.db", "FILES_PATH": "files"}
    with pytest.raises(SettingsError, match="PAGE_SIZE is missing"):
        Settings.from_config(config)


def test_no_code_reads_a_setting_from_the_config_mapping() -> None:
    """Settings are read from the typed object; config[...] stays for the objects a test
    injects and for what Quart's extensions read themselves (QUART_AUTH_*)."""
    import re

    allowed = re.compile(r'config(\.get)?[\[(]"(CLOCK|PASSWORD_HASHING|QUART_AUTH_\w+)"')
    offenders = []
    for path in sorted(Path("app").rglob("*.py")):
        if path.name in ("config.py", "settings.py"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in re.finditer(r'config(\.get)?[\[(]["\'][A-Z_0-9]+', line):
                if not allowed.match(line[m.start():]):
                    offenders.append(f"{path}:{n}: {line.strip()}")
    assert offenders == []


def test_no_page_reads_a_setting_from_config() -> None:
    """Templates get the typed object as ``settings`` (a context processor)."""
    import re

    offenders = [f"{path}: {m.group(0)}" for path in sorted(Path("templates").rglob("*.html")) for m in re.finditer(r"\bconfig\.[A-Z_]+", path.read_text())]
    assert offenders == []


async def test_the_serving_process_gets_the_gc_thresholds_and_gets_its_own_back(tmp_path: Path) -> None:
    import gc

    before = gc.get_threshold()
    app = create_app({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", "MIGRATE_ON_START": True, "GC_THRESHOLDS": [12_345, 20]})
    async with app.test_app():
        assert gc.get_threshold() == (12_345, 20, before[2])
    assert gc.get_threshold() == before
    app = create_app({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", "MIGRATE_ON_START": True, "GC_THRESHOLDS": []})
    async with app.test_app():
        assert gc.get_threshold() == before  # [] keeps Python's
