"""Password policy (zxcvbn, NIST-style) and argon2id hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from app.lib.passwords import PasswordHashing, PasswordPolicy, password_problem

POLICY = PasswordPolicy(min_chars=12, max_chars=256, min_score=3)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("", "at least 12"),
        ("elevenchars", "at least 12"),
        ("a" * 257, "at most 256"),
        ("password1234", "common"),
        ("qwertyuiopasdf", "common"),
        ("zzzzzzzzzzzzzzzzzz", "Repeats"),
        ("ilovealice2024!", "username or name"),
        ("WHITFIELD-rocks-1", "username or name"),
    ],
)
def test_refused(password: str, why: str) -> None:
    problem = password_problem(password, POLICY, ["alice", "Alice", "Whitfield"])
    assert problem is not None and why in problem


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "N\u00e4chtliche Stille \u00fcber dem Krankenhaus, \U0001f319 und Kaffee",
        "\u6708\u304c\u7dba\u9e97\u3067\u3059\u306d\u3001\u5148\u751f\u3002\u732b\u3082\u5bdd\u3066\u3044\u307e\u3059",
        "lantern orchard velvet quarry " * 8,  # 240 characters: longer than zxcvbn takes
    ],
)
def test_accepted(password: str) -> None:
    assert password_problem(password, POLICY, ["alice", "Alice", "Whitfield"]) is None


def test_exactly_12_and_256_characters() -> None:
    assert password_problem("tQ7#vLp9!mZ2", POLICY, []) is None
    long = ("plover quince marram " * 13)[:256]
    assert len(long) == 256
    assert password_problem(long, POLICY, []) is None


def test_short_personal_words_do_not_block() -> None:
    # A two-letter name part must not refuse every password containing it.
    assert password_problem("lantern orchard velvet quarry", POLICY, ["Al", "Li"]) is None


def test_argon2id_parameters() -> None:
    hashing = PasswordHashing(19 * 1024, 2, 1)
    hashed = hashing.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hashing.hash("correct horse battery staple") != hashed  # salted
    assert PasswordHasher().verify(hashed, "correct horse battery staple")
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(hashed, "correct horse battery stapler")


def test_verify() -> None:
    hashing = PasswordHashing(19 * 1024, 2, 1)
    hashed = hashing.hash("lantern orchard velvet quarry")
    assert hashing.verify(hashed, "lantern orchard velvet quarry")
    assert not hashing.verify(hashed, "lantern orchard velvet quarrY")
    assert not hashing.verify(None, "lantern orchard velvet quarry")  # no password set yet
    assert not hashing.verify(None, "medchat-timing-equaliser")  # not even the dummy's own
    assert not hashing.verify("not a hash", "anything")


def test_weaker_argon2_settings_are_refused(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import create_app

    monkeypatch.setenv("MEDCHAT_INSTANCE_PATH", str(tmp_path))
    for weak in ({"ARGON2_MEMORY_KIB": 4096}, {"ARGON2_TIME_COST": 1}):
        with pytest.raises(ValueError, match="Argon2"):
            create_app({"SECRET_KEY": "k" * 40, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", **weak})
