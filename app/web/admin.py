"""Administrators: staff accounts (create, invite, deactivate, reset, role) and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from quart import Blueprint, redirect, render_template, request, url_for
from quart.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

from app.actions import accounts
from app.actions.accounts import StaffFields
from app.actions.errors import ActionError
from app.records import Staff
from app.vocab import AuditAction, LinkPurpose
from app.web import confirmations
from app.web.context import actor, admin_required, id_arg, svc

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_ACTIONS = tuple(AuditAction)  # the filter offers exactly what can be written


def _link(path: str) -> str:
    """An absolute link under PUBLIC_URL (never the request's Host)."""
    return str(svc().settings.public_url) + path


@bp.get("/staff")
@admin_required
async def staff_list() -> str:
    query = request.args.get("q", "")[:100]
    people = await accounts.find_staff(svc(), query, include_inactive=True, limit=500)
    pending = await accounts.pending_invites(svc())
    return await render_template("admin/staff.html", people=people, pending=pending, q=query, error=None, values={}, now=svc().clock.now())


@bp.post("/staff")
@admin_required
async def create_staff() -> str | tuple[str, int]:
    form = await request.form
    values = {k: form.get(k, "")[:200] for k in ("username", "display_name", "department", "job_title", "role")}
    try:
        user, token = await accounts.do_create_staff(svc(), actor(), StaffFields(**values))
    except ActionError as exc:
        if exc.status != 400:
            raise
        people = await accounts.find_staff(svc(), "", include_inactive=True, limit=500)
        pending = await accounts.pending_invites(svc())
        return await render_template("admin/staff.html", people=people, pending=pending, q="", error=exc.message, values=values, now=svc().clock.now()), 400
    link = _link(url_for("auth.invite", token=token))
    return await render_template("admin/invite_link.html", user=user, link=link, purpose=LinkPurpose.INVITE, hours=svc().settings.invite_hours)


async def _target(user_id: int) -> Staff:
    user = await accounts.get_staff(svc(), user_id)
    if user is None:
        raise NotFound("No such account.")
    return user


@bp.get("/staff/<int:user_id>")
@admin_required
async def staff_detail(user_id: int) -> str:
    user = await _target(user_id)
    pending = await accounts.pending_invites(svc())
    return await render_template("admin/staff_detail.html", user=user, pending=pending.get(user_id), error=request.args.get("error"), now=svc().clock.now())


async def _account_change(user_id: int, change: str, role: str = "") -> ResponseReturnValue:
    await _target(user_id)
    try:
        if change == "deactivate":
            await accounts.do_set_active(svc(), actor(), user_id, False)
        elif change == "reactivate":
            await accounts.do_set_active(svc(), actor(), user_id, True)
        elif change == "unlock":
            await accounts.do_unlock_account(svc(), actor(), user_id)
        else:
            await accounts.do_change_role(svc(), actor(), user_id, role)
    except ActionError as exc:
        if exc.status != 400:
            raise
        user = await _target(user_id)
        pending = await accounts.pending_invites(svc())
        return await render_template("admin/staff_detail.html", user=user, pending=pending.get(user_id), error=exc.message, now=svc().clock.now()), 400
    return redirect(url_for("admin.staff_detail", user_id=user_id), 303)


async def confirm_deactivate(user_id: int) -> str:
    """Ask once before deactivating (the page's script asks with a dialog instead)."""
    user = await _target(user_id)
    question, consequence = confirmations.deactivate(user.display_name)
    return await render_template(
        "confirm.html", heading=question, consequence=consequence, button="Deactivate",
        action=url_for("admin.deactivate", user_id=user_id), cancel=url_for("admin.staff_detail", user_id=user_id),
    )


async def confirm_reset(user_id: int) -> str:
    user = await _target(user_id)
    question, consequence = confirmations.reset_password(user.display_name, svc().settings.invite_hours)
    return await render_template(
        "confirm.html", heading=question, consequence=consequence, button="Reset password",
        action=url_for("admin.reset", user_id=user_id), cancel=url_for("admin.staff_detail", user_id=user_id),
    )


# GET asks first (the confirmation page), POST does it: one rule, so a bad id is 404 for both.
@bp.route("/staff/<int:user_id>/deactivate", methods=["GET", "POST"])
@admin_required
async def deactivate(user_id: int) -> ResponseReturnValue:
    if request.method == "GET":
        return await confirm_deactivate(user_id)
    return await _account_change(user_id, "deactivate")


@bp.post("/staff/<int:user_id>/reactivate")
@admin_required
async def reactivate(user_id: int) -> ResponseReturnValue:
    return await _account_change(user_id, "reactivate")


@bp.post("/staff/<int:user_id>/unlock")
@admin_required
async def unlock(user_id: int) -> ResponseReturnValue:
    return await _account_change(user_id, "unlock")


@bp.post("/staff/<int:user_id>/role")
@admin_required
async def change_role(user_id: int) -> ResponseReturnValue:
    form = await request.form
    return await _account_change(user_id, "role", form.get("role", "")[:16])


@bp.route("/staff/<int:user_id>/reset", methods=["GET", "POST"])
@admin_required
async def reset(user_id: int) -> str:
    if request.method == "GET":
        return await confirm_reset(user_id)
    await _target(user_id)
    user, token = await accounts.do_reset_password(svc(), actor(), user_id)
    link = _link(url_for("auth.invite", token=token))
    return await render_template("admin/invite_link.html", user=user, link=link, purpose=LinkPurpose.RESET, hours=svc().settings.invite_hours)


def _date_arg(name: str) -> datetime | None:
    raw = request.args.get(name, "")
    if not raw:
        return None
    try:
        return datetime.strptime(raw[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


@bp.get("/audit")
@admin_required
async def audit() -> str:
    action = request.args.get("action", "")
    if action not in AUDIT_ACTIONS:
        action = ""
    before = id_arg("before", request.args.get("before"))
    since, until = _date_arg("since"), _date_arg("until")
    if until is not None:
        from datetime import timedelta

        until += timedelta(days=1)
    rows = await accounts.audit_entries(
        svc(), actor(), action=action or None, username=request.args.get("user", "")[:64] or None,
        since=since, until=until, before_id=before,
    )
    return await render_template("admin/audit.html", rows=rows, actions=AUDIT_ACTIONS, args=request.args)
