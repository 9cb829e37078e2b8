"""Errors an action raises; app/web and app/ws turn them into pages, JSON and frames."""

from __future__ import annotations


class ActionError(Exception):
    """A request that cannot be done; ``message`` is for the user, ``code`` for programs."""

    status = 400

    def __init__(self, code: str, message: str, *, field: str | None = None, retry_after: float = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after


class NotFound(ActionError):
    """The object does not exist, or the caller may not know it does."""

    status = 404

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__("not_found", message)


class Forbidden(ActionError):
    status = 403

    def __init__(self, message: str = "You are not allowed to do that.") -> None:
        super().__init__("forbidden", message)


class RateLimited(ActionError):
    status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "rate_limited",
            f"You are sending too fast. Try again in {max(1, round(retry_after))} s.",
            retry_after=retry_after,
        )


class LoginFailed(ActionError):
    """One message for an unknown user, a wrong password, a locked or inactive account:
    it says when accounts lock and who unlocks them, never which case this was."""

    status = 400

    def __init__(self, lock_after: int) -> None:
        super().__init__(
            "login_failed",
            f"Wrong username or password. After {lock_after} wrong passwords in a row an "
            "account is locked for a while; an administrator can unlock it.",
        )
