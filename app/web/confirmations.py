"""What a person is asked before something they cannot undo with one click.

Each confirmation names what will happen. Without JavaScript the link opens a page
(``templates/confirm.html``) whose button does it; with JavaScript the same words appear in
a dialog and, confirmed, the page's script posts to the same URL. Both doors, one text.
"""

from __future__ import annotations

from collections.abc import Callable

from quart import Quart


def remove_member(name: str, group: str) -> tuple[str, str]:
    return (
        f"Remove {name} from \u201c{group}\u201d?",
        f"{name} stops receiving this group's messages at once and will not see anything said after this. "
        "Everyone in the group sees that you removed them.",
    )


def leave_group(group: str) -> tuple[str, str]:
    return (
        f"Leave \u201c{group}\u201d?",
        "You stop receiving this group's messages at once and it leaves your chat list. Everyone in the "
        "group sees that you left; a group admin can add you again.",
    )


def deactivate(name: str) -> tuple[str, str]:
    return (
        f"Deactivate {name}?",
        f"{name} is signed out everywhere at once, every open MedChat page and app of theirs closes, and "
        "their unused invite or reset links stop working. Their account and messages stay for the record; "
        "you can reactivate them later.",
    )


def reset_password(name: str, hours: int) -> tuple[str, str]:
    return (
        f"Reset {name}'s password?",
        f"{name}'s password stops working and they are signed out everywhere at once. You get a new one-time "
        f"link (valid {hours} h) to give them, with which they set a new password.",
    )


def end_other_sessions(count: int) -> tuple[str, str]:
    return (
        f"Sign out {count} other session{'' if count == 1 else 's'}?",
        "Every other device and browser signed in as you is signed out at once: its open pages close and ask "
        "for a login. This one stays signed in.",
    )


ALL: dict[str, Callable[..., tuple[str, str]]] = {
    "remove_member": remove_member, "leave_group": leave_group, "deactivate": deactivate,
    "reset_password": reset_password, "end_other_sessions": end_other_sessions,
}


def register_confirmations(app: Quart) -> None:
    """``confirmation.NAME(...)`` in templates gives (question, consequence)."""
    app.jinja_env.globals["confirmation"] = ALL
