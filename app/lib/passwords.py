"""Password policy (zxcvbn) and hashing (argon2id)."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

# zxcvbn's matching grows quickly with length, and zxcvbn 4.5 raises ValueError beyond its
# max_length (72): it sees the start of a long passphrase, which is enough.
_ZXCVBN_CHARS = 72


@dataclass(frozen=True)
class PasswordPolicy:
    min_chars: int
    max_chars: int
    min_score: int


def password_problem(password: str, policy: PasswordPolicy, personal: list[str]) -> str | None:
    """Return why ``password`` is refused, or None when it is acceptable.

    Any Unicode is allowed and there are no composition rules (NIST SP 800-63B): length,
    the common-password dictionaries zxcvbn ships, and the user's own names.
    """
    if len(password) < policy.min_chars:
        return f"Use at least {policy.min_chars} characters."
    if len(password) > policy.max_chars:
        return f"Use at most {policy.max_chars} characters."
    lowered = password.casefold()
    for word in personal:
        if len(word) >= 3 and word.casefold() in lowered:
            return "The password must not contain your username or name."
    result = zxcvbn(password[:_ZXCVBN_CHARS], user_inputs=[w for w in personal if w])
    if result["score"] < policy.min_score:
        feedback = result["feedback"]
        warning = (feedback.get("warning") or "This password is too easy to guess.").rstrip(".") + "."
        hints = [h.rstrip(".") + "." for h in feedback.get("suggestions", []) if h]
        return " ".join([warning, *hints, "A phrase of three or four unrelated words works well."])
    return None


class PasswordHashing:
    """Argon2id hashing with the configured cost."""

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the username is unknown, so both cases take as long.
        self._dummy = self._hasher.hash("medchat-timing-equaliser")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Check a password; ``stored`` None (unknown user, no password yet) is always False."""
        try:
            ok = self._hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and stored is not None
